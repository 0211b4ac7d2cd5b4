"""Independent Q-learning: every learning agent treats the others as part of the world.

Two variants, chosen by `IQLConfig.variant`:

- **tabular**: one Q table per agent over its observation, used as a hashable key (in a
  normal-form game: the last `memory` joint actions). Epsilon-greedy exploration with a
  linear schedule, or Boltzmann exploration (`exploration: boltzmann`: actions drawn from
  softmax(Q / T), T decaying geometrically from `temperature_start` to `temperature_end`,
  as in Claus & Boutilier 1998); Q-learning (target r + gamma * max_a' Q(s', a')), SARSA
  (target r + gamma * Q(s', a') with a' the action the agent then takes) or Monte Carlo
  (target: the episode's discounted return from that step, every-visit or first-visit,
  applied when the episode ends; `mas.agents.rl.monte_carlo`) updates. All copies of a
  vector step are applied at once: several rows naming the same (s, a) contribute the mean
  of their errors, one step of size `alpha`. So B copies make B times fewer updates per
  game round than one copy, which shows in the iterated prisoner's dilemma's self-play
  (experiments/sandholm_crites, 20 seeds at 200k rounds: 0.70 mutual cooperation with one
  copy, as published, 0.56 with 16; each seed ends near 0.95 or at 0).
  Tables live in numpy on the CPU: a table lookup gains nothing from a GPU.
  LLM-guided (`prior` or `prior_run`, `mas.agents.rl.prior`): epsilon's exploratory
  actions are drawn from the prior over the legal actions instead of uniformly (the prior
  of the current state with `prior_mode: situation`), in training only (a checkpoint
  played in sample mode explores uniformly).
- **dqn**: a Q-network per agent (or one shared network with the agent id appended),
  a replay buffer, a target network copied every `target_update_interval` gradient
  steps, Huber loss, and double Q-learning (Hasselt et al.) when `double_q` is set.
  LLM-guided: epsilon's exploratory actions come from the prior, as in the tabular variant.

Episode ends: a terminated episode has no future value; a truncated one (a round limit)
bootstraps from its final observation, since the agent cannot see the limit coming.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mas.agents.rl.common import MultiMLP, ReplayBuffer, epsilon_greedy, linear_schedule, masked_logits, torch_generator
from mas.agents.rl.config import IQLConfig
from mas.agents.rl.monte_carlo import EpisodeTraces
from mas.agents.rl.qtable import QTable
from mas.agents.rl import prior as priors
from mas.vector import VectorStep


def make_iql(config: IQLConfig, env: Any, device: torch.device, seed: int, total_steps: int) -> "TabularIQL | DQN":
    """The learner of `config.variant` for an env with the attributes of `VectorEnv`."""
    cls = TabularIQL if config.variant == "tabular" else DQN
    return cls(config, env.n_learners, env.obs_dim, env.num_actions, device, seed, total_steps)


class _IQLBase:
    algorithm = "iql"

    def __init__(self, config: IQLConfig, n_learners: int, obs_dim: int, num_actions: int, device: torch.device, seed: int, total_steps: int) -> None:
        self.config = config
        self.n_learners, self.obs_dim, self.num_actions = n_learners, obs_dim, num_actions
        self.device = device
        self.total_steps = max(1, int(total_steps))
        self.env_steps = 0
        self.generator = torch_generator(seed, device)

    def reseed(self, seed: int) -> None:
        """Fix the exploration randomness (acting as a checkpoint policy)."""
        self.generator.manual_seed(int(seed) % (2**63))
        self.rng = np.random.default_rng(int(seed))

    @property
    def epsilon(self) -> float:
        c = self.config
        return linear_schedule(c.epsilon_start, c.epsilon_end, c.exploration_fraction * self.total_steps, self.env_steps)

    @property
    def temperature(self) -> float:
        """Boltzmann temperature: geometric from `temperature_start` to `temperature_end`."""
        c = self.config
        done = linear_schedule(0.0, 1.0, c.exploration_fraction * self.total_steps, self.env_steps)
        return c.temperature_start * (c.temperature_end / c.temperature_start) ** done


# ----- tabular ---------------------------------------------------------------------------
#: the most Q entries an update adds to all at once (more: only the entries it touches)
WHOLE_TABLE = 4096


class TabularIQL(_IQLBase):
    """Tabular independent Q-learning / SARSA / Monte Carlo control; see the module docstring."""

    METRICS = ("epsilon", "temperature", "td_error")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.tables = [QTable(self.num_actions, self.obs_dim) for _ in range(self.n_learners)]
        self.rng = np.random.default_rng(int(self.generator.initial_seed()))
        self._pending: np.ndarray | None = None  # SARSA: the actions already chosen for the current obs
        self._traces = EpisodeTraces(self.config.gamma, self.config.visits == "first")  # Monte Carlo: running episodes
        self._mc_error = 0.0  # Monte Carlo: the last update's mean |G - Q| (logged as td_error)
        self._prior: priors.Prior | None = None  # LLM-guided exploration, resolved against the training env
        # (step returned by the last update, its final observations, their rows per table)
        self._last_rows: tuple[VectorStep, np.ndarray, list[np.ndarray]] | None = None
        # steps with state ids (`VectorStep.ids`): each table's row per id of this memo (-1: not yet)
        self._id_memo: Any = None
        self._id_rows: list[np.ndarray] = []

    @property
    def boltzmann(self) -> bool:
        return self.config.exploration == "boltzmann"

    @property
    def exploring(self) -> float:
        """The current exploration level: epsilon, or the Boltzmann temperature."""
        return self.temperature if self.boltzmann else self.epsilon

    def _policy(self, learner: int, rows: np.ndarray, mask: np.ndarray, level: float, obs: np.ndarray | None = None,
                all_legal: bool = False) -> np.ndarray:
        """Actions at exploration `level` (epsilon, or the temperature; 0 is greedy) at the
        observations `obs` (their table `rows`); `all_legal`: the mask is known to be all true."""
        q = self.tables[learner].q[rows] if all_legal else np.where(mask, self.tables[learner].q[rows], -np.inf)
        greedy = q.argmax(-1)
        if self.boltzmann:
            if level <= 0.0:
                return greedy
            # Gumbel-max: argmax(Q/T + Gumbel noise) is a draw from softmax(Q/T); masked stay -inf
            gumbel = -np.log(-np.log(self.rng.random(q.shape) + 1e-300))
            return (q / level + gumbel).argmax(-1)
        epsilon = level
        if self._prior is not None:
            random_legal = priors.sample(self._prior.learner_probs(learner, obs, mask), self.rng)
        elif all_legal:  # the same draws and choices as through the mask
            random_legal = self.rng.random(mask.shape).argmax(-1)
        else:
            random_legal = np.where(mask, self.rng.random(mask.shape), -1.0).argmax(-1)
        explore = self.rng.random(len(rows)) < epsilon
        return np.where(explore, random_legal, greedy)

    def _explore(self, obs: np.ndarray, mask: np.ndarray, rows: list[np.ndarray] | None = None,
                 all_legal: bool = False) -> np.ndarray:
        level = self.exploring
        if self.n_learners == 1:
            found = self.tables[0].rows(obs[:, 0]) if rows is None else rows[0]
            return self._policy(0, found, mask[:, 0], level, obs[:, 0], all_legal)[:, None]
        actions = np.empty(obs.shape[:2], dtype=np.int64)
        for l in range(self.n_learners):
            found = self.tables[l].rows(obs[:, l]) if rows is None else rows[l]
            actions[:, l] = self._policy(l, found, mask[:, l], level, obs[:, l], all_legal)
        return actions

    def _obs_rows(self, step: VectorStep, obs: np.ndarray, memo: Any) -> list[np.ndarray]:
        """Each table's rows of the step's observations: by state id where the step has ids,
        else the last update's rows of the final observations when they are these (no copy
        restarted), else looked up (in learner order, each table adding its unseen states as
        it always did)."""
        if step.ids is not None and memo is not None:
            return [self._id_lookup(l, step.ids, obs[:, l], memo) for l in range(self.n_learners)]
        last = self._last_rows
        if last is not None and last[0] is step and (last[1] is obs or np.array_equal(last[1], obs)):
            return last[2]
        return [table.rows(obs[:, l]) for l, table in enumerate(self.tables)]

    def _id_lookup(self, learner: int, ids: np.ndarray, obs: np.ndarray, memo: Any) -> np.ndarray:
        """Table rows of the observations `obs` of state `ids`: remembered per id (an id always
        shows the same observation), looked up in the table (adding unseen states, as
        without ids) only when some id is new to this table."""
        if self._id_memo is not memo:
            self._id_memo, self._id_rows = memo, [np.full(0, -1, dtype=np.int64) for _ in self.tables]
            self._id_complete = [-1] * self.n_learners  # the memo's size when every id had a row
        known = self._id_rows[learner]
        rows = known[ids] if len(known) >= len(memo.obs) else None
        if self._id_complete[learner] == len(memo):  # every id has its row: nothing to check
            return rows
        if rows is None:
            known = self._id_rows[learner] = np.concatenate([known, np.full(len(memo.obs) - len(known), -1, dtype=np.int64)])
            rows = known[ids]
        if np.minimum.reduce(rows, axis=None) < 0:
            rows = self.tables[learner].rows(obs)
            known[ids] = rows
            if np.minimum.reduce(known[:len(memo)]) >= 0:
                self._id_complete[learner] = len(memo)
        return rows

    def collect_and_update(self, env: Any, step: VectorStep) -> tuple[VectorStep, dict[str, float], int]:
        """One vector step of every copy, then one batched update of every table."""
        if getattr(env, "tabular", None) is False:  # numpy end to end where the env offers it (until its reset)
            env.use_tabular_steps()
        if self._prior is None and priors.has_prior(self.config):
            self._prior = priors.resolve_prior(self.config, env)
        obs, mask = _np(step.obs), _np(step.mask)
        memo = getattr(env, "memo", None)
        # one lookup per table and observation batch: acting and the update share the rows
        obs_rows = self._obs_rows(step, obs, memo)
        actions = self._pending if self._pending is not None else self._explore(obs, mask, obs_rows, step.all_legal)
        nxt = env.step(actions)
        self.env_steps += env.num_envs
        sarsa, monte_carlo = self.config.update == "sarsa", self.config.update == "monte_carlo"
        # float32 rewards enter the float64 targets exactly as converted ones would (MC keeps them)
        rewards = _np(nxt.rewards).astype(np.float64) if monte_carlo else _np(nxt.rewards)
        terminated = _np(nxt.terminated)
        # 1.0 where nothing terminated: gamma * 1.0 * future is gamma * future, as with an array of ones
        alive = 1.0 - terminated.astype(np.float64) if np.logical_or.reduce(terminated) else 1.0
        final_obs, final_mask = _np(nxt.final_obs), _np(nxt.final_mask)
        if sarsa or monte_carlo:
            done = _np(nxt.terminated | nxt.truncated)
            pending = np.empty_like(actions)
            keys, tails = np.empty_like(actions), np.empty_like(rewards)
        td_abs = 0.0
        final_rows = []
        for l, table in enumerate(self.tables):
            rows = obs_rows[l]
            next_rows = (self._id_lookup(l, nxt.final_ids, final_obs[:, l], memo) if nxt.final_ids is not None and memo is not None
                         else table.rows(final_obs[:, l]))
            final_rows.append(next_rows)
            next_q = table.q[next_rows] if nxt.all_legal else np.where(final_mask[:, l], table.q[next_rows], -np.inf)
            if sarsa:
                chosen = self._policy(l, next_rows, final_mask[:, l], self.exploring, final_obs[:, l], nxt.all_legal)
                future = next_q[np.arange(len(chosen)), chosen]
                pending[:, l] = chosen
            else:
                future = np.maximum.reduce(next_q, axis=-1)
            flat = rows * self.num_actions + actions[:, l]
            if monte_carlo:  # the update waits for the episode's end
                keys[:, l], tails[:, l] = flat, alive * future
                continue
            target = rewards[:, l] + self.config.gamma * alive * future
            td_abs += _step_toward(table.q, flat, target, self.config.alpha)
        if monte_carlo:
            learners, flat, returns = self._traces.record(keys, rewards, done, tails)
            if len(learners):
                self._mc_error = sum(_step_toward(table.q, flat[learners == l], returns[learners == l], self.config.alpha)
                                     for l, table in enumerate(self.tables) if (learners == l).any())
            td_abs = self._mc_error
        if sarsa:  # copies that started a new episode choose afresh at the reset observation
            if done.any():
                pending[done] = self._explore(_np(nxt.obs)[done], _np(nxt.mask)[done])
            self._pending = pending
        self._last_rows = (nxt, final_obs, final_rows)
        level = {"temperature": self.temperature} if self.boltzmann else {"epsilon": self.epsilon}
        return nxt, {**level, "td_error": td_abs / self.n_learners}, env.num_envs

    def act(self, obs: torch.Tensor, mask: torch.Tensor, learner: torch.Tensor, greedy: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions for rows of (obs [n, d], mask [n, A], learner index [n]); also returns
        a flag per row that is true when the observation was never seen in training (the
        first legal action is played)."""
        obs_np, mask_np, who = _np(obs), _np(mask), _np(learner)
        actions = np.zeros(len(who), dtype=np.int64)
        unseen = np.zeros(len(who), dtype=bool)
        final = self.config.temperature_end if self.boltzmann else self.config.epsilon_end
        level = 0.0 if greedy else final
        for l in np.unique(who):
            sel = who == l
            rows = self.tables[l].rows(obs_np[sel], add=False)
            unseen[sel] = rows < 0
            chosen = self._policy(int(l), np.maximum(rows, 0), mask_np[sel], level, obs_np[sel])
            actions[sel] = np.where(rows < 0, mask_np[sel].argmax(-1), chosen)
        return torch.from_numpy(actions), torch.from_numpy(unseen)

    def act_batch(self, step: VectorStep, greedy: bool = True) -> torch.Tensor:
        """Actions [B, L] for a vector step (evaluation)."""
        b, l = step.obs.shape[:2]
        who = torch.arange(l).repeat(b)
        actions, _ = self.act(step.obs.reshape(b * l, -1), step.mask.reshape(b * l, -1), who, greedy)
        return actions.reshape(b, l)

    def state_dict(self) -> dict[str, Any]:
        return {"tables": [t.state_dict() for t in self.tables], "env_steps": self.env_steps}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        tables = data["tables"]
        if len(tables) != self.n_learners:
            raise ValueError(f"{len(tables)} Q tables for {self.n_learners} learners")
        for t in tables:  # a row per state: [states, obs_dim] keys and [states, actions] values
            if t["obs"].ndim != 2 or t["obs"].shape[1] != self.obs_dim or tuple(t["q"].shape) != (len(t["obs"]), self.num_actions):
                raise ValueError(f"a Q table of shape {tuple(t['q'].shape)} over observations {tuple(t['obs'].shape)}, "
                                 f"expected [states, {self.num_actions}] over [states, {self.obs_dim}]")
        self.tables = [QTable.from_state_dict(t, self.num_actions) for t in tables]
        self.env_steps = int(data["env_steps"])
        self._pending = None
        self._last_rows = None
        self._id_memo = None
        self._traces = EpisodeTraces(self.config.gamma, self.config.visits == "first")


def _np(x: Any) -> np.ndarray:
    """A step's array as numpy (a tensor is brought to the CPU)."""
    return x if isinstance(x, np.ndarray) else x.cpu().numpy()


def _step_toward(q: np.ndarray, flat: np.ndarray, target: np.ndarray, alpha: float) -> float:
    """Move the entries `flat` (row * A + action) of `q` toward `target` by `alpha` times the
    mean error of the rows naming each entry (one step per entry); returns the mean |error|."""
    values = q.reshape(-1)
    error = target - values[flat]
    sums = np.bincount(flat, weights=error, minlength=q.size)
    counts = np.bincount(flat, minlength=q.size)
    if q.size <= WHOLE_TABLE:  # untouched entries add alpha * 0.0 / 1: unchanged (Q values are never -0.0)
        values += alpha * sums / np.maximum(counts, 1)
    else:
        touched = counts > 0
        values[touched] += alpha * sums[touched] / counts[touched]
    return float(np.add.reduce(np.abs(error)) / len(error)) if len(error) else 0.0  # the mean (`mean` costs more)


# ----- DQN -------------------------------------------------------------------------------
class DQN(_IQLBase):
    """Independent DQN with replay, target network and optional double-Q; see the module docstring."""

    METRICS = ("epsilon", "loss")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        c = self.config
        heads = 1 if c.shared else self.n_learners
        n_in = self.obs_dim + (self.n_learners if c.shared else 0)
        self.q_net = MultiMLP(heads, n_in, c.hidden, self.num_actions).to(self.device)
        self.target_net = copy.deepcopy(self.q_net)
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=c.lr)
        capacity = max(c.buffer_size, 1)
        L, d, A = self.n_learners, self.obs_dim, self.num_actions
        self.buffer = ReplayBuffer(
            capacity,
            {
                "obs": ((L, d), torch.float32), "actions": ((L,), torch.int64), "rewards": ((L,), torch.float32),
                "next_obs": ((L, d), torch.float32), "next_mask": ((L, A), torch.bool), "alive": ((), torch.float32),
            },
            self.device,
        )
        self.gradient_steps = 0
        self.vector_steps = 0
        self._prior: priors.Prior | None = None  # LLM-guided exploration, resolved against the training env

    def q_values(self, net: MultiMLP, obs: torch.Tensor) -> torch.Tensor:
        """[B, L, d] -> [B, L, A]."""
        if self.config.shared:
            eye = torch.eye(self.n_learners, device=obs.device).expand(*obs.shape[:-1], self.n_learners)
            return net(torch.cat([obs, eye], -1).unsqueeze(-2)).squeeze(-2)
        return net(obs)

    def collect_and_update(self, env: Any, step: VectorStep) -> tuple[VectorStep, dict[str, float], int]:
        if self._prior is None and priors.has_prior(self.config):
            self._prior = priors.resolve_prior(self.config, env)
        explore = None
        if self._prior is not None:  # the exploratory actions' distribution [B, L, A]
            probs = self._prior.probs(step.obs.cpu().numpy(), step.mask.cpu().numpy())
            explore = torch.as_tensor(probs, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            actions = epsilon_greedy(self.q_values(self.q_net, step.obs), step.mask, self.epsilon, self.generator, explore)
        nxt = env.step(actions)
        self.env_steps += env.num_envs
        self.vector_steps += 1
        self.buffer.add(
            obs=step.obs, actions=actions, rewards=nxt.rewards, next_obs=nxt.final_obs,
            next_mask=nxt.final_mask, alive=(~nxt.terminated).float(),
        )
        metrics: dict[str, float] = {"epsilon": self.epsilon}
        if self.env_steps >= self.config.learning_starts and self.vector_steps % self.config.train_frequency == 0:
            metrics["loss"] = self._train_step()
        return nxt, metrics, env.num_envs

    def _train_step(self) -> float:
        c = self.config
        batch = self.buffer.sample(c.batch_size, self.generator)
        with torch.no_grad():
            target_q = self.q_values(self.target_net, batch["next_obs"])
            if c.double_q:  # choose with the online net, value with the target net
                chosen = masked_logits(self.q_values(self.q_net, batch["next_obs"]), batch["next_mask"]).argmax(-1, keepdim=True)
                future = target_q.gather(-1, chosen).squeeze(-1)
            else:
                future = masked_logits(target_q, batch["next_mask"]).max(-1).values
            target = batch["rewards"] + c.gamma * batch["alive"].unsqueeze(-1) * future
        q = self.q_values(self.q_net, batch["obs"]).gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1)
        loss = F.smooth_l1_loss(q, target)
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.q_net.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self.gradient_steps += 1
        if self.gradient_steps % c.target_update_interval == 0:
            self.target_net.load_state_dict(self.q_net.state_dict())
        return loss.item()

    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor, learner: torch.Tensor, greedy: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions for rows of (obs [n, d], mask [n, A], learner index [n]); the second
        result (never-seen flags, for the tabular variant) is all false."""
        obs, mask, learner = obs.to(self.device), mask.to(self.device), learner.to(self.device)
        full = obs.unsqueeze(1).expand(-1, self.n_learners, -1)
        q = self.q_values(self.q_net, full)[torch.arange(len(learner), device=self.device), learner]
        actions = epsilon_greedy(q, mask, 0.0 if greedy else self.config.epsilon_end, self.generator)
        return actions.cpu(), torch.zeros(len(learner), dtype=torch.bool)

    @torch.no_grad()
    def act_batch(self, step: VectorStep, greedy: bool = True) -> torch.Tensor:
        q = self.q_values(self.q_net, step.obs)
        return epsilon_greedy(q, step.mask, 0.0 if greedy else self.config.epsilon_end, self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {
            "q_net": self.q_net.state_dict(), "target_net": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(), "env_steps": self.env_steps,
            "gradient_steps": self.gradient_steps, "vector_steps": self.vector_steps,
        }

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.q_net.load_state_dict(data["q_net"])
        self.target_net.load_state_dict(data["target_net"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.env_steps = int(data["env_steps"])
        self.gradient_steps = int(data["gradient_steps"])
        self.vector_steps = int(data["vector_steps"])
