"""LLM-guided exploration in the stag hunt: the share of seeds where two independent
tabular Q-learners reach the payoff-dominant equilibrium (Stag, Stag), with uniform
epsilon-exploration, with exploration drawn from a prior favouring Stag, and with a prior
read from a stored run (`situational_run`) as a marginal or per situation.

Run: python experiments/stag_hunt_prior.py [SEEDS] [STEPS]
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

from mas.episode import EpisodeEngine
from mas.records import DecisionRecord
from mas.runner import play_episode
from mas.scenario import parse_scenario
from mas.store import RunStore
from mas.training.run import train

ROUNDS = 10
GAME = {
    "kind": "normal_form", "actions": ["Stag", "Hare"], "cooperate": "Stag", "defect": "Hare",
    "payoffs": {"Stag,Stag": [4, 4], "Stag,Hare": [0, 3], "Hare,Stag": [3, 0], "Hare,Hare": [3, 3]},
}


def reaches_stag(seed: int, steps: int, prior: dict | None, out: Path, fields: dict | None = None) -> bool:
    """Whether both greedy learners hunt stag every round after training (`fields`: more
    policy settings, e.g. a `prior_run`)."""
    policy = {"type": "iql", "gamma": 0.5, **({"prior": prior} if prior else {}), **(fields or {})}
    data = {"name": "stag_hunt_prior", "game": GAME, "rounds": ROUNDS,
            "agents": [{"id": "a", "policy": policy}, {"id": "b", "policy": policy}]}
    result = train(parse_scenario(data), "iql", steps, seed, out / f"{seed}-{bool(prior)}", device="cpu",
                   final_episodes=0, tensorboard=False, eval_every=steps)
    return result.final_eval["eval_cooperation/a"] == 1.0 and result.final_eval["eval_cooperation/b"] == 1.0


def share(seeds: int, steps: int, prior: dict | None, fields: dict | None = None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return sum(reaches_stag(s, steps, prior, Path(tmp), fields) for s in range(seeds)) / seeds


def situational_run(out: Path, game: dict = GAME, episodes: int = 20, rounds: int = ROUNDS, generosity: float = 0.2,
                    seed: int = 0, comms: dict | None = None, partner: dict | None = None) -> Path:
    """A stored run standing in for an LLM agent whose choice depends on the situation.

    Agent `llm` plays generous tit for tat (cooperate first and after the partner
    cooperated; after a defection cooperate with probability `generosity`) against a
    partner who cooperates half the time, played and stored as `mas run` does; each of its
    action decisions stores that mixed strategy as its `distribution`, as an LLM agent in
    score mode stores its own. Its marginal is about 0.5 + 0.5 * generosity cooperation.
    `comms` and `partner` (a policy) replace the scenario's defaults.
    """
    data = {"name": "situational_llm", "game": game, "rounds": rounds,
            "agents": [{"id": "llm", "policy": {"type": "generous_tit_for_tat", "generosity": generosity}},
                       {"id": "partner", "policy": partner or {"type": "random", "p": 0.5}}]}
    if comms is not None:
        data["comms"] = comms
    scenario = parse_scenario(data)
    cooperate, defect = game["cooperate"], game["defect"]
    engine = EpisodeEngine(scenario, seed=seed, record_summaries=True)
    agents = [(a.id, a.policy.model_dump(mode="json"), a.persona) for a in scenario.agents]
    with RunStore.create(out, scenario.to_dict(), seed, agents, episodes) as store:
        for episode in range(episodes):
            record = play_episode(engine, episode, seed)
            decisions, partner_cooperated = [], True
            for step in record.step_records:  # seat order: llm, then partner
                if step.agent == "llm":
                    p = 1.0 if partner_cooperated else generosity
                    decisions.append(DecisionRecord(episode, step.step, step.round, "llm", False, None,
                                                    {"distribution": {cooperate: p, defect: 1.0 - p}}))
                else:
                    partner_cooperated = step.action_name == cooperate
            store.write_episode(dataclasses.replace(record, decisions=tuple(decisions)))
    return out


if __name__ == "__main__":
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 4_000
    print(f"uniform exploration: {share(seeds, steps, None):.2f} of {seeds} seeds reach (Stag, Stag)")
    for p in (0.6, 0.9):
        print(f"prior Stag {p}:      {share(seeds, steps, {'Stag': p, 'Hare': round(1 - p, 2)}):.2f} of {seeds} seeds reach (Stag, Stag)")
    with tempfile.TemporaryDirectory() as tmp:
        run = situational_run(Path(tmp) / "llm")
        for mode in ("marginal", "situation"):
            fields = {"prior_run": str(run), "prior_agent": "llm", "prior_mode": mode}
            print(f"stored run, {mode}: {share(seeds, steps, None, fields):.2f} of {seeds} seeds reach (Stag, Stag)")
