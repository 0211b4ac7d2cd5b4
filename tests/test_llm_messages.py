"""LLM learners that talk: their messages are sampled from the trainable model, recorded as
token-level decisions, and trained from the game's returns (`--set train=messages|both`).

Real embedded model, tiny budget: one round with one talk step, messages of a few tokens.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from mas.errors import MasError
from tests.test_llm_ppo import PD_LLM
from tests.test_llm_ppo import scenario as base_scenario
from tests.test_llm_ppo import trainable_lm

PD_TALK = {  # the prisoner's dilemma of test_llm_ppo with a talk step and short messages
    **PD_LLM,
    "name": "llm_pd_talk_tiny",
    "comms": {"mode": "broadcast", "talk_rounds": 1, "max_length": 40},
    "agents": [
        {"id": "llm", "policy": {**PD_LLM["agents"][0]["policy"], "max_message_tokens": 5, "message_temperature": 1.0}},
        PD_LLM["agents"][1],
    ],
}


def scenario(data: dict = PD_TALK):
    return base_scenario(data)


@pytest.fixture(scope="module")
def talking():
    from mas.agents.rl.scoring_backend import ScoringBackend
    from mas.agents.rl.llm_ppo import Rollouts

    lm = trainable_lm()
    rollouts = Rollouts(scenario(), ["llm"], ScoringBackend(lm, "test"), train="both")
    played = rollouts.play_many(seed=5, episodes=[0, 1, 2])
    return {"lm": lm, "rollouts": rollouts, "played": played}


def test_rollouts_record_messages_with_their_token_logprobs(talking) -> None:
    lm = talking["lm"]
    (trajectory,), _ = talking["played"][0]
    kinds = ["message" if d.is_message else "action" for d in trajectory]
    assert kinds == ["message", "action", "message", "action"]  # a talk step before each round
    said = trajectory[0]
    assert 1 <= len(said.tokens) <= 5 and said.token_logps.shape == (len(said.tokens),)
    assert np.all(said.token_logps <= 0)
    with torch.no_grad():
        again = lm.token_logprobs([said.prompts[0]], [said.tokens], [said.temperature])[0][0].numpy()
    np.testing.assert_allclose(again, said.token_logps, atol=1e-4)  # the update's ratios start at 1
    assert sum(d.reward for d in trajectory) == talking["played"][0][1].returns["llm"]


def test_one_update_raises_a_rewarded_message_and_a_rewarded_action(talking) -> None:
    """Two messages written to one prompt: the rewarded one's token sequence becomes more
    likely after one update, the other less; and the rewarded action likewise."""
    from mas.agents.rl.config import LLMPPOConfig
    from mas.agents.rl.llm_ppo import LLMPPO, mixture

    lm = talking["lm"]
    trajectories = [t[0][0] for t in talking["played"]]
    messages = [t[0] for t in trajectories]
    prompt = messages[0].prompts[0]
    distinct = [m for m in messages if m.prompts[0] == prompt]
    distinct = list({m.tokens: m for m in distinct}.values())
    assert len(distinct) >= 2, "the three episodes should write at least two different first messages"
    good, bad = distinct[:2]
    action = trajectories[0][1]

    def message_logp(m) -> float:
        with torch.no_grad():
            return float(lm.token_logprobs([m.prompts[0]], [m.tokens], [m.temperature])[0][0].sum())

    def action_logps() -> np.ndarray:
        from mas.agents.llm.backend import ScoreRequest

        with torch.no_grad():
            request = [ScoreRequest(messages=action.prompts[0], candidates=action.candidates)]
            return torch.log(mixture(lm.score(request)[0], action.temperature)).numpy()

    before = {"good": message_logp(good), "bad": message_logp(bad), "action": action_logps()}
    rewarded = action.candidates.index("D")
    batch = [[dataclasses.replace(good, reward=1.0, done=True)], [dataclasses.replace(bad, reward=0.0, done=True)]]
    for a in range(len(action.candidates)):
        batch.append([dataclasses.replace(action, action=a, old_logp=float(before["action"][a]),
                                          reward=1.0 if a == rewarded else 0.0, done=True)])
    config = LLMPPOConfig(epochs=2, minibatch=8, lr=2e-3, kl_coef=0.01, train="both")
    metrics = LLMPPO(lm, config, centralised=False, state_dim=0, learners=["llm"], seed=1).update(batch)
    assert message_logp(good) > before["good"] + 0.05, (before, message_logp(good))
    assert message_logp(bad) < before["bad"]
    assert action_logps()[rewarded] > before["action"][rewarded] + 0.01
    assert np.isfinite(metrics["policy_loss"]) and metrics["approx_kl"] == metrics["approx_kl"]


@pytest.mark.parametrize(("change", "fragment"), [
    ({"comms": {"mode": "off"}}, "cannot talk"),
    ({"agent": {"talk": False}}, "writes no messages"),
    ({"agent": {"message_temperature": 0.0}}, "message_temperature"),
])
def test_train_messages_needs_a_learner_that_talks(change: dict, fragment: str, tmp_path: Path) -> None:
    from mas.training.run import train

    data = copy.deepcopy(PD_TALK)
    if "comms" in change:
        data["comms"] = change["comms"]
    else:
        data["agents"][0]["policy"].update(change["agent"])
    with pytest.raises(MasError, match=fragment) as info:
        train(scenario(data), "llm-ppo", 4, 0, tmp_path / "x", device="cpu", overrides={"train": "messages"})
    assert "\n" not in str(info.value)


def test_training_messages_end_to_end_plays_them_into_the_store(tmp_path: Path) -> None:
    """`train=messages` runs the loop (curves, adapters) and the tuned learner's words are in
    the evaluation store's messages."""
    import csv
    import sqlite3

    from mas.training.run import train

    data = copy.deepcopy(PD_TALK)
    data["rounds"] = 1
    result = train(scenario(data), "llm-ppo", 2, 2, tmp_path / "run", device="cpu", eval_episodes=1, final_episodes=1,
                   overrides={"train": "messages", "episodes_per_update": 2, "epochs": 1}, tensorboard=False)
    with (result.out_dir / "curves.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and rows[-1]["policy_loss"] != ""
    db = sqlite3.connect(result.eval_run / "run.sqlite")
    said = [text for (text,) in db.execute("SELECT text FROM messages WHERE sender = 'llm'")]
    db.close()
    assert said and any(text.strip() for text in said)
