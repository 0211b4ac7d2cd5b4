"""Cooperation, welfare, equality and reliability metrics against hand-computed values."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from mas.analysis import metrics as m


def _steps(moves: dict[int, dict[str, str]]) -> pd.DataFrame:
    """Steps from {episode: {agent: "CCDC"}}: C scores cooperation 1, D 0; one round per letter."""
    rows = []
    for episode, by_agent in moves.items():
        for agent, letters in by_agent.items():
            for t, letter in enumerate(letters):
                rows.append({"episode": episode, "step": t, "round": t, "agent": agent, "action": int(letter == "D"),
                             "action_name": letter, "illegal": 0, "reward": 0.0, "cooperation": float(letter == "C")})
    return pd.DataFrame(rows)


# Episode 0: a = C C D C, b = C D C C.  Episode 1 (one round): a = D, b = C.
STEPS = _steps({0: {"a": "CCDC", "b": "CDCC"}, 1: {"a": "D", "b": "C"}})


def test_cooperation_by_round_averages_episode_means() -> None:
    table = m.cooperation_by_round(STEPS).set_index("round")
    # round 0: episode 0 mean (1+1)/2 = 1, episode 1 mean (0+1)/2 = 0.5 -> 0.75 over 2 episodes
    assert table.loc[0, "rate"] == pytest.approx(0.75) and table.loc[0, "n"] == 2
    assert table.loc[0, "low"] < 0.75 < table.loc[0, "high"]
    assert list(table["rate"][1:]) == pytest.approx([0.5, 0.5, 1.0])
    assert table.loc[3, "n"] == 1 and table.loc[3, "low"] == table.loc[3, "high"] == 1.0


def test_cooperation_by_agent() -> None:
    by_agent = m.cooperation_by_agent(STEPS)
    assert by_agent["a"] == pytest.approx(3 / 5) and by_agent["b"] == pytest.approx(4 / 5)


def test_mutual_cooperation_counts_steps_where_everyone_cooperated() -> None:
    # episode 0: CC, CD, DC, CC -> 2 of 4; episode 1: DC -> 0 of 1; 2 of 5 steps
    assert m.mutual_cooperation_rate(STEPS) == pytest.approx(2 / 5)
    pairs = m.mutual_cooperation_by_pair(STEPS)
    assert list(pairs.index) == ["a", "b"]
    assert pairs.loc["a", "b"] == pairs.loc["b", "a"] == pytest.approx(2 / 5)
    assert pairs.loc["a", "a"] == pytest.approx(3 / 5) and pairs.loc["b", "b"] == pytest.approx(4 / 5)


def test_reciprocity_conditions_on_the_partners_previous_move_within_episodes() -> None:
    table = m.reciprocity(STEPS)
    # a after b's C (t=0,2): a cooperated at t=1 and t=3 -> 2/2; after b's D (t=1): a defected at t=2 -> 0/1
    assert table.loc["a", "after_cooperation"] == 1.0 and table.loc["a", "after_defection"] == 0.0
    assert table.loc["a", "reciprocity"] == 1.0
    # b after a's C (t=0,1): b played D then C -> 1/2; after a's D (t=2): b cooperated -> 1/1
    assert table.loc["b", "after_cooperation"] == 0.5 and table.loc["b", "after_defection"] == 1.0
    assert table.loc["b", "reciprocity"] == -0.5
    # episode 1 has one round, so nothing is counted across the episode boundary
    assert table.loc["a", "n_after_cooperation"] + table.loc["a", "n_after_defection"] == 3


def test_reciprocity_skips_unscored_steps_such_as_punish_steps() -> None:
    steps = _steps({0: {"a": "CCD", "b": "DCC"}})
    steps.loc[steps["step"] == 1, "cooperation"] = None  # e.g. a punish step: no cooperation score
    table = m.reciprocity(steps)
    # only steps 0 and 2 are scored: a at 2 (D) after b at 0 (D); b at 2 (C) after a at 0 (C)
    assert table.loc["a", "after_defection"] == 0.0 and math.isnan(table.loc["a", "after_cooperation"])
    assert table.loc["b", "after_cooperation"] == 1.0 and math.isnan(table.loc["b", "after_defection"])


def test_fractional_cooperation_uses_the_threshold() -> None:
    steps = _steps({0: {"a": "CC", "b": "CC"}})
    steps["cooperation"] = [0.75, 0.25, 0.5, 1.0]  # a: .75 .25, b: .5 1.0
    assert m.mutual_cooperation_rate(steps) == 0.5  # step 0: both >= .5; step 1: a below
    assert m.mutual_cooperation_rate(steps, threshold=0.8) == 0.0


def test_welfare_gini_and_equality() -> None:
    episodes = pd.DataFrame({"episode": [0, 0, 0, 1, 1, 1], "agent": list("xyz") * 2, "return": [1.0, 2.0, 3.0, 0.0, 0.0, 9.0]})
    assert list(m.social_welfare(episodes)) == [6.0, 9.0]
    # Gini [1,2,3]: sum |xi-xj| over ordered pairs = 8; 8 / (2 * 9 * 2) = 2/9. One holds all: (n-1)/n.
    assert m.gini([1, 2, 3]) == pytest.approx(2 / 9)
    assert m.gini([0, 0, 0, 10]) == pytest.approx(0.75)
    assert m.gini([4, 4]) == 0.0
    assert list(m.equality(episodes)) == pytest.approx([1 - 2 / 9, 1 - 2 / 3])
    assert math.isnan(m.gini([1, -1])) and math.isnan(m.gini([0, 0]))


def test_mean_ci_matches_student_t() -> None:
    ci = m.mean_ci([1.0, 2.0, 3.0])
    # sd 1, n 3, t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3)
    assert ci.mean == 2.0 and ci.high - ci.mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert m.mean_ci([5.0]).low == 5.0 and m.mean_ci([]).n == 0


def test_invalid_action_rates_from_illegal_flags_and_llm_records() -> None:
    steps = _steps({0: {"llm": "CCCC", "bot": "CCCC"}})
    steps.loc[(steps.agent == "bot") & (steps.step == 0), "illegal"] = 1
    records = [
        {"status": "ok", "outputs": 1, "invalid": 0},
        {"status": "retried", "outputs": 2, "invalid": 1},  # valid after a correction: not a fallback
        {"status": "fallback", "outputs": 3, "invalid": 3},
        {"status": "forced"},  # one legal action: not asked, not a fallback
    ]
    decisions = pd.DataFrame({
        "episode": 0, "step": [0, 1, 2, 3, 0], "round": [0, 1, 2, 3, 0], "agent": ["llm"] * 4 + ["llm"],
        "talking": [0, 0, 0, 0, 1], "record": [json.dumps(r) for r in records] + [json.dumps({"status": "fallback"})],
    })
    rates = m.invalid_action_rate(steps, decisions)
    assert rates.loc["bot", "illegal_rate"] == 0.25 and rates.loc["llm", "illegal_rate"] == 0.0
    assert rates.loc["llm", "fallback_rate"] == 0.25  # the talk-step record is not an action
    assert rates.loc["llm", "invalid_reply_rate"] == pytest.approx(4 / 6)
    assert math.isnan(rates.loc["bot", "fallback_rate"])
    assert m.record_is_fallback({"fallback": True}) and not m.record_is_fallback({"status": "ok"})
