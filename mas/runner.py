"""The single interaction loop: policies act in the env, every step becomes a record.

The runner does not learn. It groups the agents by policy (one `act` call per group per
step, so an LLM policy answers a whole step at once), derives every seed from the master
seed, and hands each finished episode to the store in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mas import registry
from mas.agents.base import AgentSetup, Policy
from mas.env import MasParallelEnv
from mas.scenario import Scenario
from mas.seeding import child_seed
from mas.store import EpisodeRecord, RunStore


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
        policy = cls(spec, env.game.info(), members, scenario.agent_ids)
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
) -> list[EpisodeRecord]:
    """Play `episodes` episodes, writing each to the run store in `out_dir` (if given).

    Args:
        scenario: the validated scenario.
        episodes: number of episodes.
        seed: master seed; it fixes every episode, policy and game draw.
        out_dir: run directory to create; None keeps results in memory only.
        on_episode: called after each episode is stored (progress bars).
    """
    env = MasParallelEnv(scenario)
    groups = build_policies(scenario, env)
    store = None
    if out_dir is not None:
        agents = [(a.id, a.policy.model_dump(mode="json"), a.persona) for a in scenario.agents]
        store = RunStore.create(Path(out_dir), scenario.to_dict(), seed, agents)
    results: list[EpisodeRecord] = []
    try:
        for episode in range(episodes):
            record = play_episode(env, groups, episode, seed)
            if store is not None:
                store.write_episode(record)
            # keep only the totals in memory; the store has the details
            results.append(_totals_only(record))
            if on_episode is not None:
                on_episode(record)
    finally:
        if store is not None:
            store.close()
    return results


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
