"""Shared steps of the LLM fine-tuning demonstrations (`llm_signalling_demo.py`,
`llm_pd_pair_demo.py`, `llm_tft_talk_demo.py`): train, play before/after into run stores,
read the measures and the transcript back with mas's own analysis, draw the curves.

Nothing here is a new loop: training is `mas.training.run.train`, play is `mas.runner.run`,
measures are `mas.analysis.summary.summarize` of the stored runs and the transcript is
`mas.agents.llm.transcript` (what `mas transcript` prints).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml


def parser(doc: str, steps: int, per_episode: str, episodes: int, out: str) -> argparse.ArgumentParser:
    """The options every demonstration takes (a script adds its own)."""
    parsed = argparse.ArgumentParser(description=doc.splitlines()[0])
    parsed.add_argument("--steps", type=int, default=steps, help=f"environment steps of training ({per_episode})")
    parsed.add_argument("--episodes", type=int, default=episodes, help="episodes played before and after")
    parsed.add_argument("--out", type=Path, default=Path(out))
    parsed.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="llm-ppo hyperparameter")
    return parsed


def overrides(base: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """`base` llm-ppo hyperparameters updated by --set KEY=VALUE (YAML values)."""
    return {**base, **{k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in sets)}}


def start(out: Path) -> None:
    """One torch thread (a shared CPU: more threads only fight), the output folder, the machine."""
    import torch

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}; out {out}", flush=True)


def scenario_with(path: str, edit: Any = None) -> Any:
    """The scenario at `path`, its dict passed through `edit` (in place) first."""
    from mas.scenario import load_scenario, parse_scenario

    scenario = load_scenario(path)
    if edit is None:
        return scenario
    data = scenario.to_dict()
    edit(data)
    return parse_scenario(data, source=f"{path} (demo)")


def train_run(scenario: Any, steps: int, seed: int, out_dir: Path, overrides: dict[str, Any],
              eval_episodes: int = 1, resume: Path | None = None) -> tuple[Any, float]:
    """`mas train --algo llm-ppo` in process; the result and its wall seconds (a resumed run's
    include the run it continues: the curve's last wall time). One evaluation, at the end (a
    CPU budget: the curve is the training episodes' returns). A finished run already in
    `out_dir` (a demo run again, e.g. to report fewer seeds) is reused as it is; `resume` (a
    training run directory) continues that run up to `steps` in total."""
    from mas.training.run import train

    if (out_dir / "play.yaml").exists():
        import pandas as pd

        last = pd.read_csv(out_dir / "curves.csv").iloc[-1]
        return SimpleNamespace(out_dir=out_dir, play_scenario=out_dir / "play.yaml", env_steps=int(last["step"])), \
            float(last["wall_s"])
    started = time.perf_counter()
    result = train(scenario, "llm-ppo", steps, seed, out_dir, device="auto", eval_every=steps, eval_episodes=eval_episodes,
                   final_episodes=0, overrides=overrides, tensorboard=False, resume=resume)
    if resume is not None:
        import pandas as pd

        return result, float(pd.read_csv(out_dir / "curves.csv").iloc[-1]["wall_s"])
    return result, time.perf_counter() - started


def play(scenario: Any, episodes: int, seed: int, out_dir: Path) -> dict[str, Any]:
    """Play into a run store (as `mas run --out` does) and return its overview measures."""
    from mas.analysis.load import load_run
    from mas.analysis.summary import point, summarize
    from mas.runner import run

    # a store already there (a demo run again) is finished, or reused if complete
    records = run(scenario, episodes, seed, out_dir=out_dir, resume=(out_dir / "run.sqlite").exists())
    summary = summarize(load_run(out_dir))
    out = {key: point(value) for key, value in summary.overview.items()}
    for agent in records[0].cooperation:  # per agent: the learners' own rates
        rates = [r.cooperation[agent] for r in records if r.cooperation[agent] is not None]
        if rates:
            out[f"cooperation/{agent}"] = sum(rates) / len(rates)
    promises = summary.tables.get("promises")
    if promises is not None:
        for agent, kept in promises.dropna(subset=["kept"]).groupby("sender")["kept"]:
            out[f"promise keeping/{agent}"] = float(kept.astype(float).mean())
            out[f"promises/{agent}"] = int(len(kept))
    return out


def tuned(result: Any) -> Any:
    """The run's play.yaml: the scenario with the trained adapters loaded."""
    from mas.scenario import load_scenario

    return load_scenario(str(result.play_scenario))


def transcript(run_dir: Path, episode: int = 0, lines: int = 24) -> str:
    """The first `lines` lines of the stored run's transcript of `episode` (`mas transcript`)."""
    from mas.agents.llm.transcript import render
    from mas.agents.llm.transcript import transcript as frame

    text = [line for line in render(frame(run_dir, episode=episode)).splitlines()
            if "says: ''" not in line and "[forced]" not in line]  # silent seats and forced waits
    return "\n".join(text[:lines])


def messages(run_dir: Path, agent: str) -> list[str]:
    """Every message `agent` sent in the stored run, in order."""
    from mas.analysis.load import load_run

    sent = load_run(run_dir).messages
    return [str(t) for t in sent[sent["sender"] == agent]["text"]] if len(sent) else []


def figure(runs: dict[str, list[Path]], metric: str, title: str, path: Path) -> None:
    """`metric` of each label's training runs (run directories, or their curves.csv files)
    over steps (a band across seeds, cut to [0, 1] for a rate), as a png."""
    from mas.analysis.plots import plot_training_curves, save_figure
    from mas.analysis.training import band, read_curves
    import pandas as pd

    curves = {}
    for label, dirs in runs.items():
        frames = [(read_curves(d) if d.is_dir() else pd.read_csv(d)).assign(curve=i) for i, d in enumerate(dirs)]
        curves[label] = band(pd.concat(frames, ignore_index=True), metric)
    bounds = (0.0, 1.0) if metric.endswith("rate") else None
    save_figure(plot_training_curves(curves, metric, title, bounds), path.parent, path.stem, formats=("png",))


def write_results(out: Path, results: dict[str, Any], transcripts: dict[str, str]) -> None:
    """results.json and transcript.md in `out`."""
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    text = "".join(f"## {name}\n\n```text\n{body}\n```\n\n" for name, body in transcripts.items())
    (out / "transcript.md").write_text(text)
    print(yaml.safe_dump(results, sort_keys=False, width=200), flush=True)
