"""`mas run`: the scenario's policies play episodes on the engine; every episode goes to the store.

The runner does not learn and owns no loop of its own: `mas.episode.EpisodeEngine` plays
the rounds, talk steps and policies (one `act` call per policy group per step, so an LLM
policy answers a whole step at once). The runner derives every seed from the master seed,
turns each step into typed records (`mas.records`) and hands each finished episode to the
store in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mas.episode import EpisodeEngine, Transition
from mas.records import DecisionRecord, DecisionStatus, EpisodeRecord, StateRecord, StepRecord, add_usage
from mas.scenario import Scenario
from mas.seeding import child_seed
from mas.store import RunStore


def play_episode(engine: EpisodeEngine, episode: int, seed: int) -> EpisodeRecord:
    """Play one episode of a batch-of-one engine whose seats are all scenario policies.

    The game's chances come from a generator seeded by (`seed`, "episode", `episode`), the
    policies' from (`seed`, "policy", agent, `episode`): an episode depends on nothing else.
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
                decisions.append(DecisionRecord(episode, step, game_round, agent, last.talking,
                                                DecisionStatus.of(decision.record), decision.record))
                usage = add_usage(usage, agent, decision.record, last.talking)
        if last.talking:
            continue
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
            steps.append(StepRecord(episode, step, game_round, agent, action, engine.info.action_names[seat][action],
                                    bool(last.illegal[0, seat]), reward, value if applies else None))
        if last.summaries is not None:
            states.append(StateRecord(episode, step, game_round, last.summaries[0]))
    return EpisodeRecord(
        episode=episode, seed=episode_seed, rounds=int(engine.rounds[0]), steps=int(engine.steps[0]),
        terminated=bool(last is not None and last.terminated[0]), truncated=bool(last is not None and last.truncated[0]),
        returns={a: float(returns[i]) for i, a in enumerate(ids)},
        cooperation={a: (float(coop_sum[i] / coop_count[i]) if coop_count[i] else None) for i, a in enumerate(ids)},
        step_records=tuple(steps), state_records=tuple(states), messages=tuple(messages),
        decisions=tuple(decisions), usage=usage,
    )


def run(
    scenario: Scenario,
    episodes: int,
    seed: int,
    out_dir: Path | None = None,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
) -> list[EpisodeRecord]:
    """Play `episodes` episodes, writing each to the run store in `out_dir` (if given).

    Args:
        scenario: the validated scenario.
        episodes: number of episodes.
        seed: master seed; it fixes every episode, policy and game draw.
        out_dir: run directory to create; None keeps results in memory only.
        on_episode: called after each episode is stored (progress bars).
    """
    engine = EpisodeEngine(scenario, seed=seed, record_summaries=True)
    store = None
    if out_dir is not None:
        agents = [(a.id, a.policy.model_dump(mode="json"), a.persona) for a in scenario.agents]
        store = RunStore.create(Path(out_dir), scenario.to_dict(), seed, agents)
    results: list[EpisodeRecord] = []
    try:
        for episode in range(episodes):
            record = play_episode(engine, episode, seed)
            if store is not None:
                store.write_episode(record)
            # keep only the totals in memory; the store has the details
            results.append(record.totals_only())
            if on_episode is not None:
                on_episode(record)
    finally:
        if store is not None:
            store.close()
    return results
