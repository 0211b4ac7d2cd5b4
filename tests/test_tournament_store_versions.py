"""The tournament store's decision status column (schema 2), and version 1 stores: read
as they are, upgraded in place when resumed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from mas.records import DecisionRecord, DecisionStatus
from mas.tournament.play import MatchResult
from mas.tournament.store import TournamentStore

TOURNAMENT = {"name": "t", "entrants": [{"name": "a", "policy": {"type": "tit_for_tat"}}, {"name": "b", "policy": {"type": "always_defect"}}]}


def _result(match: int, status: DecisionStatus) -> MatchResult:
    record = DecisionRecord(episode=0, step=0, round=0, agent="p0", talking=False, status=status,
                            record={"status": status.value, "action": "C"})
    return MatchResult(match=match, repetition=0, seed=match, seats=(0, 1), scores=(3.0, 3.0), cooperation=(1.0, 1.0),
                       illegal=(0, 0), actions=("C", "C"), rounds=1, steps=1, terminated=False, truncated=True,
                       decisions=(record,))


def _downgrade_to_version_1(path: Path) -> None:
    """What a store written by mas before schema 2 looks like: no status column."""
    db = sqlite3.connect(path)
    with db:
        db.execute("ALTER TABLE decisions DROP COLUMN status")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()


def test_decision_status_has_its_own_column(tmp_path: Path) -> None:
    with TournamentStore.create(tmp_path / "t", TOURNAMENT, 0, {}) as store:
        store.write_matches([_result(0, DecisionStatus.OK), _result(1, DecisionStatus.FALLBACK)])
        frame = store.frame("decisions")
    assert list(frame["status"]) == ["ok", "fallback"]


def test_a_version_1_store_is_read_and_upgraded_when_resumed(tmp_path: Path) -> None:
    with TournamentStore.create(tmp_path / "t", TOURNAMENT, 0, {}) as store:
        store.write_matches([_result(0, DecisionStatus.FALLBACK)])
    _downgrade_to_version_1(tmp_path / "t" / "tournament.sqlite")
    with TournamentStore.open(tmp_path / "t") as store:  # read-only: left as it is
        assert store.schema_version == 1 and list(store.frame("decisions")["status"]) == ["fallback"]
    with TournamentStore.open(tmp_path / "t", writable=True) as store:  # a resume upgrades it
        store.write_matches([_result(1, DecisionStatus.OK)])
        assert store.schema_version == 2
        assert store.query("SELECT match, status FROM decisions ORDER BY match") == [(0, "fallback"), (1, "ok")]
        assert json.loads(store.query("SELECT record FROM decisions WHERE match = 0")[0][0])["status"] == "fallback"
