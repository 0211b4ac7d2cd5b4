"""The packaged `tuned` adapter: found by name, trained by behaviour cloning of a
reciprocating teacher, and (loaded into the embedded model) a reciprocator in play."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mas.agents.llm.models import PACKAGED_ADAPTERS, ModelLoadError, resolve_adapter
from mas.agents.llm.teacher import ReciprocatorTeacher
from mas.analysis.communication import action_phrases, stated_intention
from mas.overrides import load_with_sets
from mas.training.llm_bc import demonstrations, mixed, unique, weighted


def test_the_packaged_adapter_resolves_by_name_to_a_small_peft_directory() -> None:
    path = Path(resolve_adapter("tuned"))
    assert "tuned" in PACKAGED_ADAPTERS and (path / "adapter_config.json").is_file()
    weights = path / "adapter_model.safetensors"
    assert weights.is_file() and weights.stat().st_size < 4 * 2**20  # a few MB at most


def test_an_unknown_adapter_name_is_a_one_line_error_listing_the_packaged_ones() -> None:
    with pytest.raises(ModelLoadError) as error:
        resolve_adapter("tunned")
    text = str(error.value)
    assert text.startswith("backend.adapter: no LoRA adapter at 'tunned'") and "packaged adapters: tuned" in text
    assert "\n" not in text


def test_the_teacher_reciprocates_and_announces_what_it_then_plays() -> None:
    # flagship with always-defect in carol's seat: both LLM seats (the teacher) cooperate in round 1,
    # then defect; every talk message states the move the same agent plays next
    teacher = ReciprocatorTeacher()
    examples = demonstrations(load_with_sets("flagship", ["agents.carol.policy=always_defect"]), teacher, 1, seed=3)
    actions = [(c, r) for c, r in examples if r in ("C", "D")]
    messages = [(c, r) for c, r in examples if r not in ("C", "D")]
    assert messages and actions
    first_round = [r for c, r in actions if "Your history" not in c[-1]["content"]]
    later = [r for c, r in actions if "Your history" in c[-1]["content"]]
    assert set(first_round) == {"C"} and later and set(later) == {"D"}
    phrases = action_phrases(["C", "D"], {"C": "cooperate", "D": "defect"})
    for conversation, text in messages:
        stated = stated_intention(text, phrases)
        assert stated == ["C", "D"].index(teacher.choose(conversation)), text
    assert len(unique(examples + examples)) == len(unique(examples))


def test_prompts_weigh_as_often_as_episodes_meet_them_and_the_mix_keeps_messages() -> None:
    # 4 episodes against always-defect: the first round's prompts (no history) are met in every
    # episode, so they count 4 times (at most `cap`); the later rounds' prompts repeat too here
    # (a deterministic opponent), but each distinct prompt stays a separate example
    examples = demonstrations(load_with_sets("llm_vs_always_defect", ["rounds=3"]), ReciprocatorTeacher(), 4, seed=1)
    distinct = unique(examples)
    first = [e for e in distinct if "Your history" not in e[0][-1]["content"]]
    assert first and {r for _, r in first} == {"C"}
    assert len(weighted(examples, cap=8)) == len(examples)  # nothing met more than 8 times here
    capped = weighted(examples, cap=2)
    assert len(capped) == 2 * len(distinct) and all(capped.count(e) == 2 for e in first)
    assert len(weighted(examples, cap=1)) == len(distinct)
    # the second stage's mix: every kept example, drawn ones up to their share, seeded
    kept, drawn = [(e[0], "C") for e in distinct] * 3, [((), f"m{i}") for i in range(50)]
    mix = mixed(kept, drawn, 0.25, seed=7)
    assert mix[:len(kept)] == kept and len(mix) - len(kept) == round(len(kept) / 3)
    assert mix == mixed(kept, drawn, 0.25, seed=7) and mix != mixed(kept, drawn, 0.25, seed=8)
    assert mixed(kept, drawn[:2], 0.5, seed=0) == kept + drawn[:2]  # no more than there are


def test_a_cloning_update_raises_the_log_likelihood_of_the_teachers_reply(loaded) -> None:
    import torch

    from mas.agents.rl.llm_model import LoraSettings, TrainableLM
    from mas.training.llm_bc import Cloner

    teacher = ReciprocatorTeacher()
    examples = unique(demonstrations(load_with_sets("llm_vs_always_defect", ["rounds=2"]), teacher, 1, seed=0))
    later = [e for e in examples if e[1] == "D"][:1]  # round 2 against a defector: the teacher says D
    depth = int(loaded.model.config.num_hidden_layers)
    lm = TrainableLM(loaded, LoraSettings(rank=4, alpha=8.0, layers=(depth - 2, depth - 1)), seed=0)
    cloner = Cloner(lm, lr=5e-3)
    with torch.no_grad():
        before = float(cloner.logprobs(later)[0])
    cloner.step(later)
    with torch.no_grad():
        after = float(cloner.logprobs(later)[0])
    assert after > before + 0.05, (before, after)


@pytest.fixture(scope="module")
def tuned(loaded):
    """Scenario overrides that give every LLM agent the packaged adapter."""
    def sets(name: str, extra: list[str]) -> list[str]:
        scenario = load_with_sets(name, extra)
        llms = [a.id for a in scenario.agents if a.policy.type == "llm"]
        return extra + [f"agents.{a}.policy.backend={{kind: local, model: default, adapter: tuned}}" for a in llms]
    return sets


def _llm_steps(name: str, extra: list[str], episodes: int):
    from mas.analysis.load import load_run
    from mas.runner import run
    import tempfile

    scenario = load_with_sets(name, extra)
    out = Path(tempfile.mkdtemp()) / "run"
    run(scenario, episodes, scenario.seed, out)
    loaded_run = load_run(out)
    llms = [a.id for a in scenario.agents if a.policy.type == "llm"]
    return loaded_run.steps[loaded_run.steps["agent"].isin(llms)], loaded_run


def test_with_the_tuned_adapter_the_agent_cooperates_with_tit_for_tat_and_not_with_a_defector(tuned) -> None:
    # the distribution's mode (choice: argmax): the sampled figures are benchmarks/tuned_agent.py's;
    # the base model plays C whatever the history (its first listed option)
    mode = ["agents.llm.policy.choice=argmax", "rounds=4"]
    steps, _ = _llm_steps("llm_vs_tft", tuned("llm_vs_tft", mode), episodes=1)
    assert steps["cooperation"].mean() >= 0.9
    steps, _ = _llm_steps("llm_vs_always_defect", tuned("llm_vs_always_defect", mode), episodes=1)
    assert steps[steps["round"] > 0]["cooperation"].mean() <= 0.1


def test_with_the_tuned_adapter_generate_mode_needs_no_fallback(tuned) -> None:
    from mas.analysis.metrics import record_is_fallback

    steps, run = _llm_steps("llm_vs_tit_for_tat", tuned("llm_vs_tit_for_tat", ["rounds=3"]), episodes=1)
    decisions = run.decisions[run.decisions["agent"] == "llm"]
    records = [json.loads(r) for r in decisions[~decisions["talking"].astype(bool)]["record"]]
    assert len(records) == 3 and not any(record_is_fallback(r) for r in records)
    assert np.mean(steps["cooperation"]) >= 0.9


def test_with_the_tuned_adapter_two_llms_say_what_they_will_play_and_keep_it(tuned) -> None:
    """In the two-LLM prisoner's dilemma with a talk step before every round, the adapted
    agents state intentions ("I will play C") that `promise_keeping` finds, and keep them."""
    from mas.analysis.summary import point, summarize

    steps, run = _llm_steps("llm_prisoners_dilemma", tuned("llm_prisoners_dilemma", ["rounds=3"]), episodes=1)
    summary = summarize(run)
    promises = summary.tables.get("promises")
    assert promises is not None and promises["kept"].notna().sum() >= 3  # stated and then checked
    kept = [point(v) for v in summary.agents["promises kept"]]
    assert np.nanmean(kept) >= 0.9
    assert steps["cooperation"].mean() >= 0.9
