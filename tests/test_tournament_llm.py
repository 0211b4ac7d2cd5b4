"""LLM entrants in a tournament: worker processes share one model through a real model
server on 127.0.0.1 (the embedded SmolLM2 model), instead of loading a copy each."""

from __future__ import annotations

import copy
import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import pytest

from mas.tournament import parse_tournament, run_tournament
from mas.tournament.shared_models import local_llm_backends, shared_models, should_share
from tests.conftest import PD

LLM = {"type": "llm", "backend": {"kind": "local", "model": "default"}, "mode": "score", "choice": "argmax", "history_rounds": 2}


def llm_tournament() -> dict:
    return {
        "name": "llm_mini",
        "scenario": copy.deepcopy(PD),
        "rounds": 2,
        "seed": 3,
        "entrants": [
            {"name": "cautious", "policy": LLM, "persona": "You are careful and value trust."},
            {"name": "shrewd", "policy": LLM, "persona": "You like to win."},
            {"name": "tft", "policy": "tit_for_tat"},
        ],
    }


def test_only_local_llm_backends_in_several_processes_are_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    data = parse_tournament(llm_tournament()).to_dict()
    assert [c["kind"] for c in local_llm_backends(data)] == ["local", "local"]
    assert should_share(data, "process") and not should_share(data, "serial")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert not should_share(data, "ray")  # other machines cannot reach 127.0.0.1
    scripted = parse_tournament({**llm_tournament(), "entrants": [{"name": "a", "policy": "pavlov"}, {"name": "b", "policy": "tit_for_tat"}]})
    assert not should_share(scripted.to_dict(), "process")


def test_workers_play_llm_entrants_through_one_shared_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    import mas.tournament.run as tournament_run

    seen: dict[str, object] = {}

    @contextmanager
    def observed(data: dict, backend: str):  # the real shared_models, watched from outside
        with shared_models(data, backend) as (worker_data, servers):
            seen.update(worker_data=worker_data, servers=servers)
            yield worker_data, servers
            seen["served"] = [server.requests_served for server in servers]

    monkeypatch.setattr(tournament_run, "shared_models", observed)
    tournament = parse_tournament(llm_tournament())
    run_tournament(tournament, tmp_path / "t", backend="process", workers=2)

    (server,) = seen["servers"]  # both entrants name the same local model: one server
    backends = [e["policy"]["backend"] for e in seen["worker_data"]["entrants"][:2]]
    assert all(b["kind"] == "openai" and b["base_url"] == f"{server.address}/v1" for b in backends)
    # every LLM decision went through the server: seats (cautious, shrewd), (cautious, tft),
    # (shrewd, tft) = 4 LLM seats x 2 rounds = 8 decisions, each at least one scoring request
    db = sqlite3.connect(tmp_path / "t" / "tournament.sqlite")
    decisions = db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    statuses = db.execute("SELECT status, json_extract(record, '$.status') FROM decisions").fetchall()
    assert statuses and all(column == inside and column in ("ok", "retried") for column, inside in statuses)
    stored_backend = json.loads(db.execute("SELECT policy FROM entrants WHERE name = 'cautious'").fetchone()[0])["backend"]
    matches = db.execute("SELECT COUNT(*) FROM matches").fetchone()[0]
    db.close()
    assert matches == 3 and decisions == 8
    assert seen["served"][0] >= decisions
    assert stored_backend["kind"] == "local"  # the store keeps the file's backend: resumable as written


def test_llm_entrants_play_a_batch_of_matches_as_they_play_one_match_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # every round, each seat's LLM entrants of all the matches in flight share one packed
    # scoring call; the matches come out as they do played one at a time (the real model)
    pytest.importorskip("transformers")
    from mas.agents.llm.local import TransformersBackend
    from mas.tournament.play import MatchPlayer
    from mas.tournament.schedule import build_schedule

    calls: list[int] = []
    score = TransformersBackend.score

    def counted(self, requests):
        calls.append(len(requests))
        return score(self, requests)

    monkeypatch.setattr(TransformersBackend, "score", counted)
    tournament = parse_tournament(llm_tournament())  # (cautious, shrewd), (cautious, tft), (shrewd, tft); 2 rounds
    player, schedule = MatchPlayer(tournament), build_schedule(tournament)
    batched = list(player.play_many(schedule))
    in_batch, calls[:] = list(calls), []
    alone = [player.play(match) for match in schedule]
    # one call a round for the 4 LLM seats of the 3 matches, against one a round per match
    assert in_batch == [4, 4] and len(calls) == 6
    for b, a in zip(batched, alone):
        assert (b.match, b.actions, b.scores, b.cooperation, b.rounds, b.messages) == (a.match, a.actions, a.scores, a.cooperation, a.rounds, a.messages)
        assert [(d.step, d.agent, d.status, d.record["action"]) for d in b.decisions] == \
               [(d.step, d.agent, d.status, d.record["action"]) for d in a.decisions] and len(b.decisions) >= 2
        for packed, single in zip(b.decisions, a.decisions):  # a packed call's numbers: equal to float precision
            assert packed.record["distribution"] == pytest.approx(single.record["distribution"], abs=1e-4)
