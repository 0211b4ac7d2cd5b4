"""`mas train`: train a scenario's learning agents and keep everything a run needs.

`train()` is the entry point for every algorithm of `mas.training.registry`; the numeric
learners (IQL, MAPPO/IPPO) train here, on the batched env (`mas.vector`), and `llm-ppo` /
`llm-mappo` in `mas.training.llm`. Who learns and with which hyperparameters:
`mas.training.learners`. A training run directory holds `train.json`, `play.yaml` and
`eval/run.sqlite` (`mas.training.rundir`), `curves.csv` and `tb/` (`mas.training.curves`)
and `checkpoint.pt`, rewritten at each evaluation and at the end (`mas.training.checkpoint`).

Seeds: one master seed fixes the initialisation, exploration, game draws and opponents,
so on CPU the same seed gives the same curve. Resuming continues the learner's state,
optimisers and step count from a checkpoint with fresh episodes (seeded by the master
seed and the step reached); it is reproducible but not bit-identical to a run that was
never interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mas.errors import MasError
from mas.registry import make_game
from mas.scenario import Scenario
from mas.seeding import child_seed
from mas.training import registry
from mas.training.curves import CurveWriter, StepLog, curve_columns
from mas.training.learners import learning_agents, resolve_config
from mas.training.rundir import TrainResult, play_final_episodes, write_play_scenario, write_resolved


def train(
    scenario: Scenario,
    algo: str,
    steps: int,
    seed: int,
    out_dir: Path,
    device: str = "auto",
    resume: Path | None = None,
    eval_every: int | None = None,
    eval_episodes: int = 32,
    final_episodes: int = 10,
    learners: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    tensorboard: bool = True,
    on_progress: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train the scenario's learners for `steps` environment steps (copies x vector steps).

    Args:
        scenario: the validated scenario.
        algo: "iql", "mappo" or "ippo" (MAPPO with decentralised critics); "llm-ppo" or
            "llm-mappo" fine-tune the scenario's LLM agents (see `mas.training.llm`); any
            name of `mas.training.registry.ALGORITHMS`.
        steps: total environment steps; with `resume`, the total including the checkpoint's.
        seed: master seed.
        out_dir: training run directory (created; must not hold a previous run).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        resume: a checkpoint to continue from.
        eval_every: environment steps between evaluations and checkpoints (default steps/10).
        eval_episodes: greedy episodes per evaluation.
        final_episodes: episodes the normal runner plays with the trained agents at the end
            (stored in `out_dir/eval`); 0 skips it.
        learners: agent ids to train (default: see `mas.training.learners`).
        overrides: hyperparameters replacing the scenario's (the CLI's --set).
        tensorboard: write TensorBoard events when the package is installed.
        on_progress: called with (env steps so far, latest metrics) after each iteration.

    On CPU, torch runs single-threaded while training (restored afterwards).
    """
    from mas.agents.rl.common import resolve_device

    record = registry.get(algo)
    out_dir = Path(out_dir)
    if (out_dir / "curves.csv").exists():
        raise MasError(f"{out_dir}: already holds a training run (curves.csv); choose another --out")
    torch_device = resolve_device(device)
    if record.llm:  # LLM-policy agents: their own loop
        from mas.training.llm import train_llm

        # all of torch's CPU threads: for a 135M-parameter model two threads train 1.5x
        # faster than one (measured); the single-thread rule below is for the small networks
        return train_llm(scenario, algo, steps, seed, out_dir, torch_device, resume, eval_every, eval_episodes,
                         final_episodes, learners, overrides or {}, tensorboard, on_progress)
    with _single_threaded_on(torch_device):
        return _train(scenario, algo, steps, seed, out_dir, torch_device, resume, eval_every, eval_episodes,
                      final_episodes, learners, overrides, tensorboard, on_progress)


@contextmanager
def _single_threaded_on(device: Any) -> Iterator[None]:
    """One torch thread while training on CPU, restored afterwards: the networks are small,
    and intra-op threads slowed them down many times on a busy 2-core machine (measured)."""
    import torch

    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train(scenario, algo, steps, seed, out_dir, torch_device, resume, eval_every, eval_episodes,  # noqa: ANN001
           final_episodes, learners, overrides, tensorboard, on_progress) -> TrainResult:
    """The body of `train` (same arguments, device resolved)."""
    from mas.training.checkpoint import load_checkpoint, load_learner_state, make_learner, save_checkpoint
    from mas.vector import VectorEnv

    names = learning_agents(scenario, algo, learners)
    record = registry.get(algo)
    kind = record.family
    start_data = None
    if resume is None:
        config = resolve_config(scenario, algo, names, overrides or {})
    else:  # the checkpoint's hyperparameters (its networks have their shapes), then overrides
        start_data = load_checkpoint(resume)
        _check_resume(start_data, kind, names, scenario, resume)
        config = registry.make_config(record, {**start_data["config"], **(overrides or {})})
    start_steps = int(start_data["env_steps"]) if start_data else 0
    if start_steps >= steps:
        raise MasError(f"--steps {steps}: the checkpoint already has {start_steps} steps; ask for more")
    env_seed = child_seed(seed, "train", start_steps)
    env = StepLog(VectorEnv(scenario, names, config.num_envs, env_seed, torch_device))
    learner = make_learner(kind, config, env, torch_device, child_seed(seed, "learner", start_steps), steps)
    if start_data is not None:
        load_learner_state(learner, _to_device(start_data["learner"], torch_device), f"--resume {resume}")
    eval_every = eval_every or max(1, (steps - start_steps) // 10)
    write_resolved(out_dir, algo, names, seed, steps, torch_device, config, scenario, resume)
    writer = CurveWriter(out_dir, curve_columns(learner.METRICS, names, env.game), tensorboard)
    checkpoint = out_dir / "checkpoint.pt"
    log_every = max(1, (steps - start_steps) // 100)
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    last_log = next_eval = learner.env_steps
    next_eval += eval_every
    final_eval: dict[str, float] = {}
    try:
        step = env.reset()
        while learner.env_steps < steps:
            step, metrics, _ = learner.collect_and_update(env, step)
            done = learner.env_steps >= steps
            evaluate_now = learner.env_steps >= next_eval or done
            if learner.env_steps - last_log >= log_every or evaluate_now:
                row = {"step": learner.env_steps, "seed": seed, "wall_s": round(time.perf_counter() - started, 3)}
                row.update(env.flush(names))
                row.update(metrics)
                if evaluate_now:
                    final_eval = evaluate(learner, scenario, names, eval_episodes, seed, torch_device)
                    row.update(final_eval)
                    save_checkpoint(checkpoint, learner, env, scenario, seed)
                    next_eval = learner.env_steps + eval_every
                writer.write(row)
                last_log = learner.env_steps
            if on_progress is not None:
                on_progress(learner.env_steps, {**metrics, **final_eval})
    finally:
        writer.close()
    play = write_play_scenario(scenario, names, checkpoint, out_dir / "play.yaml")
    eval_run = play_final_episodes(play, final_episodes, seed, out_dir)
    return TrainResult(
        out_dir=out_dir, checkpoint=checkpoint, curves=writer.path, play_scenario=out_dir / "play.yaml",
        env_steps=learner.env_steps, learners=names, final_eval=final_eval, tensorboard=writer.tb is not None, eval_run=eval_run,
    )


def evaluate(learner: Any, scenario: Scenario, learners: Sequence[str], episodes: int, seed: int, device: Any) -> dict[str, float]:
    """Greedy play of `episodes` episodes (one per copy): mean return per learner, and the
    cooperation rate or signalling success where the game defines them."""
    from mas.vector import VectorEnv

    env = VectorEnv(scenario, learners, episodes, child_seed(seed, "eval"), device)
    step = env.reset()
    running = np.ones(episodes, dtype=bool)
    returns = np.zeros((episodes, len(learners)))
    coop_sum, coop_n = np.zeros(len(learners)), np.zeros(len(learners))
    success_sum = success_n = 0.0
    scores_success = env.game.capabilities.success_measure
    while running.any():
        before = env.raw_state
        step = env.step(learner.act_batch(step, greedy=True))
        rewards = step.rewards.cpu().numpy()
        returns[running] += rewards[running]
        if step.cooperation is not None:
            coop = step.cooperation[running]
            coop_sum += np.nansum(coop, axis=0)
            coop_n += np.sum(~np.isnan(coop), axis=0)
        if scores_success:  # the game's own success measure (e.g. a signalling pick)
            success = env.game.success(before, rewards)
            counted = running & ~np.isnan(success)
            success_sum += float(success[counted].sum())
            success_n += float(counted.sum())
        running &= ~(step.terminated | step.truncated).cpu().numpy()
    out = {f"eval_return/{a}": float(returns[:, i].mean()) for i, a in enumerate(learners)}
    if coop_n.sum() > 0:
        out.update({f"eval_cooperation/{a}": float(coop_sum[i] / max(coop_n[i], 1)) for i, a in enumerate(learners)})
    if scores_success:
        out["eval_success"] = success_sum / max(success_n, 1.0)
    return out


def _check_resume(data: dict[str, Any], kind: str, names: Sequence[str], scenario: Scenario, path: Path) -> None:
    if data["algorithm"] != kind:
        raise MasError(f"--resume {path}: a {data['algorithm']} checkpoint cannot continue {kind} training")
    if list(data["learners"]) != list(names):
        raise MasError(f"--resume {path}: trained agents {data['learners']}, but this run trains {list(names)}")
    game = make_game(scenario.game, len(scenario.agents))
    from mas.vocabulary import LearnerChannel

    channel = LearnerChannel.from_scenario(scenario, game.num_actions)
    obs_dim = game.obs_dim + (channel.extra_obs if channel is not None else 0)
    num_actions = channel.num_actions if channel is not None else game.num_actions
    if (data["game_kind"], data["obs_dim"], data["num_actions"]) != (game.kind, obs_dim, num_actions):
        raise MasError(f"--resume {path}: trained on a {data['game_kind']} game with {data['obs_dim']} observation features and "
                       f"{data['num_actions']} actions, this scenario is {game.kind} with {obs_dim} and {num_actions}")


def _to_device(value: Any, device: Any) -> Any:
    if hasattr(value, "to") and hasattr(value, "dtype"):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    return value


