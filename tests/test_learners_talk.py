"""Learners that talk and listen: the vocabulary channel, training with talk steps, and
honest views (hidden information never reaches an agent that may not see it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

import mas
from mas.comms import Message
from mas.training.run import train
from mas.vocabulary import LearnerChannel

pytest.importorskip("torch")


def _coordination(mode: str = "broadcast") -> mas.Scenario:
    data = mas.load_scenario("private_coordination").to_dict()
    data["comms"]["mode"] = mode
    return mas.scenario.parse_scenario(data)


def test_channel_encodes_words_per_sender_and_masks_by_phase() -> None:
    channel = LearnerChannel(("zib", "wug"), ("a", "b", "c"), num_game_actions=2)
    assert channel.num_actions == 5 and channel.extra_obs == 1 + 2 * 2
    assert [channel.word(i) for i in range(5)] == ["", "", "", "zib", "wug"]
    inbox = (Message(0, 0, 0, "c", "a", " WUG "), Message(0, 0, 0, "b", "a", "not a word"))
    assert channel.encode("a", inbox, talking=False).tolist() == [0, 0, 0, 0, 1]
    talk = channel.mask(np.array([1, 1]), talking=True)
    act = channel.mask(np.array([1, 0]), talking=False)
    assert talk.tolist() == [False, False, True, True, True] and act.tolist() == [True, False, False, False, False]


def test_mappo_learners_learn_to_tell_each_other_their_signals(tmp_path: Path) -> None:
    """With talk the pair reaches the optimum (8 per episode); with comms off it stays near
    chance (4), and the trained pair's words are in the evaluation run's store."""
    talk = train(_coordination(), "mappo", 24_000, 0, tmp_path / "talk", device="cpu", eval_episodes=32, final_episodes=4)
    silent = train(_coordination("off"), "mappo", 24_000, 0, tmp_path / "off", device="cpu", eval_episodes=32, final_episodes=2)
    talked = np.mean([talk.final_eval[f"eval_return/{a}"] for a in ("ann", "bo")])
    guessed = np.mean([silent.final_eval[f"eval_return/{a}"] for a in ("ann", "bo")])
    assert talked >= 0.9 * 8, talk.final_eval
    assert 3.0 <= guessed <= 5.0, silent.final_eval
    db = sqlite3.connect(tmp_path / "talk" / "eval" / "run.sqlite")
    words = {text for (text,) in db.execute("SELECT text FROM messages WHERE delivered = 1")}
    assert words and words <= {"zib", "wug"}


def test_a_listener_never_sees_the_signalling_target() -> None:
    """A policy that reads every field of its view, as a listener facing a random speaker,
    picks the target at chance: nothing it is handed determines the target."""
    scenario = mas.load_scenario("signalling")
    env = mas.make_env(scenario)
    hits = trials = 0
    for seed in range(150):
        env.reset(seed=seed)
        env.step({a: {"action": int(np.flatnonzero(env.views()[a].action_mask)[0]), "message": ""} for a in env.agents})
        target = env.summary()["target"]  # analysis side: the full state
        view = env.views(text=True)["listener"]
        seen = repr(view) + repr(env._observations()["listener"]) + repr(env._infos()["listener"])
        if target in view.summary.values() or f"target is {target}" in seen:
            hits += 1
        trials += 1
    assert hits == 0 and trials == 150


def _with_teller(mode: str, listens: bool = True) -> mas.Scenario:
    return mas.scenario.parse_scenario({
        "name": "listen_to_teller",
        "game": {"kind": "private_signals", "signals": ["left", "right"]},
        "rounds": 8,
        "comms": {"mode": mode, "talk_rounds": 1, "vocabulary": ["left", "right"]},
        "agents": [{"id": "ann", "policy": {"type": "iql", "num_envs": 16}}, {"id": "bo", "policy": {"type": "signal_teller", "listens": listens}}],
    })


def test_a_tabular_learner_learns_to_use_a_scripted_agents_honest_messages(tmp_path: Path) -> None:
    """The teller says its signal, which the learner must pick, and itself guesses (it does
    not listen), so the team return per episode is 4 x (learner right) + 2 on average:
    about 6 when the learner uses the messages, about 4 when it can only guess."""
    hp = {"alpha": 0.5}
    told = train(_with_teller("broadcast", listens=False), "iql", 30_000, 0, tmp_path / "told", device="cpu",
                 eval_episodes=64, final_episodes=0, overrides=hp)
    alone = train(_with_teller("off", listens=False), "iql", 30_000, 0, tmp_path / "alone", device="cpu",
                  eval_episodes=64, final_episodes=0, overrides=hp)
    with_messages, without = told.final_eval["eval_return/ann"], alone.final_eval["eval_return/ann"]
    assert with_messages >= 5.5 and without <= 4.7, (with_messages, without)


def test_the_teller_says_its_own_signal_and_picks_what_it_is_told() -> None:
    scenario = _with_teller("broadcast").to_dict()
    scenario["agents"][0]["policy"] = "signal_teller"
    records = mas.run(mas.scenario.parse_scenario(scenario), episodes=2, seed=1)
    assert all(r.returns["ann"] == 8.0 for r in records)  # two honest tellers are always right


def test_a_listener_that_reads_everything_it_is_handed_picks_at_chance() -> None:
    """A snooping listener counts each target's name in everything it is handed (its view
    with text, its PettingZoo observation and infos) and picks the most named one. If any
    of it carried the target it would pick right far above chance; it picks at 1/3."""
    scenario = mas.scenario.parse_scenario({
        "name": "snoop", "game": {"kind": "signalling", "targets": ["red", "green", "blue"]}, "rounds": 300,
        "agents": [{"id": "speaker", "policy": "random"}, {"id": "listener", "policy": "random"}],
        "comms": {"mode": "broadcast", "talk_rounds": 0},
    })
    env = mas.make_env(scenario)
    observations, infos = env.reset(seed=11)
    rng = np.random.default_rng(0)
    targets = ["red", "green", "blue"]
    hits = picks = 0
    while env.agents:
        views = env.views(text=True)
        handed = repr(views["listener"]) + repr(observations["listener"]) + repr(infos["listener"])
        counts = [handed.count(t) for t in targets]
        picking = views["listener"].action_mask[1:].any()
        speaker_moves = np.flatnonzero(views["speaker"].action_mask)
        actions = {"speaker": {"action": int(rng.choice(speaker_moves)), "message": ""},
                   "listener": {"action": 1 + int(np.argmax(counts)) if picking else 0, "message": ""}}
        target = env.summary()["target"]  # the analysis side: the full state
        observations, rewards, _, _, infos = env.step(actions)
        if picking:
            picks += 1
            hits += int(targets[int(np.argmax(counts))] == target)
    assert picks == 150
    assert 0.2 < hits / picks < 0.47, hits / picks  # chance is 1/3 (binomial, 150 picks)
