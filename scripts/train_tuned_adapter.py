"""Train the packaged `tuned` LoRA adapter of the embedded model (SmolLM2-135M-Instruct).

    PYTHONPATH=. python scripts/train_tuned_adapter.py [--out mas/agents/llm/adapters/tuned] [--seed 0]

Behaviour cloning (`mas.training.llm_bc`) of a reciprocating teacher (`mas.agents.llm.teacher`:
tit for tat that announces its move in talk steps) on the LLM agents' own prompts in the
built-in prisoner's dilemma scenarios (llm_vs_tft, llm_vs_always_defect, llm_vs_tit_for_tat,
llm_prisoners_dilemma, flagship), each with its scripted seat played in turn by tit for tat,
always defect, always cooperate, grim trigger and a random player. Score-mode, generate-mode,
talk and action prompts (both option orders where the scenario debiases) are all cloned.

Each distinct prompt is weighted by how often the episodes met it (at most `--cap` times), so
the first round's prompt (no history, met in every episode) counts as it does in play. Two
stages: `--steps` updates on every reply (actions and messages, loss per token), then
`--action-steps` updates on a mix in which the action replies are up-weighted (cooperation
depends on them, and they are a minority of the tokens) and messages are kept (a share
`--message-share` of the examples; without them the second stage undoes the talk), with the
loss averaged per reply. One command trains both stages. Everything is seeded from `--seed` (demonstration episodes, adapter
initialisation, example order), so on the CPU a seed gives the same adapter. Adapters go on
the query and value projections of the last `--layers` decoder layers (rank 8): the layers
below need no backward pass, which keeps a step cheap on the CPU. Prints the budget (examples, updates,
wall time) and writes the adapter (peft directory, a few MB) and `training.json` beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mas.agents.llm.teacher import ReciprocatorTeacher
from mas.overrides import load_with_sets
from mas.seeding import child_seed
from mas.training.llm_bc import BCConfig, clone, demonstrations, mixed, unique, weighted

OPPONENTS = ("tit_for_tat", "always_defect", "always_cooperate", "grim_trigger", "{type: random, p: 0.5}")
#: (scenario, the seat that a scripted opponent takes in turn, or None: only the LLM seats as they are)
SCENARIOS = (
    ("llm_vs_tft", "tft"),
    ("llm_vs_always_defect", "alld"),
    ("llm_vs_tit_for_tat", "tft"),
    ("llm_prisoners_dilemma", "bob"),
    ("flagship", "carol"),
)


def variants() -> list[tuple[str, list[str]]]:
    """(scenario name, --set overrides): each scenario with each opponent in its scripted
    seat, plus the two-LLM scenarios as shipped (both LLM seats played by the teacher)."""
    out = [(name, [f"agents.{seat}.policy={opponent}"]) for name, seat in SCENARIOS for opponent in OPPONENTS]
    out += [("llm_prisoners_dilemma", []), ("flagship", [])]
    return out


ACTIONS = ("C", "D")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("mas/agents/llm/adapters/tuned"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=2, help="demonstration episodes per variant")
    parser.add_argument("--steps", type=int, default=60, help="first stage: updates on every reply")
    parser.add_argument("--batch", type=int, default=BCConfig.batch)
    parser.add_argument("--lr", type=float, default=BCConfig.lr)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--layers", type=int, default=6, help="adapters on the last N decoder layers (0: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--action-steps", type=int, default=60,
                        help="second stage: updates on the action replies (up-weighted) mixed with messages")
    parser.add_argument("--message-share", type=float, default=0.25,
                        help="the messages' share of the second stage's examples")
    parser.add_argument("--cap", type=int, default=8, help="a distinct prompt counts at most this many times")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the packaged adapter: 1; float sums may differ with more)")
    parser.add_argument("--init", type=Path, default=None,
                        help="start the second stage from this first-stage adapter instead of training the first")
    args = parser.parse_args(argv)

    from mas.agents.llm.models import load_model
    from mas.agents.rl.llm_model import LoraSettings, TrainableLM

    torch.set_num_threads(max(1, args.threads))
    started = time.perf_counter()
    teacher = ReciprocatorTeacher()
    examples = []
    for i, (name, sets) in enumerate(variants()):
        scenario = load_with_sets(name, sets)
        examples += demonstrations(scenario, teacher, args.episodes, child_seed(args.seed, "demo", i))
    data = weighted(examples, args.cap)
    print(f"demonstrations: {len(examples)} replies, {len(unique(examples))} distinct, {len(data)} weighted, {time.perf_counter() - started:.1f}s", flush=True)

    loaded = load_model("default", args.device, "float32")
    depth = int(loaded.model.config.num_hidden_layers)
    layers = None if args.layers <= 0 else tuple(range(max(0, depth - args.layers), depth))
    lm = TrainableLM(loaded, LoraSettings(rank=args.rank, alpha=2.0 * args.rank, layers=layers), child_seed(args.seed, "lora"))
    # the system turn (rules, persona) is computed once per batch without a gradient: the
    # adapters learn from the rest of the prompt, and a step costs about half as much
    lm.prefix_grad = False
    config = BCConfig(steps=args.steps, batch=args.batch, lr=args.lr)
    trained = time.perf_counter()

    def progress(step: int, loss: float) -> None:
        if step % 5 == 0:
            print(f"step {step + 1} loss {loss:.4f} ({time.perf_counter() - trained:.0f}s)", flush=True)

    if args.init is None:
        losses = clone(lm, data, config, args.seed, progress)
    else:  # the first stage's result, saved by an earlier run of this script with the same settings
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(lm.model, load_file(str(args.init / "adapter_model.safetensors")))
        losses = [float("nan")]
    mix = mixed([e for e in data if e[1] in ACTIONS], [e for e in data if e[1] not in ACTIONS],
                args.message_share, child_seed(args.seed, "mix"))
    second = BCConfig(steps=args.action_steps, batch=args.batch, lr=args.lr, per_example=True)
    print(f"second stage: {len(mix)} replies ({sum(e[1] in ACTIONS for e in mix)} actions), {second.steps} updates",
          flush=True)
    stage1 = len(losses)
    losses += clone(lm, mix, second, child_seed(args.seed, "actions"), progress)
    wall = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    lm.save(args.out)
    for extra in ("README.md",):  # peft writes a model card template; the adapter needs none
        (args.out / extra).unlink(missing_ok=True)
    config_file = args.out / "adapter_config.json"  # name the base model, not this machine's cache path
    adapter_config = json.loads(config_file.read_text())
    adapter_config["base_model_name_or_path"] = loaded.name
    config_file.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")
    summary = {"seed": args.seed, "episodes_per_variant": args.episodes, "variants": len(variants()),
               "examples": len(examples), "distinct_examples": len(unique(examples)), "weighted_examples": len(data),
               "cap": args.cap, "message_share": args.message_share, "steps": config.steps, "action_steps": second.steps, "batch": config.batch,
               "lr": config.lr, "lora_rank": args.rank, "lora_layers": args.layers, "device": args.device, "first_loss": losses[0],
               "stage1_final_loss": float(np.mean(losses[max(0, stage1 - 5):stage1])), "final_loss": float(np.mean(losses[-5:])),
               "wall_s": round(wall, 1), "train_s": round(time.perf_counter() - trained, 1),
               "threads": torch.get_num_threads()}
    (args.out / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
