"""A trainable language model as an inference backend, for llm-ppo's rollouts.

`ScoringBackend` puts a `mas.agents.rl.llm_model.TrainableLM` behind the normal
`LLMBackend` interface, so rollouts run through the unchanged `LLMPolicy`: the prompts
trained on are exactly those of play. Its `generate` samples messages from the trainable
model (each row from its own seeded generator) and keeps their tokens and
log-probabilities (`Utterance`) for the message update.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mas.agents.llm.backend import BackendInfo, GenerateRequest, Generation, LLMBackend, Scores, ScoreRequest
from mas.agents.rl.llm_model import TrainableLM


class ScoringBackend(LLMBackend):
    """A `TrainableLM` as an inference backend (no gradients) for rollouts through `LLMPolicy`.

    It also keeps, per scored conversation, the prompt's hidden state (for the value head)
    and the frozen base model's scores (for the KL term), which the learner reads back with
    `take_extras`; computing them here saves a second pass over every prompt. A request
    scored before with the same weights is answered from memory (rollouts of a game revisit
    the same prompts often: every episode's first round is one prompt); an update of the
    weights (`TrainableLM.forget_prefixes`) forgets them.
    """

    def __init__(self, lm: TrainableLM, name: str, base_scores: bool = True, adapter: str | None = None) -> None:
        self.lm = lm
        self.name = name
        self.adapter = adapter  # which of the model's adapters plays (None: the active one)
        self.base_scores = base_scores
        self.extras: dict[Any, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._lock = threading.Lock()
        self._memo: dict[Any, tuple[Scores, torch.Tensor, torch.Tensor | None]] = {}
        self.messages: dict[Any, Utterance] = {}
        self._memo_version = lm.version

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(kind="local", model=self.name, details={"device": str(self.lm.device), "training": True})

    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]:
        """Messages sampled from the trainable model; each one's tokens, their
        log-probabilities and the prompt's hidden state are kept for `take_message`."""
        if not requests:
            return []
        with self._lock, torch.no_grad(), self.lm.using(self.adapter):
            made = self.lm.generate([r.messages for r in requests], [r.max_tokens for r in requests],
                                    [r.temperature for r in requests], [r.seed for r in requests])
            temperatures = [r.temperature if r.temperature > 0 else 1.0 for r in requests]
            logps = self.lm.token_logprobs([r.messages for r in requests], [m[0] for m in made], temperatures)[0]
        out = []
        for request, (tokens, stopped, state), logp in zip(requests, made, logps):
            self.messages[(conversation_key(request.messages), request.seed)] = Utterance(tuple(tokens), logp.cpu().numpy(), state,
                                                                          request.temperature)
            text = self.lm.tokenizer.decode([t for t in tokens if t not in self.lm.eos_ids], skip_special_tokens=True)
            out.append(Generation(text=text, prompt_tokens=len(self.lm.prompt_ids(request.messages)),
                                  completion_tokens=len(tokens), finish_reason="stop" if stopped else "length"))
        return out

    def take_message(self, messages: Sequence[dict[str, str]], seed: int | None) -> "Utterance":
        """The message written to `messages` with sampling seed `seed` (copies may share a prompt)."""
        return self.messages[(conversation_key(messages), seed)]

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scores]:
        if not requests:
            return []
        with self._lock, torch.no_grad(), self.lm.using(self.adapter):
            if self._memo_version != self.lm.version:
                self._memo.clear()
                self._memo_version = self.lm.version
            keys = [(conversation_key(r.messages), r.candidates, self.base_scores) for r in requests]
            todo = list({k: r for k, r in zip(keys, requests) if k not in self._memo}.items())
            if todo:
                fresh = [r for _, r in todo]
                totals, states = self.lm.score(fresh)
                base = self.lm.score(fresh, adapters=False)[0] if self.base_scores else [None] * len(fresh)
                for (key, request), total, state, base_total in zip(todo, totals, states, base):
                    scores = Scores(logprobs=tuple(float(x) for x in total.tolist()),
                                    candidate_tokens=tuple(len(self.lm.text_ids(c)) for c in request.candidates),
                                    prompt_tokens=len(self.lm.prompt_ids(request.messages)))
                    self._memo[key] = (scores, state, base_total)
        out = []
        for key in keys:
            scores, state, base_total = self._memo[key]
            self.extras[key[0]] = (state, base_total)
            out.append(scores)
        return out

    def take_extras(self, messages: Sequence[dict[str, str]]) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.extras[conversation_key(messages)]

    def clear_cache(self) -> None:
        self.extras.clear()
        self.messages.clear()


@dataclass(frozen=True)
class Utterance:
    """A message the trainable model wrote: its tokens, their log-probabilities at sampling
    time (under softmax(logits / temperature)), the prompt's hidden state, the temperature."""

    tokens: tuple[int, ...]
    logps: Any  # np.ndarray [len(tokens)]
    hidden: torch.Tensor
    temperature: float


def conversation_key(messages: Sequence[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((m["role"], m["content"]) for m in messages)
