"""Playing many matches at once: each match one copy of a single engine, rounds in lockstep.

A match played alone (`MatchPlayer.play`) is one episode of a batch-of-one engine with the
match's seed. Here every match of a chunk is a copy of one engine whose copies hold
different rosters (`copy_agents`), and each copy gets exactly what its match would get
alone: its policy seed (`reset(seeds=...)`), its episode id 0, and its own generator for
the game's chances and continuation draws (`reset(rngs=...)`, `mas.copy_chance`). Scripted
entrants decide for all copies at once (`batch_policies`); a copy that ends (a game over,
a continuation draw) is masked out while the others play on (`mas.sweep.play_copies`, the
loop seed sweeps share). So every match's per-round actions and scores equal the
one-at-a-time path's (tests/test_tournament_batch.py).

Entrants whose policy class declares `tournament_copies` play this way (`batchable`):
scripted strategies (thousands of matches a batch) and LLM policies (32: every round, one
packed model call for all the matches in flight, `LLMPolicy.act_many`; their decision
records are kept per match). A tournament with an entrant that does not (a trained
checkpoint, built per copy at a cost) plays match by match.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mas import registry
from mas.agents.scripted.base import ScriptedPolicy
from mas.episode import EpisodeEngine
from mas.scenario import AgentConfig
from mas.sweep import play_copies

if TYPE_CHECKING:
    from mas.tournament.play import MatchBatch, MatchPlayer
    from mas.tournament.schedule import Schedule
    from mas.tournament.spec import Tournament

#: the most matches played as copies of one engine when every entrant is scripted (their
#: `tournament_copies`; see `mas.agents.scripted.base.ScriptedPolicy`)
MAX_COPIES = ScriptedPolicy.tournament_copies
#: the most per-round actions a batch keeps (copies x rounds x seats, 2 bytes each): long
#: matches play in smaller batches (200 rounds of 2 seats: 20,971 copies, 88 MB of a
#: worker's memory, 16,384 took 75 MB; 10,000 rounds: 419). 36,300 classic matches then go
#: out in one slice a worker on 1 or 2 workers, not 3 or 4 (2 workers: 3% faster)
MAX_ACTION_CELLS = 1 << 23


def max_copies(tournament: "Tournament") -> int:
    """The most matches of `tournament` played as one batch: the least `tournament_copies`
    of its entrants' policies (scripted `MAX_COPIES`, LLM entrants 32), fewer for long
    matches (`MAX_ACTION_CELLS`); 0 when an entrant plays one match at a time."""
    most = min(registry.policy_class(e.policy.type).tournament_copies for e in tournament.spec.entrants)
    return max(1, min(most, MAX_ACTION_CELLS // (tournament.max_rounds * tournament.group_size))) if most else 0


def fixed_batches(tournament: "Tournament") -> bool:
    """Whether an entrant's decisions depend on the matches batched with it
    (`Policy.batch_invariant`): then the matches play in fixed blocks of the schedule
    (`max_copies` consecutive matches), whoever plays them and whatever is left to play."""
    return not all(registry.policy_class(e.policy.type).batch_invariant for e in tournament.spec.entrants)


def batchable(tournament: "Tournament") -> bool:
    """Whether every entrant's policy plays many matches at once (scripted strategies, LLM
    policies; `Policy.tournament_copies`)."""
    return max_copies(tournament) > 0


def play_batch(player: "MatchPlayer", matches: "Schedule") -> "MatchBatch":
    """Play `matches` as the copies of one engine; results in the order of `matches`."""
    from mas.tournament.play import MatchBatch

    tournament = player.tournament
    b = len(matches)
    seatings = matches.seats.tolist()
    first = tournament.match_scenario(tuple(seatings[0]))
    made: dict[tuple[int, int], AgentConfig] = {}  # (seat, entrant) -> its agent, shared by the copies
    for seat, entrant in enumerate(seatings[0]):
        made[(seat, entrant)] = first.agents[seat]

    def agent(seat: int, entrant: int) -> AgentConfig:
        if (seat, entrant) not in made:
            made[(seat, entrant)] = tournament.match_scenario((entrant,) * tournament.group_size).agents[seat]
        return made[(seat, entrant)]

    rosters = [[agent(seat, entrant) for seat, entrant in enumerate(seats)] for seats in seatings]
    engine = EpisodeEngine(first, b, copy_agents=rosters, batch_policies=True)
    keeps_records = not all(issubclass(registry.policy_class(e.policy.type), ScriptedPolicy) for e in tournament.spec.entrants)
    totals = play_copies(engine, matches.seed.tolist(), keep_actions=True, keep_decisions=keeps_records)
    assert totals.actions is not None
    messages = tuple(tuple(said) for said in totals.messages)
    return MatchBatch(
        match=matches.index.copy(), repetition=matches.repetition.copy(), seed=matches.seed.copy(),
        rounds=totals.rounds.astype(np.int64), steps=totals.steps.astype(np.int64),
        terminated=totals.terminated.astype(bool), truncated=totals.truncated.astype(bool),
        seats=matches.seats.reshape(b, engine.n_agents).copy(),
        scores=totals.returns.astype(np.float64), cooperation=totals.cooperation.astype(np.float64),
        illegal=totals.illegal.astype(np.int64),
        actions=tuple(player.codec.encode_copies(totals.actions, totals.rounds)),
        messages=messages if any(messages) else (),
        decisions=tuple(tuple(d) for d in totals.decisions) if any(totals.decisions) else (),
    )
