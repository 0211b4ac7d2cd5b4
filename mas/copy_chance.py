"""Per-copy randomness for a batch whose copies must each play as a batch of one would.

A tournament match played alone gets its own generator for the game's chances and the
continuation draws. Played as one copy of a batch it must see the same numbers, but a
game draws for the whole batch from one generator. `CopyChance` keeps the per-copy
generators and:

- steps (and resets) the whole batch at once with a *probe* generator; if the probe's
  state did not move, the game drew nothing, so the result is a function of its inputs
  alone and equals what each copy would get on its own; if it moved, the batch result is
  thrown away and every copy still playing is stepped on its own with its own generator
  (and so on for the rest of the episode: the game is known to draw);
- draws the continuation numbers one per playing copy from that copy's generator, after
  its game step, as the batch of one does.

So games without chance (the matrix games, public goods, commons, bargaining) keep the
batched speed, and games with chance stay exact at a per-copy cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mas.games.base import Game, State, StepResult


class CopyChance:
    """The per-copy generators of one batch (see the module docstring): a sequence, or a
    function of the copy that makes its generator when the copy first needs it (seeding
    thousands of generators that a game without chance never uses is not free)."""

    def __init__(self, game: Game, rngs: Sequence[np.random.Generator] | Callable[[int], np.random.Generator],
                 batch_size: int) -> None:
        self.game = game
        self._make = rngs if callable(rngs) else None
        self._rngs: list[np.random.Generator | None] = [None] * batch_size if callable(rngs) else list(rngs)
        if len(self._rngs) != batch_size:
            raise ValueError(f"rngs: need {batch_size} generators, got {len(self._rngs)}")
        self.draws_seen = False  # the game was seen to draw: step copy by copy from now on
        self._probe = np.random.default_rng(0)

    def _untouched(self) -> bool:
        return self._probe.bit_generator.state == self._before

    def _arm(self) -> np.random.Generator:
        self._before = self._probe.bit_generator.state
        return self._probe

    def rng(self, copy: int) -> np.random.Generator:
        """Copy `copy`'s generator."""
        gen = self._rngs[copy]
        if gen is None:
            assert self._make is not None
            gen = self._rngs[copy] = self._make(copy)
        return gen

    def reset(self, batch_size: int) -> State:
        if not self.draws_seen:
            state = self.game.reset(batch_size, self._arm())
            if self._untouched():
                return state
            self.draws_seen = True
        parts = [self.game.reset(1, self.rng(c)) for c in range(batch_size)]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def step(self, state: State, actions: np.ndarray, active: np.ndarray) -> StepResult:
        if not self.draws_seen:
            result = self.game.step(state, actions, self._arm())
            if self._untouched():
                return result
            self.draws_seen = True
        # copies no longer playing keep their state (the engine masks them out anyway)
        new_state = {key: np.array(value, copy=True) for key, value in state.items()}
        rewards = np.zeros(actions.shape, dtype=np.float32)
        terminated = np.zeros(len(actions), dtype=bool)
        for copy in np.flatnonzero(active).tolist():
            one = self.game.step({k: v[copy : copy + 1] for k, v in state.items()}, actions[copy : copy + 1], self.rng(copy))
            for key, value in one.state.items():
                new_state[key][copy] = value[0]
            rewards[copy] = one.rewards[0]
            terminated[copy] = bool(one.terminated[0])
        return StepResult(new_state, rewards, terminated)

    def draws(self, active: np.ndarray) -> np.ndarray:
        """[B] one uniform per playing copy from its own generator (0 for the others)."""
        out = np.zeros(len(active))
        for copy in np.flatnonzero(active).tolist():
            out[copy] = self.rng(copy).random()
        return out
