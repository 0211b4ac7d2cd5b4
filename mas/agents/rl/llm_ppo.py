"""LLM-PPO and LLM-MAPPO: fine-tune LLM-policy agents from the rewards they get in the game.

The policy is the LLM policy of play (`type: llm`, `mode: score`): a softmax, at the
spec's temperature, over the legal actions' total log-likelihoods given the prompt (averaged
over option orders with `debias`). Every sampled action is legal and its log-probability
exact, so PPO works on that small distribution rather than on tokens. Learners that talk
write their messages with the trainable model (`ScoringBackend.generate`); with `train:
messages` or `both` each message is a decision too, a token sequence trained by a token-level
policy gradient (`llm_objective`), credited like an action: it comes before the round's
action in the learner's trajectory, so the round's reward reaches it through the returns.

Rollouts run the unchanged `LLMPolicy` on the episode engine with the scripted opponents of
the scenario (as `mas run` does), its backend swapped for a `ScoringBackend` over the
trainable model: the prompts trained on are exactly those of play. The update re-scores the
recorded prompts with gradients through LoRA adapters (`llm_model.TrainableLM`).

- `llm-ppo`: a value head (one linear layer) on the model's final hidden state at the
  prompt's last token. It reads that state detached, so the critic's loss does not pull on
  the adapters the policy uses.
- `llm-mappo`: a separate critic (MLP) on the game's global state `env.state()`, one value
  per learner (centralised training, decentralised play); `centralised_critic: true`.

All learners share one set of adapters (parameter sharing), or each has its own
(`adapters: per_agent`: a named peft adapter per learner on the one base model, each
scored, sampled and updated on its own agent's decisions, with its own optimiser).
Advantages come from GAE over
each agent's decisions in an episode (`estimator: ppo`, clipped objective, several epochs),
or from Monte-Carlo returns minus the learned baseline (`estimator: reinforce`, one epoch,
no clipping; the ablation), or from a group baseline (`estimator: group`, GRPO/RLOO-style:
`group_size` episodes on one game seed with different sampling seeds; each episode's return
minus its group's mean, over the group's spread, for all its decisions; clipped objective). An optional exact KL penalty to the frozen base model (the same
model with the adapters disabled) keeps the policy near the base's distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mas.agents.rl.common import gae
from mas.agents.rl.config import LLMPPOConfig
from mas.agents.rl.llm_objective import decision_terms, group_advantages, mixture
from mas.agents.rl.llm_objective import policy_loss as policy_loss_of
from mas.errors import MasError
from mas.seeding import child_seed

# ----- rollouts ------------------------------------------------------------------------------------
@dataclass
class Decision:
    """One learner decision: what the update re-scores, and what the rollout saw."""

    agent: str
    prompts: list[tuple[dict[str, str], ...]]  # one per option order (debias)
    candidates: tuple[str, ...]
    temperature: float
    action: int  # index into candidates
    old_logp: float
    probs: np.ndarray  # rollout distribution
    base_probs: np.ndarray | None
    hidden: torch.Tensor
    state: np.ndarray
    reward: float = 0.0
    done: bool = False
    tokens: tuple[int, ...] = ()  # a message decision: the generated tokens (no candidates)
    token_logps: np.ndarray | None = None  # their log-probabilities when sampled

    @property
    def is_message(self) -> bool:
        return bool(self.tokens)


@dataclass
class EpisodeStats:
    returns: dict[str, float] = field(default_factory=dict)
    coop: list[float] = field(default_factory=lambda: [0.0, 0.0])  # learners' sum, count
    steps: int = 0


class Rollouts:
    """Plays episodes with the scenario's policies, the learners' scoring through `backend`.

    `play_many` plays several episodes at once as copies of the engine: every step, the
    learners' decisions of all copies are one packed scoring call (`LLMPolicy.act_many`).
    Each copy keeps its own policy instances and game generator, seeded from the episode
    id as `play` seeds a lone episode, so a batch gives the trajectories of the one-at-a-time
    path (up to the last bits of the scores, which a packed forward pass rounds differently).
    """

    def __init__(self, scenario: Any, learners: list[str], backend: Any, train: str = "actions") -> None:
        self.scenario = scenario
        self.learners = learners
        # one ScoringBackend for all learners, or a mapping agent -> its own (per-agent adapters)
        self.backends = dict(backend) if isinstance(backend, dict) else dict.fromkeys(learners, backend)
        self.backend = self.backends[learners[0]]
        self.train = train  # which decisions are kept: actions, messages or both
        self._engines: dict[int, Any] = {}
        self.engine = self._engine(1)
        self.groups = self.engine.groups[0]

    def _engine(self, copies: int) -> Any:
        """The engine of `copies` copies (built once), the learners' policies on `backend`."""
        from mas.agents.llm.policy import LLMPolicy
        from mas.agents.llm.wrappers import RecordingBackend
        from mas.episode import EpisodeEngine

        if copies not in self._engines:
            engine = EpisodeEngine(self._separated(), batch_size=copies)
            for group in (g for groups in engine.groups for g in groups):
                if set(group.agents) & set(self.learners):
                    if not set(group.agents) <= set(self.learners) or not isinstance(group.policy, LLMPolicy):
                        raise MasError(f"agents {group.agents} share one policy spec but not all of them learn; "
                                       "give the learners their own spec or name them all in --learners")
                    group.policy._backends["policy"] = RecordingBackend(self.backends[group.agents[0]])
            self._engines[copies] = engine
        return self._engines[copies]

    def _separated(self) -> Any:
        """The scenario, with learners on separate backends given specs of their own: equal
        specs share one policy instance, hence one backend. The mark (a backend.adapter that
        is never loaded: the policy's backend is replaced) changes nothing the agent sees."""
        if len({id(b) for b in self.backends.values()}) == 1:
            return self.scenario
        from mas.scenario import parse_scenario

        data = self.scenario.to_dict()
        for agent in data["agents"]:
            if agent["id"] in self.backends:
                agent["policy"]["backend"]["adapter"] = f"<training:{agent['id']}>"
        return parse_scenario(data, source=f"{self.scenario.name} (per-agent training)")

    def all_backends(self) -> list[Any]:
        """The distinct learner backends."""
        return list({id(b): b for b in self.backends.values()}.values())

    def play(self, seed: int, episode: int, group: int | None = None) -> tuple[list[list[Decision]], EpisodeStats]:
        """One episode on the engine (seeded as `mas run` seeds it): each learner's
        decisions in order (rewards filled in), and totals."""
        return self.play_many(seed, [episode], None if group is None else [group])[0]

    def play_many(self, seed: int, episodes: list[int],
                  groups: list[int] | None = None) -> list[tuple[list[list[Decision]], EpisodeStats]]:
        """`play` of each of `episodes`, all at once (one copy of the engine each). With
        `groups`, the game's chances come from the group's seed (episodes of one group play
        the same situation) and the policies' sampling from the episode's."""
        engine = self._engine(len(episodes))
        engine.seed = seed
        games = [child_seed(seed, "episode", e) for e in episodes] if groups is None else \
            [child_seed(seed, "group", g) for g in groups]
        rngs = [np.random.default_rng(s) for s in games]  # each copy plays as a batch of one would
        engine.reset(rngs[0], episodes=episodes, rngs=rngs)
        for backend in self.all_backends():
            backend.clear_cache()
        trajectories: list[dict[str, list[Decision]]] = [{a: [] for a in self.learners} for _ in episodes]
        stats = [EpisodeStats(returns=dict.fromkeys(self.learners, 0.0)) for _ in episodes]
        seats = {a: engine.agent_ids.index(a) for a in self.learners}
        while engine.active.any():
            states = engine.game.global_state(engine.state).astype(np.float32)
            moved = engine.step()
            for c in np.flatnonzero(moved.active):
                if self.train != "actions":
                    self._messages(moved.decisions[c], states[c], trajectories[c])
                if not moved.talking:
                    self._record(moved, int(c), states[c], trajectories[c], stats[c], seats)
            for backend in self.all_backends():
                backend.clear_cache()
        for copy in trajectories:
            for agent in self.learners:
                if copy[agent]:
                    copy[agent][-1].done = True
        return [([t[a] for a in self.learners], st) for t, st in zip(trajectories, stats)]

    def _messages(self, decisions: Any, state: np.ndarray, trajectories: dict[str, list[Decision]]) -> None:
        """The learners' messages of this step, as decisions (before the step's action)."""
        for agent in self.learners:
            for call in decisions[agent].record.get("calls", ()) if agent in decisions else ():
                if call["op"] != "generate":
                    continue
                prompt = tuple(call["request"]["messages"])
                said = self.backends[agent].take_message(prompt, call["request"]["seed"])
                trajectories[agent].append(Decision(
                    agent=agent, prompts=[prompt], candidates=(), temperature=said.temperature, action=-1,
                    old_logp=float(said.logps.sum()), probs=np.zeros(0), base_probs=None, hidden=said.hidden,
                    state=state, tokens=said.tokens, token_logps=said.logps))

    def _record(self, moved: Any, c: int, state: np.ndarray, trajectories: dict[str, list[Decision]],
                stats: EpisodeStats, seats: dict[str, int]) -> None:
        """Copy `c`'s action step: the learners' decisions, rewards and cooperation."""
        decisions = moved.decisions[c]
        for agent in self.learners:
            made = self._decision(agent, decisions[agent].record, state) if self.train != "messages" else None
            if made is not None:
                trajectories[agent].append(made)
        stats.steps += 1
        for agent in self.learners:
            reward = float(moved.total_rewards[c, seats[agent]])  # the reward model's component included
            stats.returns[agent] += reward
            if trajectories[agent]:  # a forced move's reward goes to the last real decision
                trajectories[agent][-1].reward += reward
            coop = np.nan if moved.cooperation is None else float(moved.cooperation[c, seats[agent]])
            if coop == coop:
                stats.coop[0] += coop
                stats.coop[1] += 1

    def _decision(self, agent: str, record: dict[str, Any], state: np.ndarray) -> Decision | None:
        if record.get("status") != "ok" or "distribution" not in record:
            return None  # forced (one legal action): nothing to learn
        calls = [c for c in record["calls"] if c["op"] == "score"]
        prompts = [tuple(c["request"]["messages"]) for c in calls]
        candidates = tuple(calls[0]["request"]["candidates"])
        probs = np.array([record["distribution"][c] for c in candidates])
        backend = self.backends[agent]
        hidden, base = backend.take_extras(prompts[0])
        base_probs = None
        if backend.base_scores:
            base_scores = [backend.take_extras(p)[1] for p in prompts]
            base_probs = mixture(base_scores, self._temperature(agent)).cpu().numpy()
        action = candidates.index(record["action"])
        return Decision(agent=agent, prompts=prompts, candidates=candidates, temperature=self._temperature(agent),
                        action=action, old_logp=float(np.log(max(probs[action], 1e-12))), probs=probs,
                        base_probs=base_probs, hidden=hidden, state=state)

    def _temperature(self, agent: str) -> float:
        for group in self.groups:
            if agent in group.agents:
                return float(group.policy.spec.temperature)
        raise KeyError(agent)


# ----- the learner ------------------------------------------------------------------------------
class LLMPPO:
    """Adapters, critic and the PPO/REINFORCE update (see the module docstring)."""

    METRICS = ("policy_loss", "value_loss", "entropy", "kl", "approx_kl", "clip_frac")

    def __init__(self, lm: Any, config: LLMPPOConfig, centralised: bool, state_dim: int, learners: list[str], seed: int) -> None:
        self.lm = lm
        self.config = config
        self.centralised = centralised
        self.learners = learners
        self.rng = np.random.default_rng(child_seed(seed, "minibatches"))
        lm.prefix_grad = config.prefix_grad
        torch.manual_seed(child_seed(seed, "critic"))
        if centralised:
            h = config.critic_hidden
            self.critic: nn.Module = nn.Sequential(nn.Linear(state_dim, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(),
                                                   nn.Linear(h, len(learners)))
        else:
            self.critic = nn.Linear(lm.hidden_size, 1)
        self.critic.to(lm.device)
        # one optimiser per adapter: separate adapters are separate policies (own steps, own clip)
        self.policy_opts = {name: torch.optim.Adam(lm.parameters(name), lr=config.lr) for name in lm.adapter_names}
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)

    def values(self, batch: list[Decision]) -> torch.Tensor:
        if self.centralised:
            states = torch.as_tensor(np.stack([d.state for d in batch]), device=self.lm.device)
            index = torch.tensor([self.learners.index(d.agent) for d in batch], device=self.lm.device)
            return self.critic(states).gather(1, index[:, None])[:, 0]
        return self.critic(torch.stack([d.hidden for d in batch]).to(self.lm.device))[:, 0]

    def advantages(self, trajectories: list[list[Decision]],
                   groups: list[int] | None = None) -> tuple[list[Decision], torch.Tensor, torch.Tensor]:
        """Flat decisions with their advantages and return targets (GAE per trajectory;
        lambda 1, i.e. Monte-Carlo return minus baseline, for reinforce). `group`: every
        decision of an episode gets its return's advantage within the group (`groups[i]`:
        trajectory i's group; a learner's episodes of one group are compared)."""
        cfg = self.config
        lam = 1.0 if cfg.estimator != "ppo" else cfg.gae_lambda
        flat, advs, rets = [], [], []
        with torch.no_grad():
            for traj in trajectories:
                if not traj:
                    continue
                values = self.values(traj).cpu()
                rewards = torch.tensor([d.reward for d in traj], dtype=torch.float32)
                dones = torch.tensor([d.done for d in traj])
                adv, ret = gae(rewards, values, torch.zeros(()), dones, cfg.gamma, lam)
                flat += traj
                advs.append(adv)
                rets.append(ret)
        if cfg.estimator == "group" and flat:
            if groups is None or len(groups) != len(trajectories):
                raise MasError("estimator group: the update needs each episode's group")
            kept = [(traj, g) for traj, g in zip(trajectories, groups) if traj]
            by_episode = group_advantages([sum(d.reward for d in traj) for traj, _ in kept],
                                          [(g, traj[0].agent) for traj, g in kept], cfg.group_std)
            advs = [torch.full((len(traj),), a, dtype=torch.float32) for (traj, _), a in zip(kept, by_episode)]
        return flat, torch.cat(advs), torch.cat(rets)

    def update(self, trajectories: list[list[Decision]], groups: list[int] | None = None) -> dict[str, float]:
        """One PPO, REINFORCE or group update on a batch of episodes; the curve metrics."""
        cfg = self.config
        batch, adv, ret = self.advantages(trajectories, groups)
        if not batch:
            return {}
        if cfg.normalize_advantages and len(batch) > 1 and cfg.estimator != "group":  # group: normalised per group
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        adv, ret = adv.to(self.lm.device), ret.to(self.lm.device)
        sums = dict.fromkeys(("policy_loss", "value_loss", "approx_kl", "clip_frac"), 0.0)
        steps = 0
        epochs = 1 if cfg.estimator == "reinforce" else cfg.epochs
        for _ in range(epochs):
            order = self.rng.permutation(len(batch))
            for start in range(0, len(batch), cfg.minibatch):
                idx = order[start: start + cfg.minibatch]
                mb = [batch[i] for i in idx]
                terms = self._terms(mb, message_kl=cfg.kl_coef > 0)
                a = adv[torch.as_tensor(idx, device=adv.device)]
                policy_loss, approx_kl, clip_frac = policy_loss_of(terms, a, cfg.estimator, cfg.clip)
                loss = policy_loss
                entropies = [t.entropy for t in terms if t.entropy is not None]
                if entropies and cfg.entropy_coef > 0:
                    loss = loss - cfg.entropy_coef * torch.stack(entropies).mean()
                kls = [t.kl for t in terms if t.kl is not None]
                if kls and cfg.kl_coef > 0:
                    loss = loss + cfg.kl_coef * torch.stack(kls).mean()
                value_loss = ((self.values(mb) - ret[torch.as_tensor(idx, device=ret.device)]) ** 2).mean()
                for opt in self.policy_opts.values():
                    opt.zero_grad()
                self.critic_opt.zero_grad()
                (loss + value_loss).backward()  # separate parameters: the value head reads detached states
                for name, opt in self.policy_opts.items():
                    nn.utils.clip_grad_norm_(self.lm.parameters(name), cfg.max_grad_norm)
                    opt.step()  # an adapter with no decision in the minibatch has no gradient: unchanged
                self.critic_opt.step()
                with torch.no_grad():
                    sums["policy_loss"] += float(policy_loss)
                    sums["value_loss"] += float(value_loss)
                    sums["approx_kl"] += approx_kl
                    sums["clip_frac"] += clip_frac
                steps += 1
        self.lm.forget_prefixes()  # kept keys/values belong to the old weights
        out = {k: v / steps for k, v in sums.items()}
        # entropy and KL to the base model of the policy that collected the batch
        chosen = [d for d in batch if not d.is_message]
        if chosen:
            out["entropy"] = float(np.mean([-(d.probs * np.log(np.clip(d.probs, 1e-12, None))).sum() for d in chosen]))
        with_base = [d for d in batch if d.base_probs is not None]
        if with_base:
            out["kl"] = float(np.mean([(d.probs * (np.log(np.clip(d.probs, 1e-12, None))
                                                   - np.log(np.clip(d.base_probs, 1e-12, None)))).sum() for d in with_base]))
        return out

    def _terms(self, decisions: list[Decision], message_kl: bool) -> list[Any]:
        """`decision_terms`, each decision scored with its agent's adapter."""
        by_adapter: dict[str, list[int]] = {}
        for i, d in enumerate(decisions):
            by_adapter.setdefault(self.lm.adapter_for(d.agent), []).append(i)
        out: list[Any] = [None] * len(decisions)
        for name, idx in by_adapter.items():
            with self.lm.using(name):
                for i, t in zip(idx, decision_terms(self.lm, [decisions[i] for i in idx], message_kl=message_kl)):
                    out[i] = t
        return out

    def state_dict(self) -> dict[str, Any]:
        """Critic, optimisers and the minibatch generator (JSON text: plain values only)."""
        import json

        return {"critic": self.critic.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "policy_opts": {name: opt.state_dict() for name, opt in self.policy_opts.items()},
                "minibatch_rng": json.dumps(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict` (a checkpoint of this learner's shape)."""
        import json

        if set(state["policy_opts"]) != set(self.policy_opts):
            raise ValueError(f"adapters {sorted(state['policy_opts'])}, this run has {sorted(self.policy_opts)}")
        self.critic.load_state_dict(state["critic"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        for name, opt in self.policy_opts.items():
            opt.load_state_dict(state["policy_opts"][name])
        self.rng.bit_generator.state = json.loads(state["minibatch_rng"])
