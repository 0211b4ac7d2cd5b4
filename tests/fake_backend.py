"""A deterministic LLM backend for unit tests: log-probabilities from a rule, no model.

The backend is the boundary to a model; tests that check what is done with scores
(reward components, prediction scoring, planning) use this one, and each such feature
also has a test on the real embedded model. `installed` puts it behind a scenario
backend config, the way the factory shares live backends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from mas.agents.llm.backend import BackendInfo, Generation, GenerateRequest, LLMBackend, ScoreRequest, Scores

#: the scenario backend config the fake answers for (never contacted: the factory returns the fake)
FAKE_CONFIG = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "fake-judge"}

#: (prompt text, candidate) -> probability
Rule = Callable[[str, str], float]


class RuleBackend(LLMBackend):
    """Scores candidate c of a conversation as ln(rule(conversation text, c)); counts calls."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.score_calls: list[int] = []

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(kind="fake", model="rule")

    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]:
        return [Generation(text="", prompt_tokens=1, completion_tokens=0) for _ in requests]

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scores]:
        self.score_calls.append(len(requests))
        out = []
        for request in requests:
            text = "\n".join(m["content"] for m in request.messages)
            values = tuple(math.log(max(self.rule(text, c), 1e-12)) for c in request.candidates)
            out.append(Scores(logprobs=values, candidate_tokens=tuple(1 for _ in values), prompt_tokens=len(text) // 4))
        return out


@contextmanager
def installed(rule: Rule) -> Iterator[RuleBackend]:
    """The fake as the live backend of `FAKE_CONFIG` for the duration of the block."""
    from mas.agents.llm import factory
    from mas.agents.llm.config import OpenAIBackendConfig

    config = OpenAIBackendConfig(**{k: v for k, v in FAKE_CONFIG.items() if k != "kind"})
    backend = RuleBackend(rule)
    factory._LIVE[config] = backend
    try:
        yield backend
    finally:
        factory._LIVE.pop(config, None)
