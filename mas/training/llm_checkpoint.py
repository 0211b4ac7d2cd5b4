"""Checkpoints of LLM training runs (`llm-ppo`, `llm-mappo`) and what `--resume` checks.

A run directory holds the adapters as peft directories (`adapter/`, or `adapters/<agent>/`
with per-agent adapters: what `backend.adapter` loads for play) and `checkpoint.pt`, a torch
file of plain values and tensors (read with `weights_only=True`, so it cannot run code):

    format: "mas-llm-checkpoint", version: 1
    algorithm, learners, seed, env_steps; scenario (JSON text of the scenario as given)
    config (JSON text: every hyperparameter); adapter_weights: every LoRA tensor by name
    learner: critic, optimisers (one per adapter), minibatch generator state
    loop (JSON text): episode counter, next evaluation, eval_every, wall seconds, the
    curve rows so far and the latest evaluation

Everything that decides what happens next is in it (the episodes' seeds come from the master
seed and the episode counter), so a resumed run continues the curve of the run that was
never interrupted: the same rows when the first run stopped after a whole update.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from mas.errors import MasError
from mas.training.checkpoint import save_atomically

FORMAT = "mas-llm-checkpoint"
VERSION = 1


def save_llm_checkpoint(lm: Any, learner: Any, adapter_dir: Path, path: Path, algo: str, names: list[str],
                        scenario: Any, seed: int, env_steps: int, loop: dict[str, Any]) -> None:
    """Write the adapters (peft directories) and `path` (atomically: a crash leaves the old file)."""
    lm.save(adapter_dir)
    data = {"format": FORMAT, "version": VERSION, "algorithm": algo, "learners": list(names), "seed": int(seed),
            "env_steps": int(env_steps), "scenario": json.dumps(scenario.to_dict(), sort_keys=True),
            "config": json.dumps(dataclasses.asdict(learner.config)), "adapter": str(Path(adapter_dir).resolve()),
            "adapter_weights": lm.adapter_state(), "learner": learner.state_dict(), "loop": json.dumps(loop)}
    save_atomically(data, path)


def load_llm_checkpoint(where: Path) -> dict[str, Any]:
    """The checkpoint of run directory `where` (or the file itself); one-line errors."""
    path = Path(where) / "checkpoint.pt" if Path(where).is_dir() else Path(where)
    if not path.is_file():
        raise MasError(f"--resume {where}: no checkpoint.pt there; give a training run directory")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or damaged files
        reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:160]
        raise MasError(f"--resume {where}: not a readable checkpoint ({reason})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        algo = data.get("algorithm") if isinstance(data, dict) else None
        hint = f" (a {algo} checkpoint: resume it with --algo {algo})" if isinstance(algo, str) else ""
        raise MasError(f"--resume {where}: not an LLM training checkpoint{hint}")
    if data.get("version") != VERSION:
        raise MasError(f"--resume {where}: checkpoint format version {data.get('version')}, this mas reads {VERSION}")
    try:
        for key in ("scenario", "config", "loop"):
            data[key] = json.loads(data[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise MasError(f"--resume {where}: damaged checkpoint ({exc.__class__.__name__}: {exc})") from None
    return data


def check_resume(data: dict[str, Any], where: Path, algo: str, names: list[str], scenario: Any, config: Any,
                 seed: int, steps: int) -> None:
    """Refuse to continue a run as something else: another algorithm, scenario, learners,
    hyperparameters or seed would not continue its curve."""
    if data["algorithm"] != algo:
        raise MasError(f"--resume {where}: the run trained with --algo {data['algorithm']}, not {algo}")
    given = json.loads(json.dumps(scenario.to_dict(), sort_keys=True))
    if data["scenario"] != given:
        key = next((k for k in sorted(set(given) | set(data["scenario"])) if given.get(k) != data["scenario"].get(k)), "?")
        raise MasError(f"--resume {where}: the scenario differs from the run's (field '{key}'); resume with the run's "
                       f"scenario '{data['scenario'].get('name')}'")
    if list(data["learners"]) != list(names):
        raise MasError(f"--resume {where}: the run trained {data['learners']}, this one would train {list(names)}")
    now = dataclasses.asdict(config)
    # a hyperparameter added since the run was saved had its default then
    then = {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING} | data["config"]
    for key in sorted(set(now) | set(then)):
        if now.get(key) != then.get(key):
            raise MasError(f"--resume {where}: hyperparameter {key} was {then.get(key)!r}, now {now.get(key)!r}; "
                           "resume with the run's settings (drop that --set)")
    if int(data["seed"]) != seed:
        raise MasError(f"--resume {where}: the run used seed {data['seed']}, this one {seed}; drop --seed or use {data['seed']}")
    if int(data["env_steps"]) >= steps:
        raise MasError(f"--steps {steps}: the checkpoint already has {data['env_steps']} steps; ask for more")


def restore(data: dict[str, Any], where: Path, lm: Any, learner: Any) -> None:
    """Load the adapters' weights and the learner's state; a mismatch is one line."""
    try:
        lm.load_adapter_state(data["adapter_weights"])
        learner.load_state_dict(data["learner"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:200] or exc.__class__.__name__
        raise MasError(f"--resume {where}: damaged checkpoint: its state does not fit this run ({reason})") from None
