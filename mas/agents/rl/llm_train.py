"""The training loop of `mas train --algo llm-ppo | llm-mappo` (the update is in `llm_ppo`).

It writes what every training run writes (see `mas.train`): `train.json`, `curves.csv`
(+ TensorBoard) through the same `CurveWriter`, a checkpoint, `play.yaml` and the final
evaluation store `eval/run.sqlite`. The checkpoint is a peft adapter directory
`adapter/` (what `backend.adapter` loads for play) plus `checkpoint.pt` with the critic, the
optimisers and the run's identity. `play.yaml` keeps each learner's LLM spec and only adds
`backend.adapter`, so `mas run` and tournaments play the tuned model through the normal
local backend.

Steps are environment (action) steps: rounds played in training episodes. Evaluation rows
play `eval_episodes` episodes with the current adapters (sampling, as play does) on their
own seeds. Seeds: the master seed fixes the adapters' and critic's initialisation, every
episode, every sampled action and the minibatch order, so on CPU a seed gives one curve.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mas.errors import MasError
from mas.seeding import child_seed


def train_llm(scenario: Any, algo: str, steps: int, seed: int, out_dir: Path, device: Any, resume: Path | None,
              eval_every: int | None, eval_episodes: int, final_episodes: int, learners: Sequence[str] | None,
              overrides: dict[str, Any], tensorboard: bool,
              on_progress: Callable[[int, dict[str, float]], None] | None) -> Any:
    """Fine-tune the scenario's LLM agents; arguments as `mas.train.train` (device resolved)."""
    from mas.agents.llm.models import load_model
    from mas.agents.rl.llm_model import LoraSettings, ScoringBackend, TrainableLM
    from mas.agents.rl.llm_ppo import LLMPPO, LLMPPOConfig, Rollouts, llm_learners
    from mas.train import CurveWriter, TrainResult, play_final_episodes

    if resume is not None:
        raise MasError(f"--resume: not supported for --algo {algo} yet; start a new run")
    names = llm_learners(scenario, algo, list(learners) if learners else None)
    config = LLMPPOConfig.from_overrides(overrides)
    backend_spec = next(a.policy.backend for a in scenario.agents if a.id == names[0])
    # float32 for training whatever the play dtype: bf16 gradients on small updates are noise
    loaded = load_model(backend_spec.model, str(device), "float32", backend_spec.adapter)
    lm = TrainableLM(loaded, LoraSettings(rank=config.lora_rank, alpha=config.lora_alpha), child_seed(seed, "lora"))
    backend = ScoringBackend(lm, f"{loaded.name}+lora", base_scores=True)
    rollouts = Rollouts(scenario, names, backend)
    state_dim = int(rollouts.engine.game.state_dim)
    learner = LLMPPO(lm, config, algo == "llm-mappo", state_dim, names, seed)

    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = {"algorithm": algo, "learners": names, "seed": seed, "steps": steps, "device": str(device), "resumed_from": None,
                "config": dataclasses.asdict(config), "scenario": scenario.to_dict()}
    (out_dir / "train.json").write_text(json.dumps(resolved, indent=2), encoding="utf-8")
    has_coop = _has_cooperation(rollouts.engine)
    columns = ["step", "seed", "wall_s", "episodes", "episode_return_mean"] + [f"return/{a}" for a in names]
    columns += ["cooperation_rate"] if has_coop else []
    columns += list(LLMPPO.METRICS) + [f"eval_return/{a}" for a in names]
    columns += [f"eval_cooperation/{a}" for a in names] if has_coop else []
    writer = CurveWriter(out_dir, columns, tensorboard)
    adapter_dir, checkpoint = out_dir / "adapter", out_dir / "checkpoint.pt"
    eval_every = eval_every or max(1, steps // 5)
    started = time.perf_counter()
    env_steps = episode = 0
    next_eval = eval_every
    final_eval: dict[str, float] = {}
    try:
        while env_steps < steps:
            lm.model.eval()
            batch: list[list[Any]] = []
            returns, coop = [], [0.0, 0.0]
            for _ in range(config.episodes_per_update):
                trajectories, stats = rollouts.play(child_seed(seed, "train"), episode)
                episode += 1
                env_steps += stats.steps
                batch += trajectories
                returns.append([stats.returns[a] for a in names])
                coop = [coop[0] + stats.coop[0], coop[1] + stats.coop[1]]
                if env_steps >= steps:
                    break
            metrics = learner.update(batch)
            row: dict[str, Any] = {"step": env_steps, "seed": seed, "wall_s": round(time.perf_counter() - started, 3),
                                   "episodes": len(returns), "episode_return_mean": float(np.mean(returns))}
            row.update({f"return/{a}": float(np.mean([r[i] for r in returns])) for i, a in enumerate(names)})
            if coop[1] > 0:
                row["cooperation_rate"] = coop[0] / coop[1]
            row.update(metrics)
            if env_steps >= next_eval or env_steps >= steps:
                final_eval = evaluate_llm(rollouts, names, eval_episodes, seed)
                row.update(final_eval)
                save_llm_checkpoint(lm, learner, adapter_dir, checkpoint, algo, names, env_steps, seed)
                next_eval = env_steps + eval_every
            writer.write(row)
            if on_progress is not None:
                on_progress(env_steps, {**metrics, **final_eval})
    finally:
        writer.close()
    play = write_llm_play_scenario(scenario, names, adapter_dir, out_dir / "play.yaml")
    eval_run = play_final_episodes(play, final_episodes, seed, out_dir)
    return TrainResult(out_dir=out_dir, checkpoint=adapter_dir, curves=writer.path, play_scenario=out_dir / "play.yaml",
                       env_steps=env_steps, learners=names, final_eval=final_eval, tensorboard=writer.tb is not None,
                       eval_run=eval_run)


def _has_cooperation(env: Any) -> bool:
    game = env.game
    state = game.reset(1, np.random.default_rng(0))
    return game.cooperation(state, np.zeros((1, game.n_agents), dtype=np.int64)) is not None


def evaluate_llm(rollouts: Any, names: Sequence[str], episodes: int, seed: int) -> dict[str, float]:
    """Mean return and cooperation per learner over `episodes` episodes with the current model."""
    returns = np.zeros((episodes, len(names)))
    coop = [0.0, 0.0]
    base_scores, rollouts.backend.base_scores = rollouts.backend.base_scores, False  # no KL needed here
    try:
        for e in range(episodes):
            _, stats = rollouts.play(child_seed(seed, "eval"), e)
            returns[e] = [stats.returns[a] for a in names]
            coop = [coop[0] + stats.coop[0], coop[1] + stats.coop[1]]
    finally:
        rollouts.backend.base_scores = base_scores
    out = {f"eval_return/{a}": float(returns[:, i].mean()) for i, a in enumerate(names)}
    if coop[1] > 0:  # learners pooled (they share adapters)
        out.update({f"eval_cooperation/{a}": coop[0] / coop[1] for a in names})
    return out


def save_llm_checkpoint(lm: Any, learner: Any, adapter_dir: Path, path: Path, algo: str, names: Sequence[str],
                        env_steps: int, seed: int) -> None:
    """The adapters (peft directory) and everything else the run holds (torch file)."""
    lm.save(adapter_dir)
    data = {"algorithm": algo, "learners": list(names), "env_steps": env_steps, "seed": seed,
            "config": dataclasses.asdict(learner.config), "adapter": str(adapter_dir.resolve()), **learner.state_dict()}
    tmp = path.with_suffix(".tmp")
    torch.save(data, tmp)
    tmp.replace(path)


def write_llm_play_scenario(scenario: Any, learners: Sequence[str], adapter_dir: Path, path: Path) -> Any:
    """The scenario with each learner's LLM backend loading the trained adapters; as YAML."""
    from mas.scenario import parse_scenario

    data = scenario.to_dict()
    for agent in data["agents"]:
        if agent["id"] in learners:
            agent["policy"]["backend"] = {**agent["policy"]["backend"], "adapter": str(Path(adapter_dir).resolve())}
    data["name"] = f"{scenario.name}-trained"[:64]
    play = parse_scenario(json.loads(json.dumps(data)), source=str(path))
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return play
