"""Several LLM policy instances deciding at once, their backend calls packed into one.

A policy's step is written as a generator (`LLMPolicy._steps`): each backend call it needs
is yielded as an `Ask` and the replies are sent back in. `drive` runs many such steps in
lockstep (one per engine copy: each instance keeps its own agents' history and its own
random stream) and answers, in every round, all pending asks of the same operation on the
same backend with ONE call, then hands each instance its own slice of the replies and
records them in its own recorder. A single step driven alone makes exactly the calls `act`
always made, so play is unchanged; many copies of a training rollout share each call.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mas.agents.llm.wrappers import RecordingBackend


@dataclass(frozen=True)
class Ask:
    """One batched backend call a policy step needs: `op` ("score" or "generate") of
    `requests` on `backend` (the instance's recorder; its `inner` answers)."""

    backend: "RecordingBackend"
    op: str
    requests: list[Any]


Step = Generator[Ask, list[Any], Any]


def drive(steps: Sequence[Step]) -> list[Any]:
    """Run `steps` to completion together; their return values, in order.

    Asks pending at the same time are packed by (live backend, operation): each
    instance's cache answers what it has seen, and the misses of every instance that asks
    the same model go in one call (an LLM entrant's copies in a tournament batch, each with
    its own cache), replies split back."""
    results: list[Any] = [None] * len(steps)
    pending: dict[int, Ask] = {}

    def advance(i: int, replies: list[Any] | None) -> None:
        try:
            pending[i] = steps[i].send(replies)  # type: ignore[arg-type]
        except StopIteration as stop:
            results[i] = stop.value
            pending.pop(i, None)

    for i in range(len(steps)):
        advance(i, None)
    while pending:
        packs: dict[tuple[int, str], list[int]] = {}
        for i, ask in pending.items():
            packs.setdefault((id(_live(ask.backend.inner)), ask.op), []).append(i)
        answered: dict[int, list[Any]] = {}
        for (_, op), members in packs.items():
            # each instance's cache first (its asks' requests together), then every cache's
            # misses in one call of the live model
            by_cache: dict[int, list[int]] = {}
            for i in members:
                by_cache.setdefault(id(pending[i].backend.inner), []).append(i)
            plans = [_plan(pending[group[0]].backend.inner, op, [q for i in group for q in pending[i].requests])
                     for group in by_cache.values()]
            todo = [q for wanted, _ in plans for q in wanted]
            live = _live(pending[members[0]].backend.inner)
            answers = (live.score(todo) if op == "score" else live.generate(todo)) if todo else []
            at = 0
            for group, (wanted, finish) in zip(by_cache.values(), plans):
                replies = finish(list(answers[at : at + len(wanted)]))
                at += len(wanted)
                start = 0
                for i in group:
                    ask = pending[i]
                    part = replies[start : start + len(ask.requests)]
                    start += len(ask.requests)
                    ask.backend.note(op, ask.requests, part)
                    answered[i] = part
        for i, part in answered.items():
            advance(i, part)
    return results


def _live(backend: Any) -> Any:
    """The backend that computes, beneath a per-instance cache (`CachingBackend`)."""
    return backend.inner if hasattr(backend, "plan") else backend


def _plan(backend: Any, op: str, requests: list[Any]) -> tuple[list[Any], Any]:
    """(what the live backend must answer, how to turn its answers into the replies)."""
    if hasattr(backend, "plan"):
        return backend.plan(op, requests)
    return requests, lambda answers: answers
