"""The training loop of `mas train --algo llm-ppo | llm-mappo` (the update is in
`mas.agents.rl.llm_ppo`).

It writes what every training run writes (see `mas.training.run`): `train.json`,
`curves.csv` (+ TensorBoard) through the same `CurveWriter`, a checkpoint, `play.yaml` and
the final evaluation store `eval/run.sqlite`. The checkpoint is a peft adapter directory
`adapter/` (what `backend.adapter` loads for play) plus `checkpoint.pt` with the critic, the
optimisers and the run's identity. `play.yaml` keeps each learner's LLM spec and only adds
`backend.adapter`, so `mas run` and tournaments play the tuned model through the normal
local backend. Hyperparameters: `LLMPPOConfig`, from the learners' `train:` block and `--set`.

Steps are environment (action) steps: rounds played in training episodes. Evaluation rows
play `eval_episodes` episodes with the current adapters (sampling, as play does) on their
own seeds. Seeds: the master seed fixes the adapters' and critic's initialisation, every
episode, every sampled action and the minibatch order, so on CPU a seed gives one curve.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mas.errors import MasError
from mas.seeding import child_seed
from mas.training.checkpoint import save_llm_checkpoint
from mas.training.curves import CurveWriter, curve_columns
from mas.training.learners import check_message_training, llm_learners, resolve_config
from mas.training.rundir import TrainResult, play_final_episodes, write_llm_play_scenario, write_resolved


def train_llm(scenario: Any, algo: str, steps: int, seed: int, out_dir: Path, device: Any, resume: Path | None,
              eval_every: int | None, eval_episodes: int, final_episodes: int, learners: Sequence[str] | None,
              overrides: dict[str, Any], tensorboard: bool,
              on_progress: Callable[[int, dict[str, float]], None] | None) -> TrainResult:
    """Fine-tune the scenario's LLM agents; arguments as `mas.training.run.train` (device resolved)."""
    from mas.agents.llm.models import load_model
    from mas.agents.rl.llm_model import LoraSettings, ScoringBackend, TrainableLM
    from mas.agents.rl.llm_ppo import LLMPPO, Rollouts

    if resume is not None:
        raise MasError(f"--resume: not supported for --algo {algo} yet; start a new run")
    names = llm_learners(scenario, algo, list(learners) if learners else None)
    config = resolve_config(scenario, algo, names, overrides)
    check_message_training(scenario, names, config.train)
    if config.centralised_critic and len(names) < 2:
        raise MasError(f"--algo {algo}: a centralised critic needs two or more LLM learners, found {len(names)} "
                       f"({', '.join(names)}); use --algo llm-ppo")
    backend_spec = next(a.policy.backend for a in scenario.agents if a.id == names[0])
    # float32 for training whatever the play dtype: bf16 gradients on small updates are noise
    loaded = load_model(backend_spec.model, str(device), "float32", backend_spec.adapter)
    lm = TrainableLM(loaded, LoraSettings(rank=config.lora_rank, alpha=config.lora_alpha), child_seed(seed, "lora"))
    backend = ScoringBackend(lm, f"{loaded.name}+lora", base_scores=True)
    rollouts = Rollouts(scenario, names, backend, config.train)
    state_dim = int(rollouts.engine.game.state_dim)
    learner = LLMPPO(lm, config, config.centralised_critic, state_dim, names, seed)

    write_resolved(out_dir, algo, names, seed, steps, device, config, scenario)
    writer = CurveWriter(out_dir, curve_columns(LLMPPO.METRICS, names, rollouts.engine.game, success=False), tensorboard)
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
            group_size = config.group_size if config.estimator == "group" else None
            groups: list[int] = []
            for trajectories, stats in play_episodes(rollouts, child_seed(seed, "train"), episode,
                                                     config.episodes_per_update, config.batched, steps - env_steps,
                                                     group_size):
                if group_size is not None:
                    groups += [episode // group_size] * len(trajectories)
                episode += 1
                env_steps += stats.steps
                batch += trajectories
                returns.append([stats.returns[a] for a in names])
                coop = [coop[0] + stats.coop[0], coop[1] + stats.coop[1]]
            metrics = learner.update(batch, groups or None)
            row: dict[str, Any] = {"step": env_steps, "seed": seed, "wall_s": round(time.perf_counter() - started, 3),
                                   "episodes": len(returns), "episode_return_mean": float(np.mean(returns))}
            row.update({f"return/{a}": float(np.mean([r[i] for r in returns])) for i, a in enumerate(names)})
            if coop[1] > 0:
                row["cooperation_rate"] = coop[0] / coop[1]
            row.update(metrics)
            if env_steps >= next_eval or env_steps >= steps:
                final_eval = evaluate_llm(rollouts, names, eval_episodes, seed, config.batched)
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


def play_episodes(rollouts: Any, seed: int, first: int, count: int, batched: bool, budget: int | None = None,
                  group_size: int | None = None) -> Iterator[tuple[Any, Any]]:
    """Episodes `first`.. `first + count - 1` (trajectories, stats): all at once as copies
    of the engine, or one at a time until `budget` env steps are played (whole groups, when
    episodes come in groups of `group_size` on one game seed)."""
    episodes = list(range(first, first + count))
    groups = None if group_size is None else [e // group_size for e in episodes]
    if batched:
        yield from rollouts.play_many(seed, episodes, groups)
        return
    played = 0
    for i, episode in enumerate(episodes):
        trajectories, stats = rollouts.play(seed, episode, None if groups is None else groups[i])
        yield trajectories, stats
        played += stats.steps
        if budget is not None and played >= budget and (group_size is None or (episode + 1) % group_size == 0):
            return


def evaluate_llm(rollouts: Any, names: Sequence[str], episodes: int, seed: int, batched: bool = True) -> dict[str, float]:
    """Mean return and cooperation per learner over `episodes` episodes with the current model."""
    returns = np.zeros((episodes, len(names)))
    coop = [0.0, 0.0]
    base_scores, rollouts.backend.base_scores = rollouts.backend.base_scores, False  # no KL needed here
    try:
        for e, (_, stats) in enumerate(play_episodes(rollouts, child_seed(seed, "eval"), 0, episodes, batched)):
            returns[e] = [stats.returns[a] for a in names]
            coop = [coop[0] + stats.coop[0], coop[1] + stats.coop[1]]
    finally:
        rollouts.backend.base_scores = base_scores
    out = {f"eval_return/{a}": float(returns[:, i].mean()) for i, a in enumerate(names)}
    if coop[1] > 0:  # learners pooled (they share adapters)
        out.update({f"eval_cooperation/{a}": coop[0] / coop[1] for a in names})
    return out
