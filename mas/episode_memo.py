"""The episode engine's memoised steps of B copies (`EpisodeEngine.memoise_steps`).

Part of `mas.episode.EpisodeEngine` (a base class only to keep that module short): while a
training batch allows it, `EpisodeEngine.step` steps every copy by state ids and the dense
tables of `mas.batch_memo.BatchMemo` instead of the game, with the same transitions; the
copies' states are made only when read (`LazyState`). Any step it cannot take (an illegal
action, a new step once the memo is full) goes back to the engine's general step.

`step_one` is the same idea for a batch of one played from outside (the PettingZoo env):
a joint action seen before in a state is a dict lookup (`mas.state_memo.StateMemo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mas.batch_memo import BatchMemo, LazyState, memoisable
from mas.scenario import ContinuationRounds
from mas.transition import Transition

_MIN, _OR = np.minimum.reduce, np.logical_or.reduce  # no wrapper: small arrays


class MemoisedSteps:
    """The memoised steps of `EpisodeEngine` (which holds every attribute used here)."""

    def step_one(self, actions: Sequence[int]) -> tuple[dict[str, float], Sequence[bool], bool, bool, int]:
        """`step` for a batch of one whose seats are all external, without talk (the
        PettingZoo env): one action per seat; returns the rewards by agent id (the
        caller's; with a reward model's component), the illegal flags per seat, terminated, truncated and the rounds played now.

        It is `step`, unless the game's step is memoised (`mas.state_memo`): then a joint
        action seen before in this state is a dict lookup and a few plain-int updates (the
        one-element arrays are written in place: no transition holds them, `step` rebinds
        them; the state itself is made when asked for)."""
        node = self._one
        move = None
        if node is not None:
            joint = tuple(actions)
            move = node.moves.get(joint)
            if move is None:
                move = self._seen.move(node, self.state, joint, self._rng)
        if move is None:
            moved = self.step(np.array([actions], dtype=np.int64))
            illegal = moved.illegal[0].tolist() if moved.illegal is not None else self._no_illegal
            rewards = dict(zip(self.agent_ids, moved.total_rewards[0].tolist()))  # with any judged component
            return rewards, illegal, bool(moved.terminated[0]), bool(moved.truncated[0]), int(self.rounds[0])
        node = self._pending_state = move.node
        self._round = round = self._round + 1
        self._step += 1
        self.rounds[0], self.steps[0] = round, self._step
        self.last_actions, self.last_rewards = move.actions, move.rewards
        self.played[0] = True
        self.mask, self._obs, self._all_legal, self._rows = node.mask, node.obs, node.all_legal, node.rows
        terminated = move.over
        truncated = not terminated and round >= self._limit
        if terminated or truncated:
            self.active[0] = False
            self._one = None
        else:
            self._one = node
        return move.by_agent.copy(), self._no_illegal, terminated, truncated, round

    def memoise_steps(self, on: bool = True) -> bool:
        """From now until asked otherwise (resets included), step by state ids and tables
        (`mas.batch_memo`) where the scenario allows it: the same transitions, states made
        only when read. Allowed for automatic reset, a game whose step is memoisable, no
        talk, no reward model, fixed rounds, one roster, and only reactive batched policies
        (`BatchRule.reactive`) besides the external seats. Returns whether it is on."""
        self._memo_wanted = False
        if not on:
            self._leave_memo()
            return False
        if self._memo is None:
            layout = self._memo_layout()
            if layout is None:
                return False
            self._memo = BatchMemo(self.game, layout)
            self._external_radix = self._memo.radix[self.external_seats]
            self._no_end = np.zeros(self.batch_size, dtype=bool)  # shared by the steps where no game ended
            self._no_end.flags.writeable = False
            self._every_end = np.ones(self.batch_size, dtype=bool)
            self._every_end.flags.writeable = False
            self._no_decisions = tuple(self._nothing)
        self._memo_wanted = True
        if getattr(self, "_state", None) is not None:
            self._enter_memo()
        return self._ids is not None

    def _memo_layout(self) -> list[tuple[Any, np.ndarray]] | None:
        """Each batched rule with its seats in every copy, or None when steps may not be memoised."""
        if not (self.auto_reset and memoisable(self.game) and self.comms_mode == "off" and self.reward_model is None
                and not isinstance(self.scenario.rounds, ContinuationRounds) and not self._per_copy
                and not self.record_summaries and self._one_roster):
            return None
        layout = []
        for rule, copies, seats, _ in (self._batcher.rules if self._batcher is not None else []):
            k = len(seats) // self.batch_size
            if not getattr(rule, "reactive", False) or k * self.batch_size != len(seats):
                return None
            copies, seats = copies.reshape(self.batch_size, k), seats.reshape(self.batch_size, k)
            if (copies != np.arange(self.batch_size)[:, None]).any() or (seats != seats[:1]).any():
                return None
            layout.append((rule, seats[0]))
        return layout

    def _enter_memo(self) -> None:
        if self._memo is None or self._memo.full or self._chance is not None or not self.active.all():
            return
        state = self.state
        ids = self._memo.ids_of(state, self.played, self.last_actions)
        self._offsets = {name: state[name] - self.rounds for name in self._memo.counters}
        # the round every copy is in, while they all are in one (most steps need no comparisons)
        self._same_round = int(self.rounds[0]) if (self.rounds == self.rounds[0]).all() else None
        self._memo_state(ids)

    def _memo_state(self, ids: np.ndarray) -> None:
        """Make the copies' states those of `ids` (counters from the rounds), lazily."""
        memo = self._memo
        self._state, self._pending_state, self._ids = LazyState(memo, ids, self._offsets, self.rounds), None, ids
        self._mask, self._obs, self._rows = None, None, None  # the mask made when read
        self._all_legal = memo.every_legal or bool(memo.all_legal[ids].all())

    def _leave_memo(self) -> None:
        if self._ids is not None:
            self.mask = self.mask  # the mask and the state made now; the game steps them from here
            self.state = dict(self.state)
            self.played = self.played.copy()  # memoised steps share it with `active`
            self.steps = self.steps.copy()  # and the steps with the rounds

    @property
    def state_ids(self) -> np.ndarray | None:
        """[B] each copy's state id while steps are memoised (`memoise_steps`), else None."""
        return self._ids

    @property
    def memo(self) -> BatchMemo | None:
        """The tables of the state ids (`state_ids`)."""
        return self._memo

    def _step_memo(self, actions: Any) -> Transition | None:
        """`step` by the memo's tables; None (nothing changed) where it cannot: an action
        illegal or out of range, or a new step once the memo is full."""
        b, n, memo, ids = self.batch_size, self.n_agents, self._memo, self._ids
        given = np.asarray(actions, dtype=np.int64).reshape(b, -1)
        if given.shape[1] != len(self.external_seats):  # every seat's column given
            if given.shape[1] != n:
                return None
            given = given[:, self.external_seats]
        # in range (negative actions are huge as unsigned) and legal: nothing to replace
        if not (self._all_legal and given.view(np.uint64).max() < self._num_actions):
            return None
        # the joint action's index: the external seats' part, plus the rules' part by id
        flat = given[:, 0] * self._external_radix[0] if len(self.external_seats) == 1 else given @ self._external_radix
        if memo.rules:
            flat = flat + memo.rule_index[ids]
        joint = memo.decode[flat]
        following = memo.next[ids, flat]
        if _MIN(following, axis=None) < 0:
            if memo.full:
                return None
            memo.learn(ids, self._state.counters, joint, flat, self._rng)
            following = memo.next[ids, flat]
        rewards = memo.rewards[ids, flat]
        # every copy is active: automatic reset restarts the finished ones at once
        episodes, rounds, steps, active = self.episodes, self.rounds, self.steps, self.active
        cooperation = self.game.cooperation(self._state, joint) if self.measure_cooperation else None
        self.rounds = self.steps = rounds + 1  # no talk: a copy's steps are its rounds (one array)
        if memo.ever_over:
            self._same_round = None
            terminated = memo.over[ids, flat]
            truncated = ~terminated & (self.rounds >= self._limit)
            done = terminated | truncated
        elif self._same_round is not None:  # every copy in the same round: all end, or none
            self._same_round += 1
            terminated = self._no_end
            truncated = done = self._every_end if self._same_round >= self._limit else self._no_end
        else:  # no step ended the game so far
            terminated, truncated = self._no_end, self.rounds >= self._limit
            done = truncated
        self.last_actions, self.last_rewards = joint, rewards
        self.played = active  # all true; a restart rebinds it (`_restart_memo`)
        self.talk_step = 0
        self._memo_state(following)
        new_state = self._state
        if _OR(done, axis=None):
            self.active = ~done
            self._restart_memo(np.flatnonzero(done))
        return Transition(False, active, episodes, rounds, steps, joint, self._clean, rewards, cooperation,
                          terminated, truncated, self._silence, self._no_decisions, None, new_state)

    def _restart_memo(self, copies: np.ndarray) -> None:
        """`_restart` by ids: no talk, no reward model, no per-copy policies to reset."""
        fresh = self.game.reset(len(copies), self._rng)
        k = len(copies)
        ids = self._ids.copy()
        ids[copies] = self._memo.ids_of(fresh)
        # rebound, not changed in place: the step's transition and final state hold the old ones
        self._offsets = {name: offset.copy() for name, offset in self._offsets.items()}
        for name, offset in self._offsets.items():
            offset[copies] = fresh[name]
        self.rounds, self.episodes, self.played = self.rounds.copy(), self.episodes.copy(), self.played.copy()
        self.rounds[copies] = 0
        self._same_round = 0 if k == self.batch_size else None
        self.steps = self.rounds
        self.played[copies] = False
        self.active[copies] = True
        self.episodes[copies] = np.arange(self._next_episode, self._next_episode + k)
        self._next_episode += k
        # the batched rules are reactive: no memory, no draws, nothing to reset
        self._memo_state(ids)
