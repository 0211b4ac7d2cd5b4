"""The GPU figures of issue 17, in one run (`benchmarks/gpu_check.sh` calls this on CUDA).

    python benchmarks/gpu_check.py [--device cuda] [--seconds 5] [--small]

Prints, one line each:
1. batched agent-steps/s of the iterated PD at 65,536 copies (the vector env, observations
   as tensors on the device),
2. MAPPO env-steps/s on the signalling and the private-coordination scenarios,
3. LLM decisions/s in score mode for 64 agents (the embedded model, fp32 and bf16),
4. llm-ppo env-steps/s against tit for tat (the embedded model).
Each part is timed on its own and a failing part prints its one-line error and the others
still run (exit status 1 if any failed). `--small` shrinks everything (a dry run on CPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def batched_steps(device: str, copies: int, seconds: float) -> str:
    from train_speed import pd

    from mas.vector import VectorEnv

    scenario, learners = pd(None)
    env = VectorEnv(scenario, learners, copies, seed=0, device=device)
    env.reset()
    actions = np.random.default_rng(0).integers(0, 2, size=(8, copies, len(learners)))
    env.step(actions[0])
    start, steps, i = time.perf_counter(), 0, 0
    while time.perf_counter() - start < seconds:
        env.step(actions[i % 8])
        steps, i = steps + copies * len(learners), i + 1
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return f"batched PD, {copies:,} copies: {steps / (time.perf_counter() - start):,.0f} agent-steps/s"


def mappo_steps(device: str, scenario_file: str, copies: int, seconds: float) -> str:
    from train_speed import time_training

    from mas.agents.rl.config import MAPPOConfig
    from mas.scenario import load_scenario

    scenario = load_scenario(HERE.parent / "scenarios" / scenario_file)
    learners = [a.id for a in scenario.agents if a.policy.type == "mappo"]
    name, rate = time_training(f"MAPPO {scenario_file}", (scenario, learners), "mappo", MAPPOConfig(num_envs=copies), device, seconds)
    return f"{name}, {copies} copies: {rate:,.0f} env-steps/s"


def llm_decisions(device: str, agents: int, rounds: int) -> str:
    import llm_speed
    from llm_speed import TransformersBackend, decisions_per_second, load_model

    out = []
    for dtype in ("float32", "bfloat16"):
        loaded = load_model(device=device, dtype=dtype)
        decisions_per_second("score", TransformersBackend(loaded, reuse_kv=True), agents, rounds)  # warm-up
        llm_speed.clock = time.perf_counter
        rate = decisions_per_second("score", TransformersBackend(loaded, reuse_kv=True), agents, rounds)
        out.append(f"{dtype} {rate:,.1f}")
    return f"LLM score mode, {agents} agents, {rounds} rounds: decisions/s " + ", ".join(out)


def llm_ppo_steps(device: str, steps: int) -> str:
    from mas.scenario import load_scenario
    from mas.training.run import train

    scenario = load_scenario(HERE.parent / "scenarios" / "llm_vs_tft.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train(scenario, "llm-ppo", steps, 0, Path(tmp) / "run", device=device, eval_episodes=1,
                       final_episodes=0, overrides={"epochs": 2}, tensorboard=False)
        seconds = time.perf_counter() - start
    return f"llm-ppo vs tit for tat: {result.env_steps} env steps in {seconds:.1f}s = {result.env_steps / seconds:,.2f} env-steps/s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--small", action="store_true", help="tiny sizes: check the script itself on a CPU")
    args = parser.parse_args()
    small = args.small
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    parts = [
        lambda: batched_steps(args.device, 1024 if small else 65_536, args.seconds),
        lambda: mappo_steps(args.device, "signalling_mappo.yaml", 16 if small else 1024, args.seconds),
        lambda: mappo_steps(args.device, "private_coordination.yaml", 16 if small else 1024, args.seconds),
        lambda: llm_decisions(args.device, 4 if small else 64, 1 if small else 3),
        lambda: llm_ppo_steps(args.device, 8 if small else 256),
    ]
    failed = 0
    for part in parts:
        try:
            print(part(), flush=True)
        except Exception as exc:  # report and go on: one broken part must not hide the others
            failed += 1
            last = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} ({last.filename}:{last.lineno})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
