"""A prior over a learner's actions, taken from an LLM agent (LLM-guided RL).

IQL (tabular and DQN) draws its epsilon-exploration from the prior instead of uniformly;
MAPPO adds an annealed KL penalty toward it and can be warm-started by behaviour cloning it
(see `mas.agents.rl.iql` and `mas.agents.rl.mappo`). The prior is given in the learner's
config (`prior: {Stag: 0.9, Hare: 0.1}`) or read from a stored run (`prior_run: DIR`,
`prior_agent: ID`): the `distribution` an LLM policy stored with each of that agent's
action decisions (`mas.agents.llm.policy`, score mode). `prior_mode` says how:

- **marginal** (default): one distribution per learner, the mean of the stored ones. It
  says how often the LLM agent chose each action, not when.
- **situation**: the stored run is replayed (`mas.agents.rl.prior_replay`) so that each
  stored distribution is paired with the observation a learner in that seat would have had;
  the prior of a state is the mean of the distributions stored in it, and the marginal for
  a state the stored run never reached.

Learners that talk (`mas.vocabulary.LearnerChannel`): the prior covers the game actions;
the message tokens are explored uniformly, or from `prior_words` ({word: p}, "" for
silence) when given. A step's legal actions are either all game actions or all tokens, so
masking the prior to them (`Prior.probs`) keeps the two apart.

Resolved against the training env (its action names), so a checkpoint loaded for play
never needs the stored run. This module imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
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
    """The marginal prior of each learner of `env` (a `VectorEnv`) as probabilities [L, A]
    over its action indices; a label the learner's game does not have is a one-line error.
    With a learner channel the message tokens get `prior_words` (else nothing: uniform)."""
    rows = []
    for learner, seat in zip(env.learners, env.learner_seats):
        if config.prior is not None:
            where, dist = "prior", dict(config.prior)
        else:
            source = config.prior_agent or learner
            where, dist = f"prior_run {config.prior_run} (agent {source})", stored_distribution(config.prior_run, source)
        rows.append(action_row(where, dist, learner, list(env.game.action_names(int(seat))), env.num_actions))
    return np.stack(rows) + word_row(config, env)


def action_row(where: str, dist: Mapping[str, float], learner: str, names: list[str], size: int) -> np.ndarray:
    """`dist` (action label -> probability) over the indices of `names`, normalised, in a
    row of `size` entries (a learner channel's tokens follow the game actions: zeros)."""
    row = np.zeros(size)
    for label, p in dist.items():
        if label not in names:
            raise MasError(f"{where}: action '{label}' is not one of learner {learner}'s actions ({', '.join(names)})")
        row[names.index(label)] = float(p)
    if row.sum() <= 0:
        raise MasError(f"{where}: the probabilities must not all be 0")
    return row / row.sum()


def word_row(config: Any, env: Any) -> np.ndarray:
    """The prior over a learner channel's tokens [A] (silence, then each word) from
    `prior_words`; zeros without it (the tokens are then explored uniformly)."""
    channel = getattr(env, "channel", None)
    row = np.zeros(env.num_actions)
    words = getattr(config, "prior_words", None)
    if words is None:
        return row
    if channel is None:
        raise MasError("prior_words: the learners do not talk (the scenario declares no comms.vocabulary with talk_rounds)")
    for word, p in words.items():
        k = -1 if word == "" else channel.token(word)
        if k is None:
            raise MasError(f"prior_words: '{word}' is not a word of comms.vocabulary ({', '.join(channel.vocabulary)}); '' is silence")
        row[channel.num_game_actions + 1 + k] = float(p)
    return row / row.sum()


@dataclass(frozen=True)
class StateTable:
    """A situation prior of one learner: observation bytes -> row of `probs` [S, A] (the mean
    stored distribution in that state), with the legal actions `mask` [S, A] and the number
    of stored decisions `counts` [S] of each state."""

    index: dict[bytes, int]
    obs: np.ndarray
    probs: np.ndarray
    mask: np.ndarray
    counts: np.ndarray

    def rows(self, obs: np.ndarray) -> np.ndarray:
        """The row of each observation [n, d], -1 where the state was never stored."""
        keys = _keys(obs)
        return np.array([self.index.get(k, -1) for k in keys], dtype=np.int64)


def _keys(obs: np.ndarray) -> list[bytes]:
    flat = np.ascontiguousarray(obs, dtype=np.float32).reshape(len(obs), -1) + np.float32(0.0)  # -0.0 is 0.0
    return [row.tobytes() for row in flat]


class Prior:
    """The prior of every learner: a marginal [L, A], and with `prior_mode: situation` one
    `StateTable` per learner (the marginal for states it lacks)."""

    def __init__(self, marginal: np.ndarray, tables: list[StateTable] | None = None) -> None:
        self.marginal = marginal
        self.tables = tables

    def learner_probs(self, learner: int, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The prior of learner `learner` over the legal actions `mask` [n, A] at the
        observations `obs` [n, d], renormalised (uniform where it gives them no mass)."""
        if self.tables is None:
            return masked_prior(self.marginal[learner], mask)
        table = self.tables[learner]
        rows = table.rows(obs)
        raw = np.where((rows >= 0)[:, None], table.probs[np.maximum(rows, 0)], self.marginal[learner])
        return masked_prior(raw, mask)

    def probs(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The prior [..., L, A] at observations [..., L, d] over legal actions [..., L, A]."""
        if self.tables is None:
            return masked_prior(self.marginal, mask)
        lead, (L, d), A = obs.shape[:-2], obs.shape[-2:], mask.shape[-1]
        flat_obs, flat_mask = obs.reshape(-1, L, d), mask.reshape(-1, L, A)
        out = np.stack([self.learner_probs(l, flat_obs[:, l], flat_mask[:, l]) for l in range(L)], axis=1)
        return out.reshape(*lead, L, A)


def resolve_prior(config: Any, env: Any) -> Prior:
    """The prior of `config` for the learners of `env` (a `VectorEnv`)."""
    if getattr(config, "prior_mode", "marginal") != "situation":
        return Prior(prior_matrix(config, env))
    from mas.agents.rl.prior_replay import stored_situations

    words = word_row(config, env)
    marginals, tables = [], []
    channel = getattr(env, "channel", None)
    for learner, seat in zip(env.learners, env.learner_seats):
        source = config.prior_agent or learner
        where = f"prior_run {config.prior_run} (agent {source})"
        found = stored_situations(config.prior_run, source, channel)
        if found.obs.shape[1] != env.obs_dim or found.mask.shape[1] != env.num_actions:
            raise MasError(f"{where}: its observations have {found.obs.shape[1]} entries and {found.mask.shape[1]} actions, "
                           f"learner {learner}'s {env.obs_dim} and {env.num_actions}; prior_mode situation needs the same game")
        names = list(env.game.action_names(int(seat)))
        probs = np.stack([action_row(where, d, learner, names, env.num_actions) for d in found.distributions])
        keys = _keys(found.obs)
        index: dict[bytes, int] = {}
        starts = []  # the first stored decision in each state
        for i, key in enumerate(keys):
            if key not in index:
                index[key] = len(index)
                starts.append(i)
        rows = np.array([index[k] for k in keys])
        counts = np.bincount(rows, minlength=len(index))
        mean = np.zeros((len(index), env.num_actions))
        np.add.at(mean, rows, probs)
        tables.append(StateTable(index, found.obs[starts], mean / counts[:, None] + words, found.mask[starts], counts))
        marginals.append(probs.mean(0) + words)
    return Prior(np.stack(marginals), tables)


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
