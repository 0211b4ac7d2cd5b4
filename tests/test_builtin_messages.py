"""Every built-in scenario whose agents talk gets some of its messages delivered."""

from __future__ import annotations

import pytest

import mas
from mas.runner import run
from tests.conftest import FAST_BUILTIN


@pytest.mark.parametrize("name", FAST_BUILTIN)
def test_a_builtin_scenario_that_sends_messages_delivers_some(name):
    # a scenario whose every message is undelivered (e.g. direct mode without "@recipient")
    # shows talk in the file that never reaches anyone
    records = []
    run(mas.load_scenario(name), 1, 0, on_episode=records.append)
    delivered = [m.delivered for m in records[0].messages]
    if delivered:
        assert any(delivered), f"{name}: all {len(delivered)} messages undelivered ({records[0].messages[0].reason})"


@pytest.mark.parametrize("talk_rounds", [0, 1, 2])
def test_a_scripted_agent_says_its_message_once_per_round(talk_rounds):
    # with talk steps it speaks in them (once per talk step) and its action step is silent, as
    # an LLM agent's is; without them the message goes with the action
    from collections import Counter

    from mas.overrides import load_with_sets

    scenario = load_with_sets("prisoners_dilemma_talk", [f"comms.talk_rounds={talk_rounds}"])
    records = []
    run(scenario, 1, 0, on_episode=records.append)
    messages = records[0].messages
    per_round = Counter((m.sender, m.round) for m in messages)
    senders = {m.sender for m in messages}
    assert len(senders) == 2 and set(per_round.values()) == {max(talk_rounds, 1)}
    steps_per_round = talk_rounds + 1
    # every message is sent in a talk step (step % (talk+1) < talk), or with the action when there are none
    assert all((m.step % steps_per_round < talk_rounds) if talk_rounds else True for m in messages)
