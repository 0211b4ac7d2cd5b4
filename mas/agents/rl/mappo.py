"""MAPPO (Yu et al., "The Surprising Effectiveness of PPO in Cooperative Multi-Agent
Games") and its IPPO ablation, over a batched environment.

The loop, top to bottom:
1. Roll out `rollout_steps` vector steps of every copy with the current stochastic actors
   (masked categorical policies).
2. Values: a centralised critic on the game's global state (MAPPO) or a critic on each
   agent's own observation (IPPO, `centralised_critic: false`). With one shared network
   (`shared_actor`) a one-hot agent id is appended to the input. A truncated episode
   (round limit) adds gamma * V(final state) to its last reward; both endings then cut
   the GAE chain.
3. GAE(lambda) advantages, normalised over the steps where the agent had a real choice
   (turn-based games leave idle agents a single legal "wait": those steps carry no
   gradient).
4. `epochs` passes over `minibatches` minibatches: clipped surrogate + entropy bonus for
   the actor; clipped, Huber value loss on value targets normalised by running mean/std
   (`value_norm`) for the critic; separate Adam optimisers and gradient clipping.

LLM-guided (`prior` or `prior_run`, `mas.agents.rl.prior`): `kl_prior_coef` adds
KL(policy || prior) over the legal actions to the actor loss, its weight falling linearly to
0 over `kl_prior_fraction` of the training steps; `bc_epochs` warm-starts the actor by
behaviour cloning. With a marginal prior the first iteration plays one rollout with actions
drawn from the prior and takes `bc_epochs` full-batch steps of KL(prior || policy) on its
observations (those steps count as training steps); the clone is a marginal too. With
`prior_mode: situation` the clone is trained offline on the stored decisions' states (each
state's mean stored distribution, weighted by its number of decisions; no env steps), then
the first iteration goes on as usual; the KL penalty uses the prior of each state.

Networks: two hidden layers of `hidden` ReLU units, LayerNorm on the input, orthogonal
initialisation (policy head gain 0.01), as in the official implementation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from mas.agents.rl import prior as priors
from mas.agents.rl.common import MultiMLP, RunningMeanStd, gae, linear_schedule, masked_logits, torch_generator
from mas.agents.rl.config import MAPPOConfig


class MAPPO:
    """MAPPO / IPPO learner for an env with the attributes of `mas.vector.VectorEnv`."""

    algorithm = "mappo"
    METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")

    def __init__(self, config: MAPPOConfig, env: Any, device: torch.device, seed: int, total_steps: int = 0) -> None:
        self.config = c = config
        self.n_learners, self.obs_dim, self.num_actions = env.n_learners, env.obs_dim, env.num_actions
        self.state_dim = env.state_dim
        self.device = device
        self.env_steps = 0
        self.total_steps = max(1, int(total_steps))
        self.generator = torch_generator(seed, device)
        self._prior: priors.Prior | None = None  # LLM-guided, resolved against the training env
        self._cloned = c.bc_epochs == 0
        if c.kl_prior_coef > 0 or c.bc_epochs > 0:
            self.METRICS = self.METRICS + ("kl_prior", "kl_prior_coef", "bc_kl")
        L = self.n_learners
        self.heads = 1 if c.shared_actor else L
        self.add_id = self.heads == 1 and L > 1
        ids = L if self.add_id else 0
        critic_in = (self.state_dim if c.centralised_critic else self.obs_dim) + ids
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
            torch.manual_seed(seed)
            self.actor = MultiMLP(self.heads, self.obs_dim + ids, c.hidden, self.num_actions, c.layer_norm, out_gain=0.01).to(device)
            self.critic = MultiMLP(self.heads, critic_in, c.hidden, 1, c.layer_norm).to(device)
        self.value_norm = RunningMeanStd().to(device)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.lr, eps=1e-5)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr, eps=1e-5)

    # ----- networks --------------------------------------------------------------------
    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        """[..., L, d] -> network input [..., heads or L, d (+ ids)]."""
        if self.add_id:
            eye = torch.eye(self.n_learners, dtype=x.dtype, device=x.device)
            return torch.cat([x, eye.expand(*x.shape[:-1], self.n_learners)], -1)
        return x

    def logits(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[..., L, d], [..., L, A] -> masked logits [..., L, A]."""
        return masked_logits(self.actor(self._inputs(obs)), mask)

    def values(self, obs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Normalised values [..., L] from obs [..., L, d] and global state [..., S]."""
        if self.config.centralised_critic:
            x = state.unsqueeze(-2).expand(*obs.shape[:-1], self.state_dim)
        else:
            x = obs
        return self.critic(self._inputs(x)).squeeze(-1)

    def _value(self, obs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Values in reward units (denormalised)."""
        v = self.values(obs, state)
        return self.value_norm.denormalize(v) if self.config.value_norm else v

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits, -1)
        flat = probs.reshape(-1, probs.shape[-1])
        return torch.multinomial(flat, 1, generator=self.generator).reshape(probs.shape[:-1])

    # ----- rollout + update ------------------------------------------------------------
    def collect_and_update(self, env: Any, step: Any) -> tuple[Any, dict[str, float], int]:
        """One rollout of `rollout_steps` vector steps, then the PPO update."""
        c = self.config
        self.guide(env)
        cloned: dict[str, float] = {}
        if not self._cloned:
            self._cloned = True
            if self._prior.tables is None:  # marginal: clone on a rollout played from the prior
                return self._warm_start(env, step)
            cloned["bc_kl"] = self.behaviour_clone()
        keys = ("obs", "mask", "state", "actions", "logp", "values", "rewards", "dones")
        roll: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
        with torch.no_grad():
            for _ in range(c.rollout_steps):
                logits = self.logits(step.obs, step.mask)
                actions = self._sample(logits)
                logp = torch.log_softmax(logits, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
                value = self._value(step.obs, step.state)
                nxt = env.step(actions)
                rewards = nxt.rewards.clone()
                if nxt.truncated.any():  # bootstrap the cut-off future
                    final_value = self._value(nxt.final_obs, nxt.final_state)
                    rewards += c.gamma * final_value * nxt.truncated.unsqueeze(-1).float()
                for key, value_ in zip(keys, (step.obs, step.mask, step.state, actions, logp, value, rewards, nxt.terminated | nxt.truncated)):
                    roll[key].append(value_)
                step = nxt
            next_value = self._value(step.obs, step.state)
        batch = {k: torch.stack(v) for k, v in roll.items()}
        dones = batch["dones"].unsqueeze(-1).expand_as(batch["rewards"])
        advantages, returns = gae(batch["rewards"], batch["values"], next_value, dones, c.gamma, c.gae_lambda)
        self.env_steps += c.rollout_steps * env.num_envs
        if self._prior is not None and self.kl_weight > 0:  # the prior of every step, looked up once
            batch["prior"] = self._prior_probs(batch["obs"], batch["mask"])
        metrics = {**cloned, **self._update(batch, advantages, returns)}
        return step, metrics, c.rollout_steps * env.num_envs

    def guide(self, env: Any) -> "priors.Prior | None":
        """The LLM prior, resolved against the training env `env` on first use (None when
        the config uses none)."""
        c = self.config
        if self._prior is None and (c.kl_prior_coef > 0 or c.bc_epochs > 0):
            self._prior = priors.resolve_prior(c, env)
        return self._prior

    def _prior_probs(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The prior at `obs` [..., L, d] over the legal actions of `mask` [..., L, A],
        renormalised (uniform where it gives them no mass)."""
        probs = self._prior.probs(obs.cpu().numpy(), mask.cpu().numpy())
        return torch.as_tensor(probs, dtype=torch.float32, device=self.device)

    @property
    def kl_weight(self) -> float:
        """The KL-to-prior weight now: `kl_prior_coef`, falling linearly to 0."""
        c = self.config
        return linear_schedule(c.kl_prior_coef, 0.0, c.kl_prior_fraction * self.total_steps, self.env_steps)

    def _warm_start(self, env: Any, step: Any) -> tuple[Any, dict[str, float], int]:
        """Behaviour cloning: a rollout played from the prior, then `bc_epochs` steps of
        KL(prior || policy) over its observations where the agent had a real choice."""
        c = self.config
        obs, masks = [], []
        with torch.no_grad():
            for _ in range(c.rollout_steps):
                target = self._prior_probs(step.obs, step.mask)
                flat = target.reshape(-1, target.shape[-1])
                actions = torch.multinomial(flat, 1, generator=self.generator).reshape(target.shape[:-1])
                obs.append(step.obs)
                masks.append(step.mask)
                step = env.step(actions)
        obs_t, mask_t = torch.cat(obs), torch.cat(masks)
        target = self._prior_probs(obs_t, mask_t)
        active = (mask_t.sum(-1) > 1).float()
        weight = active.sum().clamp(min=1.0)
        kl = torch.zeros(())
        for _ in range(c.bc_epochs):
            log_probs = torch.log_softmax(self.logits(obs_t, mask_t), -1)
            kl = ((target * (torch.log(target.clamp(min=1e-30)) - log_probs)).sum(-1) * active).sum() / weight
            self.actor_opt.zero_grad()
            kl.backward()
            torch.nn.utils.clip_grad_norm_(self.actor.parameters(), c.max_grad_norm)
            self.actor_opt.step()
        self.env_steps += c.rollout_steps * env.num_envs
        return step, {"bc_kl": float(kl.item())}, c.rollout_steps * env.num_envs

    def behaviour_clone(self) -> float:
        """The warm start of `prior_mode: situation`: `bc_epochs` full-batch steps of
        KL(prior(s) || policy(s)) over the states s of the stored decisions, each weighted by
        its number of decisions; returns the last KL. Done once: later updates do not clone."""
        self._cloned = True
        widen = lambda x: torch.as_tensor(x, device=self.device).unsqueeze(1).expand(-1, self.n_learners, -1)  # noqa: E731
        data = []
        for l, table in enumerate(self._prior.tables):
            target = torch.as_tensor(priors.masked_prior(table.probs, table.mask), dtype=torch.float32, device=self.device)
            data.append((l, widen(table.obs), widen(table.mask), target, torch.as_tensor(table.counts, dtype=torch.float32, device=self.device)))
        total = sum(float(counts.sum()) for *_, counts in data)
        kl = torch.zeros(())
        for _ in range(self.config.bc_epochs):
            kl = torch.zeros((), device=self.device)
            for l, obs, mask, target, counts in data:  # learner l's head (or id) on its own states
                log_probs = torch.log_softmax(self.logits(obs, mask)[:, l], -1)
                kl = kl + (counts * (target * (torch.log(target.clamp(min=1e-30)) - log_probs)).sum(-1)).sum()
            kl = kl / total
            self.actor_opt.zero_grad()
            kl.backward()
            torch.nn.utils.clip_grad_norm_(self.actor.parameters(), self.config.max_grad_norm)
            self.actor_opt.step()
        return float(kl.item())

    def _update(self, batch: dict[str, torch.Tensor], advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        c = self.config
        active = batch["mask"].sum(-1) > 1  # [T, B, L]: the agent had a real choice
        if active.any():
            chosen = advantages[active]
            advantages = (advantages - chosen.mean()) / (chosen.std(unbiased=False) + 1e-8)
        if c.value_norm:
            self.value_norm.update(returns)
            targets = self.value_norm.normalize(returns)
            old_values = self.value_norm.normalize(batch["values"])
        else:
            targets, old_values = returns, batch["values"]
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731 - [T, B, ...] -> [T*B, ...]
        data = {k: flat(v) for k, v in batch.items()}
        data.update(adv=flat(advantages), targets=flat(targets), old_values=flat(old_values), active=flat(active).float())
        n = data["obs"].shape[0]
        size = max(1, n // c.minibatches)
        sums = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_fraction": 0.0}
        updates = 0
        for _ in range(c.epochs):
            order = torch.randperm(n, generator=self.generator, device=self.generator.device).to(self.device)
            for start in range(0, n - size + 1, size):
                mb = {k: v[order[start : start + size]] for k, v in data.items()}
                stats = self._minibatch(mb)
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                updates += 1
        return {k: v / max(1, updates) for k, v in sums.items()}

    def _minibatch(self, mb: dict[str, torch.Tensor]) -> dict[str, float]:
        c = self.config
        active, weight = mb["active"], mb["active"].sum().clamp(min=1.0)
        log_probs = torch.log_softmax(self.logits(mb["obs"], mb["mask"]), -1)
        new_logp = log_probs.gather(-1, mb["actions"].unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        log_ratio = new_logp - mb["logp"]
        ratio = log_ratio.exp()
        surrogate = torch.min(ratio * mb["adv"], ratio.clamp(1 - c.clip, 1 + c.clip) * mb["adv"])
        policy_loss = -(surrogate * active).sum() / weight
        entropy_mean = (entropy * active).sum() / weight
        actor_loss = policy_loss - c.entropy_coef * entropy_mean
        kl_weight = self.kl_weight if self._prior is not None and "prior" in mb else 0.0
        if kl_weight > 0:  # KL(policy || prior) over the legal actions
            log_prior = torch.log(mb["prior"].clamp(min=1e-8))
            kl_prior = ((log_probs.exp() * (log_probs - log_prior)).sum(-1) * active).sum() / weight
            actor_loss = actor_loss + kl_weight * kl_prior
        self.actor_opt.zero_grad()
        actor_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.actor.parameters(), c.max_grad_norm)
        self.actor_opt.step()

        values = self.values(mb["obs"], mb["state"])
        clipped = mb["old_values"] + (values - mb["old_values"]).clamp(-c.clip, c.clip)
        value_loss = torch.max(
            F.huber_loss(values, mb["targets"], delta=c.huber_delta, reduction="none"),
            F.huber_loss(clipped, mb["targets"], delta=c.huber_delta, reduction="none"),
        ).mean()
        self.critic_opt.zero_grad()
        (c.value_coef * value_loss).backward()
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), c.max_grad_norm)
        self.critic_opt.step()
        with torch.no_grad():
            approx_kl = (((ratio - 1) - log_ratio) * active).sum() / weight
            clip_fraction = (((ratio - 1).abs() > c.clip).float() * active).sum() / weight
        stats = {
            "policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy_mean.item(),
            "approx_kl": approx_kl.item(), "clip_fraction": clip_fraction.item(),
        }
        if kl_weight > 0:
            stats.update(kl_prior=kl_prior.item(), kl_prior_coef=kl_weight)
        return stats

    # ----- acting (evaluation, checkpoints) ------------------------------------------------
    @torch.no_grad()
    def act(self, obs: torch.Tensor, mask: torch.Tensor, learner: torch.Tensor, greedy: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions for rows of (obs [n, d], mask [n, A], learner index [n]); the second
        result (never-seen flags, for tabular learners) is all false."""
        obs, mask, learner = obs.to(self.device), mask.to(self.device), learner.to(self.device)
        rows = torch.arange(len(learner), device=self.device)
        full_obs = obs.unsqueeze(1).expand(-1, self.n_learners, -1)
        full_mask = mask.unsqueeze(1).expand(-1, self.n_learners, -1)
        logits = self.logits(full_obs, full_mask)[rows, learner]
        actions = logits.argmax(-1) if greedy else self._sample(logits)
        return actions.cpu(), torch.zeros(len(learner), dtype=torch.bool)

    @torch.no_grad()
    def act_batch(self, step: Any, greedy: bool = True) -> torch.Tensor:
        logits = self.logits(step.obs, step.mask)
        return logits.argmax(-1) if greedy else self._sample(logits)

    def reseed(self, seed: int) -> None:
        """Fix the sampling randomness (acting as a checkpoint policy)."""
        self.generator.manual_seed(int(seed) % (2**63))

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(), "value_norm": self.value_norm.state_dict(),
            "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(), "env_steps": self.env_steps,
        }

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.actor.load_state_dict(data["actor"])
        self.critic.load_state_dict(data["critic"])
        self.value_norm.load_state_dict(data["value_norm"])
        self.actor_opt.load_state_dict(data["actor_opt"])
        self.critic_opt.load_state_dict(data["critic_opt"])
        self.env_steps = int(data["env_steps"])
        self._cloned = True  # a loaded actor (a resume) is past its warm start
