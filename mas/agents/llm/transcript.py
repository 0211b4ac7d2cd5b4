"""Reading an LLM run back: what each agent was shown, said and chose, round by round.

The run store's `decisions` table holds one JSON record per agent per step (see
`mas.agents.llm.policy`). `transcript` turns those into a DataFrame, and `render` into text
for `mas transcript RUN --agent alice --round 2`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mas.errors import MasError

COLUMNS = ["episode", "step", "round", "agent", "talking", "mode", "status", "action", "distribution", "message",
           "narration", "raw", "prompt", "prompt_tokens", "completion_tokens"]


def transcript(run_dir: Path | str, agent: str | None = None, round: int | None = None, episode: int | None = None) -> Any:
    """One row per recorded decision, oldest first, optionally for one agent, round (1-based)
    and episode. `prompt` is the rendered conversation (a list of {role, content})."""
    import pandas as pd

    from mas.store import RunStore

    where, params = [], []
    for column, value in (("agent", agent), ("round", None if round is None else round - 1), ("episode", episode)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = "SELECT episode, step, round, agent, talking, record FROM decisions"
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY episode, step, rowid"
    with RunStore.open(Path(run_dir)) as store:
        rows = store.query(sql, params)
    out = []
    for episode_, step, round_, agent_, talking, text in rows:
        record = json.loads(text)
        tokens = record.get("tokens", {})
        out.append({
            "episode": episode_, "step": step, "round": round_ + 1, "agent": agent_, "talking": bool(talking),
            "mode": record.get("mode"), "status": record.get("status"), "action": record.get("action"),
            "distribution": record.get("distribution"), "message": record.get("message", ""),
            "narration": record.get("narration", ""), "raw": record.get("raw"), "prompt": record.get("prompt"),
            "prompt_tokens": tokens.get("prompt", 0), "completion_tokens": tokens.get("completion", 0),
        })
    if not out:
        found = [f"{name} {value}" for name, value in (("agent", agent), ("round", round), ("episode", episode)) if value is not None]
        raise MasError(f"{run_dir}: no LLM decisions recorded" + (f" for {', '.join(found)}" if found else ""))
    return pd.DataFrame(out, columns=COLUMNS)


def render(frame: Any, prompts: bool = False) -> str:
    """The transcript as readable text: a line per decision, the prompt too if asked."""
    lines = []
    for row in frame.itertuples(index=False):
        head = f"episode {row.episode} round {row.round} step {row.step} {row.agent}"
        if row.talking:
            lines.append(f"{head} says: {row.message!r}")
        else:
            odds = ""
            if isinstance(row.distribution, dict):
                odds = " (" + ", ".join(f"{k} {v:.2f}" for k, v in row.distribution.items()) + ")"
            said = f"; says {row.message!r}" if row.message else ""
            lines.append(f"{head} plays {row.action} [{row.status}]{odds}{said}")
        if row.narration:
            lines.append(f"    narrator: {row.narration}")
        if row.raw and not row.talking:
            lines.append(f"    raw reply: {row.raw!r}")
        if prompts and row.prompt:
            for turn in row.prompt:
                lines.append(f"    [{turn['role']}]")
                lines.extend(f"      {line}" for line in turn["content"].splitlines())
    return "\n".join(lines)
