"""Speed of LLM decisions on the embedded model: batched scoring against the naive loop.

Plays a mock iterated prisoner's dilemma prompt (rules ~100 tokens, a persona, a growing
history, ~160 tokens by round 3) for N agents over R rounds and reports decisions/s for:

- naive HF loop: one agent at a time, plain transformers (`model.generate`, 4 greedy
  tokens, the model as `from_pretrained` gives it), the reply parsed into an action: what a
  simple LLM-agent loop does, and the baseline of the 10x target;
- naive generate: the same loop through mas's backend, one agent at a time: mas's faster
  kernels (oneDNN linear layers on the CPU, `cpu_linear`) without batching or reuse, so
  that the two ratios printed split the gain into kernels and batching/reuse;
- naive score:    one agent at a time, every prompt+candidate computed in full;
- score, no reuse: all agents in one `score` call, one packed pass (prompts end to end, no
  padding, candidates as a token tree over their prompt), nothing kept between calls;
- score:          the default backend: also a prefix cache, so the common rules are computed
  once and each agent's next prompt only computes its new tokens.

Every method plays the whole workload once untimed first (kernels compiled for each shape,
memory touched), then again timed: figures are steady-state ones. The printed count of
prompt tokens computed per decision shows the bound: on a compute-bound CPU no scorer beats
a loop on the same kernels by much more than the ratio of the tokens they compute.

Then tokens/s of batched message generation (fp32 and bf16), and the option-order,
persona and history effects on P(defect) that make the 135M model a poor player.
Prints figures; never part of the tests.  python benchmarks/llm_speed.py [--agents 1 8 32]
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from typing import Any

import torch

from mas.agents.llm.backend import GenerateRequest, ScoreRequest
from mas.agents.llm.local import TransformersBackend, score_full_recompute
from mas.agents.llm.models import EMBEDDED_NAME, LoadedModel, embedded_model_dir, load_model

RULES = (
    "You are playing an iterated prisoner's dilemma against another player. In every round each of you "
    "chooses one action at the same time: COOPERATE or DEFECT. Points: if both cooperate, each gets 3. "
    "If both defect, each gets 1. If one defects and the other cooperates, the defector gets 5 and the "
    "cooperator gets 0. Your goal is to collect as many points as possible over all rounds. "
    "Answer with the name of one action."
)
print = functools.partial(print, flush=True)  # noqa: A001 (figures appear as they are measured)
clock = time.perf_counter  # --clock cpu: process CPU time, fair on a machine shared with other jobs
NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"]


def prompt(agent: int, round_: int, order: tuple[str, str] = ("COOPERATE", "DEFECT"), persona: str = "",
           history: list[tuple[str, str]] | None = None) -> tuple[dict[str, str], ...]:
    """The mock decision prompt of one agent in one round."""
    if history is None:
        history = [("COOPERATE" if (agent + r) % 3 else "DEFECT", "DEFECT" if (agent * r) % 2 else "COOPERATE")
                   for r in range(round_)]
    lines = [f"You are {NAMES[agent % len(NAMES)]} (player {agent}). {persona}".strip()]
    lines += [f"Round {r + 1}: you played {mine}, the other played {theirs}." for r, (mine, theirs) in enumerate(history)]
    lines.append(f"Round {len(history) + 1}. Choose {order[0]} or {order[1]}.")
    return ({"role": "system", "content": RULES}, {"role": "user", "content": "\n".join(lines)})


def parse_action(reply: str) -> str:
    """What a simple loop makes of a free-text reply."""
    return "DEFECT" if "DEFECT" in reply.upper() else "COOPERATE"


def plain_transformers_model(loaded: LoadedModel) -> Any:
    """The same weights loaded as plain transformers does, without any of mas's changes."""
    from transformers import AutoModelForCausalLM

    source = embedded_model_dir() if loaded.name == EMBEDDED_NAME else loaded.name
    return AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32).to(loaded.device).eval()


def decisions_per_second(method: str, backend: TransformersBackend, agents: int, rounds: int,
                         plain: Any = None) -> float:
    candidates = ("COOPERATE", "DEFECT")
    tokenizer = backend.tokenizer
    start = clock()
    for round_ in range(rounds):
        requests = [ScoreRequest(prompt(a, round_), candidates) for a in range(agents)]
        if method == "naive HF loop":
            for request in requests:
                inputs = tokenizer.apply_chat_template(list(request.messages), add_generation_prompt=True,
                                                       return_tensors="pt", return_dict=True).to(plain.device)
                with torch.inference_mode():
                    out = plain.generate(**inputs, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
                parse_action(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
        elif method == "naive generate":
            for request in requests:
                parse_action(backend.generate([GenerateRequest(request.messages, max_tokens=4)])[0].text)
        elif method == "naive score":
            for request in requests:
                score_full_recompute(backend, [request])
        else:
            backend.score(requests)
    return agents * rounds / (clock() - start)


def generation_tokens_per_second(backend: TransformersBackend, batch: int, tokens: int = 32) -> float:
    requests = [GenerateRequest(prompt(a, 1), max_tokens=tokens, temperature=0.7, seed=a) for a in range(batch)]
    backend.clear_cache()
    start = clock()
    replies = backend.generate(requests)
    return sum(r.completion_tokens for r in replies) / (clock() - start)


def p_defect(backend: TransformersBackend, messages: tuple[dict[str, str], ...]) -> float:
    logp = backend.score([ScoreRequest(messages, ("COOPERATE", "DEFECT"))])[0].logprobs
    return 1.0 / (1.0 + math.exp(logp[0] - logp[1]))


def behaviour(backend: TransformersBackend) -> None:
    """The effects reported in REFERENCES.md, measured on this prompt."""
    cd, dc = ("COOPERATE", "DEFECT"), ("DEFECT", "COOPERATE")
    five_c = [("COOPERATE", "COOPERATE")] * 5
    five_d = [("COOPERATE", "DEFECT")] * 5
    print("\nP(DEFECT) on the embedded model (agent 0, argmax-free, temperature 1):")
    for label, history in (("after 5 mutual cooperations", five_c), ("after 5 defections by the other", five_d)):
        by_order = [p_defect(backend, prompt(0, 0, order, history=history)) for order in (cd, dc)]
        print(f"  {label:34s} options C-then-D {by_order[0]:.2f}  D-then-C {by_order[1]:.2f}  averaged {sum(by_order) / 2:.2f}")
    for label, persona in (("selfish persona", "You care only about your own points and never trust anyone."),
                           ("cooperative persona", "You value fairness and always try to build mutual trust.")):
        by_order = [p_defect(backend, prompt(0, 0, order, persona=persona, history=five_c)) for order in (cd, dc)]
        print(f"  {label:34s} options C-then-D {by_order[0]:.2f}  D-then-C {by_order[1]:.2f}  averaged {sum(by_order) / 2:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--naive-max-agents", type=int, default=8, help="skip the slow naive loops above this many agents")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: count this process's CPU seconds (use with --threads 1 when other jobs share the CPU)")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)

    loaded = load_model(device=args.device, dtype="float32")
    print(f"model {loaded.name} on {loaded.device}, torch threads {torch.get_num_threads()}, {args.clock} clock, "
          f"prompt tokens by round: {[len(TransformersBackend(loaded).prompt_ids(prompt(0, r))) for r in range(args.rounds)]}")
    warm = TransformersBackend(loaded, reuse_kv=False)
    warm.score([ScoreRequest(prompt(0, 0), ("COOPERATE", "DEFECT"))])

    plain = plain_transformers_model(loaded)
    methods = ["naive HF loop", "naive generate", "naive score", "score, no reuse", "score"]
    print(f"\ndecisions/s (2 candidates, {args.rounds} rounds, fp32)")
    print(f"{'agents':>6} " + " ".join(f"{m:>15}" for m in methods) + "   score / naive HF loop, / naive generate")
    computed = {}
    for agents in args.agents:
        figures = {}
        for method in methods:
            if method.startswith("naive") and agents > args.naive_max_agents:
                continue
            # the whole workload once untimed, so that no method pays first-call costs
            decisions_per_second(method, TransformersBackend(loaded, reuse_kv=(method == "score")), agents,
                                 args.rounds, plain)
            backend = TransformersBackend(loaded, reuse_kv=(method == "score"))
            figures[method] = decisions_per_second(method, backend, agents, args.rounds, plain)
            if method == "score":
                computed[agents] = backend.cache.misses / (agents * args.rounds)
        cells = " ".join(f"{figures[m]:15.2f}" if m in figures else f"{'-':>15}" for m in methods)
        ratios = [figures["score"] / figures[m] if m in figures else float("nan") for m in ("naive HF loop", "naive generate")]
        print(f"{agents:>6} {cells}   {ratios[0]:.1f}x, {ratios[1]:.1f}x")
    lengths = [len(TransformersBackend(loaded).prompt_ids(prompt(a, r))) for a in range(8) for r in range(args.rounds)]
    print("prompt tokens computed per decision: naive " + f"{sum(lengths) / len(lengths):.0f}, score "
          + ", ".join(f"{computed[a]:.0f} ({a} agents)" for a in computed)
          + " (plus the candidates; this ratio bounds the speed-up where the CPU is compute-bound)")

    print("\nmessage generation, 32 tokens each, aggregate tokens/s")
    for dtype in ("float32", "bfloat16"):
        if dtype == "bfloat16" and loaded.device.type == "cpu" and not torch.backends.mkldnn.is_available():
            continue
        backend = TransformersBackend(load_model(device=args.device, dtype=dtype))
        row = [f"batch {b}: {generation_tokens_per_second(backend, b):.1f}" for b in (1, 8, 32)]
        print(f"  {dtype:9s} " + "   ".join(row))

    bf16 = TransformersBackend(load_model(device=args.device, dtype="bfloat16"), reuse_kv=True)
    fp32 = TransformersBackend(loaded, reuse_kv=True)
    agents = max(args.agents)
    start = clock()
    decisions_per_second("score", fp32, agents, args.rounds)
    t32 = clock() - start
    start = clock()
    decisions_per_second("score", bf16, agents, args.rounds)
    t16 = clock() - start
    requests = [ScoreRequest(prompt(a, 1), ("COOPERATE", "DEFECT")) for a in range(16)]
    agree = sum((a.logprobs[1] > a.logprobs[0]) == (b.logprobs[1] > b.logprobs[0])
                for a, b in zip(fp32.score(requests), bf16.score(requests)))
    print(f"\nscore with bf16 weights: {t32 / t16:.2f}x the speed of fp32 ({agents} agents); same argmax for {agree}/16 agents")
    behaviour(fp32)


if __name__ == "__main__":
    main()
