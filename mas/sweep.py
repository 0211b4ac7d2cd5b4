"""Seed sweeps: one scenario played under many master seeds as the copies of one engine.

    result = sweep(load_scenario("scenarios/prisoners_dilemma.yaml"), range(10_000))
    result.returns[i]      # each agent's return in episode 0 under seed result.seeds[i]

Copy `i` gets exactly what `mas run --seed S` gives episode 0 alone (`mas.runner.play_episode`):
the policies' master seed S (`reset(seeds=...)`), episode id 0, and its own generator of the
game's chances seeded by (S, "episode", 0) (`reset(rngs=...)`, `mas.copy_chance`). Scripted
policies without messages decide for all copies at once (`mas.policy_batch`); a copy that
ends is masked out while the others play on. So every seed's totals equal a one-seed run's
(tests/test_sweep.py), at the speed of the batch. `play_copies` is the loop tournaments
share (`mas.tournament.batch`): each match is a copy with the match's seed.

Only totals are kept (returns, cooperation, illegal actions, lengths; per-round actions on
request): memory is a few numbers per copy and agent, not the episode's records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mas.episode import EpisodeEngine
from mas.errors import MasError
from mas.records import DecisionRecord
from mas.scenario import Scenario
from mas.seeding import child_seed

#: the most seeds of one sweep (one engine copy each)
MAX_SWEEP = 1_000_000


@dataclass(frozen=True)
class CopyTotals:
    """What episode 0 of every copy produced, by copy and seat.

    Attributes:
        returns, cooperation, illegal: [B, N] total reward, mean cooperation (NaN where the
            game defines none), illegal actions tried.
        rounds, steps, terminated, truncated: [B] how each episode went.
        actions: [rounds, B, N] per-round actions (padded after a copy ends), or None.
        messages: per copy, every message of its episode.
        decisions: per copy, the decision records of its policies that keep them (LLM
            agents), as `mas.runner.play_episode` records them; empty unless asked for.
    """

    returns: np.ndarray
    cooperation: np.ndarray
    illegal: np.ndarray
    rounds: np.ndarray
    steps: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    actions: np.ndarray | None
    messages: list[list]
    decisions: list[list[DecisionRecord]] = field(default_factory=list)


def play_copies(engine: EpisodeEngine, seeds: Sequence[int], keep_actions: bool = False,
                keep_decisions: bool = False) -> CopyTotals:
    """Play episode 0 of every copy of `engine`, copy `i` seeded as a one-copy run with
    master seed `seeds[i]` would be, and return the totals (with every copy's decision
    records when `keep_decisions`)."""
    b, n = engine.batch_size, engine.n_agents
    seeds = [int(s) for s in seeds]
    engine.reset(np.random.default_rng(0), episodes=[0] * b, seeds=seeds,
                 rngs=lambda copy: np.random.default_rng(child_seed(seeds[copy], "episode", 0)))
    small = np.int16 if engine.info.num_actions < 2**15 else np.int64
    actions: list[np.ndarray] = []
    returns = np.zeros((b, n))
    coop_sum = np.zeros((b, n))
    coop_count = np.zeros((b, n), dtype=np.int64)
    illegal = np.zeros((b, n), dtype=np.int64)
    terminated = np.zeros(b, dtype=bool)
    truncated = np.zeros(b, dtype=bool)
    messages: list[list] = [[] for _ in range(b)]
    decisions: list[list[DecisionRecord]] = [[] for _ in range(b)] if keep_decisions else []
    while engine.active.any():
        t = engine.step()
        if any(t.messages):
            for copy, said in enumerate(t.messages):
                messages[copy].extend(said)
        if keep_decisions:
            for copy, decided in enumerate(t.decisions):
                decisions[copy].extend(DecisionRecord.of(0, int(t.steps[copy]), int(t.rounds[copy]), agent, t.talking, d.record)
                                       for agent, d in decided.items() if d.record)
        if t.talking:
            continue
        active = t.active[:, None]
        if keep_actions:
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
    with np.errstate(invalid="ignore", divide="ignore"):
        cooperation = np.where(coop_count > 0, coop_sum / np.maximum(coop_count, 1), np.nan)
    played = (np.stack(actions) if actions else np.zeros((0, b, n), dtype=small)) if keep_actions else None
    return CopyTotals(returns, cooperation, illegal, engine.rounds.copy(), engine.steps.copy(), terminated, truncated,
                      played, messages, decisions)


@dataclass(frozen=True)
class SweepResult:
    """Episode 0 of `scenario` under each of `seeds` (`totals` by copy, in seed order)."""

    seeds: list[int]
    agent_ids: list[str]
    totals: CopyTotals

    @property
    def returns(self) -> np.ndarray:
        return self.totals.returns

    def agent_returns(self, agent: str) -> np.ndarray:
        """[seeds] the return of `agent` under each seed."""
        return self.totals.returns[:, self.agent_ids.index(agent)]


def sweep(scenario: Scenario, seeds: Iterable[int]) -> SweepResult:
    """Play episode 0 of `scenario` under every seed of `seeds` as one engine batch."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise MasError("sweep: no seeds given")
    if len(seeds) > MAX_SWEEP:
        raise MasError(f"sweep: at most {MAX_SWEEP} seeds, got {len(seeds)}")
    engine = EpisodeEngine(scenario, len(seeds), batch_policies=True)
    return SweepResult(seeds, list(engine.agent_ids), play_copies(engine, seeds))
