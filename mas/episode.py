"""The episode engine: the one interaction loop, over a leading batch of B copies.

Every way of playing a scenario drives this engine and none re-implements it: the
PettingZoo env (a batch of one whose seats are all played from outside), `mas run`
(a batch of one whose seats are all the scenario's policies), tournament matches, the
batched training env (learners' seats from outside, B copies, automatic reset) and LLM
fine-tuning rollouts. The engine does not learn.

What it owns:
- **Rounds and talk.** Each game round is `talk_rounds` talk-only steps (messages count,
  actions are ignored) followed by one action step. Copies move in lockstep: every round
  has the same number of steps, and a copy that restarts does so at a round boundary.
- **Termination.** The game ends a copy (`terminated`), a continuation draw after each
  round ends it (`terminated`), the fixed number of rounds or the continuation cap
  truncates it. Without automatic reset a finished copy stays finished and later steps
  leave it untouched; with it a finished copy starts its next episode at once.
- **The scenario's policies** for every seat not played from outside (`external`):
  grouped by equal spec (one `act` call per group and copy, so an LLM policy answers a
  whole step at once), one set of instances per copy (scripted strategies keep memory
  per agent), reset with a seed derived from the master seed and the episode id.
- **What each agent may see** (`views`): its own observation vector, legal actions, the
  game's `view_summary` for its seat (private parts of other seats left out), its inbox,
  the last round's public actions and rewards, and, when a policy reads text, the rules
  and its situation in words. Policies are built with the game's read-only `GameInfo`.
- **Messages** along the communication graph (`mas.comms.deliver`), every one logged.
- **The reward model** (`scenario.reward_model`, `mas.reward_model`): at each action step
  a judge model scores the round's messages or outcome; the component comes with the
  step (`Transition.model_rewards`), apart from the game's rewards.

Randomness: one numpy Generator per batch draws the game's chances and the continuation
draws; `reset` takes it, so a caller decides how episodes are seeded (`mas run` seeds
every episode from the master seed and the episode id, training seeds one stream). A
batch of independent episodes (tournament matches) may instead give one generator per
copy (`reset(rngs=...)`, `mas.copy_chance`), and one policy seed per copy (`seeds`).

Policies of the same group in different copies decide together: `decide` hands all copies'
instances of a group to the policy class's `act_many` (one call, so an LLM policy packs
every copy's prompts into one model call); the default asks each instance in turn.

A batch of one whose seats are all played from outside, without talk (the PettingZoo env),
may step through `step_one`: the same step in plain Python values, memoised per state and
joint action where the game allows (`mas.state_memo`). A training batch may step by state
ids and tables instead (`memoise_steps`, `mas.batch_memo`): the same steps, inside `step`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from mas import registry
from mas.batch_memo import BatchMemo
from mas.episode_memo import MemoisedSteps
from mas.episode_turns import AgentTurns
from mas.agents.base import AgentSetup, Policy
from mas.comms import Message, build_graph, empty_graph
from mas.copy_chance import CopyChance
from mas.games.base import State, sanitize_actions
from mas.policy_batch import PolicyBatcher
from mas.reward_model import make_reward_model
from mas.scenario import AgentConfig, ContinuationRounds, Scenario
from mas.seeding import child_seed
from mas.state_memo import Node, StateMemo
from mas.transition import Transition


@dataclass
class PolicyGroup:
    """One policy instance and the seats it decides for (in one copy)."""

    policy: Policy
    seats: list[int]
    agents: list[str]


class EpisodeEngine(AgentTurns, MemoisedSteps):
    """B copies of a scenario; see the module docstring.

    Args:
        scenario: the validated scenario.
        batch_size: number of copies B.
        external: agent ids whose actions (and messages) come from the caller; every
            other seat is played by its scenario policy.
        seed: master seed from which policy seeds are derived (with the episode id).
        auto_reset: a finished copy starts a new episode at once (training).
        record_summaries: keep the game's full summary after each action step
            (`Transition.summaries`) for the store.
        measure_cooperation: fill `Transition.cooperation` (the PettingZoo env does not).
        copy_agents: per copy, the agents (same ids in the same order) whose policies play
            that copy (default: the scenario's in every copy): a batch of tournament matches.
        batch_policies: let policies with a batched form decide for all copies at once
            (`mas.policy_batch`; they then send no messages and keep no records).
    """

    def __init__(
        self,
        scenario: Scenario,
        batch_size: int = 1,
        external: Sequence[str] = (),
        *,
        seed: int = 0,
        auto_reset: bool = False,
        record_summaries: bool = False,
        measure_cooperation: bool = True,
        copy_agents: Sequence[Sequence[AgentConfig]] | None = None,
        batch_policies: bool = False,
    ) -> None:
        self.scenario = scenario
        self.agent_ids = list(scenario.agent_ids)
        unknown = [a for a in external if a not in self.agent_ids]
        if unknown:
            raise ValueError(f"external agents {unknown} are not in the scenario; agents: {self.agent_ids}")
        self.n_agents = len(self.agent_ids)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.auto_reset = auto_reset
        self.record_summaries = record_summaries
        self.measure_cooperation = measure_cooperation
        self.game = registry.make_game(scenario.game, self.n_agents)
        self._num_actions = self.game.num_actions
        self.info = self.game.info()
        self.comms_mode = scenario.comms.mode
        self.talk_rounds = scenario.comms.talk_rounds if self.comms_mode != "off" else 0
        self.max_length = scenario.comms.max_length
        # comms off: nobody talks, so no edges (a complete graph of 1000 agents is ~250 MB)
        self.graph = (build_graph(scenario.comms.topology, self.agent_ids) if self.comms_mode != "off"
                      else empty_graph(self.agent_ids))
        self.external = [a for a in self.agent_ids if a in set(external)]
        self._external_set = frozenset(self.external)
        self._seat = {a: s for s, a in enumerate(self.agent_ids)}
        self._silence: tuple[tuple[Message, ...], ...] = ((),) * self.batch_size
        self._nothing: list = [MappingProxyType({})] * self.batch_size  # no decisions, no words (read-only)
        self.external_seats = np.array([self.agent_ids.index(a) for a in self.external], dtype=np.int64)
        self.internal_seats = [s for s in range(self.n_agents) if self.agent_ids[s] not in set(external)]
        self._copy_agents = [list(scenario.agents)] * self.batch_size if copy_agents is None else [list(a) for a in copy_agents]
        if len(self._copy_agents) != self.batch_size or any([a.id for a in c] != self.agent_ids for c in self._copy_agents):
            raise ValueError(f"copy_agents: need {self.batch_size} rosters with the agent ids {self.agent_ids}")
        self._personas = [[a.persona for a in agents] for agents in self._copy_agents]
        self.copy_seeds = np.full(self.batch_size, self.seed, dtype=np.int64)
        self._batcher = PolicyBatcher() if batch_policies else None
        self._spec_keys: dict[int, str] = {}
        self.groups = [self._build_groups(copy) for copy in range(self.batch_size)]
        if self._batcher is not None:
            self._batcher.build(self)
        self._per_copy = any(self.groups)  # some policy decides copy by copy
        self.needs_text = any(g.policy.needs_text for copy in self.groups for g in copy)
        self._rng = np.random.default_rng(0)
        self._chance: CopyChance | None = None
        self._next_episode = 0
        # a batch of one: the states seen (observations, masks) and the moves between them
        self._seen: StateMemo | None = StateMemo(self.game, self.agent_ids) if self.batch_size == 1 else None
        self._all_legal = False
        # `step_one` memoises when every seat is external and nothing else acts or draws per step
        self._memo_ok = (self._seen is not None and self.game.memo_counters is not None and not self._per_copy
                         and self._batcher is None and self.comms_mode == "off" and not auto_reset
                         and len(self.external) == self.n_agents and not isinstance(scenario.rounds, ContinuationRounds)
                         and scenario.reward_model is None)  # a judged reward is not a function of the state
        self._one: Node | None = None  # the current node while `step_one` may memoise the next step
        self._pending_state: Node | None = None  # `state` is this node's, with `_counts`, once asked for
        self._no_illegal = (False,) * self.n_agents
        self._limit = scenario.rounds if not isinstance(scenario.rounds, ContinuationRounds) else 0  # memoised steps only
        self._clean = np.zeros((self.batch_size, self.n_agents), dtype=bool)
        self._clean.flags.writeable = False  # "nothing illegal", shared by every step that needs it
        self.reward_model = make_reward_model(scenario.reward_model, self.agent_ids)
        self._words: list[dict[str, list[str]]] = [{} for _ in range(self.batch_size)]  # said this round
        # `memoise_steps`: every copy's state as an id of `_memo` (None: stepping the game)
        self._one_roster = copy_agents is None
        self._memo: BatchMemo | None = None
        self._memo_wanted = False
        self._ids: np.ndarray | None = None
        self._offsets: dict[str, np.ndarray] = {}  # each counter minus the rounds, per copy

    # ----- policies --------------------------------------------------------------------
    def _build_groups(self, copy: int) -> list[PolicyGroup]:
        """One policy instance per distinct spec among the internal seats (equal specs share);
        none for the groups the batcher takes."""
        agents = self._copy_agents[copy]
        by_spec: dict[str, list[int]] = {}
        for seat in self.internal_seats:
            spec_key = self.spec_key(agents[seat].policy)
            if spec_key in by_spec:
                by_spec[spec_key].append(seat)
            else:
                by_spec[spec_key] = [seat]
        groups = []
        for spec_key, seats in by_spec.items():
            spec = agents[seats[0]].policy
            if self._batcher is not None and self._batcher.take(self, copy, spec, seats, spec_key):
                continue
            setups = [AgentSetup(self.agent_ids[s], s, self._personas[copy][s]) for s in seats]
            policy = registry.policy_class(spec.type)(spec, self.info, setups, self.agent_ids)
            groups.append(PolicyGroup(policy, seats, [self.agent_ids[s] for s in seats]))
        return groups

    def spec_key(self, spec: Any) -> str:
        """The spec as JSON (memoised by object: copies of a batch share spec objects)."""
        key = self._spec_keys.get(id(spec))
        if key is None:
            key = self._spec_keys[id(spec)] = spec.model_dump_json()
        return key

    def _reset_policies(self, copy: int) -> None:
        for group in self.groups[copy]:
            # keyed by the group's first agent so adding agents elsewhere shifts no seed
            group.policy.reset(child_seed(int(self.copy_seeds[copy]), "policy", group.agents[0], int(self.episodes[copy])))

    # ----- episodes --------------------------------------------------------------------
    def reset(self, rng: np.random.Generator, episodes: Sequence[int] | None = None, *,
              seeds: Sequence[int] | None = None,
              rngs: Sequence[np.random.Generator] | Callable[[int], np.random.Generator] | None = None) -> None:
        """Start an episode in every copy.

        Args:
            rng: the generator of the game's chances and continuation draws from now on.
            episodes: the episode id of each copy (default: the next B unused ids).
            seeds: each copy's master seed of its policies (default: the engine's `seed`).
            rngs: one generator per copy instead of `rng` (or a function of the copy that
                makes it when first needed): each copy then plays exactly as a batch of one
                given its generator would (`mas.copy_chance`); no auto reset.
        """
        b, n = self.batch_size, self.n_agents
        self._rng = rng
        self.copy_seeds = np.full(b, self.seed, dtype=np.int64) if seeds is None else np.array(list(seeds), dtype=np.int64)
        self._chance = None if rngs is None else CopyChance(self.game, rngs, b)
        if self._chance is not None and self.auto_reset:
            raise ValueError("rngs: per-copy generators do not go with auto_reset")
        if episodes is None:
            episodes = range(self._next_episode, self._next_episode + b)
        self.episodes = np.array(list(episodes), dtype=np.int64)
        if self.episodes.shape != (b,):
            raise ValueError(f"episodes: need {b} ids, got {len(self.episodes)}")
        self._next_episode = int(self.episodes.max()) + 1
        self.state = self.game.reset(b, rng) if self._chance is None else self._chance.reset(b)
        self.rounds = np.zeros(b, dtype=np.int64)
        self.steps = np.zeros(b, dtype=np.int64)
        self.active = np.ones(b, dtype=bool)
        self.talk_step = 0
        self.inboxes: list[dict[str, tuple[Message, ...]]] = [{a: () for a in self.agent_ids} for _ in range(b)]
        self.played = np.zeros(b, dtype=bool)  # an action step happened in this episode
        self.last_actions = np.zeros((b, n), dtype=np.int64)
        self.last_rewards = np.zeros((b, n), dtype=np.float32)
        self._words = [{} for _ in range(b)]
        self._refresh()
        for copy in range(b):
            self._reset_policies(copy)
        if self._batcher is not None:
            self._batcher.reset(self, np.arange(b))
        if self._memo_wanted:
            self._enter_memo()

    def _refresh(self) -> None:
        # a batch of one (the PettingZoo env, `mas run`) reuses what it saw before in the same
        # state when the game names its states (`Game.observe_key`): arrays read-only, shared
        node = self._seen.node(self.state) if self._seen is not None else None
        self._one = None
        if node is None:
            self.mask = self.game.action_mask(self.state)
            self._obs: np.ndarray | None = None
            # once per state: lets a step skip replacing illegal actions (and batched policies ask it)
            self._all_legal = bool(self.mask.all())
            self._rows: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None
            return
        self.mask, self._obs, self._all_legal, self._rows = node.mask, node.obs, node.all_legal, node.rows
        if self._memo_ok and self.active[0]:  # `step_one` continues from here in plain ints
            self._one = node
            self._round, self._step = int(self.rounds[0]), int(self.steps[0])
            # each counter as its offset from the round: both advance by one per memoised step
            self._counts = [(name, int(self.state[name][0]) - self._round, self.state[name].dtype)
                            for name in self.game.memo_counters]

    @property
    def state(self) -> State:
        """The game state of every copy (numpy arrays with a leading copy axis)."""
        node = self._pending_state
        if node is not None:  # a memoised step happened: its fields and the counters, made now
            self._state = {**node.fixed, **{name: np.array([offset + self._round], dtype=dtype)
                                            for name, offset, dtype in self._counts}}
            self._pending_state = None
        return self._state

    @state.setter
    def state(self, value: State) -> None:
        self._state, self._pending_state = value, None
        self._ids = None  # a state from outside the memo: the game steps it

    @property
    def mask(self) -> np.ndarray:
        """Legal actions of every seat, int8 [B, N, A] (computed once per state)."""
        if self._mask is None:
            self._mask = self._memo.mask[self._ids]
        return self._mask

    @mask.setter
    def mask(self, value: np.ndarray) -> None:
        self._mask = value

    @property
    def talking(self) -> bool:
        """The next step is a talk-only step (the same in every copy)."""
        return self.talk_step < self.talk_rounds

    @property
    def observations(self) -> np.ndarray:
        """Every seat's observation vector, float32 [B, N, obs_dim] (computed once per state)."""
        if self._obs is None:
            self._obs = self.game.observe(self.state) if self._ids is None else self._memo.obs[self._ids]
        return self._obs

    @property
    def all_legal(self) -> bool:
        """Every action of every seat in every copy is legal now (the mask is all ones)."""
        return self._all_legal

    @property
    def seat_rows(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """A batch of one's (observation, action mask) of every seat (views: copy to keep)."""
        rows = self._rows
        if rows is None:
            rows = self._rows = tuple(zip(self.observations[0], self.mask[0]))
        return rows

    # ----- one step ----------------------------------------------------------------------
    def step(self, actions: Any = None, messages: Sequence[Mapping[str, str]] | None = None) -> Transition:
        """Advance every active copy by one step.

        Args:
            actions: int [B, N] (or [B, len(external)]) actions of the external seats;
                other columns are ignored. Missing or out-of-range actions are illegal
                and replaced by the first legal one.
            messages: per copy, what each external agent says ("" or absent: silent).
        """
        if self._ids is not None:
            if actions is not None and (moved := self._step_memo(actions)) is not None:
                return moved
            self._leave_memo()
        b, n = self.batch_size, self.n_agents
        if actions is not None and len(self.external_seats) == n:  # every seat from outside
            joint = np.array(actions, dtype=np.int64).reshape(b, n)
        else:
            joint = np.full((b, n), -1, dtype=np.int64)
            if actions is not None and len(self.external_seats):
                given = np.asarray(actions, dtype=np.int64).reshape(b, -1)
                joint[:, self.external_seats] = given if given.shape[1] == len(self.external_seats) else given[:, self.external_seats]
        decisions = self.decide()
        if self._batcher is not None:
            self._batcher.act(self, joint)
        said = self._said(joint, decisions, messages)
        talking = self.talking
        logs = self._deliver(said)
        if self.reward_model is not None:
            self._remember_words(said)
        # the arrays below are rebound, never changed in place, except the episode ids on restart
        episodes = self.episodes.copy() if self.auto_reset else self.episodes
        rounds, steps, active = self.rounds, self.steps, self.active
        everyone = bool(active[0]) if b == 1 else bool(active.all())
        self.steps = steps + active
        if talking:
            self.talk_step += 1
            zeros = np.zeros(b, dtype=bool)
            return Transition(True, active, episodes, rounds, steps, None, None, np.zeros((b, n), dtype=np.float32),
                              None, zeros, zeros.copy(), logs, tuple(decisions), None, self.state)
        if self._all_legal and (0 <= min(row := joint[0].tolist()) and max(row) < self._num_actions if b == 1
                                else 0 <= joint.min() and joint.max() < self._num_actions):
            legal, illegal = joint, self._clean  # every action legal here and all in range: nothing to replace
        else:
            legal, illegal = sanitize_actions(joint, self.mask)
        cooperation = self.game.cooperation(self.state, legal) if self.measure_cooperation else None
        result = (self.game.step(self.state, legal, self._rng) if self._chance is None
                  else self._chance.step(self.state, legal, active))
        new_state, rewards = result.state, result.rewards
        model_rewards = None
        if self.reward_model is not None:
            model_rewards = self.reward_model.components(self._words, legal, rewards, self.info.action_names, active)
            self._words = [{} for _ in range(b)]
        self.rounds = rounds + active
        terminated, truncated = self._episode_end(result.terminated)
        if everyone:
            self.last_actions, self.last_rewards = legal, rewards
            self.played = active.copy()
        else:  # finished copies keep their final state and take no reward
            new_state = {k: np.where(_expand(active, v), v, self.state[k]) for k, v in new_state.items()}
            terminated &= active
            truncated &= active
            rewards = np.where(active[:, None], rewards, np.float32(0.0)).astype(np.float32)
            self.last_actions = np.where(active[:, None], legal, self.last_actions)
            self.last_rewards = np.where(active[:, None], rewards, self.last_rewards)
            self.played = self.played | active
        self.state = new_state
        self.talk_step = 0
        summaries = None
        if self.record_summaries:
            summaries = tuple(self.game.summary(new_state, i) for i in range(b))
        done = terminated | truncated
        self.active = active & ~done
        self._refresh()
        if self.auto_reset and done.any():
            self._restart(np.flatnonzero(done))
        return Transition(False, active, episodes, rounds, steps, legal, illegal, rewards, cooperation,
                          terminated, truncated, logs, tuple(decisions), summaries, new_state, model_rewards)

    def _episode_end(self, game_over: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rounds = self.scenario.rounds
        if self.batch_size == 1 and not isinstance(rounds, ContinuationRounds):  # a batch of one: no array arithmetic
            over = bool(game_over[0])
            return np.array([over]), np.array([not over and int(self.rounds[0]) >= rounds])
        terminated = np.asarray(game_over, dtype=bool).copy()
        if isinstance(rounds, ContinuationRounds):
            # one draw per copy after each round, also where the game already ended (so the
            # stream of draws does not depend on which copies ended)
            draws = self._rng.random(self.batch_size) if self._chance is None else self._chance.draws(self.active)
            terminated |= draws >= rounds.continuation
            limit = rounds.max
        else:
            limit = rounds
        truncated = ~terminated & (self.rounds >= limit)
        return terminated, truncated

    def _restart(self, copies: np.ndarray) -> None:
        """Start new episodes in the finished `copies` (automatic reset)."""
        fresh = self.game.reset(len(copies), self._rng)
        merged = {}
        for key, value in self.state.items():
            value = np.array(value, copy=True)
            value[copies] = fresh[key]
            merged[key] = value
        self.state = merged
        self.rounds[copies] = 0
        self.steps[copies] = 0
        self.played[copies] = False
        self.active[copies] = True
        for copy in copies:
            self.episodes[copy] = self._next_episode
            self._next_episode += 1
            self.inboxes[copy] = {a: () for a in self.agent_ids}
            self._words[copy] = {}
            self._reset_policies(int(copy))
        if self._batcher is not None:
            self._batcher.reset(self, copies)
        self._refresh()


def _expand(flags: np.ndarray, like: np.ndarray) -> np.ndarray:
    """[B] flags broadcastable against an array whose first axis is B."""
    return flags.reshape((-1,) + (1,) * (like.ndim - 1))
