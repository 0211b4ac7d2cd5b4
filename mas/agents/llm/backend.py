"""The LLM backend interface: two operations, *generate text* and *score candidates*.

Both take whole batches, because batching is how a step of many LLM agents becomes one
model call. Retry, time-out, caching, recording and replay are wrappers that implement this
same interface around another backend, not flags inside each backend.

Prompts are chat conversations (a list of {"role", "content"} dicts). A backend renders
them with its model's chat template; `score` measures the log-likelihood of each candidate
as the start of the assistant's reply.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ChatMessage = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}

#: How far above 0 a candidate's total log-probability may be and still count as one.
#: A log-probability is at most 0; a near-certain candidate comes out a hair above it by
#: rounding (float32 log-softmax: ~1e-6; servers that reduce in half precision: ~1e-4).
#: 1e-3 nats (a probability 0.1% above 1) is rounding; anything beyond is not a
#: log-probability, and a policy must not turn it into a decision.
LOGPROB_SLACK = 1e-3


@dataclass(frozen=True)
class GenerateRequest:
    """Generate a continuation of a conversation.

    Attributes:
        messages: the conversation; the reply is the assistant's next turn.
        max_tokens: upper bound on generated tokens.
        temperature: 0 means greedy decoding.
        seed: fixes sampling (backends that cannot honour it say so in their docs).
        stop: strings that end the generation (not included in the text).
        json: ask the model for a JSON object (servers that support response_format).
    """

    messages: tuple[ChatMessage, ...]
    max_tokens: int = 64
    temperature: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json: bool = False


@dataclass(frozen=True)
class Generation:
    """A generated reply and what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"  # "stop" | "length"


@dataclass(frozen=True)
class ScoreRequest:
    """Score each candidate text as the beginning of the assistant's reply."""

    messages: tuple[ChatMessage, ...]
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class Scores:
    """Total log-likelihood (natural log) of each candidate, and token counts."""

    logprobs: tuple[float, ...]
    candidate_tokens: tuple[int, ...]
    prompt_tokens: int

    def problem(self, candidates: Sequence[str] = ()) -> str:
        """Why these are not log-probabilities of the candidates ("" when they are): a
        value that is not a finite number <= LOGPROB_SLACK (NaN, +-inf, positive), or a
        count that differs from the candidates'. Any backend can send such values (a model
        overflowing in half precision, a broken server, an edited record)."""
        if candidates and len(self.logprobs) != len(candidates):
            return f"{len(self.logprobs)} log-probabilities for {len(candidates)} candidates"
        for i, value in enumerate(self.logprobs):
            number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
            if not math.isfinite(number) or number > LOGPROB_SLACK:
                name = repr(candidates[i][:40]) if i < len(candidates) else f"#{i}"
                shown = f"{number:g}" if isinstance(value, (int, float)) else type(value).__name__
                return f"log-probability {shown} for candidate {name} (must be a finite number <= 0)"
        return ""


@dataclass(frozen=True)
class BackendInfo:
    """What a backend is, for run records (never contains secrets such as API keys)."""

    kind: str
    model: str
    details: dict[str, Any] = field(default_factory=dict)


class LLMBackend(ABC):
    """Generate and score over batches. Implementations must be deterministic for a
    fixed seed where the underlying model allows it."""

    @property
    @abstractmethod
    def info(self) -> BackendInfo:
        """Kind and model name, for records."""

    @abstractmethod
    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]:
        """One generation per request, in order."""

    @abstractmethod
    def score(self, requests: Sequence[ScoreRequest]) -> list[Scores]:
        """One `Scores` per request, in order."""

    def clear_cache(self) -> None:
        """Forget state kept between calls (reused keys/values, cached answers), so that what
        follows is computed exactly as in a fresh process. Stateless backends keep nothing."""

    def close(self) -> None:
        """Release resources (connections, servers)."""
