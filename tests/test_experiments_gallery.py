"""The experiments gallery (experiments/): every experiment's --quick mode reproduces its
qualitative result, and writes its results table and figure."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def quick(name: str, tmp_path: Path) -> dict:
    """Run experiments/<name>/run.py --quick into tmp_path; check its outputs; its result."""
    spec = importlib.util.spec_from_file_location(f"gallery_{name}", EXPERIMENTS / name / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--out", str(tmp_path)])
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert table.startswith("# ") and "| " in table and "![figure](figure.png)" in table
    assert (tmp_path / "figure.png").stat().st_size > 5_000 and (tmp_path / "results.csv").exists()
    return result


def test_claus_boutilier_independent_learners_miss_the_optimum(tmp_path: Path) -> None:
    ends = quick("claus_boutilier", tmp_path)["ends"]
    seeds = sum(ends["climbing/epsilon-greedy"].values())
    # epsilon-greedy: the safe (c,c) in the climbing game, the safe (b,b) in the penalty game
    assert ends["climbing/epsilon-greedy"]["(c,c)"] > seeds / 2 and ends["climbing/epsilon-greedy"]["(a,a)"] == 0
    assert ends["penalty/epsilon-greedy"]["(b,b)"] == seeds
    # Boltzmann climbs one step further, to (b,b) = 7, in most seeds
    assert ends["climbing/Boltzmann"]["(b,b)"] > seeds / 2


def test_sandholm_crites_q_learner_cooperates_with_tit_for_tat(tmp_path: Path) -> None:
    per_seed = quick("sandholm_crites", tmp_path)["per_seed"]
    assert min(per_seed["vs tit-for-tat, 16 copies"]) >= 0.9
    assert set(per_seed) == {"self-play, 1 copy", "self-play, 16 copies (default)", "vs tit-for-tat, 16 copies"}
    assert all(0.0 <= v <= 1.0 for values in per_seed.values() for v in values)


def test_lewis_signalling_emerges_and_the_deaf_listener_ablation_fails(tmp_path: Path) -> None:
    per_seed = quick("lewis_signalling", tmp_path)["per_seed"]
    for algo in ("MAPPO", "IQL"):
        success, information = np.mean(per_seed[algo], axis=0)
        assert success >= 0.95 and information >= 0.9, (algo, success, information)
        deaf, _ = np.mean(per_seed[f"{algo}, listener deaf (ablation)"], axis=0)
        assert deaf <= 0.5, (algo, deaf)  # chance is 1/3


def test_guess_two_thirds_learners_move_toward_zero(tmp_path: Path) -> None:
    per_seed = np.asarray(quick("two_thirds", tmp_path)["per_seed"])
    assert per_seed.shape[1] == 20
    assert per_seed.mean() < 25  # uniform random play averages 50; the equilibrium is 0


def test_axelrod_first_tournament_tit_for_tat_ranks_near_the_top(tmp_path: Path) -> None:
    pytest.importorskip("axelrod")
    result = quick("axelrod_first_tournament", tmp_path)
    for run in result["mas"]:
        assert len(run) == 15
        assert run["Tit For Tat"][0] <= 5  # 1980: first; the library's own reproduction: near the top
        assert run["Random"][0] >= 10 and run["First by Anonymous"][0] >= 10  # the 1980 bottom stays at the bottom
    assert {name for run in result["library"] for name in run} == set(result["mas"][0])


def test_harvest_commons_learners_eat_more_and_sooner_than_random_play(tmp_path: Path) -> None:
    # Perolat et al.'s tragedy: learners harvest far more than random play, and eat the
    # patches bare early (rewards come in earlier rounds: sustainability falls)
    for seed in quick("harvest_commons", tmp_path)["per_seed"]:
        start, trained = seed[0], seed[-1]
        assert start["step"] == 0 and trained["step"] > 0
        assert trained["efficiency"] > 1.5 * start["efficiency"], (start, trained)
        assert trained["sustainability"] < start["sustainability"] - 10, (start, trained)
        assert 0.0 <= trained["tagging rate"] <= 1.0 and 0.0 <= trained["peace"] <= 6.0


def test_gathering_tagging_rate_is_higher_when_apples_are_scarce(tmp_path: Path) -> None:
    per_seed = quick("gathering_scarcity", tmp_path)["per_seed"]
    abundant, scarce = (np.mean([s["tagging rate"] for s in per_seed[k]]) for k in ("0.1", "0.003"))
    assert scarce > abundant, (abundant, scarce)  # Leibo et al. 2017: conflict rises with scarcity
    # the knob works as meant: fewer apples eaten where fewer grow
    assert np.mean([s["efficiency"] for s in per_seed["0.1"]]) > np.mean([s["efficiency"] for s in per_seed["0.003"]])


def test_simple_spread_mappo_beats_random_play(tmp_path: Path) -> None:
    pytest.importorskip("mpe2")
    for seed in quick("simple_spread", tmp_path)["per_seed"]:
        assert seed["greedy"] > seed["random"] + 1.0, seed  # random play: about -26 per agent
        assert seed["curve"][-1][1] > seed["curve"][0][1]  # the training return rose


def _llm_dilemmas_module():
    spec = importlib.util.spec_from_file_location("gallery_llm_copies", EXPERIMENTS / "llm_social_dilemmas" / "copies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_llm_dilemma_measures_count_the_occasions_they_name() -> None:
    cp = _llm_dilemmas_module()
    # tit for tat (the agent) against C D C D C: never first to defect, copies every move, answers
    # every defection (no forgiveness), never defects unprovoked
    tft = cp.behaviour([([1, 1, 0, 1, 0], [1, 0, 1, 0, 1])])
    assert tft == {"niceness": 1.0, "forgiveness": 0.0, "retaliation": 1.0, "troublemaking": 0.0, "emulation": 1.0}
    # an agent that defects first, then cooperates after the partner's defection
    rogue = cp.behaviour([([0, 1, 1], [1, 0, 1]), ([1, 1, 1], [1, 1, 1])])
    assert rogue["niceness"] == 0.5 and rogue["troublemaking"] == 1 / 5  # D in round 0: 1 of 5 unprovoked chances
    assert rogue["forgiveness"] == 1.0 and rogue["retaliation"] == 0.0  # the partner's D in round 1 met the agent's C
    assert np.isnan(cp.behaviour([([1, 1], [1, 1])])["retaliation"])  # never provoked: no occasion
    assert rogue["emulation"] == 3 / 4
    signature = cp.after_one_defection([([1, 1, 1, 0, 0, 1], [1, 1, 0, 1, 1, 1]), ([1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 1, 1])], 2)
    assert signature == {"after": 0.5, "later": 0.75, "before": 1.0}


def test_llm_agents_in_social_dilemmas_quick(tmp_path: Path) -> None:
    """One quick run of the embedded model: what is stored and measured holds whatever it plays."""
    pytest.importorskip("transformers")
    result = quick("llm_social_dilemmas", tmp_path)
    assert "SmolLM2" in result["model"] and "SmolLM2" in (tmp_path / "results.md").read_text(encoding="utf-8")
    fishery = result["runs"]["fishery"][0]
    assert set(fishery) == {"no talk", "talk"}
    assert all(not c["messages"] for c in fishery["no talk"]) and all(c["messages"] for c in fishery["talk"])
    summary = result["summary"]
    for label in ("no talk", "talk"):
        assert 0 <= summary["fishery"][label]["survival"][0] <= 1 and 0 <= summary["fishery"][label]["over_use"][0] <= 1
    # the signature is the hand count of the LLM's stored moves in the round after the partner's one defection
    games = result["runs"]["partners"][0]["defect_once"]
    assert all(g["partner"] == [1, 1, 0, 1] for g in games)
    assert summary["signature"]["after"] == np.mean([g["llm"][3] for g in games])
    sweep = summary["sweep"]
    assert sweep["alpha=0"]["partner_cooperation"] == 0.0 and sweep["alpha=1"]["partner_cooperation"] == 1.0
    assert abs(np.mean([sweep[f"alpha={a}"]["partner_cooperation"] for a in ("0.25", "0.5", "0.75")]) - 0.5) < 0.3
    for measures in sweep.values():
        assert all(np.isnan(v) or 0.0 <= v <= 1.0 for v in measures.values())
    assert all(0 <= mean <= 100 for mean, _, _ in summary["two_thirds"])


def test_llm_dilemmas_bad_server_options_are_one_line_errors_before_any_play(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = EXPERIMENTS / "llm_social_dilemmas" / "run.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path), "--llm-url", "http://127.0.0.1:9/v1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("error: --llm-url needs --llm-model") and not (tmp_path / "results.json").exists()
