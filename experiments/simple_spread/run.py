"""MAPPO on MPE simple_spread (mpe2, through mas's PettingZoo adapter): the return curve next
to random play.

The learner, configuration and units are those of `benchmarks/mappo_simple_spread.py`
(imported, not copied): the official MPE configuration of Yu et al. (128 copies, 25-step
rollouts, 10 epochs, lr 7e-4, shared actor, centralised critic on `env.state()`), 3 agents,
25-step episodes. Per seed: the mean per-agent return of the training episodes along the
way, then 100 greedy episodes at the end and 100 random-play episodes (the baseline, -26.1
per agent measured before). Official units (the paper's curves): 6 x per-agent - 75.
Reference: random play -26.1 per agent (about -232 official); the paper's MAPPO reaches
about -120 official (about -7.5 per agent) after 20M steps.
Budget: the CPU run here is 100k steps a seed (about 1 CPU-minute); the paper's budget is
ready for a GPU: `--device cuda --steps 20000000` (the env copies still step on the CPU).
`--quick` trains 32 copies for 40k steps (more updates for few steps).

    python experiments/simple_spread/run.py [--quick] [--seeds 3] [--workers 2] [--steps N] [--num-envs N]
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gallery as g  # noqa: E402

FOLDER = Path(__file__).resolve().parent
STEPS, QUICK_STEPS = 100_000, 40_000
NUM_ENVS, QUICK_NUM_ENVS = 128, 32
POINTS = 20  # points of the return curve


def benchmark() -> Any:
    """`benchmarks/mappo_simple_spread.py` as a module (make_env, evaluate, official_units...)."""
    spec = importlib.util.spec_from_file_location("mappo_simple_spread", g.REPO / "benchmarks" / "mappo_simple_spread.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RandomPlay:
    """Uniform random legal actions, with a learner's `act_batch` (for the benchmark's `evaluate`)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act_batch(self, step: Any, greedy: bool = True) -> np.ndarray:
        mask = step.mask.cpu().numpy()
        scores = self.rng.random(mask.shape) * mask
        return scores.argmax(-1)


def one_seed(seed: int, steps: int, num_envs: int, device: str) -> dict[str, Any]:
    """Train one seed: the curve [(env steps, mean per-agent training return)], the final
    greedy return and random play's, per agent per episode."""
    import torch

    from mas.agents.rl.config import MAPPOConfig
    from mas.agents.rl.mappo import MAPPO
    from mas.agents.rl.pettingzoo_adapter import PettingZooVectorEnv

    bench = benchmark()
    torch.set_num_threads(1)
    torch_device = torch.device(device)
    env = PettingZooVectorEnv(bench.make_env, num_envs=num_envs, seed=seed, device=torch_device)
    learner = MAPPO(MAPPOConfig(num_envs=num_envs), env, torch_device, seed=seed)
    step, curve, recent, next_point = env.reset(), [], [], steps // POINTS
    while learner.env_steps < steps:
        step, _, _ = learner.collect_and_update(env, step)
        if len(step.finished_returns):
            recent.append(step.finished_returns.mean(1))
        if learner.env_steps >= next_point and recent:
            curve.append((learner.env_steps, float(np.concatenate(recent).mean())))
            recent, next_point = [], next_point + steps // POINTS
    env.close()
    return {"curve": curve, "greedy": bench.evaluate(learner, 100, seed + 1),
            "random": bench.evaluate(RandomPlay(seed), 100, seed + 1)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    def options(parser: Any) -> None:
        parser.add_argument("--steps", type=int, default=None, help=f"env steps a seed (default {STEPS:,}; {QUICK_STEPS:,} with --quick)")
        parser.add_argument("--num-envs", type=int, default=None, help=f"env copies (default {NUM_ENVS}; {QUICK_NUM_ENVS} with --quick)")

    args = g.parse(argv, __doc__.splitlines()[0], seeds=3, quick_seeds=2, folder=FOLDER, options=options)
    steps = args.steps or (QUICK_STEPS if args.quick else STEPS)
    num_envs = args.num_envs or (QUICK_NUM_ENVS if args.quick else NUM_ENVS)
    job = dict(steps=steps, num_envs=num_envs, device=args.device)
    per_seed = g.run_settings(one_seed, {"mappo": job}, args.seeds, args.workers)["mappo"]
    report(per_seed, steps, num_envs, args.out)
    return {"per_seed": per_seed, "steps": steps}


def report(per_seed: list[dict[str, Any]], steps: int, num_envs: int, out: Path) -> None:
    bench = benchmark()
    greedy = [s["greedy"] for s in per_seed]
    rand = [s["random"] for s in per_seed]
    last = [s["curve"][-1][1] for s in per_seed]
    rows = []
    for label, values, ref in (("MAPPO, greedy, end of training", greedy, "about -7.5 (-120 official) at 20M steps"),
                               ("MAPPO, training episodes, last 5% of steps", last, "(sampled actions)"),
                               ("random play", rand, f"{bench.RANDOM_PER_AGENT} (measured)")):
        mean, low, high = g.mean_interval(values)
        rows.append({"policy": label, "mas: return per agent per episode [95% CI]": g.fmt((mean, low, high)),
                     "official units [95% CI]": g.fmt(tuple(bench.official_units(v) for v in (mean, low, high)), 1),
                     "reference (per agent)": ref})
    _figure(per_seed, bench, out)
    g.write_results(out, f"MAPPO on simple_spread ({len(per_seed)} seeds, {steps:,} steps, {num_envs} copies)", rows,
                    notes=NOTES, data={"steps": steps, "num_envs": num_envs, "per_seed": per_seed})


NOTES = """Returns are mpe2's per-agent episode returns (25 steps, local_ratio 0.5); official units = 6 x per-agent - 75
(the official reward also counts each agent's collision with itself; see benchmarks/mappo_simple_spread.py).
The paper's -120 is at 20M steps; this CPU budget is a small fraction of it."""


def _figure(per_seed: list[dict[str, Any]], bench: Any, out: Path) -> None:
    fig, (ax,) = g.figure()
    for i, s in enumerate(per_seed):
        x, y = zip(*s["curve"])
        ax.plot(np.asarray(x) / 1000, y, color="#0072B2", alpha=0.6, lw=1, label="MAPPO (training episodes), per seed" if i == 0 else None)
    ax.axhline(np.mean([s["greedy"] for s in per_seed]), color="#0072B2", ls="--", label="MAPPO greedy, end (mean)")
    ax.axhline(bench.RANDOM_PER_AGENT, color="#999999", ls=":", label=f"random play ({bench.RANDOM_PER_AGENT})")
    ax.axhline((bench.PAPER_REFERENCE - bench.SELF_COLLISIONS) / 6, color="#E69F00", ls="--", label="official MAPPO, 20M steps")
    ax.set_xlabel("training steps (thousands)")
    ax.set_ylabel("return per agent per episode")
    ax.legend(fontsize=7)
    g.save(fig, out)


if __name__ == "__main__":
    result = main()
    print({k: np.mean([s[k] for s in result["per_seed"]]) for k in ("greedy", "random")})
