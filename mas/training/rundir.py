"""A training run directory: what every `mas train` run writes besides its curves.

- `train.json`: the resolved run (algorithm, learners, seed, steps, device, every
  hyperparameter, the scenario);
- `play.yaml`: the scenario with each learner replaced by its trained policy (a checkpoint
  policy, or the LLM spec with the trained adapters), so `mas run <dir>/play.yaml` plays
  the trained agents;
- `eval/run.sqlite`: final evaluation episodes played by the normal runner through the
  trained policies (a run store like any other, transcripts included).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mas.scenario import Scenario, parse_scenario
from mas.seeding import child_seed


@dataclass
class TrainResult:
    """What a finished training run produced."""

    out_dir: Path
    checkpoint: Path
    curves: Path
    play_scenario: Path
    env_steps: int
    learners: list[str]
    final_eval: dict[str, float] = field(default_factory=dict)
    tensorboard: bool = False
    eval_run: Path | None = None


def write_resolved(out_dir: Path, algo: str, learners: Sequence[str], seed: int, steps: int, device: Any,
                   config: Any, scenario: Scenario, resumed_from: Path | None = None) -> None:
    """`train.json`: everything needed to know what this run was (created with `out_dir`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = {"algorithm": algo, "learners": list(learners), "seed": seed, "steps": steps, "device": str(device),
                "resumed_from": str(resumed_from) if resumed_from else None, "config": dataclasses.asdict(config),
                "scenario": scenario.to_dict()}
    (out_dir / "train.json").write_text(json.dumps(resolved, indent=2), encoding="utf-8")


def play_final_episodes(play: Scenario, episodes: int, seed: int, out_dir: Path) -> Path | None:
    """Play the trained agents' scenario into <out_dir>/eval (a run store), if asked to."""
    if episodes <= 0:
        return None
    from mas.runner import run

    run(play, episodes, child_seed(seed, "final"), out_dir=out_dir / "eval")
    return out_dir / "eval"


def write_play_scenario(scenario: Scenario, learners: Sequence[str], checkpoint: Path, path: Path) -> Scenario:
    """The scenario with each learner playing its checkpoint; written to `path` as YAML."""
    where = str(Path(checkpoint).resolve())
    return _write_play(scenario, learners, path, lambda agent: {"type": "checkpoint", "path": where, "agent": agent["id"]})


def write_llm_play_scenario(scenario: Scenario, learners: Sequence[str], adapter_dir: Path | Mapping[str, Path],
                            path: Path) -> Scenario:
    """The scenario with each learner's LLM backend loading the trained adapter (one shared
    directory, or a directory per agent id); as YAML. A learner that trained from an adapter
    (`backend.adapter`, e.g. 'tuned') keeps it, with the new one merged after it."""
    where = {a: str(Path(adapter_dir if isinstance(adapter_dir, (str, Path)) else adapter_dir[a]).resolve()) for a in learners}

    def stacked(agent: dict) -> dict:
        backend = agent["policy"]["backend"]
        before = backend.get("adapter") or ()
        adapters = [*([before] if isinstance(before, str) else before), where[agent["id"]]]
        return {**agent["policy"], "backend": {**backend, "adapter": adapters[0] if len(adapters) == 1 else adapters}}

    return _write_play(scenario, learners, path, stacked)


def _write_play(scenario: Scenario, learners: Sequence[str], path: Path, policy: Callable[[dict], dict]) -> Scenario:
    data = scenario.to_dict()
    for agent in data["agents"]:
        if agent["id"] in learners:
            agent["policy"] = policy(agent)
    data["name"] = f"{scenario.name}-trained"[:64]
    play = parse_scenario(json.loads(json.dumps(data)), source=str(path))
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return play
