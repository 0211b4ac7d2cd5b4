"""The `mas` command: parse the arguments and hand them to a command (`mas.cli_commands`).

Errors a user can cause (`MasError`) print as one line on stderr with a non-zero exit;
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

from mas import cli_commands as commands
from mas.errors import MasError
from mas.store import out_of_space
from mas.training.registry import ALGORITHMS

EXIT_USAGE = 2
EXIT_INPUT = commands.EXIT_INPUT


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one line (exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"mas: error: {message} (see '{self.prog} --help')\n")
        sys.exit(EXIT_USAGE)


def _whole_number(text: str, least: int, what: str = "a number", most: int | None = None) -> int:
    """An int option in [least, most]; argparse prefixes the error with the flag's name."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text[:40]}'") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {what} >= {least}, got {value}")
    if most is not None and value > most:
        raise argparse.ArgumentTypeError(f"expected {what} <= {most:,}, got {value:,}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _count(text: str) -> int:
    """A count where 0 means none."""
    return _whole_number(text, 0)


def _seed(text: str) -> int:
    return _whole_number(text, 0, "a seed")


def _eval_episodes(text: str) -> int:
    # every evaluation episode is one env copy, all allocated at once
    return _whole_number(text, 1, most=100_000)


def _figure_formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    unknown = [f for f in formats if f not in ("png", "svg", "pdf")]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(f"expected formats from png, svg, pdf (comma-separated), got '{text}'")
    return formats


class _Version(argparse.Action):
    """`mas --version`: the installed distribution's version, looked up only when asked."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, default: Any = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: str | None = None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("mas-sim")
        except PackageNotFoundError:  # a source tree on sys.path, not installed
            from mas import __version__ as number
        try:
            print(f"mas {number}", flush=True)
        except BrokenPipeError:
            parser.exit(_stdout_closed())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mas", description="Multi-agent simulation: scenario files -> PettingZoo envs, runs, stores.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--version", action=_Version, help="print the version of mas and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="play a scenario's episodes and store every step")
    run.add_argument("scenario", nargs="?", help="scenario YAML file or built-in scenario name (optional with --resume)")
    run.add_argument("--episodes", type=_positive_int, help="number of episodes (default: the scenario's)")
    run.add_argument("--seed", type=_seed, help="master seed (default: the scenario's)")
    run.add_argument("--out", type=Path, help="run directory (default: runs/<scenario>-<timestamp>)")
    run.add_argument("--resume", type=Path, metavar="DIR", help="finish the run stored in DIR, playing only its missing episodes")
    run.add_argument("--no-progress", action="store_true", help="print nothing while playing (no feed, bar or progress lines)")
    run.add_argument("--feed", action="store_true", help="print each round's messages and actions also without a terminal (logs)")
    run.add_argument("--no-report", action="store_true", help="do not write report.html and figures/ into the run directory")
    run.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                     help="override a scenario field, e.g. --set rounds=20 --set agents.bob.policy.type=grim_trigger (repeatable)")
    run.add_argument("--seeds", metavar="SEEDS", help="run every seed of 0-4 or 0,3,7 into one experiment directory (OUT/seed-<n>/)")
    run.add_argument("--sweep", metavar="SEEDS", help="play episode 0 under every seed of e.g. 0-9999 as one batch; totals only (OUT/sweep.csv)")
    run.add_argument("--llm-url", help="run every LLM agent on this OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    run.add_argument("--llm-model", help="model name on --llm-url's server; without --llm-url, a local model directory or hub id")
    run.add_argument("--llm-api-key-env", help="environment variable that holds the server's API key (the key itself is never stored)")

    replay = sub.add_parser("replay", help="re-run a recorded LLM run exactly from its store, without any model")
    replay.add_argument("run_dir", type=Path, help="run directory of the recorded run")
    replay.add_argument("--out", type=Path, help="run directory of the replay (default: runs/<scenario>-replay-<timestamp>)")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")

    transcript = sub.add_parser("transcript", help="print what LLM agents were shown, said and chose in a run")
    transcript.add_argument("run_dir", type=Path, help="run directory")
    transcript.add_argument("--agent", help="only this agent")
    transcript.add_argument("--round", type=_positive_int, help="only this round (1-based)")
    transcript.add_argument("--episode", type=_count, help="only this episode (0-based)")
    transcript.add_argument("--prompts", action="store_true", help="also print every prompt")

    serve = sub.add_parser("serve", help="serve a local model over an OpenAI-compatible HTTP API (shared by many processes)")
    serve.add_argument("--model", default="default", help="'default' (embedded SmolLM2-135M-Instruct), a local model directory or hub id")
    serve.add_argument("--name", help="model name clients send (default: the model's name)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    serve.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="weights' precision (auto: bf16 on CUDA, fp32 on CPU)")
    serve.add_argument("--max-connections", type=int, default=128, metavar="N", help="connections served at once (default 128; more wait in the listen queue)")
    serve.add_argument("--io-deadline", type=float, default=120.0, metavar="S", help="seconds in all to read a request, and to write its answer (default 120)")
    serve.add_argument("--api-key-env", metavar="VAR", help="require 'Authorization: Bearer <key>', the key read from this environment variable (never printed)")

    validate = sub.add_parser("validate", help="check scenario files and name every problem")
    validate.add_argument("files", nargs="+", help="scenario or tournament YAML files, or built-in names")

    tournament = sub.add_parser("tournament", help="play a round-robin or ecological tournament and rank the entrants")
    tournament.add_argument("file", nargs="?", help="tournament YAML file or built-in name (optional with --resume)")
    tournament.add_argument("--workers", type=_positive_int, help="parallel workers (default: the number of CPUs)")
    tournament.add_argument("--backend", choices=["process", "serial", "ray"], default="process", help="where matches run (default: process)")
    tournament.add_argument("--resume", type=Path, metavar="DIR", help="finish the tournament stored in DIR, skipping finished matches")
    tournament.add_argument("--out", type=Path, help="run directory (default: runs/<tournament>-<timestamp>)")
    tournament.add_argument("--seed", type=_seed, help="master seed (default: the file's)")
    tournament.add_argument("--no-progress", action="store_true", help="no progress bar")

    train = sub.add_parser("train", help=f"train a scenario's learning agents ({', '.join(ALGORITHMS)})")
    train.add_argument("scenario", help="scenario YAML file or built-in scenario name")
    train.add_argument("--algo", choices=list(ALGORITHMS),
                       help="algorithm (default: the scenario's learner type, or the checkpoint's); llm-ppo/llm-mappo fine-tune LLM agents")
    train.add_argument("--steps", type=_positive_int, default=100_000, help="total environment steps (default 100000)")
    train.add_argument("--seed", type=_seed, help="master seed (default: the scenario's)")
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    train.add_argument("--out", type=Path, help="training run directory (default: runs/<scenario>-train-<timestamp>)")
    train.add_argument("--resume", type=Path, help="continue from this checkpoint (numeric learners) or training run directory (llm-ppo, llm-mappo)")
    train.add_argument("--eval-every", type=_positive_int, help="environment steps between evaluations and checkpoints (default steps/10)")
    train.add_argument("--eval-episodes", type=_eval_episodes, default=32, help="greedy episodes per evaluation (default 32, at most 100,000)")
    train.add_argument("--episodes", type=_count, default=10, help="episodes played by the trained agents into <out>/eval at the end (0: none)")
    train.add_argument("--learners", help="comma-separated agent ids to train (default: agents whose policy is the algorithm's)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter, e.g. --set lr=0.001 (repeatable)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard event files")

    plot = sub.add_parser("plot", help="write the standard figures of runs, training runs or tournaments (PNG and SVG)")
    plot.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run, training or tournament directories; several overlay")
    plot.add_argument("--out", type=Path, help="figure directory (default: RUN_DIR/figures, or ./figures for several runs)")
    plot.add_argument("--format", type=_figure_formats, default=("png", "svg"), help="comma-separated formats: png, svg, pdf (default png,svg)")

    report = sub.add_parser("report", help="write a self-contained HTML report of a run, training run or tournament")
    report.add_argument("run", type=Path, metavar="RUN_DIR", help="run, training or tournament directory")
    report.add_argument("--out", type=Path, help="HTML file (default: RUN_DIR/report.html)")
    report.add_argument("--episodes", type=_positive_int, default=20, help="episodes shown in the transcript viewer (default 20)")
    report.add_argument("--open", action="store_true", help="open the report in a web browser")

    compare = sub.add_parser("compare", help="the same metrics of several runs side by side (ablations)")
    compare.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run or training directories")
    compare.add_argument("--plot", type=Path, metavar="DIR", help="also write the overlaid figures to DIR")
    compare.add_argument("--format", type=_figure_formats, default=("png", "svg"), help="figure formats with --plot (default png,svg)")

    solve = sub.add_parser("solve", help="exact baselines of a scenario: equilibria, best responses, social optimum, maze values")
    solve.add_argument("scenario", help="scenario YAML file or built-in scenario name")

    world = sub.add_parser("worldmodel", help="score a model as world model (predicting the others' actions) over a stored run")
    world.add_argument("run", type=Path, metavar="RUN_DIR", help="run directory with LLM decisions")
    world.add_argument("--backend", default="default",
                       help="a local model ('default': the embedded one, or a model directory) or a backend config as JSON")
    world.add_argument("--predict", default="actions", help="comma-separated: actions, outcome (default actions)")
    world.add_argument("--limit", type=_positive_int, help="replay at most this many decisions")

    sub.add_parser("list", help="list built-in games, scenarios, tournaments and policies")
    sub.add_parser("schema", help="print the JSON Schema of scenario files")
    completion = sub.add_parser("completion", help="print a shell completion script, e.g. eval \"$(mas completion bash)\"")
    completion.add_argument("shell", choices=["bash", "zsh", "tcsh"], help="the shell")

    for name in ("run", "tournament", "compare", "list", "solve", "worldmodel"):
        sub.choices[name].add_argument("--json", action="store_true", help="print the result as JSON on stdout, nothing else (progress stays on stderr)")
    for command in sub.choices.values():  # `mas run X --debug` as well as `mas --debug run X`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threading.excepthook = _quiet_when_out_of_space
    try:
        code = getattr(commands, f"cmd_{args.command}")(args)
        sys.stdout.flush()  # so that a closed pipe shows here rather than at interpreter exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except MasError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"mas: error: {exc}\n")
        return EXIT_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("mas: interrupted; episodes already finished are kept in the run directory\n")
        return 130
    except OSError as exc:
        if args.debug or not out_of_space(exc):
            return _internal_error(exc, args.debug)
        # training curves, checkpoints, figures: every file is written whole or replaced
        # atomically, so what was written before the refused write is still there
        where = f" {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"mas: error: cannot write{where} ({exc.strerror}): the disk is full or a file reached a size limit; "
                         "everything written before it is kept\n")
        return 1
    except Exception as exc:  # a bug: still one line unless --debug
        return _internal_error(exc, args.debug)


def _internal_error(exc: BaseException, debug: bool) -> int:
    if debug:
        raise exc
    sys.stderr.write(f"mas: internal error: {exc.__class__.__name__}: {exc} (rerun with --debug for the traceback)\n")
    return 3


def _quiet_when_out_of_space(hook_args: threading.ExceptHookArgs) -> None:
    """A background writer (TensorBoard's event thread) that hits a full disk: the main
    thread meets the same disk on its next write and reports it in one line, so the
    thread's traceback would only be noise. Anything else is reported as usual."""
    if hook_args.exc_value is not None and out_of_space(hook_args.exc_value):
        return
    threading.__excepthook__(hook_args)


def _stdout_closed() -> int:
    """The reader of stdout went away (`mas schema | head -1`): stop quietly.

    As the Python docs recommend (signal module, "Note on SIGPIPE"): point stdout at devnull
    so the interpreter's final flush does not fail again and print an error.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141  # 128 + SIGPIPE: what a shell reports for a command stopped by a closed pipe


if __name__ == "__main__":
    sys.exit(main())
