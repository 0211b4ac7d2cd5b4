"""What moves the LLM policy's P(defect) on the embedded model, with mas's own PD prompts.

Renders the default prisoner's-dilemma prompt of `mas.agents.llm.prompts` (the rules of the
`prisoners_dilemma` scenario, a persona, a five-round history) and scores C and D with the
local backend, as `mode: score` does. Reports P(D) for

- the option order ("C, D" vs "D, C" in the reply instruction) and their average, which is
  what `debias: true` uses;
- a selfish vs a cooperative persona;
- a history of five opponent cooperations vs five defections;

and the time per debiased decision. The 135M model is a plumbing default, not a player: the
point is to show how much each factor moves it. Prints figures; never part of the tests.

    python benchmarks/llm_policy_effects.py [--model default]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mas
from mas.agents.llm.backend import ScoreRequest
from mas.agents.llm.config import LocalBackendConfig
from mas.agents.llm.factory import get_backend
from mas.agents.llm.policy import softmax
from mas.agents.llm.prompts import PromptBuilder, PromptContext

PERSONAS = {
    "none": "",
    "selfish": "You are a ruthless trader who only cares about your own points.",
    "cooperative": "You are a generous person who always wants both players to do well.",
}


def history(opponent: str, rounds: int = 5) -> list[dict]:
    """`rounds` past rounds where this agent cooperated and the opponent played `opponent`."""
    reward = "3" if opponent == "C" else "0"
    return [{"round": r + 1, "you": "C", "others": [{"agent": "bob", "action": opponent}], "reward": reward} for r in range(rounds)]


def p_defect(backend, builder: PromptBuilder, base: PromptContext, order: list[str], **changes) -> float:
    context = PromptContext(**{**base.__dict__, "options": order, **changes})
    [scores] = backend.score([ScoreRequest(messages=builder.render(context), candidates=("C", "D"))])
    return float(softmax(np.array(scores.logprobs), 1.0)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="local model directory or 'default'")
    args = parser.parse_args()

    env = mas.make_env("prisoners_dilemma", seed=0)
    view = env.views(text=True)["alice"]
    builder = PromptBuilder(env.game.info().task)
    base = PromptContext(agent="alice", round=6, talking=False, rules=view.rules,
                         situation="Rounds played: 5.", options=["C", "D"])
    started = time.perf_counter()
    backend = get_backend(LocalBackendConfig(model=args.model))
    print(f"model {backend.info.model} loaded in {time.perf_counter() - started:.1f} s")

    print("\nP(defect) by listed option order (fixed history: the opponent cooperated 5 times)")
    print(f"{'persona':<12} {'C, D':>7} {'D, C':>7} {'averaged':>9}")
    rows = {}
    for name, persona in PERSONAS.items():
        forward = p_defect(backend, builder, base, ["C", "D"], persona=persona, history=history("C"))
        backward = p_defect(backend, builder, base, ["D", "C"], persona=persona, history=history("C"))
        rows[name] = (forward + backward) / 2
        print(f"{name:<12} {forward:>7.3f} {backward:>7.3f} {rows[name]:>9.3f}")
    print(f"persona effect (selfish - cooperative, averaged): {rows['selfish'] - rows['cooperative']:+.3f}")

    print("\nP(defect) by history (no persona)")
    print(f"{'opponent played':<16} {'C, D':>7} {'D, C':>7} {'averaged':>9}")
    averaged = {}
    for opponent in ("C", "D"):
        forward = p_defect(backend, builder, base, ["C", "D"], history=history(opponent))
        backward = p_defect(backend, builder, base, ["D", "C"], history=history(opponent))
        averaged[opponent] = (forward + backward) / 2
        print(f"{'5 x ' + opponent:<16} {forward:>7.3f} {backward:>7.3f} {averaged[opponent]:>9.3f}")
    print(f"history effect (after 5 D - after 5 C, averaged): {averaged['D'] - averaged['C']:+.3f}")

    repeats = 8
    started = time.perf_counter()
    for i in range(repeats):
        for order in (["C", "D"], ["D", "C"]):
            p_defect(backend, builder, base, order, persona=f"Player number {i}.", history=history("C"))
    per_decision = (time.perf_counter() - started) / repeats
    print(f"\ndebiased decision (2 orders scored): {per_decision * 1000:.0f} ms each, {1 / per_decision:.2f} decisions/s")


if __name__ == "__main__":
    main()
