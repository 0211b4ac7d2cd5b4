"""Playing B copies of a scenario with LLM agents at once, and the prisoner's-dilemma
behaviour measures of the experiment.

`play_copies` drives one `mas.episode.EpisodeEngine` of B copies (the engine is the loop;
this only reads its transitions, as `mas.tournament.batch` does): the LLM policy answers
every copy's prompts in one backend call per step, so the shared rules are computed once.
Copies may hold different partners (`rosters`). Each copy is recorded as plain data (its
actions per round, the game's summary after each round, its messages and the LLM
decisions' stored distributions), which `run.py` writes to `results.json`.

The behaviour measures (Fontana, Pierri & Aiello 2024, "Nicer than humans", after
Axelrod's dimensions), for an agent's moves `a` and its partner's `o` over one game,
rounds t = 0..T-1, 1 meaning cooperate; each is a share of the occasions it names, pooled
over games (NaN when the occasion never arises):

- niceness: share of games in which the agent is never the first to defect (it does not
  defect in any round before the partner's first defection; games without any defection
  by the agent count as nice);
- forgiveness: P(a[t+1] = C | o[t] = D): cooperating right after being defected on;
- retaliation: P(a[t+1] = D | o[t] = D and a[t] = C): answering an uncalled-for defection
  (one that hit the agent while it cooperated) with a defection;
- troublemaking: P(a[t] = D | t = 0 or o[t-1] = C): defecting without being provoked;
- emulation: P(a[t+1] = o[t]): copying the partner's last move.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def play_copies(scenario: Any, copies: int, seed: int, rosters: Sequence[Sequence[Any]] | None = None) -> list[dict[str, Any]]:
    """Play one episode in each of `copies` copies of `scenario` (policy seeds from `seed`
    and the copy's episode id) and return each copy's record (see the module docstring)."""
    from mas.episode import EpisodeEngine
    from mas.seeding import child_seed

    engine = EpisodeEngine(scenario, copies, seed=seed, record_summaries=True, copy_agents=rosters)
    engine.reset(np.random.default_rng(child_seed(seed, "episode", 0)), episodes=list(range(copies)))
    ids = engine.agent_ids
    names = engine.info.action_names
    out: list[dict[str, Any]] = [{"agents": ids, "actions": [], "rewards": [], "summaries": [], "messages": [],
                                  "distributions": [], "cooperation": []} for _ in range(copies)]
    while engine.active.any():
        t = engine.step()
        for c in np.flatnonzero(t.active).tolist():
            record = out[c]
            record["messages"] += [{"round": m.round, "sender": m.sender, "text": m.text} for m in t.messages[c]]
            if t.talking:
                continue
            record["actions"].append([names[s][int(a)] for s, a in enumerate(t.actions[c])])
            record["rewards"].append([float(r) for r in t.rewards[c]])
            record["summaries"].append(t.summaries[c] if t.summaries is not None else None)
            if t.cooperation is not None:
                record["cooperation"].append([None if v != v else float(v) for v in t.cooperation[c]])
            record["distributions"].append({a: d.record.get("distribution") for a, d in t.decisions[c].items()
                                            if d.record and d.record.get("distribution")})
    return out


def unique_messages(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A copy's messages once per (round, sender, text): a broadcast is logged per recipient."""
    seen, out = set(), []
    for m in record["messages"]:
        key = (m["round"], m["sender"], m["text"])
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


# ----- prisoner's-dilemma measures -----------------------------------------------------------
def moves(record: dict[str, Any], seat: int, cooperate: str = "C") -> list[int]:
    """1 where the agent in `seat` cooperated, per round."""
    return [int(row[seat] == cooperate) for row in record["actions"]]


def behaviour(games: Sequence[tuple[Sequence[int], Sequence[int]]]) -> dict[str, float]:
    """The five measures of the module docstring over games of (agent moves, partner moves)."""
    counts = {k: [0, 0] for k in ("forgiveness", "retaliation", "troublemaking", "emulation")}
    nice = 0
    for a, o in games:
        first_o = next((t for t, m in enumerate(o) if m == 0), len(o))
        first_a = next((t for t, m in enumerate(a) if m == 0), len(a))
        nice += first_a >= first_o
        for t in range(len(a)):
            if t == 0 or o[t - 1] == 1:
                _count(counts["troublemaking"], a[t] == 0)
            if t + 1 < len(a):
                _count(counts["emulation"], a[t + 1] == o[t])
                if o[t] == 0:
                    _count(counts["forgiveness"], a[t + 1] == 1)
                    if a[t] == 1:
                        _count(counts["retaliation"], a[t + 1] == 0)
    out = {"niceness": nice / len(games) if games else math.nan}
    out.update({k: (hit / n if n else math.nan) for k, (hit, n) in counts.items()})
    return out


def _count(pair: list[int], hit: bool) -> None:
    pair[0] += int(hit)
    pair[1] += 1


def after_one_defection(games: Sequence[tuple[Sequence[float], Any]], k: int) -> dict[str, float]:
    """Akata et al.'s grim-trigger signature against a partner whose only defection is in
    round `k`: the agent's cooperation rate in round k+1 (right after it), in rounds after
    k+1, and in rounds up to k (before the agent could know of it). The moves may be
    probabilities of cooperating (the mean probability then)."""
    def rate(rounds: range) -> float:
        values = [a[t] for a, _ in games for t in rounds if t < len(a)]
        return float(np.mean(values)) if values else math.nan

    length = max((len(a) for a, _ in games), default=0)
    return {"after": rate(range(k + 1, k + 2)), "later": rate(range(k + 2, length)), "before": rate(range(0, k + 1))}
