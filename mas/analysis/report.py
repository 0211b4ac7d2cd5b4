"""A self-contained HTML report of a run, training run or tournament.

One file, no network: figures are embedded as base64 PNG, styles and the few lines of
script are inline, and a Content-Security-Policy forbids loading anything else. Agents'
messages and LLM outputs are untrusted text, so the Jinja2 environment autoescapes
everything. The transcript viewer shows each episode round by round: messages, actions,
rewards, the game's state summary and, for agents whose policy keeps records (LLM
policies), every key of the record (prompt, raw output, distribution, ...).
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from mas.analysis import figures as figs
from mas.analysis.baselines import baselines_table, scenario_baselines
from mas.analysis.experiment import Experiment
from mas.analysis.load import Run
from mas.analysis.metrics import number
from mas.analysis.summary import format_value, summarize
from mas.analysis.tournaments import Tournament
from mas.errors import StoreError

#: episodes shown in the transcript viewer by default (the report stays small)
MAX_EPISODES = 20
#: keys of a decision record shown first, in this order; the rest follow alphabetically
_RECORD_ORDER = ("prompt", "messages", "raw", "output", "parsed", "parse_status", "status", "fallback", "distribution")


def build_report(result: Run | Tournament | Experiment, max_episodes: int = MAX_EPISODES) -> str:
    """The report of a run, tournament or experiment of several seeds as one HTML string."""
    if isinstance(result, Experiment):
        from mas.analysis.experiment import report_context

        context = report_context(result, max_episodes)
    elif isinstance(result, Tournament):
        context = _tournament_context(result, max_episodes)
    else:
        context = run_context(result, max_episodes)
    context["generated"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return _environment().get_template("report.html.j2").render(**context)


def write_report(result: Run | Tournament | Experiment, out: Path, max_episodes: int = MAX_EPISODES) -> Path:
    """Write the report to `out` (a file path); StoreError if it cannot be written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # fail before the work, not after
        html = build_report(result, max_episodes)
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return out


# ----- context of a run -------------------------------------------------------------------------
def run_context(run: Run, max_episodes: int) -> dict[str, Any]:
    summary = summarize(run)
    meta = _configuration(run)
    scenario = meta.get("scenario") if isinstance(meta.get("scenario"), dict) else {}
    seeds = meta.get("seeds")
    facts = [
        ("run directory", str(run.path)),
        ("game", (scenario.get("game") or {}).get("kind", "—")),
        ("agents", str(len(run.agents) or len(scenario.get("agents") or []) or "—")),
        ("seeds", ", ".join(map(str, seeds))) if isinstance(seeds, list) and seeds else ("master seed", str(meta.get("seed", "—"))),
        ("created", str(meta.get("created", "—"))),
    ]
    versions = meta.get("versions")
    if isinstance(versions, dict) and versions:
        facts.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    overview = [(name, format_value(value)) for name, value in summary.overview.items()]
    tables = []
    if len(summary.agents.columns):
        tables.append(table_block("Agents", summary.agents.reset_index(), "One row per agent; ± is a 95% confidence interval over episodes."))
        for title, frame in summary.tables.items():
            if title in {"talk matrix", "mutual cooperation by pair"}:
                tables.append(table_block(title.capitalize(), frame.reset_index(), ""))
            elif title == "promises":
                shown = frame[["episode", "step", "sender", "text", "stated_name", "action_name", "kept"]].rename(
                    columns={"stated_name": "stated action", "action_name": "next action"})
                tables.append(table_block("Promises", shown.head(200), "Stated intentions and the next action (first 200)."))
            elif title == "bargaining outcomes":
                tables.append(table_block(title.capitalize(), frame.head(200), "First 200 episodes." if len(frame) > 200 else ""))
    baselines = scenario_baselines(scenario)
    if baselines:
        tables.append(table_block("Exact baselines", baselines_table(baselines),
                                  "Computed by mas solve from the stored scenario: one agent's return per episode; "
                                  "drawn as grey reference lines on the return figures."))
    episodes = sorted(run.episodes["episode"].unique()) if len(run.episodes) else []
    return {
        "title": f"{scenario.get('name') or run.name}: run report",
        "description": scenario.get("description", ""),
        "facts": facts,
        "overview": overview,
        "overview_header": "value (± 95% CI over episodes)",
        "tables": tables,
        "figures": embed_figures(figs.run_figures({run.name: run}), run),
        "transcript": transcript_blocks(run, episodes[:max_episodes]),
        "animation": _animation(run, episodes[0]) if episodes else None,
        "has_records": bool(len(run.decisions)),
        "unit": "Episode",
        "transcript_note": f"Showing the first {max_episodes} of {len(episodes)} episodes." if len(episodes) > max_episodes else "",
        "scenario_json": json.dumps(scenario, indent=2) if scenario else "",
    }


def _animation(run: Run, episode: int) -> dict[str, Any] | None:
    """The first episode as an animated GIF (data URI payload), for games with a picture."""
    from mas.analysis.animation import MAX_FRAMES, episode_gif
    from mas.analysis.summary import GameFacts

    try:
        game = GameFacts(run).game
    except StoreError:
        return None
    data = episode_gif(game, run.states, episode)
    if data is None:
        return None
    steps = int((run.states["episode"] == episode).sum())
    shown = f"its first {MAX_FRAMES} of {steps} steps" if steps > MAX_FRAMES else f"all {steps} steps"
    return {"data": base64.b64encode(data).decode("ascii"),
            "caption": f"Episode {episode}, one frame per step ({shown}); the bar below the map shows how far the episode has got."}


def _configuration(run: Run) -> dict[str, Any]:
    """The run's stored configuration, completed from the `experiment.json` of a multi-seed
    experiment directory (`mas run --seeds`: one sub-directory per seed), so its report
    names the scenario and seeds even when the merged run carries no single store's meta."""
    path = Path(run.path) / "experiment.json"
    if not path.is_file():
        return run.meta
    try:
        experiment = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return run.meta
    if not isinstance(experiment, dict):
        return run.meta
    merged = {**experiment, **{k: v for k, v in run.meta.items() if v not in (None, {}, [])}}
    if isinstance(experiment.get("scenario"), dict) and not isinstance(run.meta.get("scenario"), dict):
        merged["scenario"] = experiment["scenario"]
    return merged


def transcript_blocks(run: Run, episodes: Sequence[int]) -> list[dict[str, Any]]:
    """Per episode, per round, per step: messages, actions with rewards, records, state."""
    from mas.analysis.communication import sent_messages

    wanted = set(int(e) for e in episodes)
    keep = lambda frame: frame[frame["episode"].isin(wanted)]  # noqa: E731
    sent = _by_step(keep(sent_messages(run.messages)))
    deliveries = {key: group for key, group in keep(run.messages).groupby(["episode", "step", "sender"])}
    steps = _by_step(keep(run.steps))
    records = _by_step(keep(run.decisions))
    states = _by_step(keep(run.states))
    # keys with a leading underscore are for machines (e.g. a grid's cell bitmasks for its picture)
    summary_columns = [c for c in run.states.columns if c not in {"episode", "step", "round"} and not str(c).startswith("_")]
    returns = run.episodes.groupby("episode") if len(run.episodes) else None
    out = []
    for episode in episodes:
        step_ids = sorted({s for (e, s) in (*steps, *sent, *records) if e == episode})
        rounds: dict[int, list[dict[str, Any]]] = {}
        for step in step_ids:
            key = (episode, step)
            acts, said, notes = steps.get(key), sent.get(key), records.get(key)
            first = next(f for f in (acts, said, notes) if f is not None)
            rounds.setdefault(int(first["round"].iloc[0]), []).append({
                "step": int(step),
                "talking": acts is None,
                "messages": [_message(row, deliveries[(episode, step, row.sender)]) for row in said.itertuples(index=False)]
                if said is not None else [],
                "actions": [{"agent": r.agent, "action": r.action_name, "illegal": bool(r.illegal), "reward": "—" if pd.isna(r.reward) else number(r.reward, 4),
                             "cooperation": "" if pd.isna(r.cooperation) else f"{float(r.cooperation):.2g}"}
                            for r in acts.itertuples(index=False)] if acts is not None else [],
                "records": [{"agent": r.agent, "fields": _record_fields(r.record)} for r in notes.itertuples(index=False)]
                if notes is not None else [],
                "state": _state_text(states[key], summary_columns) if key in states else "",
            })
        totals = returns.get_group(episode) if returns is not None and episode in returns.groups else pd.DataFrame()
        returns_text = ", ".join(f"{agent} {number(value, 4)}" for agent, value in zip(totals.get("agent", []), totals.get("return", [])))
        out.append({"episode": int(episode), "returns": returns_text, "rounds": sorted(rounds.items())})
    return out


def _by_step(frame: pd.DataFrame) -> dict[tuple[int, int], pd.DataFrame]:
    return {(int(e), int(s)): group for (e, s), group in frame.groupby(["episode", "step"])} if len(frame) else {}


def _message(row: Any, same: pd.DataFrame) -> dict[str, Any]:
    reached = [r for r in same["recipient"] if isinstance(r, str)]
    reasons = [r for r in same["reason"] if r]
    return {"sender": row.sender, "text": row.text, "to": ", ".join(reached) if reached else "nobody",
            "reason": "; ".join(sorted(set(reasons)))}


def _record_fields(record_json: str) -> list[dict[str, Any]]:
    """A decision record as (key, kind, value) rows: chat transcripts, text and JSON."""
    try:
        record = json.loads(record_json)
    except ValueError:
        return [{"key": "record", "kind": "text", "value": record_json}]
    if not isinstance(record, dict):
        return [{"key": "record", "kind": "text", "value": json.dumps(record, indent=1)}]
    rest = sorted(k for k in record if k not in _RECORD_ORDER and k != "calls")
    keys = [k for k in _RECORD_ORDER if k in record] + rest + (["calls"] if "calls" in record else [])  # raw backend calls last
    fields = []
    for key in keys:
        value = record[key]
        if isinstance(value, list) and value and all(isinstance(v, dict) and "content" in v for v in value):
            fields.append({"key": key, "kind": "chat", "value": [{"role": str(v.get("role", "")), "content": str(v["content"])} for v in value]})
        elif isinstance(value, str):
            fields.append({"key": key, "kind": "text", "value": value})
        else:
            fields.append({"key": key, "kind": "json", "value": json.dumps(value, indent=1, ensure_ascii=False, default=str)})
    return fields


def _state_text(state: pd.DataFrame, columns: Sequence[str]) -> str:
    if state.empty:
        return ""
    row = state.iloc[0]
    parts = []
    for column in columns:
        value = row[column]
        if isinstance(value, float) and math.isnan(value):
            continue
        if value is None:
            continue
        parts.append(f"{column}: {number(value, 4)}" if isinstance(value, float) else f"{column}: {value}")
    return "; ".join(parts)


# ----- context of a tournament ---------------------------------------------------------------
def _tournament_context(tournament: Tournament, max_matches: int) -> dict[str, Any]:
    r = tournament.ratings
    ranking = pd.DataFrame({
        "rank": r["rank"], "entrant": r["name"],
        "score / match [CI]": [f"{number(m, 4)} [{number(lo, 4)}, {number(hi, 4)}]" for m, lo, hi in zip(r["mean"], r["low"], r["high"])],
        "per round": r["per_round"], "rank kept": r["rank_stability"], "W/D/L": [f"{w}/{d}/{l}" for w, d, l in zip(r["wins"], r["draws"], r["losses"])],
        "Elo": [f"{e:.0f}" for e in r["elo"]], "matches": r["matches"],
    })
    spec = tournament.meta.get("tournament") if isinstance(tournament.meta.get("tournament"), dict) else {}
    scores = tournament.scores
    facts = [("tournament directory", str(tournament.path)), ("entrants", str(len(r))),
             ("matches", str(scores["match"].nunique())), ("repetitions", str(scores["repetition"].nunique())),
             ("format", str((spec.get("format") or {}).get("kind", "—"))), ("master seed", str(tournament.meta.get("seed", "—"))),
             ("created", str(tournament.meta.get("created", "—")))]
    overview = [("winner", str(r["name"].iloc[0]) if len(r) else "—")]
    if tournament.computed:
        overview.append(("note", "the tournament stopped before its summary; ratings computed here from the finished matches"))
    if len(tournament.ecology):
        final = tournament.ecology.iloc[-1].sort_values(ascending=False)
        overview.append(("largest final population share", f"{final.index[0]} ({final.iloc[0]:.3g})"))
    matches = scores.pivot_table(index=["match", "repetition"], columns="seat", values=["entrant", "score"], aggfunc="first")
    matches.columns = [f"{what} (seat {seat})" for what, seat in matches.columns]
    shown = sorted(scores["match"].unique())[:max_matches]
    return {
        "title": f"{tournament.name}: tournament report",
        "description": str(spec.get("description", "")),
        "facts": facts,
        "overview": overview,
        "overview_header": "value",
        "tables": [
            table_block("Ranking", ranking, "Mean score per match with the tournament's bootstrap interval; 'rank kept' is the share of "
                   "bootstrap resamples in which the entrant keeps its rank."),
            table_block("Payoff matrix", tournament.payoff.round(3).reset_index(), "Mean score per match of the row entrant against the column entrant."),
            table_block("Matches", matches.reset_index().head(200), "First 200 matches." if len(matches) > 200 else ""),
        ],
        "figures": embed_figures(figs.tournament_figures(tournament), tournament),
        "transcript": transcript_blocks(_matches_as_run(tournament, spec), shown),
        "has_records": bool(len(tournament.data.decisions)),
        "unit": "Match",
        "transcript_note": ("Matches are shown as episodes; the store keeps each seat's total score, not per-round rewards. "
                            + (f"Showing the first {max_matches} of {scores['match'].nunique()} matches."
                               if scores["match"].nunique() > max_matches else "")),
        "scenario_json": json.dumps(spec, indent=2) if spec else "",
    }


def _matches_as_run(tournament: Tournament, spec: dict[str, Any]) -> Run:
    """The tournament's matches in the run store's shape (a match is an episode, an agent
    is 'entrant [seat id]'), so the transcript viewer can show them round by round."""
    seat_ids = list(tournament.meta.get("seat_ids", []))
    comms = (spec.get("scenario") or {}).get("comms") or {}
    talk = int(comms.get("talk_rounds", 0)) if comms.get("mode", "off") != "off" else 0
    scores = tournament.scores
    label = {(m, seat_ids[s] if s < len(seat_ids) else str(s)): f"{e} [{seat_ids[s] if s < len(seat_ids) else s}]"
             for m, s, e in scores[["match", "seat", "entrant"]].itertuples(index=False)}
    actions = tournament.data.round_actions()
    steps = pd.DataFrame({
        "episode": actions["match"], "step": actions["round"] * (talk + 1) + talk, "round": actions["round"],
        "agent": [label.get((m, seat_ids[s] if s < len(seat_ids) else str(s)), str(s)) for m, s in zip(actions["match"], actions["seat"])],
        "action_name": actions["action_name"], "illegal": 0, "reward": math.nan, "cooperation": math.nan,
    })
    relabel = lambda frame, column: [label.get((m, v), v) for m, v in zip(frame["match"], frame[column])]  # noqa: E731
    messages = tournament.data.messages.copy()
    if len(messages):
        messages["sender"], messages["recipient"] = relabel(messages, "sender"), relabel(messages, "recipient")
    decisions = tournament.data.decisions.copy()
    if len(decisions):
        decisions["agent"] = relabel(decisions, "agent")
    episodes = pd.DataFrame({"episode": scores["match"], "agent": [label[(m, seat_ids[s])] if s < len(seat_ids) else str(s)
                                                                   for m, s in zip(scores["match"], scores["seat"])],
                             "return": scores["score"]})
    empty = pd.DataFrame(columns=["episode", "step", "round"])
    return Run(path=tournament.path, meta={}, agents=pd.DataFrame(), episodes=episodes, steps=steps, states=empty,
               messages=messages.rename(columns={"match": "episode"}), decisions=decisions.rename(columns={"match": "episode"}))


# ----- helpers ---------------------------------------------------------------------------------
def table_block(title: str, frame: pd.DataFrame, note: str) -> dict[str, Any]:
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    return {"title": title, "columns": [str(c) for c in frame.columns], "rows": rows, "note": note}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else number(value)  # "297", "1264", never "3e+02"
    return format_value(value) if not isinstance(value, str) else value


def embed_figures(figures: dict[str, Any], result: Run | Tournament) -> list[dict[str, Any]]:
    """Figures as base64 PNG data URIs with their captions; matrices are drawn at a higher
    resolution and shown across the full width of the page."""
    out = []
    for stem, fig in figures.items():
        wide = figs.is_wide(stem)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=140 if wide else 110)
        out.append({"name": stem, "caption": figs.caption(stem, result), "wide": wide,
                    "data": base64.b64encode(buffer.getvalue()).decode("ascii")})
    return out


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader("mas.analysis", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
