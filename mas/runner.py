"""`mas run`: the scenario's policies play episodes on the engine; every episode goes to the store.

The runner does not learn and owns no loop of its own: `mas.episode.EpisodeEngine` plays
the rounds, talk steps and policies (one `act` call per policy group per step, so an LLM
policy answers a whole step at once). The runner derives every seed from the master seed,
turns each step into typed records (`mas.records`) and hands each finished episode to the
store in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import numpy as np

from mas.episode import EpisodeEngine
from mas.transition import Transition
from mas.errors import StoreError
from mas.records import DecisionRecord, EpisodeRecord, StateRecord, StepRecord, add_usage
from mas.rundir import LOCK_NAME, first_difference, locked
from mas.scenario import Scenario
from mas.seeding import child_seed
from mas.store import DB_NAME, RunStore, remove_database


@dataclass(frozen=True)
class StepEvent:
    """One engine step of a played episode, as `on_step` callbacks get it (live feeds).

    Attributes:
        episode: the episode's index.
        transition: the engine's step (a batch of one: index copy 0); its `messages` and
            `decisions` are what the agents said and how they decided.
        records: the step's typed records, one per agent in seat order (action, its name,
            reward); empty in a talk step.
    """

    episode: int
    transition: Transition
    records: tuple[StepRecord, ...]

    @property
    def talking(self) -> bool:
        return self.transition.talking

    @property
    def round(self) -> int:
        return int(self.transition.rounds[0])

    @property
    def step(self) -> int:
        return int(self.transition.steps[0])


StepCallback = Callable[[StepEvent], None]


def play_episode(engine: EpisodeEngine, episode: int, seed: int, on_step: StepCallback | None = None) -> EpisodeRecord:
    """Play one episode of a batch-of-one engine whose seats are all scenario policies.

    The game's chances come from a generator seeded by (`seed`, "episode", `episode`), the
    policies' from (`seed`, "policy", agent, `episode`): an episode depends on nothing else.
    `on_step` is called after every engine step, talk steps included, in order.
    """
    if engine.batch_size != 1 or engine.external:
        raise ValueError("play_episode needs a batch of one with every seat played by its scenario policy")
    episode_seed = child_seed(seed, "episode", episode)
    engine.seed = seed
    engine.reset(np.random.default_rng(episode_seed), episodes=[episode])
    ids = engine.agent_ids
    steps: list[StepRecord] = []
    states: list[StateRecord] = []
    messages = []
    decisions: list[DecisionRecord] = []
    usage: dict = {}
    returns = np.zeros(engine.n_agents)
    coop_sum = np.zeros(engine.n_agents)
    coop_count = np.zeros(engine.n_agents, dtype=np.int64)
    last: Transition | None = None
    while engine.active[0]:
        last = engine.step()
        step, game_round = int(last.steps[0]), int(last.rounds[0])
        messages.extend(last.messages[0])
        for agent, decision in last.decisions[0].items():
            if decision.record:
                decisions.append(DecisionRecord.of(episode, step, game_round, agent, last.talking, decision.record))
                usage = add_usage(usage, agent, decision.record, last.talking)
        if last.talking:
            if on_step is not None:
                on_step(StepEvent(episode, last, ()))
            continue
        first = len(steps)
        coop = last.cooperation[0] if last.cooperation is not None else np.full(engine.n_agents, np.nan)
        for seat, agent in enumerate(ids):
            action = int(last.actions[0, seat])
            value = float(coop[seat])
            applies = value == value  # NaN: not applicable this step
            if applies:
                coop_sum[seat] += value
                coop_count[seat] += 1
            reward = float(last.rewards[0, seat])
            returns[seat] += reward
            judged = float(last.model_rewards[0, seat]) if last.model_rewards is not None else None
            steps.append(StepRecord(episode, step, game_round, agent, action, engine.info.action_names[seat][action],
                                    bool(last.illegal[0, seat]), reward, value if applies else None, judged))
        if last.summaries is not None:
            states.append(StateRecord(episode, step, game_round, last.summaries[0]))
        if on_step is not None:
            on_step(StepEvent(episode, last, tuple(steps[first:])))
    from mas.agents.llm.world_model import episode_predictions  # light: pydantic and numpy

    return EpisodeRecord(
        episode=episode, seed=episode_seed, rounds=int(engine.rounds[0]), steps=int(engine.steps[0]),
        terminated=bool(last is not None and last.terminated[0]), truncated=bool(last is not None and last.truncated[0]),
        returns={a: float(returns[i]) for i, a in enumerate(ids)},
        cooperation={a: (float(coop_sum[i] / coop_count[i]) if coop_count[i] else None) for i, a in enumerate(ids)},
        step_records=tuple(steps), state_records=tuple(states), messages=tuple(messages),
        decisions=tuple(decisions), usage=usage,
        predictions=tuple(episode_predictions(engine.info, ids, decisions, steps, states)),
    )


def run(
    scenario: Scenario,
    episodes: int,
    seed: int,
    out_dir: Path | None = None,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    resume: bool = False,
    on_step: StepCallback | None = None,
) -> list[EpisodeRecord]:
    """Play `episodes` episodes, writing each to the run store in `out_dir` (if given).

    Args:
        scenario: the validated scenario.
        episodes: number of episodes.
        seed: master seed; it fixes every episode, policy and game draw.
        out_dir: run directory to create; None keeps results in memory only.
        on_episode: called after each episode is stored, or found stored when resuming
            (progress bars).
        on_step: called after every engine step of the episodes played now (a
            `StepEvent`: the transition and its records), in order; live feeds.
        resume: finish the run stored in `out_dir`, playing only the episodes it lacks
            (each episode's seeds depend only on `seed` and its index, so the store ends
            equal to an uninterrupted run's). The scenario, seed and episode count must be
            the stored ones (`stored_run` reads them).

    Returns:
        The totals of every episode in order, stored ones included.

    The run directory is locked while in use (`mas.rundir`). A fresh run that fails
    before any episode is stored removes its empty store, so the same `out_dir` can be used again.
    """
    engine = EpisodeEngine(scenario, seed=seed, record_summaries=True)
    fresh_dir = out_dir is not None and not Path(out_dir).exists()
    with nullcontext() if out_dir is None else locked(Path(out_dir), create=not resume):
        try:
            store, done = _open_store(scenario, episodes, seed, out_dir, resume)
        except BaseException:
            if fresh_dir:  # the store could not even be made: leave no directory behind
                _remove_empty_run(Path(out_dir), fresh_dir)
            raise
        results: list[EpisodeRecord] = []
        try:
            stored = _stored_totals(store, done, scenario.agent_ids) if store is not None else {}
            for episode in range(episodes):
                record = stored[episode] if episode in done else play_episode(engine, episode, seed, on_step)
                if store is not None and episode not in done:
                    store.write_episode(record)
                # keep only the totals in memory; the store has the details
                results.append(record.totals_only())
                if on_episode is not None:
                    on_episode(record)
        except BaseException:
            if store is not None and not resume and not results:  # nothing stored: leave no empty run behind
                store.close()
                _remove_empty_run(Path(out_dir), fresh_dir)
            raise
        finally:
            if store is not None:
                store.close()
    return results


def _open_store(scenario: Scenario, episodes: int, seed: int, out_dir: Path | None, resume: bool) -> tuple[RunStore | None, set[int]]:
    """The store to write (None without `out_dir`) and the episodes it holds already."""
    if out_dir is None:
        return None, set()
    if not resume:
        agents = [(a.id, a.policy.model_dump(mode="json"), a.persona) for a in scenario.agents]
        return RunStore.create(Path(out_dir), scenario.to_dict(), seed, agents, episodes), set()
    store, done = RunStore.open_for_resume(Path(out_dir))
    try:
        _check_resumable(store.meta(), scenario, episodes, seed, Path(out_dir))
    except BaseException:
        store.close()
        raise
    return store, done


def stored_run(run_dir: Path) -> tuple[Scenario, int, int]:
    """The scenario, seed and episode count of the run stored in `run_dir` (for resuming)."""
    from mas.scenario import parse_scenario

    with RunStore.open(Path(run_dir)) as store:
        meta = store.meta()
    scenario = parse_scenario(meta["scenario"], source=f"{run_dir} (stored scenario)")
    return scenario, int(meta["seed"]), int(meta.get("episodes", scenario.episodes))


def _check_resumable(meta: dict[str, Any], scenario: Scenario, episodes: int, seed: int, out_dir: Path) -> None:
    """One-line errors when a resumed run would differ from the stored one."""
    if str(seed) != meta["seed"]:
        raise StoreError(f"{out_dir}: was started with seed {meta['seed']}, not {seed}; resume without --seed")
    if "episodes" in meta and str(episodes) != meta["episodes"]:
        raise StoreError(f"{out_dir}: was started with {meta['episodes']} episodes, not {episodes}; resume without --episodes")
    if scenario.to_dict() != meta["scenario"]:
        field = first_difference(scenario.to_dict(), meta["scenario"])
        raise StoreError(
            f"{out_dir}: holds a different scenario ({field} differs); resume with the same scenario file, "
            "or start a new run with --out"
        )


def _stored_totals(store: RunStore, episodes: set[int], agents: Sequence[str]) -> dict[int, EpisodeRecord]:
    """The totals of stored episodes, as `run` returns them for played ones."""
    totals = {}
    for episode in sorted(episodes):
        (row,) = store.query("SELECT seed, rounds, steps, terminated, truncated FROM episodes WHERE episode = ?", (episode,))
        returns = {agent: (value, coop) for agent, value, coop in store.query("SELECT agent, return, cooperation FROM returns WHERE episode = ?", (episode,))}
        usage: dict = {}
        for agent, talking, decision in store.query("SELECT agent, talking, record FROM decisions WHERE episode = ? ORDER BY step", (episode,)):
            usage = add_usage(usage, agent, json.loads(decision), bool(talking))
        totals[episode] = EpisodeRecord(
            episode, row[0], row[1], row[2], bool(row[3]), bool(row[4]),
            returns={agent: returns[agent][0] for agent in agents},
            cooperation={agent: returns[agent][1] for agent in agents}, usage=usage,
        )
    return totals


def _remove_empty_run(out_dir: Path, fresh_dir: bool) -> None:
    """Delete the store of a run that stored nothing, and its directory if this run made it."""
    remove_database(out_dir / DB_NAME)
    if fresh_dir:
        (out_dir / LOCK_NAME).unlink(missing_ok=True)
        try:
            out_dir.rmdir()
        except OSError:  # something else was put there meanwhile: keep it
            pass
