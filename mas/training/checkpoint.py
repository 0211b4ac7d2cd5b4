"""Checkpoints of training runs: a small dict of plain values and tensors, written atomically.

Loading uses `torch.load(weights_only=True)`, which refuses arbitrary pickled objects, so
a checkpoint file cannot run code. Contents (format version 1):

    format: "mas-checkpoint", version: 1
    algorithm: "iql" | "mappo"; config: the algorithm's hyperparameters (plain values)
    scenario: the training scenario (JSON text); learners: trained agent ids in order
    obs_dim, state_dim, num_actions, game_kind: what the networks were built for
    seed, env_steps: for resuming; learner: the learner's state dict (tensors, numbers)

LLM learners (`save_llm_checkpoint`) write a peft adapter directory (what `backend.adapter`
loads for play) and a torch file with the critic, the optimisers and the run's identity.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from mas.errors import MasError
from mas.training import registry

FORMAT = "mas-checkpoint"
VERSION = 1


class CheckpointError(MasError):
    """A checkpoint file is missing, unreadable, or does not fit the game it should play."""


def save_checkpoint(path: Path, learner: Any, env: Any, scenario: Any, seed: int) -> None:
    """Write the learner and what it was trained on; a crash mid-write leaves the old file."""
    data = {
        "format": FORMAT,
        "version": VERSION,
        "algorithm": learner.algorithm,
        "config": dataclasses.asdict(learner.config),
        "scenario": json.dumps(scenario.to_dict()),
        "learners": list(env.learners),
        "obs_dim": int(env.obs_dim),
        "state_dim": int(env.state_dim),
        "num_actions": int(env.num_actions),
        "game_kind": str(getattr(env.game, "kind", "")),
        "seed": int(seed),
        "env_steps": int(learner.env_steps),
        "learner": learner.state_dict(),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint; every problem is a one-line `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or damaged files
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc.__class__.__name__
        raise CheckpointError(f"{path}: not a readable mas checkpoint ({reason})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a mas checkpoint (no '{FORMAT}' marker)")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {data.get('version')}, this mas reads version {VERSION}")
    known = registry.checkpoint_algorithms()
    if data.get("algorithm") not in known:
        raise CheckpointError(f"{path}: unknown algorithm {data.get('algorithm')!r}; known: {sorted(known)}")
    return data


def build_learner(data: dict[str, Any], device: torch.device, seed: int = 0, total_steps: int = 0) -> Any:
    """The learner a checkpoint holds, with its trained state loaded."""
    config = registry.make_config(registry.get(data["algorithm"]), dict(data["config"]))
    shape = SimpleNamespace(
        n_learners=len(data["learners"]), obs_dim=data["obs_dim"], state_dim=data["state_dim"], num_actions=data["num_actions"]
    )
    learner = make_learner(data["algorithm"], config, shape, device, seed, total_steps)
    learner.load_state_dict(data["learner"])
    return learner


def make_learner(algorithm: str, config: Any, env: Any, device: torch.device, seed: int, total_steps: int) -> Any:
    """A fresh learner of `algorithm` (a registered numeric learner) for an env's shapes."""
    return registry.learner_factory(registry.get(algorithm))(config, env, device, seed, total_steps)


def save_llm_checkpoint(lm: Any, learner: Any, adapter_dir: Path, path: Path, algo: str, names: Sequence[str],
                        env_steps: int, seed: int) -> None:
    """The adapters (peft directory) and everything else an LLM training run holds (torch file)."""
    lm.save(adapter_dir)
    data = {"algorithm": algo, "learners": list(names), "env_steps": env_steps, "seed": seed,
            "config": dataclasses.asdict(learner.config), "adapter": str(adapter_dir.resolve()), **learner.state_dict()}
    tmp = path.with_suffix(".tmp")
    torch.save(data, tmp)
    tmp.replace(path)
