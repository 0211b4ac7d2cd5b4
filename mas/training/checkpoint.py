"""Checkpoints of training runs: a small dict of plain values and tensors, written atomically.

Loading uses `torch.load(weights_only=True)`, which refuses arbitrary pickled objects, so
a checkpoint file cannot run code. Contents (format version 1):

    format: "mas-checkpoint", version: 1
    algorithm: "iql" | "mappo"; config: the algorithm's hyperparameters (plain values)
    scenario: the training scenario (JSON text); learners: trained agent ids in order
    obs_dim, state_dim, num_actions, game_kind: what the networks were built for
    seed, env_steps: for resuming; learner: the learner's state dict (tensors, numbers)

LLM learners write their own checkpoints (`mas.training.llm_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import json
import os
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
        # the learners' message channel (vocabulary and inbox encoding), None when they do not talk
        "channel": env.channel.to_dict() if getattr(env, "channel", None) is not None else None,
        "seed": int(seed),
        "env_steps": int(learner.env_steps),
        "learner": learner.state_dict(),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomically(data, path)


def save_atomically(data: dict[str, Any], path: Path) -> None:
    """`torch.save` to a temporary file, then rename: a crash or a full disk leaves the
    previous checkpoint whole. A refused write removes the partial file and names `path`."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(data, tmp)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        cause = exc if isinstance(exc, OSError) else exc.__cause__ or exc.__context__
        if isinstance(cause, OSError):  # torch wraps some write failures in a RuntimeError
            raise OSError(cause.errno, cause.strerror, str(path)) from exc
        raise
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
    _check_fields(data, path)
    return data


#: the fields after the marker, version and algorithm, with their types and least values
_FIELDS: dict[str, tuple[type, int | None]] = {
    "config": (dict, None), "scenario": (str, None), "learners": (list, None), "obs_dim": (int, 1), "state_dim": (int, 0),
    "num_actions": (int, 1), "game_kind": (str, None), "seed": (int, 0), "env_steps": (int, 0), "learner": (dict, None),
}


def _check_fields(data: dict[str, Any], path: Path) -> None:
    """Every field present with its type; the hyperparameters valid as in a scenario file."""
    for key, (kind, least) in _FIELDS.items():
        if key not in data:
            raise CheckpointError(f"{path}: damaged checkpoint: no '{key}' field")
        value = data[key]
        if not isinstance(value, kind) or isinstance(value, bool) or (least is not None and value < least):
            shown = repr(value)[:40] if isinstance(value, (int, float, str)) else type(value).__name__
            expected = f"an integer >= {least}" if least is not None else f"a {kind.__name__}"
            raise CheckpointError(f"{path}: damaged checkpoint: '{key}' should be {expected}, found {shown}")
    if not data["learners"] or not all(isinstance(name, str) for name in data["learners"]):
        raise CheckpointError(f"{path}: damaged checkpoint: 'learners' should be a non-empty list of agent ids")
    from mas.agents.rl.config import IQLSpec, MAPPOSpec

    spec = {"iql": IQLSpec, "mappo": MAPPOSpec}[data["algorithm"]]
    try:  # the scenario's rules: types, ranges, known names
        data["config"] = dataclasses.asdict(spec(type=data["algorithm"]).to_config(**data["config"]))
    except MasError as exc:
        raise CheckpointError(f"{path}: damaged checkpoint: config: {exc}") from None


def build_learner(data: dict[str, Any], device: torch.device, seed: int = 0, total_steps: int = 0, where: str = "checkpoint") -> Any:
    """The learner a checkpoint holds, with its trained state loaded; `where` names the
    checkpoint in errors."""
    config = registry.make_config(registry.get(data["algorithm"]), dict(data["config"]))
    shape = SimpleNamespace(
        n_learners=len(data["learners"]), obs_dim=data["obs_dim"], state_dim=data["state_dim"], num_actions=data["num_actions"]
    )
    learner = make_learner(data["algorithm"], config, shape, device, seed, total_steps)
    load_learner_state(learner, data["learner"], where)
    return learner


def load_learner_state(learner: Any, state: dict[str, Any], where: str) -> None:
    """Load a checkpoint's learner state; a state that does not fit the learner (missing
    keys, other shapes) is a one-line `CheckpointError`."""
    try:
        learner.load_state_dict(state)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        reason = " ".join(str(exc).split())[:200] or exc.__class__.__name__  # torch's messages span lines
        if isinstance(exc, KeyError):
            reason = f"no {reason}"
        raise CheckpointError(f"{where}: damaged checkpoint: the {learner.algorithm} state does not fit its networks or tables ({reason})") from None


def make_learner(algorithm: str, config: Any, env: Any, device: torch.device, seed: int, total_steps: int) -> Any:
    """A fresh learner of `algorithm` (a registered numeric learner) for an env's shapes."""
    return registry.learner_factory(registry.get(algorithm))(config, env, device, seed, total_steps)
