"""The `mas` command: parse arguments, call the library, print. Nothing else lives here.

Errors a user can cause (`MasError`) print as one line on stderr with a non-zero exit;
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from mas.errors import MasError, ScenarioError

EXIT_USAGE = 2
EXIT_INPUT = 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one line (exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"mas: error: {message} (see '{self.prog} --help')\n")
        sys.exit(EXIT_USAGE)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a seed >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mas", description="Multi-agent simulation: scenario files -> PettingZoo envs, runs, stores.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="play a scenario's episodes and store every step")
    run.add_argument("scenario", help="scenario YAML file or built-in scenario name")
    run.add_argument("--episodes", type=_positive_int, help="number of episodes (default: the scenario's)")
    run.add_argument("--seed", type=_seed, help="master seed (default: the scenario's)")
    run.add_argument("--out", type=Path, help="run directory (default: runs/<scenario>-<timestamp>)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    validate = sub.add_parser("validate", help="check scenario files and name every problem")
    validate.add_argument("files", nargs="+", help="scenario YAML files or built-in names")

    sub.add_parser("list", help="list built-in games, scenarios and policies")
    sub.add_parser("schema", help="print the JSON Schema of scenario files")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"run": _cmd_run, "validate": _cmd_validate, "list": _cmd_list, "schema": _cmd_schema}[args.command](args)
    except MasError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"mas: error: {exc}\n")
        return EXIT_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("mas: interrupted; episodes already finished are kept in the run directory\n")
        return 130
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"mas: internal error: {exc.__class__.__name__}: {exc} (rerun with --debug for the traceback)\n")
        return 3


# ----- commands ------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from mas.runner import run
    from mas.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    episodes = args.episodes or scenario.episodes
    seed = scenario.seed if args.seed is None else args.seed
    out = args.out or _default_run_dir(scenario.name)
    console = Console(stderr=True)
    progress = Progress(
        TextColumn(f"[bold]{scenario.name}"), BarColumn(), MofNCompleteColumn(), TextColumn("episodes"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=args.no_progress, transient=False,
    )
    with progress:
        task = progress.add_task("run", total=episodes)
        results = run(scenario, episodes, seed, out_dir=out, on_episode=lambda _: progress.advance(task))
    _print_summary(scenario, results, seed, out)
    return 0


def _default_run_dir(name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = Path("runs") / f"{name}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = Path("runs") / f"{name}-{stamp}-{suffix}"
    return candidate


def _print_summary(scenario: Any, results: list, seed: int, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from mas.analysis.metrics import mean_ci

    rounds = mean_ci([r.rounds for r in results])
    table = Table(title=f"{scenario.name}: {len(results)} episodes, seed {seed}, mean rounds {rounds.mean:.3g}")
    table.add_column("agent")
    table.add_column("policy")
    table.add_column("return ± 95% CI", justify="right")
    has_coop = any(v is not None for r in results for v in r.cooperation.values())
    if has_coop:
        table.add_column("cooperation ± 95% CI", justify="right")
    for agent in scenario.agents:
        row = [agent.id, agent.policy.type, str(mean_ci([r.returns[agent.id] for r in results]))]
        if has_coop:
            row.append(str(mean_ci([r.cooperation[agent.id] for r in results if r.cooperation[agent.id] is not None])))
        table.add_row(*row)
    console = Console()
    console.print(table)
    terminated = sum(r.terminated for r in results)
    if terminated:
        console.print(f"{terminated} of {len(results)} episodes ended by the game itself (termination)")
    console.print(f"run stored in {out}")


def _cmd_validate(args: argparse.Namespace) -> int:
    from mas.scenario import load_scenario

    failed = 0
    for name in args.files:
        try:
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


def _cmd_list(args: argparse.Namespace) -> int:
    from mas import registry
    from mas.scenario import load_scenario

    print("games:")
    for kind in registry.GAMES:
        doc = (registry.load_attr(registry.GAMES[kind][1]).__module__ or "")
        module = sys.modules.get(doc)
        first = (module.__doc__ or "").strip().splitlines()[0] if module and module.__doc__ else ""
        print(f"  {kind:<24} {first}")
    print("scenarios:")
    for name, path in registry.builtin_scenarios().items():
        try:
            description = load_scenario(path).description.strip().splitlines()[0]
        except (MasError, IndexError):
            description = ""
        print(f"  {name:<24} {description}")
    print("policies:")
    for name in registry.POLICIES:
        spec = registry.policy_spec_model(name)
        cls = registry.policy_class(name)
        doc = (cls.__doc__ or spec.__doc__ or "").strip().splitlines()
        print(f"  {name:<24} {doc[0] if doc else ''}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from mas.scenario import scenario_json_schema

    print(json.dumps(scenario_json_schema(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
