"""The log-probabilities the LLM-PPO update differentiates, for actions and for messages.

An action decision is one draw from the policy's distribution over legal actions (a
softmax over the candidates' scores, averaged over option orders): one log-probability.
A message decision is a token sequence the model sampled: one log-probability per token,
under softmax(logits / temperature), so the PPO ratio is taken per token (and averaged
over the message's tokens, as GRPO does), REINFORCE weighs the mean token log-probability.
The KL penalty to the base model is exact in both cases: over the legal actions, and over
the whole vocabulary at every position of a message (mean over its tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Terms:
    """One decision's differentiable pieces: `logp` and `old` ([1] for an action, [tokens]
    for a message), entropy (actions only) and KL to the base model (None: not measured)."""

    logp: torch.Tensor
    old: torch.Tensor
    entropy: torch.Tensor | None
    kl: torch.Tensor | None


def mixture(scores: list[torch.Tensor], temperature: float) -> torch.Tensor:
    """The policy's distribution: softmax at `temperature`, averaged over option orders."""
    return torch.stack([torch.softmax(s / temperature, dim=-1) for s in scores]).mean(0)


def decision_terms(lm: Any, decisions: Sequence[Any], message_kl: bool) -> list[Terms]:
    """Each decision's `Terms` with the current adapters (gradients on): every action
    prompt in one scoring pass, every message in one pass; `message_kl` also scores the
    messages with the base model (no gradient) for their exact KL."""
    from mas.agents.llm.backend import ScoreRequest

    out: list[Terms | None] = [None] * len(decisions)
    device = lm.device
    actions = [i for i, d in enumerate(decisions) if not d.is_message]
    if actions:
        requests = [ScoreRequest(messages=p, candidates=decisions[i].candidates) for i in actions for p in decisions[i].prompts]
        scores, _ = lm.score(requests)
        at = 0
        for i in actions:
            d = decisions[i]
            probs = mixture(scores[at: at + len(d.prompts)], d.temperature)
            at += len(d.prompts)
            logp = torch.log(probs.clamp_min(1e-12))
            kl = None
            if d.base_probs is not None:
                base = torch.as_tensor(d.base_probs, dtype=logp.dtype, device=device).clamp_min(1e-12)
                kl = (probs * (logp - base.log())).sum()
            out[i] = Terms(logp[d.action][None], torch.tensor([d.old_logp], device=device), -(probs * logp).sum(), kl)
    messages = [i for i, d in enumerate(decisions) if d.is_message]
    if messages:
        prompts = [decisions[i].prompts[0] for i in messages]
        tokens = [decisions[i].tokens for i in messages]
        temperatures = [decisions[i].temperature for i in messages]
        logps, _, rows = lm.token_logprobs(prompts, tokens, temperatures, full=message_kl)
        bases = None
        if message_kl:
            with torch.no_grad():
                bases = lm.token_logprobs(prompts, tokens, temperatures, adapters=False, full=True)[2]
        for k, i in enumerate(messages):
            kl = None
            if rows is not None and bases is not None:
                kl = (rows[k].exp() * (rows[k] - bases[k])).sum(-1).mean()
            old = torch.as_tensor(decisions[i].token_logps, dtype=logps[k].dtype, device=device)
            out[i] = Terms(logps[k], old, None, kl)
    return out  # type: ignore[return-value]


def group_advantages(returns: Sequence[float], groups: Sequence[Any], spread: bool) -> list[float]:
    """GRPO/RLOO-style advantages: each episode's return minus the mean return of its group
    (episodes of one situation, i.e. one game seed, and one learner), divided by the group's
    standard deviation (population; plus 1e-6) when `spread`. A group of one gets 0."""
    members: dict[Any, list[int]] = {}
    for i, key in enumerate(groups):
        members.setdefault(key, []).append(i)
    out = [0.0] * len(returns)
    for idx in members.values():
        values = torch.tensor([float(returns[i]) for i in idx], dtype=torch.float64)
        centred = values - values.mean()
        if spread:
            centred = centred / (values.std(unbiased=False) + 1e-6)
        for i, a in zip(idx, centred.tolist()):
            out[i] = a
    return out


def policy_loss(terms: Sequence[Terms], advantages: torch.Tensor, estimator: str, clip: float) -> tuple[torch.Tensor, float, float]:
    """The policy-gradient loss (mean over decisions), the approximate KL to the sampling
    policy and the fraction of clipped ratios (means over decisions of per-token means)."""
    losses, approx, clipped = [], [], []
    for t, a in zip(terms, advantages):
        ratio = torch.exp(t.logp - t.old)
        if estimator != "reinforce":  # ppo, and group as GRPO does
            losses.append(-torch.min(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a).mean())
        else:  # plain policy gradient, one epoch (on-policy)
            losses.append(-(t.logp * a).mean())
        with torch.no_grad():
            approx.append(float((t.old - t.logp).mean()))
            clipped.append(float(((ratio - 1).abs() > clip).float().mean()))
    return torch.stack(losses).mean(), sum(approx) / len(approx), sum(clipped) / len(clipped)
