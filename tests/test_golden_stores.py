"""Same scenario and seed, same store: digests of every built-in scripted scenario's tables.

The digests were written by the episode engine and checked equal, table by table, to the
stores of the runner that came before it (its own loop over the PettingZoo env), except
for `signalling`, whose messages now reach the listener, and scenarios added since. A
change that alters what any agent does, sees or earns shows up here; if it is meant,
regenerate with `MAS_WRITE_GOLDEN=1 pytest tests/test_golden_stores.py` and say why.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

import mas
from tests.conftest import FAST_BUILTIN

GOLDEN = Path(__file__).parent / "golden" / "stores.json"
TABLES = ("episodes", "returns", "steps", "states", "messages")
#: the columns digested (schema 3 added steps.reward_model, NULL without a reward model, which
#: no built-in scenario has: tests/test_reward_model.py covers it)
COLUMNS = {"steps": "episode, step, round, agent, action, action_name, illegal, reward, cooperation"}


def digest(run_dir: Path) -> dict[str, str]:
    db = sqlite3.connect(run_dir / "run.sqlite")
    try:
        return {
            table: hashlib.sha256(json.dumps(db.execute(f"SELECT {COLUMNS.get(table, '*')} FROM {table} ORDER BY 1, 2, 3").fetchall()).encode()).hexdigest()[:16]
            for table in TABLES
        }
    finally:
        db.close()


@pytest.mark.parametrize("name", FAST_BUILTIN)
def test_a_builtin_scenario_gives_the_same_store_as_before(name: str, tmp_path: Path) -> None:
    mas.run(mas.load_scenario(name), episodes=2, seed=3, out_dir=tmp_path / "run")
    found = digest(tmp_path / "run")
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("MAS_WRITE_GOLDEN"):
        golden[name] = found
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    assert name in golden, f"no golden digest for {name}: run with MAS_WRITE_GOLDEN=1"
    assert found == golden[name]
