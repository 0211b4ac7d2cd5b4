"""The training loop of `mas train --algo llm-ppo | llm-mappo` (the update is in
`mas.agents.rl.llm_ppo`).

It writes what every training run writes (see `mas.training.run`): `train.json`,
`curves.csv` (+ TensorBoard) through the same `CurveWriter`, a checkpoint, `play.yaml` and
the final evaluation store `eval/run.sqlite`. The checkpoint is a peft adapter directory
`adapter/` (with `adapters: per_agent`, `adapters/<agent>/` each; what `backend.adapter`
loads for play) plus `checkpoint.pt` (`mas.training.llm_checkpoint`): everything `resume`
needs to continue the curve. `adapters: selfplay` gives every seat the first learner's spec
and trains them all (one shared adapter). `play.yaml` keeps each learner's LLM spec and only adds
`backend.adapter`, so `mas run` and tournaments play the tuned model through the normal
local backend. Hyperparameters: `LLMPPOConfig`, from the learners' `train:` block and `--set`.

Steps are environment (action) steps: rounds played in training episodes. Evaluation rows
play `eval_episodes` episodes with the current adapters (sampling, as play does) on their
own seeds. Seeds: the master seed fixes the adapters' and critic's initialisation, every
episode, every sampled action and the minibatch order, so on CPU a seed gives one curve.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mas.errors import MasError
from mas.memory import release_freed_memory
from mas.seeding import child_seed
from mas.training.llm_checkpoint import check_resume, load_llm_checkpoint, restore, save_llm_checkpoint
from mas.training.curves import CurveWriter, curve_columns
from mas.training.learners import check_message_training, llm_learners, resolve_config
from mas.training.rundir import TrainResult, play_final_episodes, write_llm_play_scenario, write_resolved


def train_llm(scenario: Any, algo: str, steps: int, seed: int, out_dir: Path, device: Any, resume: Path | None,
              eval_every: int | None, eval_episodes: int, final_episodes: int, learners: Sequence[str] | None,
              overrides: dict[str, Any], tensorboard: bool,
              on_progress: Callable[[int, dict[str, float]], None] | None) -> TrainResult:
    """Fine-tune the scenario's LLM agents; arguments as `mas.training.run.train` (device
    resolved; `resume`: a run directory of this algorithm, scenario and settings)."""
    from mas.agents.llm.models import load_model
    from mas.agents.rl.llm_model import LoraSettings, TrainableLM
    from mas.agents.rl.scoring_backend import ScoringBackend
    from mas.agents.rl.llm_ppo import LLMPPO, Rollouts

    given = scenario
    names = llm_learners(scenario, algo, list(learners) if learners else None)
    config = resolve_config(scenario, algo, names, overrides)
    if config.adapters == "selfplay":
        scenario, names = selfplay_scenario(scenario, names)
    check_message_training(scenario, names, config.train)
    if config.centralised_critic and len(names) < 2:
        raise MasError(f"--algo {algo}: a centralised critic needs two or more LLM learners, found {len(names)} "
                       f"({', '.join(names)}); use --algo llm-ppo")
    start = None
    if resume is not None:
        start = load_llm_checkpoint(resume)
        check_resume(start, resume, algo, names, given, config, seed, steps)
    per_agent = config.adapters == "per_agent"
    backend_spec = next(a.policy.backend for a in scenario.agents if a.id == names[0])
    # float32 for training whatever the play dtype: bf16 gradients on small updates are noise
    loaded = load_model(backend_spec.model, str(device), "float32", backend_spec.adapter)
    lm = TrainableLM(loaded, LoraSettings(rank=config.lora_rank, alpha=config.lora_alpha, layers=_last_layers(loaded, config.lora_layers)),
                     child_seed(seed, "lora"), adapters=names if per_agent else None)
    if per_agent:
        backend: Any = {a: ScoringBackend(lm, f"{loaded.name}+lora:{a}", base_scores=True, adapter=a) for a in names}
    else:
        backend = ScoringBackend(lm, f"{loaded.name}+lora", base_scores=True)
    rollouts = Rollouts(scenario, names, backend, config.train)
    state_dim = int(rollouts.engine.game.state_dim)
    learner = LLMPPO(lm, config, config.centralised_critic, state_dim, names, seed)
    loop: dict[str, Any] = {"episode": 0, "next_eval": None, "eval_every": eval_every or max(1, steps // 5),
                            "wall_s": 0.0, "rows": [], "final_eval": {}}
    env_steps = 0
    if start is not None:
        restore(start, resume, lm, learner)
        loop = {**start["loop"], "eval_every": eval_every or start["loop"]["eval_every"]}
        env_steps = int(start["env_steps"])

    write_resolved(out_dir, algo, names, seed, steps, device, config, scenario, resume)
    writer = CurveWriter(out_dir, curve_columns(LLMPPO.METRICS, names, rollouts.engine.game, success=False), tensorboard)
    adapter_dir, checkpoint = out_dir / ("adapters" if per_agent else "adapter"), out_dir / "checkpoint.pt"
    for row in loop["rows"]:  # the curve so far (a resumed run's file holds the whole curve)
        writer.write(row)
    eval_every = loop["eval_every"]
    next_eval = loop["next_eval"] or eval_every
    started = time.perf_counter() - loop["wall_s"]
    episode = loop["episode"]
    final_eval: dict[str, float] = loop["final_eval"]
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
            release_freed_memory()  # the update's activations: back to the OS until the next one
            row: dict[str, Any] = {"step": env_steps, "seed": seed, "wall_s": round(time.perf_counter() - started, 3),
                                   "episodes": len(returns), "episode_return_mean": float(np.mean(returns))}
            row.update({f"return/{a}": float(np.mean([r[i] for r in returns])) for i, a in enumerate(names)})
            if coop[1] > 0:
                row["cooperation_rate"] = coop[0] / coop[1]
            row.update(metrics)
            loop["rows"].append(row)
            if env_steps >= next_eval or env_steps >= steps:
                final_eval = evaluate_llm(rollouts, names, eval_episodes, seed, config.batched)
                row.update(final_eval)
                next_eval = env_steps + eval_every
                loop.update(episode=episode, next_eval=next_eval, wall_s=row["wall_s"], final_eval=final_eval)
                save_llm_checkpoint(lm, learner, adapter_dir, checkpoint, algo, names, given, seed, env_steps, loop)
            writer.write(row)
            if on_progress is not None:
                on_progress(env_steps, {**metrics, **final_eval})
    finally:
        writer.close()
    adapters = {a: adapter_dir / a for a in names} if per_agent else adapter_dir
    play = write_llm_play_scenario(scenario, names, adapters, out_dir / "play.yaml")
    eval_run = play_final_episodes(play, final_episodes, seed, out_dir)
    return TrainResult(out_dir=out_dir, checkpoint=adapter_dir, curves=writer.path, play_scenario=out_dir / "play.yaml",
                       env_steps=env_steps, learners=names, final_eval=final_eval, tensorboard=writer.tb is not None,
                       eval_run=eval_run)


def selfplay_scenario(scenario: Any, names: Sequence[str]) -> tuple[Any, list[str]]:
    """Self-play: every seat plays the first learner's LLM spec (one policy, one adapter),
    and every seat learns. The other seats' own policies are set aside."""
    from mas.scenario import parse_scenario

    data = scenario.to_dict()
    spec = next(a["policy"] for a in data["agents"] if a["id"] == names[0])
    for agent in data["agents"]:
        agent["policy"] = json.loads(json.dumps(spec))
    played = parse_scenario(data, source=f"{scenario.name} (self-play)")
    return played, played.agent_ids


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
    backends = rollouts.all_backends()
    base_scores = [b.base_scores for b in backends]
    for b in backends:
        b.base_scores = False  # no KL needed here
    try:
        for e, (_, stats) in enumerate(play_episodes(rollouts, child_seed(seed, "eval"), 0, episodes, batched)):
            returns[e] = [stats.returns[a] for a in names]
            coop = [coop[0] + stats.coop[0], coop[1] + stats.coop[1]]
    finally:
        for b, kept in zip(backends, base_scores):
            b.base_scores = kept
    out = {f"eval_return/{a}": float(returns[:, i].mean()) for i, a in enumerate(names)}
    if coop[1] > 0:  # learners pooled (they share adapters)
        out.update({f"eval_cooperation/{a}": coop[0] / coop[1] for a in names})
    return out


def _last_layers(loaded: Any, count: int) -> tuple[int, ...] | None:
    """The decoder layers that get adapters: the last `count` (0: every layer, None)."""
    if count == 0:
        return None
    depth = int(loaded.model.config.num_hidden_layers)
    if count > depth:
        raise MasError(f"lora_layers: {count} is more than the {depth} decoder layers of {loaded.name}")
    return tuple(range(depth - count, depth))
