"""The `mas` commands: each takes the parsed arguments, calls the library and prints.

`mas.cli` parses and dispatches here (`cmd_<command>`); errors a user can cause are
`MasError`s, which `mas.cli.main` prints as one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mas.cli_run import cmd_replay, cmd_run, default_run_dir  # noqa: F401 - `mas run`/`mas replay` live there
from mas.errors import MasError, ScenarioError

EXIT_INPUT = 1


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from mas.agents.llm.local import TransformersBackend
    from mas.agents.llm.models import load_model
    from mas.agents.llm.server import ModelServer

    if not 0 <= args.port <= 65535:
        raise MasError(f"--port: expected 0..65535, got {args.port}")
    if not 1 <= args.max_connections <= 10_000:
        raise MasError(f"--max-connections: expected 1..10000, got {args.max_connections}")
    if not 0.1 <= args.io_deadline <= 86_400:  # also refuses NaN
        raise MasError(f"--io-deadline: expected 0.1..86400 seconds, got {args.io_deadline}")
    key = os.environ.get(args.api_key_env, "").strip() if args.api_key_env else None
    if args.api_key_env and not key:
        raise MasError(f"--api-key-env: the environment variable '{args.api_key_env}' is not set (or empty)")
    loaded = load_model(args.model, args.device, args.dtype)
    try:
        server = ModelServer(TransformersBackend(loaded), args.name or loaded.name, args.host, args.port, api_key=key,
                             io_deadline=args.io_deadline, max_connections=args.max_connections)
    except OSError as exc:
        raise MasError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
    guard = f"; API key from ${args.api_key_env} required" if key else ""
    print(f"mas serve: model '{server.model_name}' on {server.address}/v1 ({loaded.device}, "
          f"{str(loaded.dtype).removeprefix('torch.')}){guard}; Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    return 0


def cmd_transcript(args: argparse.Namespace) -> int:
    from mas.agents.llm.transcript import render, transcript

    print(render(transcript(args.run_dir, agent=args.agent, round=args.round, episode=args.episode), prompts=args.prompts))
    return 0


def cmd_tournament(args: argparse.Namespace) -> int:
    import os

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    from mas.tournament import load_tournament, resume_tournament, run_tournament
    from mas.tournament.report import legend, ranking_table, summary_line

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f} matches/s" if speed else "- matches/s")

    if args.file is None and args.resume is None:
        raise MasError("give a tournament file, or --resume DIR to finish a stored tournament")
    if args.resume is not None and args.out is not None:
        raise MasError("--out and --resume exclude each other: --resume continues in its own directory")
    tournament = load_tournament(args.file) if args.file else None
    if tournament is not None and args.seed is not None and args.resume is None:
        tournament = tournament.with_seed(args.seed)
    workers = args.workers or os.cpu_count() or 1
    out = args.resume or args.out or default_run_dir(tournament.spec.name)
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]tournament"), BarColumn(), MofNCompleteColumn(), TextColumn("matches"), RateColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=args.no_progress,
    )
    task: list[Any] = []

    def on_progress(done: int, total: int) -> None:
        if not task:  # created at the first report, so a resumed run's rate counts new matches only
            task.append(progress.add_task("tournament", total=total, completed=done))
        progress.update(task[0], completed=done)

    try:
        with progress:
            if args.resume is not None:
                if tournament is not None and args.seed is not None:
                    tournament = tournament.with_seed(args.seed)
                results = resume_tournament(args.resume, tournament, seed=args.seed, workers=workers, backend=args.backend, on_progress=on_progress)
            else:
                results = run_tournament(tournament, out, workers=workers, backend=args.backend, on_progress=on_progress)
    except KeyboardInterrupt:
        sys.stderr.write(f"mas: interrupted; finished matches are stored: continue with 'mas tournament --resume {out}'\n")
        return 130
    if args.json:
        from mas.cli_output import dumps, tournament_summary

        print(dumps(tournament_summary(results)))
        return 0
    stdout = Console()
    stdout.print(summary_line(results), highlight=False)
    stdout.print(ranking_table(results))
    stdout.print(legend(results), style="dim", highlight=False)
    stdout.print(f"tournament stored in {out} ({results.matches} matches, {results.played_now} played now)")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from mas.scenario import load_scenario

    failed = 0
    for name in args.files:
        try:
            if _is_tournament_file(name):
                print(_validate_tournament(name))
                continue
            scenario = load_scenario(name)
        except ScenarioError as exc:
            failed += 1
            source = exc.source or name
            for problem in exc.problems:
                print(f"{source}: {problem}" if not problem.startswith(source) else problem)
            continue
        except MasError as exc:
            failed += 1
            print(f"{name}: {exc}")
            continue
        print(f"{name}: ok ({scenario.game.kind}, {len(scenario.agents)} agents, comms {scenario.comms.mode})")
    return EXIT_INPUT if failed else 0


def _is_tournament_file(name: str) -> bool:
    """A built-in tournament name, or a YAML file whose top level has a tournament's
    `entrants` and none of a scenario's `agents` or `game`."""
    from mas import registry
    from mas.scenario import read_yaml

    path = Path(name)
    if not path.is_file():
        return name in registry.builtin_tournaments() and name not in registry.builtin_scenarios()
    data = read_yaml(path)
    return isinstance(data, dict) and "entrants" in data and not {"agents", "game"} & data.keys()


def _validate_tournament(name: str) -> str:
    from mas.tournament import load_tournament

    tournament = load_tournament(name)
    spec = tournament.spec
    return f"{name}: ok (tournament, {spec.format.kind}, {len(spec.entrants)} entrants, game {tournament.base.game.kind})"


def cmd_list(args: argparse.Namespace) -> int:
    from mas.cli_output import catalogue, dumps

    sections = catalogue()
    if args.json:
        print(dumps(sections))
        return 0
    for section, entries in sections.items():
        print(f"{section}:")
        for entry in entries:
            print(f"  {entry['name']:<24} {entry['description']}")
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    from mas.scenario import load_scenario
    from mas.solve.baselines import render_text, solve_scenario

    result = solve_scenario(load_scenario(args.scenario))
    if args.json:
        from mas.cli_output import dumps

        print(dumps(result))
    else:
        print(render_text(result))
    return 0


def cmd_worldmodel(args: argparse.Namespace) -> int:
    import json

    from pydantic import TypeAdapter, ValidationError

    from mas.agents.llm.config import BackendConfig
    from mas.agents.llm.world_model_eval import evaluate_run, summarise

    text = args.backend.strip()
    try:
        raw = json.loads(text) if text.startswith("{") else {"kind": "local", "model": text}
        backend = TypeAdapter(BackendConfig).validate_python(raw)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise MasError(f"--backend: not a backend config ({str(exc).splitlines()[0]})") from None
    predict = [p.strip() for p in args.predict.split(",") if p.strip()]
    unknown = sorted(set(predict) - {"actions", "outcome"})
    if unknown or not predict:
        raise MasError(f"--predict: {', '.join(unknown) or 'nothing'} is not one of: actions, outcome")
    table = summarise(evaluate_run(args.run, backend, predict, args.limit))
    if args.json:
        print(table.to_json(orient="records"))
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import yaml
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from mas.scenario import load_scenario
    from mas.training.learners import infer_algo
    from mas.training.run import train

    scenario = load_scenario(args.scenario)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MasError(f"--set: expected KEY=VALUE, got '{item}'")
        overrides[key.strip()] = yaml.safe_load(value)
    algo = args.algo or infer_algo(scenario, args.resume)
    seed = scenario.seed if args.seed is None else args.seed
    out = args.out or default_run_dir(f"{scenario.name}-train")
    learners = [a.strip() for a in args.learners.split(",") if a.strip()] if args.learners else None
    console = Console(stderr=True)
    progress = Progress(
        TextColumn(f"[bold]{scenario.name} {algo}"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
        TextColumn("{task.description}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=args.no_progress,
    )

    def on_progress(done: int, metrics: dict) -> None:
        shown = {k.removeprefix("eval_"): v for k, v in metrics.items() if k.startswith("eval_")}
        progress.update(task, completed=done, description=" ".join(f"{k}={v:.3g}" for k, v in list(shown.items())[:3]))

    with progress:
        task = progress.add_task("", total=args.steps)
        result = train(
            scenario, algo, args.steps, seed, out, device=args.device, resume=args.resume, eval_every=args.eval_every,
            eval_episodes=args.eval_episodes, final_episodes=max(0, args.episodes), learners=learners, overrides=overrides,
            tensorboard=not args.no_tensorboard, on_progress=on_progress,
        )
    console = Console()
    console.print(f"trained {', '.join(result.learners)} with {algo} for {result.env_steps:,} environment steps (seed {seed})")
    for key, value in result.final_eval.items():
        console.print(f"  {key}: {value:.4g}")
    console.print(f"curves: {result.curves}; checkpoint: {result.checkpoint}")
    if not result.tensorboard and not args.no_tensorboard:
        console.print("TensorBoard files not written: pip install 'mas-sim[tensorboard]'")
    console.print(f"play the trained agents: mas run {result.play_scenario}")
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    from mas.cli import build_parser  # the parser the completion describes

    parser = build_parser()
    # what the shell offers for each argument: files for scenarios, directories for runs
    for action in _all_actions(parser):
        if action.dest in ("scenario", "files", "file"):
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif action.dest in ("run_dir", "runs", "run", "resume"):
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    print(shtab.complete(parser, shell=args.shell))
    return 0


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The actions of `parser` and of all its subcommands."""
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                actions += _all_actions(command)
    return actions


def cmd_schema(args: argparse.Namespace) -> int:
    from mas.scenario import scenario_json_schema

    print(json.dumps(scenario_json_schema(), indent=2))
    return 0


# ----- analysis ------------------------------------------------------------------------
def cmd_plot(args: argparse.Namespace) -> int:
    from mas.analysis.figures import write_figures
    from mas.analysis.load import load_result

    results = [load_result(path) for path in args.runs]
    out = args.out or (args.runs[0] / "figures" if len(args.runs) == 1 else Path("figures"))
    paths = write_figures(results, out, args.format)
    if not paths:
        raise MasError(f"{', '.join(map(str, args.runs))}: nothing to plot yet (no finished episodes, training curves or matches)")
    print(f"{len(paths)} files written to {out}: {', '.join(sorted({p.stem for p in paths}))}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mas.analysis.load import load_result
    from mas.analysis.report import write_report

    result = load_result(args.run)
    out = args.out or ((args.run if args.run.is_dir() else args.run.parent) / "report.html")
    write_report(result, out, max_episodes=args.episodes)
    print(f"report written to {out}")
    if args.open:
        import webbrowser

        if not webbrowser.open(out.resolve().as_uri()):
            print("no web browser found; open the file yourself")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from mas.analysis.figures import unique_labels, write_figures
    from mas.analysis.load import load_result, load_run
    from mas.analysis.summary import compare
    from mas.experiment import is_experiment

    # an experiment directory of several seeds compares with intervals across seeds
    runs = [load_result(path) if is_experiment(path) else load_run(path) for path in args.runs]
    labels = unique_labels(args.runs)
    if args.json:
        from mas.cli_output import compare_summary, dumps

        data = compare_summary(runs, labels, args.runs)
        if args.plot:
            data["figures"] = sorted(write_figures(runs, args.plot, args.format, labels))
        print(dumps(data))
        return 0
    frame = compare(runs, labels)
    across = "; across seeds for experiments" if any(is_experiment(p) for p in args.runs) else ""
    table = Table(title=f"{len(runs)} runs compared (± 95% CI over episodes{across})")
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right")
    for metric, row in frame.iterrows():
        table.add_row(str(metric), *[str(v) for v in row])
    Console().print(table)
    if args.plot:
        paths = write_figures(runs, args.plot, args.format, labels)
        print(f"{len(paths)} figure files written to {args.plot}")
    return 0
