"""llm-ppo's per-agent adapters, self-play and --resume, on the real embedded model.

Tiny budgets (one or two updates of one short episode) keep the file to a few model loads.
"""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mas.errors import MasError
from mas.scenario import load_scenario, parse_scenario

GAME = {
    "kind": "normal_form", "actions": ["C", "D"], "action_descriptions": {"C": "cooperate", "D": "defect"},
    "payoffs": {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]}, "cooperate": "C", "defect": "D",
}
LLM = {"type": "llm", "mode": "score", "history_rounds": 1, "backend": {"kind": "local", "device": "cpu", "dtype": "float32"}}
VS_TFT = {"name": "llm_pd_tiny", "game": GAME, "rounds": 1, "seed": 3,
          "agents": [{"id": "llm", "policy": LLM}, {"id": "tft", "policy": "tit_for_tat"}]}
PAIR = {"name": "llm_pd_pair", "game": GAME, "rounds": 1, "seed": 3, "agents": [{"id": "p", "count": 2, "policy": LLM}]}
QUICK = {"episodes_per_update": 1, "epochs": 1, "minibatch": 2}


def scenario(data: dict, **changes):
    return parse_scenario({**copy.deepcopy(data), **changes}, source="test")


def _train(data: dict, out: Path, steps: int, **kwargs):
    from mas.training.run import train

    torch.set_num_threads(1)
    kwargs = {"device": "cpu", "eval_episodes": 1, "final_episodes": 0, "tensorboard": False, **kwargs}
    return train(scenario(data), "llm-ppo", steps, 1, out, **kwargs)


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "curves.csv").open() as handle:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(handle)]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", weights_only=True)["adapter_weights"]


# ----- per-agent adapters -------------------------------------------------------------------------
def test_an_update_moves_only_the_adapter_of_the_agent_it_learns_from() -> None:
    """Two learners with equal specs (one `count: 2` entry) still play their own adapters,
    and an update on p_0's decisions changes p_0's adapter and leaves p_1's as it was."""
    from mas.agents.llm.models import load_model
    from mas.agents.rl.config import LLMPPOConfig
    from mas.agents.rl.llm_model import LoraSettings, TrainableLM
    from mas.agents.rl.scoring_backend import ScoringBackend
    from mas.agents.rl.llm_ppo import LLMPPO, Rollouts

    torch.set_num_threads(1)
    lm = TrainableLM(load_model("default", "cpu", "float32"), LoraSettings(), seed=1, adapters=["p_0", "p_1"])
    backends = {a: ScoringBackend(lm, a, adapter=a) for a in ("p_0", "p_1")}
    rollouts = Rollouts(scenario(PAIR), ["p_0", "p_1"], backends)
    assert [g.agents for g in rollouts.engine.groups[0]] == [["p_0"], ["p_1"]]  # split: one backend each
    (mine, theirs), _ = rollouts.play(seed=2, episode=0)
    assert mine and theirs and mine[0].agent == "p_0"
    before = lm.adapter_state()
    mine[0].reward = 5.0
    learner = LLMPPO(lm, LLMPPOConfig(epochs=1, minibatch=2, lr=1e-2), centralised=False, state_dim=0,
                     learners=["p_0", "p_1"], seed=1)
    learner.update([mine])
    after = lm.adapter_state()
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    assert moved and all(".p_0." in n for n in moved)
    assert any(".p_1." in n for n in before)


@pytest.fixture(scope="module")
def per_agent(tmp_path_factory):
    out = tmp_path_factory.mktemp("per_agent") / "run"
    return _train(PAIR, out, 1, overrides={**QUICK, "adapters": "per_agent", "lr": 0.02})


def test_per_agent_adapters_are_saved_and_played_separately(per_agent) -> None:
    """Each learner's adapter is its own peft directory; `play.yaml` gives each agent its
    own; played through the local backend (as `mas run` plays it), each agent's action
    distribution is its own adapter's, not the other's."""
    from mas.agents.llm.backend import ScoreRequest
    from mas.agents.llm.models import load_model
    from mas.agents.rl.llm_model import LoraSettings, TrainableLM
    from mas.agents.rl.llm_ppo import mixture
    from mas.episode import EpisodeEngine
    from mas.runner import play_episode

    run = per_agent.out_dir
    assert per_agent.checkpoint == run / "adapters"
    files = [run / "adapters" / a / "adapter_model.safetensors" for a in ("p_0", "p_1")]
    assert all(f.is_file() for f in files) and files[0].read_bytes() != files[1].read_bytes()
    play = load_scenario(str(per_agent.play_scenario))
    assert [a.policy.backend.adapter for a in play.agents] == [str((run / "adapters" / a).resolve()) for a in ("p_0", "p_1")]

    lm = TrainableLM(load_model("default", "cpu", "float32"), LoraSettings(), seed=0, adapters=["p_0", "p_1"])
    lm.load_adapter_state(_weights(run))
    record = play_episode(EpisodeEngine(play), 0, 5)
    for agent, other in (("p_0", "p_1"), ("p_1", "p_0")):
        decision = next(d.record for d in record.decisions if d.agent == agent)
        candidates = tuple(decision["distribution"])
        played = np.array([decision["distribution"][c] for c in candidates])
        request = [ScoreRequest(messages=tuple(decision["prompt"]), candidates=candidates)]
        with torch.no_grad():
            with lm.using(agent):
                own = mixture(lm.score(request)[0], 1.0).numpy()
            with lm.using(other):
                theirs = mixture(lm.score(request)[0], 1.0).numpy()
        np.testing.assert_allclose(played, own, atol=1e-4)
        assert np.abs(played - theirs).max() > 1e-3, (agent, played, theirs)


# ----- self-play ----------------------------------------------------------------------------------
def test_selfplay_puts_the_learner_in_every_seat(tmp_path: Path) -> None:
    """adapters=selfplay: the tit-for-tat seat plays the learner's LLM spec too, both seats
    learn into one adapter, and play.yaml plays that adapter in both seats."""
    result = _train(VS_TFT, tmp_path / "sp", 1, overrides={**QUICK, "adapters": "selfplay"}, eval_every=1)
    assert result.learners == ["llm", "tft"]
    play = load_scenario(str(result.play_scenario))
    adapters = {a.policy.type: a.policy.backend.adapter for a in play.agents}
    assert list(adapters) == ["llm"] and adapters["llm"] == str((tmp_path / "sp" / "adapter").resolve())
    assert _rows(result.out_dir)[0]["return/tft"] != ""


# ----- resume -------------------------------------------------------------------------------------
RESUME = {**QUICK, "lr": 3e-3}


@pytest.fixture(scope="module")
def first_half(tmp_path_factory):
    """A run stopped after one update (one env step)."""
    return _train(VS_TFT, tmp_path_factory.mktemp("resume") / "a", 1, overrides=RESUME, eval_every=1).out_dir


def test_resume_gives_the_uninterrupted_curve(first_half: Path, tmp_path: Path) -> None:
    """One update, then --resume for one more == two updates in one go: the same curve rows
    and the same adapter weights, bit for bit."""
    resumed = _train(VS_TFT, tmp_path / "b", 2, overrides=RESUME, resume=first_half).out_dir
    whole = _train(VS_TFT, tmp_path / "c", 2, overrides=RESUME, eval_every=1).out_dir
    rows = _rows(resumed)
    assert [r["step"] for r in rows] == ["1", "2"] and rows == _rows(whole)
    assert rows[0]["value_loss"] != rows[1]["value_loss"]  # the second update is not a copy of the first
    weights, expected = _weights(resumed), _weights(whole)
    assert all(torch.equal(weights[n], expected[n]) for n in expected)
    assert json.loads((resumed / "train.json").read_text())["resumed_from"] == str(first_half)


@pytest.mark.parametrize(("change", "fragment"), [
    ({"overrides": {**RESUME, "lr": 0.5}}, "hyperparameter lr was 0.003, now 0.5"),
    ({"data": {**VS_TFT, "rounds": 3}}, "scenario differs from the run's (field 'rounds')"),
    ({"seed": 9}, "the run used seed 1, this one 9"),
    ({"steps": 1}, "already has 1 steps"),
])
def test_resume_refuses_another_run(first_half: Path, tmp_path: Path, change: dict, fragment: str) -> None:
    from mas.training.run import train

    args = {"data": VS_TFT, "overrides": RESUME, "seed": 1, "steps": 2, "algo": "llm-ppo", **change}
    with pytest.raises(MasError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as info:
        train(scenario(args["data"]), args["algo"], args["steps"], args["seed"], tmp_path / "x", device="cpu",
              resume=first_half, overrides=args["overrides"], tensorboard=False)
    assert "\n" not in str(info.value)


def test_a_run_saved_before_a_hyperparameter_existed_resumes_with_its_default(first_half: Path, tmp_path: Path) -> None:
    """A checkpoint whose config lacks a newer hyperparameter (lora_layers) had its default:
    it resumes as before, and a --set that differs from that default is refused."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(first_half, old)
    data = torch.load(old / "checkpoint.pt", map_location="cpu", weights_only=True)
    config = json.loads(data["config"])
    del config["lora_layers"]
    data["config"] = json.dumps(config)
    torch.save(data, old / "checkpoint.pt")
    resumed = _train(VS_TFT, tmp_path / "b", 2, overrides=RESUME, resume=old).out_dir
    assert [r["step"] for r in _rows(resumed)] == ["1", "2"]
    with pytest.raises(MasError, match="hyperparameter lora_layers was 0, now 2"):
        _train(VS_TFT, tmp_path / "c", 2, overrides={**RESUME, "lora_layers": 2}, resume=old)


def test_resume_of_a_directory_without_a_checkpoint_is_one_cli_line(tmp_path: Path) -> None:
    path = tmp_path / "pd.yaml"
    path.write_text(yaml.safe_dump(VS_TFT), encoding="utf-8")
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "mas.cli", "train", str(path), "--algo", "llm-ppo", "--steps", "4",
                           "--resume", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [f"mas: error: --resume {tmp_path / 'empty'}: no checkpoint.pt there; "
                                               "give a training run directory"]


def test_unknown_adapters_value_is_named() -> None:
    from mas.training.learners import resolve_config

    with pytest.raises(MasError, match="adapters") as info:
        resolve_config(scenario(VS_TFT), "llm-ppo", ["llm"], {"adapters": "each"})
    assert "\n" not in str(info.value) and "per_agent" in str(info.value)


# ----- training from an adapter -------------------------------------------------------------------
def test_training_from_an_adapter_plays_both_merged_in_order(tmp_path: Path) -> None:
    """A learner that starts from `backend.adapter: tuned` trains a new adapter on top of it;
    play.yaml keeps the tuned one and merges the new one after it, so play is the trained
    model (before, play.yaml named the new adapter alone and lost the one it was trained on)."""
    from mas.agents.llm.backend import ScoreRequest
    from mas.agents.llm.models import load_model
    from mas.agents.rl.llm_model import LoraSettings, TrainableLM
    from mas.agents.rl.llm_ppo import mixture
    from mas.episode import EpisodeEngine
    from mas.runner import play_episode

    tuned = {**LLM, "backend": {**LLM["backend"], "adapter": "tuned"}}
    data = {**VS_TFT, "agents": [{"id": "llm", "policy": tuned}, {"id": "tft", "policy": "tit_for_tat"}]}
    result = _train(data, tmp_path / "run", 1, overrides=QUICK)
    play = load_scenario(str(result.play_scenario))
    assert play.agents[0].policy.backend.adapter == ("tuned", str((tmp_path / "run" / "adapter").resolve()))

    lm = TrainableLM(load_model("default", "cpu", "float32", "tuned"), LoraSettings(), seed=0)
    lm.load_adapter_state(_weights(tmp_path / "run"))
    decision = next(d.record for d in play_episode(EpisodeEngine(play), 0, 5).decisions if d.agent == "llm")
    candidates = tuple(decision["distribution"])
    with torch.no_grad():
        trained = mixture(lm.score([ScoreRequest(messages=tuple(decision["prompt"]), candidates=candidates)])[0], 1.0)
    np.testing.assert_allclose([decision["distribution"][c] for c in candidates], trained.numpy(), atol=1e-4)
