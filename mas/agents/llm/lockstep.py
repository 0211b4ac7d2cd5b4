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

    Asks pending at the same time are packed by (inner backend, operation): requests
    concatenated in step order, one call, replies split back."""
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
            packs.setdefault((id(ask.backend.inner), ask.op), []).append(i)
        answered: dict[int, list[Any]] = {}
        for (_, op), members in packs.items():
            asks = [pending[i] for i in members]
            inner = asks[0].backend.inner
            requests = [q for ask in asks for q in ask.requests]
            replies = inner.score(requests) if op == "score" else inner.generate(requests)
            at = 0
            for i, ask in zip(members, asks):
                part = list(replies[at: at + len(ask.requests)])
                at += len(ask.requests)
                ask.backend.note(op, ask.requests, part)
                answered[i] = part
        for i, part in answered.items():
            advance(i, part)
    return results
