"""The single interaction loop: policies act in the env, every step becomes a record.

The runner does not learn. It groups the agents by policy (one `act` call per group per
step, so an LLM policy answers a whole step at once), derives every seed from the master
seed, and hands each finished episode to the store in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mas import registry
from mas.agents.base import AgentSetup, Policy
from mas.env import MasParallelEnv
from mas.errors import StoreError
from mas.rundir import LOCK_NAME, first_difference, locked
from mas.scenario import Scenario
from mas.seeding import child_seed
from mas.store import DB_NAME, EpisodeRecord, RunStore, remove_database


@dataclass
class PolicyGroup:
    """One policy instance and the agents it decides for."""

    key: str
    policy: Policy
    agents: list[str]


def build_policies(scenario: Scenario, env: MasParallelEnv) -> list[PolicyGroup]:
    """One policy instance per distinct policy spec; agents with equal specs share it."""
    groups: dict[str, PolicyGroup] = {}
    setups: dict[str, list[AgentSetup]] = {}
    specs = {}
    for seat, agent in enumerate(scenario.agents):
        key = agent.policy.model_dump_json()
        setups.setdefault(key, []).append(AgentSetup(agent=agent.id, seat=seat, persona=agent.persona))
        specs[key] = agent.policy
    for key, members in setups.items():
        spec = specs[key]
        cls = registry.policy_class(spec.type)
        policy = cls(spec, env.game, members, scenario.agent_ids)
        groups[key] = PolicyGroup(key=key, policy=policy, agents=[m.agent for m in members])
    return list(groups.values())


def play_episode(env: MasParallelEnv, groups: Sequence[PolicyGroup], episode: int, seed: int) -> EpisodeRecord:
    """Play one episode with the given seed and return its full record."""
    env.reset(seed=child_seed(seed, "episode", episode), options={"episode": episode})
    for group in groups:
        # keyed by the group's first agent so adding agents elsewhere shifts no seed
        group.policy.reset(child_seed(seed, "policy", group.agents[0], episode))
    needs_text = any(g.policy.needs_text for g in groups)
    record = EpisodeRecord(episode=episode, seed=child_seed(seed, "episode", episode))
    returns = dict.fromkeys(env.possible_agents, 0.0)
    coop_sum = dict.fromkeys(env.possible_agents, 0.0)
    coop_count = dict.fromkeys(env.possible_agents, 0)
    terminated = truncated = False
    while env.agents:
        views = env.views(text=needs_text)
        decisions = {}
        for group in groups:
            for agent, decision in zip(group.agents, group.policy.act([views[a] for a in group.agents])):
                decisions[agent] = decision
        talking, step, game_round = env.talking, env.steps, env.round
        actions = {a: {"action": d.action, "message": d.message} for a, d in decisions.items()}
        cooperation = None if talking else env.cooperation({a: d.action for a, d in decisions.items()})
        log_start = len(env.message_log)
        _, rewards, terms, truncs, infos = env.step(actions)
        for message in env.message_log[log_start:]:
            record.message_rows.append(
                (episode, message.step, message.round, message.sender, message.recipient, message.text,
                 int(message.delivered), message.reason)
            )
        for agent, decision in decisions.items():
            if decision.record:
                record.decision_rows.append((episode, step, game_round, agent, int(talking), json.dumps(decision.record)))
                _add_usage(record.usage, agent, decision.record, talking)
        if talking:
            continue
        executed = env.last_actions or {}
        for agent in env.possible_agents:
            action = executed[agent]
            coop = None if cooperation is None else cooperation[agent]
            if coop is not None and coop == coop:  # NaN: not applicable this step
                coop_sum[agent] += coop
                coop_count[agent] += 1
            else:
                coop = None
            returns[agent] += rewards[agent]
            record.step_rows.append(
                (episode, step, game_round, agent, action, env.action_name(agent, action),
                 int(infos[agent]["illegal_action"]), rewards[agent], coop)
            )
        record.state_rows.append((episode, step, game_round, json.dumps(env.summary())))
        terminated = any(terms.values())
        truncated = any(truncs.values())
    record.rounds = env.round
    record.steps = env.steps
    record.terminated, record.truncated = terminated, truncated
    record.returns = returns
    record.cooperation = {a: (coop_sum[a] / coop_count[a] if coop_count[a] else None) for a in env.possible_agents}
    return record


def run(
    scenario: Scenario,
    episodes: int,
    seed: int,
    out_dir: Path | None = None,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    resume: bool = False,
) -> list[EpisodeRecord]:
    """Play `episodes` episodes, writing each to the run store in `out_dir` (if given).

    Args:
        scenario: the validated scenario.
        episodes: number of episodes.
        seed: master seed; it fixes every episode, policy and game draw.
        out_dir: run directory to create; None keeps results in memory only.
        on_episode: called after each episode is stored, or found stored when resuming
            (progress bars).
        resume: finish the run stored in `out_dir`, playing only the episodes it lacks
            (each episode's seeds depend only on `seed` and its index, so the store ends
            equal to an uninterrupted run's). The scenario, seed and episode count must be
            the stored ones (`stored_run` reads them).

    Returns:
        The totals of every episode in order, stored ones included.

    The run directory is locked while in use (`mas.rundir`). A fresh run that fails
    before any episode is stored removes its empty store, so the same `out_dir` can be used again.
    """
    env = MasParallelEnv(scenario)
    groups = build_policies(scenario, env)
    fresh_dir = out_dir is not None and not Path(out_dir).exists()
    with nullcontext() if out_dir is None else locked(Path(out_dir), create=not resume):
        store, done = _open_store(scenario, episodes, seed, out_dir, resume)
        results: list[EpisodeRecord] = []
        try:
            stored = _stored_totals(store, done, scenario.agent_ids) if store is not None else {}
            for episode in range(episodes):
                record = stored[episode] if episode in done else play_episode(env, groups, episode, seed)
                if store is not None and episode not in done:
                    store.write_episode(record)
                # keep only the totals in memory; the store has the details
                results.append(_totals_only(record))
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
        record = EpisodeRecord(episode, row[0], row[1], row[2], bool(row[3]), bool(row[4]))
        returns = {agent: (value, coop) for agent, value, coop in store.query("SELECT agent, return, cooperation FROM returns WHERE episode = ?", (episode,))}
        record.returns = {agent: returns[agent][0] for agent in agents}
        record.cooperation = {agent: returns[agent][1] for agent in agents}
        for agent, talking, decision in store.query("SELECT agent, talking, record FROM decisions WHERE episode = ? ORDER BY step", (episode,)):
            _add_usage(record.usage, agent, json.loads(decision), bool(talking))
        totals[episode] = record
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


def _totals_only(record: EpisodeRecord) -> EpisodeRecord:
    return EpisodeRecord(
        episode=record.episode, seed=record.seed, rounds=record.rounds, steps=record.steps,
        terminated=record.terminated, truncated=record.truncated,
        returns=dict(record.returns), cooperation=dict(record.cooperation), usage=record.usage,
    )


def _add_usage(usage: dict[str, dict[str, int]], agent: str, decision_record: Any, talking: bool) -> None:
    """Add one decision record's cost and reliability to the agent's episode totals
    (records without "tokens" are not model decisions and are skipped)."""
    tokens = decision_record.get("tokens")
    if not isinstance(tokens, dict):
        return
    totals = usage.setdefault(agent, {"tokens": 0, "decisions": 0, "outputs": 0, "invalid": 0, "fallbacks": 0})
    totals["tokens"] += int(tokens.get("prompt", 0)) + int(tokens.get("completion", 0))
    totals["outputs"] += int(decision_record.get("outputs", 0))
    totals["invalid"] += int(decision_record.get("invalid", 0))
    if not talking:
        totals["decisions"] += 1
        totals["fallbacks"] += int(decision_record.get("status") == "fallback")
