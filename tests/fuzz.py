"""Structural mutations of the built-in scenario and tournament files, and the check that
every mutant ends in a valid scenario (or tournament) or a clean one-line error, within a
time and memory bound. Shared by tests/test_fuzz_scenarios.py (a CI-sized budget) and
benchmarks/fuzz_scenarios.py (a long budget, with figures).

A mutant is a built-in file's data after 1-4 mutations at random places: drop, duplicate,
retype, rename or nest a field, or put a huge, negative, NaN or infinite number or a long
or odd string there. It is written as YAML and goes through the same path as `mas validate`.
"""

from __future__ import annotations

import copy
import math
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from mas import registry
from mas.errors import MasError

SCENARIO_FILES = sorted(registry.builtin_scenarios().values())
TOURNAMENT_FILES = sorted(next(iter(registry.scenario_dirs())).glob("tournaments/*.yaml"))

#: bounds every mutant must stay within (validation only; generous for a shared CPU)
MAX_SECONDS = 5.0
MAX_PEAK_BYTES = 256 * 1024 * 1024
#: the longest error line a mutant may produce
MAX_ERROR_CHARS = 8000
#: valid mutants are played for one episode when they are this small and fast to play
PLAY_AGENT_ROUNDS = 400

ODD_STRINGS = [
    "", " ", "\n", "x" * 100_000, "\x00", "é", "🙂" * 50, "{{ 7 * 7 }}", "${HOME}", "'; DROP TABLE runs; --",
    "../../etc/passwd", "C,C", "@bob hi", "off", "on", "yes", "null", "1e9", "nan", "-inf", "0x10", "<message>",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "{{ 'x' * 10**12 }}",
]
ODD_NUMBERS = [
    0, -1, 1, 2, 3, 10**9, -(10**9), 10**30, 2**63, 2**64, -(2**63) - 1, 0.5, -0.5, 1e-300, 1e300,
    math.nan, math.inf, -math.inf, 1e9, 1.0000001,
]


def _odd_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.sampled_from(ODD_NUMBERS), st.sampled_from(ODD_STRINGS), st.booleans(), st.none(),
        st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    )
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside `node` (the root included)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_paths(value, (*prefix, i)))
    return found


def _get(node: Any, path: tuple) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def mutation(draw: st.DrawFn, data: Any) -> Any:
    """`data` after one structural mutation at a random place (a new object)."""
    data = copy.deepcopy(data)
    path = draw(st.sampled_from(_paths(data)))
    op = draw(st.sampled_from(["drop", "duplicate", "retype", "rename", "nest", "number", "string"]))
    if not path:  # the root itself
        return draw(_odd_values()) if op == "retype" else ([data] if op == "nest" else data)
    parent, key = _get(data, path[:-1]), path[-1]
    value = parent[key]
    if op == "drop":
        del parent[key]
    elif op == "duplicate":
        if isinstance(parent, list):
            parent.insert(key, copy.deepcopy(value))
        else:
            parent[draw(st.sampled_from([f"{key}_2", str(key).upper(), "extra"]))] = copy.deepcopy(value)
    elif op == "retype":
        parent[key] = draw(_odd_values())
    elif op == "rename" and isinstance(parent, dict):
        new = draw(st.sampled_from([str(key)[:-1] or "k", str(key) + "s", str(key).replace("_", ""), "kind", "type", "x" * 300]))
        parent[new] = parent.pop(key)
    elif op == "nest":
        depth = draw(st.integers(1, 60))
        for _ in range(depth):
            value = draw(st.sampled_from([[value], {"value": value}, {str(key): value}]))
        parent[key] = value
    elif op == "number":
        parent[key] = draw(st.sampled_from(ODD_NUMBERS) | st.integers() | st.floats())
    else:
        parent[key] = draw(st.sampled_from(ODD_STRINGS) | st.text(max_size=200))
    return data


@st.composite
def mutant(draw: st.DrawFn, base: Any) -> Any:
    """`base` after 1-4 mutations."""
    data = base
    for _ in range(draw(st.integers(1, 4))):
        data = draw(mutation(data))
    return data


def load_base(path: Path, inline: bool = False) -> Any:
    """A built-in file's data; a tournament's base scenario becomes absolute (or inline),
    so the mutant can be written anywhere."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if path.parent.name == "tournaments" and isinstance(data.get("scenario"), str):
        base = (path.parent / data["scenario"]).resolve()
        data["scenario"] = yaml.safe_load(base.read_text(encoding="utf-8")) if inline else str(base)
    return data


def dump(data: Any) -> str:
    """YAML text of a mutant (NaN and inf become .nan and .inf; no aliases)."""

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(data, Dumper=NoAliases, allow_unicode=True, sort_keys=False)


@dataclass
class Outcome:
    """What one mutant ended in."""

    valid: bool
    error: str = ""
    seconds: float = 0.0
    peak_bytes: int = 0
    played: bool = False
    problems: list[str] = field(default_factory=list)


def check(path: Path, tournament: bool, play_dir: Path | None = None) -> Outcome:
    """Validate the file at `path` like `mas validate`; assert the outcome is clean and
    bounded; play one episode of a small valid scripted scenario when `play_dir` is given."""
    from mas.scenario import load_scenario
    from mas.tournament.spec import load_tournament

    tracemalloc.start()
    start = time.perf_counter()
    result: Any = None
    error = ""
    try:
        result = load_tournament(path) if tournament else load_scenario(path)
    except MasError as exc:
        error = str(exc)
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    outcome = Outcome(valid=result is not None, error=error, seconds=seconds, peak_bytes=peak)
    assert seconds < MAX_SECONDS, f"{path}: validation took {seconds:.1f} s"
    assert peak < MAX_PEAK_BYTES, f"{path}: validation peaked at {peak / 2**20:.0f} MiB"
    if error:
        assert "\n" not in error and "\r" not in error, f"multi-line error: {error[:300]!r}"
        assert len(error) <= MAX_ERROR_CHARS, f"error of {len(error)} characters: {error[:300]!r}"
        assert "Traceback" not in error and "internal error" not in error, error[:300]
    elif play_dir is not None and not tournament:
        outcome.played = _play_small(result, play_dir)
    return outcome


def _play_small(scenario: Any, out_dir: Path) -> bool:
    """One episode of a small scripted scenario into a fresh store; False when skipped."""
    import mas

    rounds = scenario.rounds if isinstance(scenario.rounds, int) else scenario.rounds.max
    slow = any(a.policy.type in ("llm", "iql", "mappo", "checkpoint") for a in scenario.agents)
    if slow or len(scenario.agents) * rounds > PLAY_AGENT_ROUNDS:
        return False
    records = mas.run(scenario, episodes=1, seed=scenario.seed, out_dir=out_dir)
    assert len(records) == 1
    assert all(math.isfinite(v) for v in records[0].returns.values()), records[0].returns
    return True
