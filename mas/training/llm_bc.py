"""Behaviour cloning of a teacher into an LLM's LoRA adapters (a supervised warm start).

Demonstrations come from the scenario itself: the episode engine plays it with the LLM
agents' `LLMPolicy` unchanged except for its backend, which is a teacher
(`mas.agents.llm.teacher`) that answers every request, score or generate, talk or action, and
keeps (conversation, reply) pairs. The prompts are therefore exactly those the agent sees in
play: its rules, persona, history, inbox and option orders.

The update is cross-entropy on the reply's tokens only (the end-of-turn token included, so a
generated reply stops after it), given the conversation rendered with the model's chat
template as the backend renders it (`TrainableLM.token_logprobs`). A one-token action reply
is then also what score mode reads: the first token's log-likelihood.

`scripts/train_tuned_adapter.py` uses this to train the packaged `tuned` adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mas.seeding import child_seed

ChatMessage = dict[str, str]
Example = tuple[tuple[ChatMessage, ...], str]


def demonstrations(scenario: Any, teacher: Any, episodes: int, seed: int) -> list[Example]:
    """Play `episodes` episodes of `scenario` (all at once, as copies of the engine) with
    every LLM agent's backend replaced by `teacher`; return the (conversation, reply) pairs
    the teacher gave, in order."""
    from mas.agents.llm.policy import LLMPolicy
    from mas.agents.llm.wrappers import RecordingBackend
    from mas.episode import EpisodeEngine

    engine = EpisodeEngine(scenario, batch_size=episodes, seed=seed)
    for group in (g for groups in engine.groups for g in groups):
        if isinstance(group.policy, LLMPolicy):
            group.policy._backends["policy"] = RecordingBackend(teacher)
    first = len(teacher.examples)
    ids = list(range(episodes))
    engine.reset(np.random.default_rng(seed), episodes=ids,
                 rngs=[np.random.default_rng(child_seed(seed, "episode", e)) for e in ids])
    while engine.active.any():
        engine.step()
    return list(teacher.examples[first:])


def counted(examples: Sequence[Example]) -> list[tuple[Example, int]]:
    """The distinct examples (first occurrence order) with how often the episodes met each."""
    seen: dict[Any, list[Any]] = {}
    for messages, reply in examples:
        key = (tuple((m["role"], m["content"]) for m in messages), reply)
        seen.setdefault(key, [(messages, reply), 0])[1] += 1
    return [(example, count) for example, count in seen.values()]


def weighted(examples: Sequence[Example], cap: int) -> list[Example]:
    """Each distinct example repeated as often as the episodes met it, at most `cap` times:
    a first-round prompt (met once per episode, in every episode) then weighs in training
    as it does in play, and no single prompt swamps the rest."""
    return [example for example, count in counted(examples) for _ in range(min(count, max(1, cap)))]


def mixed(kept: Sequence[Example], drawn: Sequence[Example], share: float, seed: int) -> list[Example]:
    """Every example of `kept`, plus examples of `drawn` (without replacement, seeded, in
    their order) so that they make up `share` of the result (as far as `drawn` allows): e.g.
    action replies up-weighted with some messages kept, so that training on the actions
    does not undo the talk."""
    share = min(max(share, 0.0), 0.9)
    wanted = min(len(drawn), round(len(kept) * share / (1.0 - share)))
    picked = sorted(int(i) for i in np.random.default_rng(seed).choice(len(drawn), wanted, replace=False))
    return list(kept) + [drawn[i] for i in picked]


def unique(examples: Sequence[Example]) -> list[Example]:
    """The examples without repeats (first occurrence kept): a game's first round is one
    prompt in every episode, and cloning it a hundred times teaches nothing more."""
    seen: dict[Any, Example] = {}
    for messages, reply in examples:
        seen.setdefault((tuple((m["role"], m["content"]) for m in messages), reply), (messages, reply))
    return list(seen.values())


@dataclass(frozen=True)
class BCConfig:
    """Hyperparameters of the cloning run."""

    steps: int = 30  # optimiser updates
    batch: int = 4  # examples per update (at most; a batch shares one system turn)
    lr: float = 3e-3  # AdamW learning rate of the adapters
    #: average the loss per example (each reply counts once, a one-token action as much as a
    #: sentence) rather than per token (long messages dominate)
    per_example: bool = False


class Cloner:
    """Trains a `TrainableLM`'s adapters to give the teacher's replies.

    Args:
        lm: the model with LoRA adapters (`mas.agents.rl.llm_model.TrainableLM`).
        lr: AdamW learning rate.
    """

    def __init__(self, lm: Any, lr: float = 1e-3) -> None:
        self.lm = lm
        self.optimizer = torch.optim.AdamW(lm.parameters(), lr=lr, weight_decay=0.0)
        eos = lm.tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.end = int(eos) if isinstance(eos, int) and eos >= 0 else int(min(lm.eos_ids))

    def reply_ids(self, text: str) -> list[int]:
        """The reply's tokens as the model would write them, closed by the end-of-turn token."""
        return self.lm.text_ids(text) + [self.end]

    def logprobs(self, examples: Sequence[Example]) -> list[torch.Tensor]:
        """Each example's reply log-likelihood, summed over its tokens (gradients flow when on)."""
        per_token, _, _ = self.lm.token_logprobs([c for c, _ in examples], [self.reply_ids(r) for _, r in examples],
                                                 [1.0] * len(examples))
        return [t.sum() for t in per_token]

    def step(self, examples: Sequence[Example], per_example: bool = False) -> float:
        """One update on `examples`: mean per-token cross-entropy of the replies (or the mean
        over examples of each reply's mean, with `per_example`); returns it."""
        per_token, _, _ = self.lm.token_logprobs([c for c, _ in examples], [self.reply_ids(r) for _, r in examples],
                                                 [1.0] * len(examples))
        if per_example:
            loss = -torch.stack([t.mean() for t in per_token]).mean()
        else:
            loss = -torch.cat(per_token).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.lm.forget_prefixes()
        return float(loss.detach())


def clone(lm: Any, examples: Sequence[Example], config: BCConfig, seed: int,
          on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `lm` on `examples` for `config.steps` updates of up to `config.batch` examples;
    each pass over the data is reshuffled (from `seed`) and cut into batches of examples
    with the same system turn, whose forward pass then shares that prefix. Returns the losses."""
    cloner = Cloner(lm, config.lr)
    rng = np.random.default_rng(child_seed(seed, "bc", "order"))
    batches: list[list[int]] = []
    losses = []
    for step in range(config.steps):
        if not batches:
            batches = _batches(examples, rng, config.batch)
        picked = batches.pop(0)
        losses.append(cloner.step([examples[i] for i in picked], config.per_example))
        if on_step is not None:
            on_step(step, losses[-1])
    return losses


def _batches(examples: Sequence[Example], rng: np.random.Generator, size: int) -> list[list[int]]:
    """One shuffled pass: batches of at most `size` examples sharing a system turn, in random order."""
    by_system: dict[str, list[int]] = {}
    for i in (int(i) for i in rng.permutation(len(examples))):
        by_system.setdefault(examples[i][0][0]["content"], []).append(i)
    batches = [group[k: k + size] for group in by_system.values() for k in range(0, len(group), size)]
    return [batches[int(i)] for i in rng.permutation(len(batches))]
