"""`mas train`: train a scenario's learning agents and keep everything a run needs.

Which agents learn: those whose policy type is the algorithm's (`iql`, or `mappo` for
mappo and ippo), or the ids given as `learners`; when the scenario names no learner at
all, every agent learns (self-play). The other agents keep their scenario policies and
act inside the batched env as fixed opponents. All learners share one set of
hyperparameters: their spec in the scenario, then `overrides` (the CLI's `--set`).
`llm-ppo` and `llm-mappo` fine-tune LLM-policy agents instead, in their own loop
(`mas.agents.rl.llm_train`) that writes the same files (its checkpoint is a LoRA adapter).

A training run directory holds:
- `train.json`: the resolved run (algorithm, learners, seed, steps, device, every
  hyperparameter, the scenario);
- `curves.csv`: one row per log interval, written as it goes: step (environment steps),
  seed, wall_s, episodes (finished since the last row), episode_return_mean (their mean
  return over learners) and return/<agent>, cooperation_rate of the learners' actions
  (where the game defines cooperation), the algorithm's losses, and at evaluation rows
  eval_return/<agent>, eval_cooperation/<agent>, and eval_success in the signalling game;
- TensorBoard event files in `tb/` when the `tensorboard` package is installed;
- `checkpoint.pt` (rewritten at each evaluation and at the end);
- `play.yaml`: the scenario with each learner replaced by its checkpoint policy, so
  `mas run <dir>/play.yaml` plays the trained agents;
- `eval/run.sqlite`: final evaluation episodes played by the normal runner through the
  checkpoint policies (a run store like any other, transcripts included).

Seeds: one master seed fixes the initialisation, exploration, game draws and opponents,
so on CPU the same seed gives the same curve. Resuming continues the learner's state,
optimisers and step count from a checkpoint with fresh episodes (seeded by the master
seed and the step reached); it is reproducible but not bit-identical to a run that was
never interrupted.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mas.errors import MasError
from mas.scenario import Scenario, parse_scenario
from mas.seeding import child_seed

ALGOS = {"iql": "iql", "mappo": "mappo", "ippo": "mappo"}  # --algo -> scenario policy type
LEARNER_TYPES = set(ALGOS.values())
LLM_ALGOS = ("llm-ppo", "llm-mappo")  # fine-tune LLM-policy agents (mas.agents.rl.llm_ppo)


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


# ----- who learns, with which hyperparameters ------------------------------------------
def learning_agents(scenario: Scenario, algo: str, learners: Sequence[str] | None = None) -> list[str]:
    """The agents trained by `algo`; see the module docstring."""
    if algo not in ALGOS:
        raise MasError(f"--algo: unknown algorithm '{algo}'; known: {', '.join(ALGOS)}")
    ids = scenario.agent_ids
    if learners:
        unknown = [a for a in learners if a not in ids]
        if unknown:
            raise MasError(f"--learners: unknown agent(s) {unknown}; agents: {', '.join(ids)}")
        return [a for a in ids if a in learners]
    wanted = ALGOS[algo]
    chosen = [a.id for a in scenario.agents if a.policy.type == wanted]
    if chosen:
        return chosen
    others = sorted({a.policy.type for a in scenario.agents} & LEARNER_TYPES)
    if others:
        raise MasError(f"--algo {algo}: the scenario's learning agents use policy type {others[0]}; use --algo {others[0]} or --learners")
    return list(ids)


def infer_algo(scenario: Scenario, resume: Path | None = None) -> str:
    """The algorithm when --algo is not given: the checkpoint's, or the scenario's one learner type."""
    if resume is not None:
        from mas.agents.rl.checkpoint import load_checkpoint

        return load_checkpoint(resume)["algorithm"]
    types = sorted({a.policy.type for a in scenario.agents} & LEARNER_TYPES)
    if len(types) != 1:
        found = f"learner types {types}" if types else "no learning agent (policy iql or mappo)"
        raise MasError(f"--algo: the scenario has {found}; name the algorithm with --algo iql, mappo or ippo "
                       "(llm-ppo or llm-mappo for LLM agents)")
    return types[0]


def resolve_config(scenario: Scenario, algo: str, learners: Sequence[str], overrides: dict[str, Any]) -> Any:
    """The learners' shared hyperparameters: their scenario spec, then `overrides`."""
    kind = ALGOS[algo]
    specs = [a.policy for a in scenario.agents if a.id in learners and a.policy.type == kind]
    distinct = {s.model_dump_json(exclude={"message"}) for s in specs}
    if len(distinct) > 1:
        raise MasError(f"learners {', '.join(learners)} must share hyperparameters: their {kind} specs differ")
    spec = specs[0] if specs else _spec_model(kind)(type=kind)
    if algo == "ippo":
        overrides = {"centralised_critic": False, **overrides}
    return spec.to_config(**overrides)


# ----- evaluation -------------------------------------------------------------------------
def _spec_model(kind: str) -> Any:
    from mas.agents.rl.config import IQLSpec, MAPPOSpec

    return IQLSpec if kind == "iql" else MAPPOSpec


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


# ----- logging ------------------------------------------------------------------------------
class CurveWriter:
    """`curves.csv` written row by row (flushed), plus TensorBoard scalars when available."""

    def __init__(self, out_dir: Path, columns: list[str], use_tensorboard: bool) -> None:
        self.path = out_dir / "curves.csv"
        self.columns = columns
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._file, fieldnames=columns, restval="", extrasaction="ignore")
        self._csv.writeheader()
        self._file.flush()
        self.tb = None
        if use_tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(out_dir / "tb"))
            except ImportError:
                self.tb = None

    def write(self, row: dict[str, Any]) -> None:
        self._csv.writerow({k: _fmt(v) for k, v in row.items()})
        self._file.flush()
        if self.tb is not None:
            for key, value in row.items():
                if key not in ("step", "seed", "wall_s") and isinstance(value, (int, float)) and not math.isnan(value):
                    self.tb.add_scalar(key, value, int(row["step"]))

    def close(self) -> None:
        self._file.close()
        if self.tb is not None:
            self.tb.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def _columns(learner: Any, learners: Sequence[str], scenario: Scenario, game: Any) -> list[str]:
    has_coop = game.cooperation(game.reset(1, np.random.default_rng(0)), np.zeros((1, game.n_agents), dtype=np.int64)) is not None
    cols = ["step", "seed", "wall_s", "episodes", "episode_return_mean"] + [f"return/{a}" for a in learners]
    cols += ["cooperation_rate"] if has_coop else []
    cols += list(learner.METRICS)
    cols += [f"eval_return/{a}" for a in learners]
    if has_coop:
        cols += [f"eval_cooperation/{a}" for a in learners]
    if game.capabilities.success_measure:
        cols.append("eval_success")
    return cols


class StepLog:
    """Forwards to a vector env and keeps what the curves report from *every* step (MAPPO
    takes a whole rollout of steps per iteration): returns of finished episodes and the
    learners' cooperation."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self._finished: list[np.ndarray] = []
        self._coop = [0.0, 0.0]  # sum, count

    def __getattr__(self, name: str) -> Any:  # num_envs, obs_dim, game, ... of the env
        return getattr(self.env, name)

    def step(self, actions: Any) -> Any:
        step = self.env.step(actions)
        if len(step.finished_returns):
            self._finished.append(step.finished_returns)
        if step.cooperation is not None:
            self._coop[0] += float(np.nansum(step.cooperation))
            self._coop[1] += float(np.sum(~np.isnan(step.cooperation)))
        return step

    def flush(self, names: Sequence[str]) -> dict[str, Any]:
        """The curve columns since the last flush, then start over."""
        finished = np.concatenate(self._finished) if self._finished else np.zeros((0, len(names)))
        row: dict[str, Any] = {"episodes": len(finished)}
        row["episode_return_mean"] = float(finished.mean()) if len(finished) else float("nan")
        for i, agent in enumerate(names):
            row[f"return/{agent}"] = float(finished[:, i].mean()) if len(finished) else float("nan")
        if self._coop[1] > 0:
            row["cooperation_rate"] = self._coop[0] / self._coop[1]
        self._finished, self._coop = [], [0.0, 0.0]
        return row


# ----- the loop ------------------------------------------------------------------------------
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
            "llm-mappo" fine-tune the scenario's LLM agents (see `mas.agents.rl.llm_train`).
        steps: total environment steps; with `resume`, the total including the checkpoint's.
        seed: master seed.
        out_dir: training run directory (created; must not hold a previous run).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        resume: a checkpoint to continue from.
        eval_every: environment steps between evaluations and checkpoints (default steps/10).
        eval_episodes: greedy episodes per evaluation.
        final_episodes: episodes the normal runner plays with the trained agents at the end
            (stored in `out_dir/eval`); 0 skips it.
        learners: agent ids to train (default: see `learning_agents`).
        overrides: hyperparameters replacing the scenario's (the CLI's --set).
        tensorboard: write TensorBoard events when the package is installed.
        on_progress: called with (env steps so far, latest metrics) after each iteration.

    On CPU, torch runs single-threaded while training (restored afterwards).
    """
    from mas.agents.rl.common import resolve_device

    out_dir = Path(out_dir)
    if (out_dir / "curves.csv").exists():
        raise MasError(f"{out_dir}: already holds a training run (curves.csv); choose another --out")
    torch_device = resolve_device(device)
    if algo in LLM_ALGOS:  # LLM-policy agents: their own loop (mas.agents.rl.llm_train)
        from mas.agents.rl.llm_train import train_llm

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
    from mas.agents.rl.checkpoint import load_checkpoint, load_learner_state, make_learner, save_checkpoint
    from mas.vector import VectorEnv

    names = learning_agents(scenario, algo, learners)
    kind = ALGOS[algo]
    start_data = None
    if resume is None:
        config = resolve_config(scenario, algo, names, overrides or {})
    else:  # the checkpoint's hyperparameters (its networks have their shapes), then overrides
        start_data = load_checkpoint(resume)
        _check_resume(start_data, kind, names, scenario, resume)
        config = _spec_model(kind)(type=kind, **start_data["config"]).to_config(**(overrides or {}))
    start_steps = int(start_data["env_steps"]) if start_data else 0
    if start_steps >= steps:
        raise MasError(f"--steps {steps}: the checkpoint already has {start_steps} steps; ask for more")
    env_seed = child_seed(seed, "train", start_steps)
    env = StepLog(VectorEnv(scenario, names, config.num_envs, env_seed, torch_device))
    learner = make_learner(kind, config, env, torch_device, child_seed(seed, "learner", start_steps), steps)
    if start_data is not None:
        load_learner_state(learner, _to_device(start_data["learner"], torch_device), f"--resume {resume}")
    eval_every = eval_every or max(1, (steps - start_steps) // 10)
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = {"algorithm": algo, "learners": names, "seed": seed, "steps": steps, "device": str(torch_device),
                "resumed_from": str(resume) if resume else None, "config": dataclasses.asdict(config), "scenario": scenario.to_dict()}
    (out_dir / "train.json").write_text(json.dumps(resolved, indent=2), encoding="utf-8")
    writer = CurveWriter(out_dir, _columns(learner, names, scenario, env.game), tensorboard)
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


def play_final_episodes(play: Scenario, episodes: int, seed: int, out_dir: Path) -> Path | None:
    """Play the trained agents' scenario into <out_dir>/eval (a run store), if asked to."""
    if episodes <= 0:
        return None
    from mas.runner import run

    run(play, episodes, child_seed(seed, "final"), out_dir=out_dir / "eval")
    return out_dir / "eval"


def _check_resume(data: dict[str, Any], kind: str, names: Sequence[str], scenario: Scenario, path: Path) -> None:
    from mas import registry

    if data["algorithm"] != kind:
        raise MasError(f"--resume {path}: a {data['algorithm']} checkpoint cannot continue {kind} training")
    if list(data["learners"]) != list(names):
        raise MasError(f"--resume {path}: trained agents {data['learners']}, but this run trains {list(names)}")
    game = registry.make_game(scenario.game, len(scenario.agents))
    game_kind = getattr(game, "kind", "")
    if (data["game_kind"], data["obs_dim"], data["num_actions"]) != (game_kind, game.obs_dim, game.num_actions):
        raise MasError(f"--resume {path}: trained on a {data['game_kind']} game with {data['obs_dim']} observation features and "
                       f"{data['num_actions']} actions, this scenario is {game_kind} with {game.obs_dim} and {game.num_actions}")


def _to_device(value: Any, device: Any) -> Any:
    if hasattr(value, "to") and hasattr(value, "dtype"):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    return value


def write_play_scenario(scenario: Scenario, learners: Sequence[str], checkpoint: Path, path: Path) -> Scenario:
    """The scenario with each learner playing its checkpoint; written to `path` as YAML."""
    data = scenario.to_dict()
    for agent in data["agents"]:
        if agent["id"] in learners:
            agent["policy"] = {"type": "checkpoint", "path": str(Path(checkpoint).resolve()), "agent": agent["id"]}
    data["name"] = f"{scenario.name}-trained"[:64]
    play = parse_scenario(json.loads(json.dumps(data)), source=str(path))
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return play
