"""The engine's batched policies: one `BatchRule` per policy spec across all copies.

`EpisodeEngine(batch_policies=True)` hands every policy group whose class offers a
batched form (`Policy.batch_rule`) to a `PolicyBatcher` instead of building one instance
per copy. The batcher merges the groups of equal spec over all copies into one rule whose
rows are (copy, seat) pairs; a group of one copy is one random stream of the rule, seeded
exactly as the per-copy instance would be. Each step it asks every rule for the rows of
the copies still playing and writes their actions into the joint action array. Batched
policies render no messages and keep no decision records (so they are used only for specs
without a message: tournaments, sweeps), and the copies may play different rosters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mas import registry
from mas.agents.batch import BatchRule, BatchState, BatchView
from mas.seeding import child_seed, child_seed_columns, key

if TYPE_CHECKING:
    from mas.episode import EpisodeEngine


#: from this many streams starting to draw at once, their seeds are hashed together in
#: numpy (a fixed cost of about 60 us); fewer one by one (about 10 us each)
HASHED_TOGETHER = 8
#: from this many streams reset at once (a batch starting), their seeds are hashed at the
#: reset, drawn from or not (a 16,384-match tournament batch: 4% faster than on first draw);
#: fewer (copies ending one by one under auto-reset) on their first draw, so the streams of
#: strategies that never draw cost nothing (256 copies against tit for tat: 1.0M env
#: steps/s this way, 0.63M hashing every reset)
HASHED_AT_RESET = 256


class PolicyBatcher:
    """Collects batchable groups while the engine builds its copies, then decides for them.

    Groups whose specs differ only in their policy's `batch_params` (a generosity, a
    probability) join one rule, each row with its own values: a tournament of parameter
    variants costs one rule per strategy a round, not one per variant."""

    def __init__(self) -> None:
        # rule key -> (first spec, [(copy, seats, first agent, spec)])
        self._pending: dict[str, tuple[Any, list[tuple[int, list[int], str, Any]]]] = {}
        self._rule_keys: dict[str, str | None] = {}  # spec key -> its rule's key (None: not batchable)
        # (rule, rows' copies, rows' seats, (streams' copies, their first agents' seed keys, seeds))
        self.rules: list[tuple[BatchRule, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]] = []

    def take(self, engine: "EpisodeEngine", copy: int, spec: Any, seats: list[int], key: str | None = None) -> bool:
        """Claim the group of `seats` playing `spec` in `copy` if its policy has a batched form
        (`key`: the spec's `engine.spec_key`, when the caller has it)."""
        key = engine.spec_key(spec) if key is None else key
        if key not in self._rule_keys:
            cls = registry.policy_class(spec.type)
            probe = cls.batch_rule(spec, engine.info, engine.agent_ids, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
            self._rule_keys[key] = None if probe is None else \
                (spec.model_dump_json(exclude=set(cls.batch_params)) if cls.batch_params else key)
        rule_key = self._rule_keys[key]
        if rule_key is None:
            return False
        pending = self._pending.get(rule_key)
        if pending is None:
            pending = self._pending[rule_key] = (spec, [])
        pending[1].append((copy, seats, engine.agent_ids[seats[0]], spec))
        return True

    def build(self, engine: "EpisodeEngine") -> None:
        """Make one rule per rule key over every claimed group."""
        for spec, groups in self._pending.values():
            cls = registry.policy_class(spec.type)
            copies = np.array([c for c, seats, _, _ in groups for _ in seats], dtype=np.int64)
            seats = np.array([s for _, group, _, _ in groups for s in group], dtype=np.int64)
            streams = np.array([i for i, (_, group, _, _) in enumerate(groups) for _ in group], dtype=np.int64)
            params = {name: np.array([getattr(own, name) for _, group, _, own in groups for _ in group])
                      for name in cls.batch_params}
            rule = cls.batch_rule(spec, engine.info, engine.agent_ids, seats, streams, params)
            assert rule is not None
            # each stream's copy and its first agent (as the seed hash reads its id)
            owners = np.array([c for c, _, _, _ in groups], dtype=np.int64)
            keys = {first: key(first) for first in engine.agent_ids}
            firsts = np.array([keys[first] for _, _, first, _ in groups], dtype=np.int64)
            self.rules.append((rule, copies, seats, (owners, firsts, np.full(len(groups), -1, dtype=np.int64))))
        self._pending.clear()

    def reset(self, engine: "EpisodeEngine", copies: np.ndarray) -> None:
        """Reseed the streams of `copies` from each copy's seed and episode id: stream `i`
        of copy `c` gets `child_seed(copy seed, "policy", first agent, episode)`, as the
        copy's own policy instance would. A rule asks when streams first draw (never, for a
        strategy that draws nothing), for all that start drawing in a step at once: hashed
        together when there are many, one by one when few."""
        def hashed(owners: np.ndarray, firsts: np.ndarray, streams: np.ndarray) -> np.ndarray:
            at = owners[streams]
            if len(streams) >= HASHED_TOGETHER:
                return child_seed_columns(engine.copy_seeds[at], ["policy", firsts[streams], engine.episodes[at]])
            return np.array([child_seed(int(engine.copy_seeds[c]), "policy", int(f), int(engine.episodes[c]))
                             for c, f in zip(at.tolist(), firsts[streams].tolist())], dtype=np.int64)

        restarted = np.zeros(engine.batch_size, dtype=bool)
        restarted[np.asarray(copies, dtype=np.int64)] = True
        for rule, _, _, (owners, firsts, known) in self.rules:  # known: each stream's seed, -1 until hashed
            chosen = np.flatnonzero(restarted[owners])
            known[chosen] = hashed(owners, firsts, chosen) if len(chosen) >= HASHED_AT_RESET else -1

            def seeds(streams: np.ndarray, owners: np.ndarray = owners, firsts: np.ndarray = firsts,
                      known: np.ndarray = known) -> np.ndarray:
                missing = streams[known[streams] < 0]
                if len(missing):
                    known[missing] = hashed(owners, firsts, missing)
                return known[streams]

            rule.reset(chosen, seeds)

    def act(self, engine: "EpisodeEngine", joint: np.ndarray) -> None:
        """Fill the batched seats of the active copies into `joint` [B, N] (in place)."""
        everyone = bool(engine.active.all())
        game = engine.game

        def summary(copy: int, seat: int) -> dict[str, Any]:
            return game.visible(game.summary(engine.state, copy), seat)

        state = BatchState(engine.rounds, engine.played, engine.last_actions, engine.mask, engine.talking,
                           engine.all_legal, summary)
        for rule, copies, seats, _ in self.rules:
            if everyone:
                rows, at, where = rule.index(len(copies)), copies, seats
            else:
                rows = np.flatnonzero(engine.active[copies])
                if not len(rows):
                    continue
                at, where = copies[rows], seats[rows]
            joint[at, where] = rule.act(BatchView(rows, at, where, state))
