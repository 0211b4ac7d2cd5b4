"""A prior over a learner's actions, taken from an LLM agent (LLM-guided RL).

Tabular IQL draws its epsilon-exploration from the prior instead of uniformly; MAPPO adds
an annealed KL penalty toward it and can be warm-started by behaviour cloning it (see
`mas.agents.rl.iql` and `mas.agents.rl.mappo`). The prior is one distribution over action
labels per learner, either given in the learner's config (`prior: {Stag: 0.9, Hare: 0.1}`)
or read from a stored run (`prior_run: DIR`, `prior_agent: ID`): the mean of the
`distribution` an LLM policy stored with each of that agent's action decisions
(`mas.agents.llm.policy`, score mode). It is a marginal: the learner's observation is not
matched to the stored prompt's situation, so the prior says how often the LLM agent chose
each action, not when.

Resolved against the training env (its action names), so a checkpoint loaded for play
never needs the stored run. This module imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mas.errors import MasError


def has_prior(config: Any) -> bool:
    """Whether `config` names a prior (inline or from a stored run)."""
    return config.prior is not None or config.prior_run is not None


def stored_distribution(run_dir: str | Path, agent: str) -> dict[str, float]:
    """The mean stored action distribution of `agent`'s decisions in the run at `run_dir`
    (talk decisions and records without a distribution are skipped)."""
    from mas.store import RunStore

    with RunStore.open(Path(run_dir)) as store:
        rows = store.query("SELECT record FROM decisions WHERE agent = ? AND talking = 0", (agent,))
        agents = [r[0] for r in store.query("SELECT agent FROM agents ORDER BY seat")]
    if agent not in agents:
        raise MasError(f"prior_run {run_dir}: no agent '{agent}' in the stored run (agents: {', '.join(agents)}); set prior_agent")
    sums: dict[str, float] = {}
    count = 0
    for (text,) in rows:
        distribution = json.loads(text).get("distribution")
        if not isinstance(distribution, Mapping) or not distribution:
            continue
        for label, p in distribution.items():
            sums[str(label)] = sums.get(str(label), 0.0) + float(p)
        count += 1
    if count == 0:
        raise MasError(f"prior_run {run_dir}: agent '{agent}' has no stored action distributions "
                       "(only LLM agents in score mode store them)")
    return {label: total / count for label, total in sums.items()}


def prior_matrix(config: Any, env: Any) -> np.ndarray:
    """The prior of each learner of `env` (a `VectorEnv`) as probabilities [L, A] over its
    action indices; a label the learner's game does not have is a one-line error."""
    channel = getattr(env, "channel", None)
    if channel is not None:
        raise MasError("prior: learners that talk (a learner channel) are not supported; the prior covers game actions only")
    game = env.game
    rows = []
    for learner, seat in zip(env.learners, env.learner_seats):
        if config.prior is not None:
            where, dist = "prior", dict(config.prior)
        else:
            source = config.prior_agent or learner
            where, dist = f"prior_run {config.prior_run} (agent {source})", stored_distribution(config.prior_run, source)
        names = list(game.action_names(int(seat)))
        row = np.zeros(env.num_actions)
        for label, p in dist.items():
            if label not in names:
                raise MasError(f"{where}: action '{label}' is not one of learner {learner}'s actions ({', '.join(names)})")
            row[names.index(label)] = float(p)
        if row.sum() <= 0:
            raise MasError(f"{where}: the probabilities must not all be 0")
        rows.append(row / row.sum())
    return np.stack(rows)


def masked_prior(prior: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The prior [L, A] restricted to the legal actions `mask` [..., L, A] and renormalised;
    where the prior gives the legal actions no mass, uniform over them."""
    p = np.where(mask, prior, 0.0)
    total = p.sum(-1, keepdims=True)
    uniform = mask / np.maximum(mask.sum(-1, keepdims=True), 1)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), uniform)


def sample(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action index per row of `probs` [..., A] (inverse-CDF draws)."""
    cdf = np.cumsum(probs, -1)
    u = rng.random(probs.shape[:-1] + (1,)) * cdf[..., -1:]
    return np.minimum((u >= cdf).sum(-1), probs.shape[-1] - 1)
