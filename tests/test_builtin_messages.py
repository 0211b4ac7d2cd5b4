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
