"""Backends that wrap another backend: recording, caching, and replaying a recorded run.

They implement the same `LLMBackend` interface, so a policy composes them freely. The
usual stack is `RecordingBackend(CachingBackend(live))`: every call a decision makes is
recorded, even when the cache answered it, so a replay sees exactly the calls of the run.

A call record is a JSON-able dict::

    {"op": "score" | "generate", "request": asdict(request), "response": asdict(response)}

Policies put the records of each agent's calls under "calls" in `Decision.record`, and the
runner stores them in the `decisions` table; `ReplayBackend` reads them back.
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mas.agents.llm.backend import (
    BackendInfo,
    GenerateRequest,
    Generation,
    LLMBackend,
    Scores,
    ScoreRequest,
)
from mas.errors import MasError, StoreError


class ReplayMismatchError(MasError):
    """A replayed run asked for an LLM call that the recorded run never made."""


def request_key(op: str, request: GenerateRequest | ScoreRequest | dict[str, Any]) -> str:
    """A canonical string for a request, equal for equal requests (JSON lists == tuples)."""
    data = request if isinstance(request, dict) else asdict(request)
    return json.dumps([op, data], sort_keys=True, separators=(",", ":"))


def call_record(op: str, request: GenerateRequest | ScoreRequest, response: Generation | Scores) -> dict[str, Any]:
    """The JSON-able record of one call (round-tripped through JSON, as stored)."""
    return json.loads(json.dumps({"op": op, "request": asdict(request), "response": asdict(response)}))


class RecordingBackend(LLMBackend):
    """Records every request and its response, in call order; `take()` hands them over."""

    def __init__(self, inner: LLMBackend) -> None:
        self.inner = inner
        self.records: list[dict[str, Any]] = []

    @property
    def info(self) -> BackendInfo:
        return self.inner.info

    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]:
        responses = self.inner.generate(requests)
        self.note("generate", requests, responses)
        return responses

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scores]:
        responses = self.inner.score(requests)
        self.note("score", requests, responses)
        return responses

    def note(self, op: str, requests: Sequence[Any], responses: Sequence[Any]) -> None:
        """Record calls answered by `inner` on this recorder's behalf (a call packed with others')."""
        self.records.extend(call_record(op, q, r) for q, r in zip(requests, responses))

    def clear_cache(self) -> None:
        self.inner.clear_cache()

    def take(self) -> list[dict[str, Any]]:
        """The records made since the last `take`, oldest first."""
        taken, self.records = self.records, []
        return taken

    def close(self) -> None:
        self.inner.close()


class CachingBackend(LLMBackend):
    """Answers identical requests once (within the wrapper's life, e.g. one run).

    A sampled generation without a seed is never cached: two such calls are meant to differ.
    Within one batch, duplicates are sent to the inner backend only once.
    """

    def __init__(self, inner: LLMBackend) -> None:
        self.inner = inner
        self._answers: dict[str, Any] = {}
        self.hits = 0

    @property
    def info(self) -> BackendInfo:
        return self.inner.info

    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]:
        return self._cached("generate", requests, self.inner.generate)

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scores]:
        return self._cached("score", requests, self.inner.score)

    def _cached(self, op: str, requests: Sequence[Any], call: Any) -> list[Any]:
        todo, finish = self.plan(op, requests)
        return finish(call(todo) if todo else [])

    def plan(self, op: str, requests: Sequence[Any]) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        """What the inner backend must answer for `requests` (each new request once), and
        the function that turns its answers into the replies to `requests`, caching them:
        so a caller can pack the misses of several caches into one inner call (`lockstep`)."""
        cacheable = _cacheable_generation if op == "generate" else (lambda _: True)
        keys = [request_key(op, r) if cacheable(r) else None for r in requests]
        missing: dict[str, Any] = {}
        uncached: list[int] = []
        for i, (key, request) in enumerate(zip(keys, requests)):
            if key is None:
                uncached.append(i)
            elif key not in self._answers and key not in missing:
                missing[key] = request
        todo = list(missing.values()) + [requests[i] for i in uncached]

        def finish(answers: list[Any]) -> list[Any]:
            for key, answer in zip(missing, answers):
                self._answers[key] = answer
            fresh = dict(zip(uncached, answers[len(missing):]))
            self.hits += sum(1 for k in keys if k is not None) - len(missing)
            return [fresh[i] if key is None else self._answers[key] for i, key in enumerate(keys)]

        return todo, finish

    def clear_cache(self) -> None:
        self._answers.clear()
        self.inner.clear_cache()

    def close(self) -> None:
        self.inner.close()


def _cacheable_generation(request: GenerateRequest) -> bool:
    return request.temperature <= 0 or request.seed is not None


class ReplayBackend(LLMBackend):
    """Re-runs a recorded run from its store, without any model.

    Each request is answered with the recorded response of an equal request; repeats of a
    request get the recorded responses in recorded order. A request never recorded (or
    asked more often than recorded) raises `ReplayMismatchError` naming it.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._answers: dict[str, deque[dict[str, Any]]] = {}
        self._model = "replay"
        for record in _recorded_calls(self.run_dir):
            key = request_key(record["op"], record["request"])
            self._answers.setdefault(key, deque()).append(record["response"])

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(kind="replay", model=self._model, details={"run": str(self.run_dir)})

    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]:
        return [Generation(**self._answer("generate", r)) for r in requests]

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scores]:
        answers = [self._answer("score", r) for r in requests]
        return [
            Scores(logprobs=tuple(a["logprobs"]), candidate_tokens=tuple(a["candidate_tokens"]), prompt_tokens=a["prompt_tokens"])
            for a in answers
        ]

    def _answer(self, op: str, request: GenerateRequest | ScoreRequest) -> dict[str, Any]:
        queue = self._answers.get(request_key(op, request))
        if not queue:
            what = "asked more often than" if queue is not None else "never"
            last = request.messages[-1]["content"] if request.messages else ""
            raise ReplayMismatchError(
                f"replay of {self.run_dir}: a {op} request was {what} recorded "
                f"(last message starts {last[:60]!r}); the scenario, seed or prompts differ from the recorded run"
            )
        return queue.popleft()


def _recorded_calls(run_dir: Path) -> list[dict[str, Any]]:
    """Every call record in a run's `decisions` table, in the order they were written."""
    from mas.store import DB_NAME, connect_readonly

    path = run_dir / DB_NAME if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise StoreError(f"backend.run: no recorded run at '{run_dir}' (expected {DB_NAME} inside a run directory)")
    try:
        db = connect_readonly(path)
        try:
            rows = db.execute("SELECT record FROM decisions ORDER BY rowid").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"backend.run: '{path}' is not a readable run database ({exc})") from None
    calls = []
    for (text,) in rows:
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            raise StoreError(f"backend.run: '{path}' holds a decision record that is not JSON") from None
        for call in record.get("calls", []) if isinstance(record, dict) else []:
            if isinstance(call, dict) and {"op", "request", "response"} <= call.keys():
                calls.append(call)
    if not calls:
        raise StoreError(f"backend.run: '{run_dir}' recorded no LLM calls to replay")
    return calls
