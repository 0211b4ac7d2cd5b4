"""Playing many matches at once: each match one copy of a single engine, rounds in lockstep.

A match played alone (`MatchPlayer.play`) is one episode of a batch-of-one engine with the
match's seed. Here every match of a chunk is a copy of one engine whose copies hold
different rosters (`copy_agents`), and each copy gets exactly what its match would get
alone: its policy seed (`reset(seeds=...)`), its episode id 0, and its own generator for
the game's chances and continuation draws (`reset(rngs=...)`, `mas.copy_chance`). Scripted
entrants decide for all copies at once (`batch_policies`); a copy that ends (a game over,
a continuation draw) is masked out while the others play on. So every match's per-round
actions and scores equal the one-at-a-time path's (tests/test_tournament_batch.py).

Only tournaments whose entrants are all scripted are played this way (`batchable`):
LLM and learned policies hold models and keep decision records, and play match by match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mas import registry
from mas.agents.scripted.base import ScriptedPolicy
from mas.episode import EpisodeEngine
from mas.scenario import AgentConfig
from mas.seeding import child_seed

if TYPE_CHECKING:
    from mas.tournament.play import MatchPlayer, MatchResult
    from mas.tournament.schedule import Match
    from mas.tournament.spec import Tournament

#: the most matches played as copies of one engine (memory: rounds x copies x seats actions)
MAX_COPIES = 4096


def batchable(tournament: "Tournament") -> bool:
    """Whether every entrant is a scripted strategy (no model, no decision records)."""
    return all(issubclass(registry.policy_class(e.policy.type), ScriptedPolicy) for e in tournament.spec.entrants)


def play_batch(player: "MatchPlayer", matches: Sequence["Match"]) -> list["MatchResult"]:
    """Play `matches` as the copies of one engine; results in the order of `matches`."""
    from mas.tournament.play import MatchResult

    tournament = player.tournament
    b = len(matches)
    first = tournament.match_scenario(matches[0].seats)
    made: dict[tuple[int, int], AgentConfig] = {}  # (seat, entrant) -> its agent, shared by the copies
    for seat, entrant in enumerate(matches[0].seats):
        made[(seat, entrant)] = first.agents[seat]

    def agent(seat: int, entrant: int) -> AgentConfig:
        if (seat, entrant) not in made:
            made[(seat, entrant)] = tournament.match_scenario((entrant,) * tournament.group_size).agents[seat]
        return made[(seat, entrant)]

    rosters = [[agent(seat, entrant) for seat, entrant in enumerate(m.seats)] for m in matches]
    engine = EpisodeEngine(first, b, copy_agents=rosters, batch_policies=True)
    engine.reset(np.random.default_rng(0), episodes=[0] * b, seeds=[m.seed for m in matches],
                 rngs=lambda copy: np.random.default_rng(child_seed(matches[copy].seed, "episode", 0)))
    n = engine.n_agents
    small = np.int16 if engine.info.num_actions < 2**15 else np.int64
    actions: list[np.ndarray] = []
    returns = np.zeros((b, n))
    coop_sum = np.zeros((b, n))
    coop_count = np.zeros((b, n), dtype=np.int64)
    illegal = np.zeros((b, n), dtype=np.int64)
    terminated = np.zeros(b, dtype=bool)
    truncated = np.zeros(b, dtype=bool)
    messages: list[list] = [[] for _ in range(b)]
    while engine.active.any():
        t = engine.step()
        if any(t.messages):
            for copy, said in enumerate(t.messages):
                messages[copy].extend(said)
        if t.talking:
            continue
        active = t.active[:, None]
        actions.append(t.actions.astype(small))
        returns += t.rewards  # finished copies get 0: the sums are those of their own steps
        illegal += t.illegal & active
        if t.cooperation is not None:
            coop = np.asarray(t.cooperation, dtype=np.float64)
            applies = active & (coop == coop)
            coop_sum += np.where(applies, coop, 0.0)
            coop_count += applies
        terminated |= t.terminated
        truncated |= t.truncated
    played = np.stack(actions) if actions else np.zeros((0, b, n), dtype=small)
    out = []
    for copy, match in enumerate(matches):
        rounds = int(engine.rounds[copy])
        counts = coop_count[copy]
        out.append(MatchResult(
            match=match.index, repetition=match.repetition, seats=match.seats, seed=match.seed,
            rounds=rounds, steps=int(engine.steps[copy]), terminated=bool(terminated[copy]), truncated=bool(truncated[copy]),
            scores=tuple(returns[copy].tolist()),
            cooperation=tuple(float(s / c) if c else None for s, c in zip(coop_sum[copy].tolist(), counts.tolist())),
            illegal=tuple(illegal[copy].tolist()),
            actions=tuple(player.codec.encode_array(played[:rounds, copy, seat]) for seat in range(n)),
            messages=tuple(messages[copy]),
        ))
    return out
