"""Communication statistics, mutual information and promise keeping by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mas.analysis import communication as comm
from mas.analysis.load import load_run
from mas.analysis.summary import summarize

COLUMNS = ["episode", "step", "round", "sender", "recipient", "text", "delivered", "reason"]


def _messages(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


MESSAGES = _messages([
    # a broadcast to two neighbours is two deliveries of one message
    (0, 0, 0, "a", "b", "hello there", 1, ""),
    (0, 0, 0, "a", "c", "hello there", 1, ""),
    (0, 0, 0, "b", "a", "there you go", 1, ""),
    (0, 1, 1, "a", "b", "go go", 1, ""),
    (0, 1, 1, "c", None, "@z hi", 0, "'z' is not a neighbour"),
])


def test_sent_messages_merge_deliveries() -> None:
    sent = comm.sent_messages(MESSAGES)
    assert len(sent) == 4
    assert list(sent["recipients"]) == [2, 1, 1, 0]


def test_message_stats_per_agent() -> None:
    stats = comm.message_stats(MESSAGES, ["a", "b", "c", "d"], episodes=2)
    assert list(stats["sent"]) == [2, 1, 1, 0]
    assert stats.loc["a", "per_episode"] == 1.0
    assert stats.loc["a", "mean_chars"] == pytest.approx((11 + 5) / 2)
    assert stats.loc["a", "mean_words"] == 2.0 and stats.loc["b", "mean_words"] == 3.0
    assert stats.loc["c", "undelivered"] == 1.0 and stats.loc["a", "undelivered"] == 0.0
    assert stats.loc["d", "sent"] == 0 and math.isnan(stats.loc["d", "mean_words"])


def test_vocabulary_over_time() -> None:
    table = comm.vocabulary_over_time(MESSAGES).set_index("round")
    # round 0: {hello, there, you, go}; round 1: {go, z, hi} -> cumulative 6
    assert table.loc[0, "distinct_words"] == 4 and table.loc[0, "cumulative_vocabulary"] == 4
    assert table.loc[1, "distinct_words"] == 3 and table.loc[1, "cumulative_vocabulary"] == 6
    assert table.loc[0, "messages"] == 2 and table.loc[1, "mean_words"] == 2.0


def test_talk_matrix_counts_deliveries() -> None:
    matrix = comm.talk_matrix(MESSAGES, ["a", "b", "c"])
    assert matrix.loc["a", "b"] == 2 and matrix.loc["a", "c"] == 1 and matrix.loc["b", "a"] == 1
    assert matrix.loc["c"].sum() == 0  # undelivered messages are not edges


def test_mutual_information_by_hand() -> None:
    assert comm.mutual_information(list("rgrg"), list("abab")) == pytest.approx(1.0)
    assert comm.mutual_information(list("rgrg"), list("aaaa")) == 0.0
    # p(r)=.5 p(g)=p(b)=.25, p(a)=p(b')=.5; the (g,a) and (b,b') cells give 1 bit each at weight .25
    assert comm.mutual_information(list("rgbr"), list("aabb")) == pytest.approx(0.5)
    assert comm.entropy(list("rgbr")) == pytest.approx(1.5)
    assert math.isnan(comm.mutual_information([], []))


PD_PHRASES = comm.action_phrases(["C", "D"], {"C": "cooperate", "D": "defect"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Round 1: I will play C.", 0),
        ("I'll defect this time.", 1),
        ("Let's both cooperate!", 0),
        ("I choose D", 1),
        ("I am going to COOPERATE", 0),  # descriptions match in any case
        ("I will not defect.", None),  # negation
        ("I won't play D", None),  # no cue ("won't" is not "will")
        ("I will play C or D.", None),  # two actions: no clear statement
        ("C is nice. D is not.", None),  # no first-person intention
        ("I will play c", None),  # one-letter names are case-sensitive
        ("You defected. I will cooperate again.", 0),  # the cue's sentence only
    ],
)
def test_stated_intention(text: str, expected: int | None) -> None:
    assert comm.stated_intention(text, PD_PHRASES) == expected


def test_numbered_actions_match_whole_numbers() -> None:
    phrases = comm.action_phrases([f"harvest {a:g}" for a in (0, 2.5, 3, 30)])
    assert comm.stated_intention("I will harvest 3 tons", phrases) == 2
    assert comm.stated_intention("I will harvest 2.5", phrases) == 1
    assert comm.stated_intention("I will harvest 30", phrases) == 3
    compound = comm.action_phrases(["contribute 0 / punish nobody", "contribute 5 / punish player 1"])
    assert comm.stated_intention("I'll contribute 5.", compound) == 1
    assert comm.stated_intention("I'll punish nobody", compound) == 0


def test_promise_keeping_matches_the_next_action() -> None:
    messages = _messages([
        (0, 0, 0, "a", "b", "I will cooperate", 1, ""),  # talk step, kept at step 1
        (0, 1, 0, "a", "b", "I will defect", 1, ""),  # action step: ignored when the run has talk steps
        (0, 2, 1, "a", "b", "I will cooperate", 1, ""),  # talk step, broken at step 3
        (0, 2, 1, "b", "a", "I will play D", 1, ""),  # kept
        (0, 4, 2, "b", "a", "I will play C", 1, ""),  # the episode ends first: unknown
    ])
    steps = pd.DataFrame({"episode": 0, "step": [1, 1, 3, 3], "round": [0, 0, 1, 1], "agent": ["a", "b", "a", "b"],
                          "action": [0, 0, 1, 1]})
    phrases = {"a": PD_PHRASES, "b": PD_PHRASES}
    table = comm.promise_keeping(messages, steps, phrases)
    assert list(table["step"]) == [0, 2, 2, 4]
    assert list(table["kept"][:3]) == [True, False, True] and math.isnan(table["kept"].iloc[3])
    with_actions = comm.promise_keeping(messages, steps, phrases, talk_only=False)
    assert list(with_actions["step"]) == [0, 1, 2, 2, 4]
    assert with_actions.set_index("step").loc[1, "kept"]  # "defect" at step 1 vs the action at step 3


def test_promises_in_a_stored_talk_run(pd_talk_run) -> None:
    """Tit-for-tat announces its move ("I will play C") in the talk step and then plays it."""
    summary = summarize(load_run(pd_talk_run))
    promises = summary.tables["promises"]
    assert len(promises) > 0 and set(promises["sender"]) == {"alice"}  # bob's threat names no action
    assert promises["kept"].all() and summary.overview["promise keeping"] == 1.0
    assert set(promises["stated_name"]) <= {"C", "D"}
