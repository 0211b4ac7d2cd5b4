"""Strict, bounded YAML loading for scenario and tournament files.

`yaml.safe_load` accepts duplicate keys (the last one silently wins), recurses once per
nesting level when it builds nodes (a few thousand `[` give a RecursionError) and expands aliases into trees
that can be exponentially larger than the file ("billion laughs"). Every file mas reads
goes through `load_yaml`, which refuses all three with a one-line `ScenarioError` naming
the line, and bounds the file size, the nesting depth and the number of values before
pydantic or any game sees the data.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from mas.errors import ScenarioError

#: the largest file read (bytes); built-in files are a few KB, a 3-player table a few more
MAX_FILE_BYTES = 4 * 1024 * 1024
#: the deepest nesting of mappings and lists (built-in files nest 4 levels)
MAX_DEPTH = 32
#: the most values (scalars, lists and mappings) after aliases are expanded
MAX_NODES = 1_000_000
#: echoed input is cut to this many characters in error messages
MAX_ECHO = 80


def clip(value: Any, limit: int = MAX_ECHO) -> str:
    """`value` as one line of at most `limit` characters ("..." marks a cut)."""
    text = " ".join(str(value).split()) if ("\n" in str(value) or "\r" in str(value)) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: libyaml's parser when installed (pure-Python PyYAML reads about 1 MB a second)
_BASE: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if yaml.__with_libyaml__ else yaml.SafeLoader


class StrictLoader(_BASE):  # type: ignore[misc, valid-type]
    """A safe loader that rejects duplicate keys (merge keys `<<` excepted)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` merges are overridden on purpose
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable key: SafeConstructor reports it
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{clip(key)}' (first given on line {first})", key_node.start_mark
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than `MAX_DEPTH` from the event stream, which is read
    without recursion (the composer that builds nodes recurses once per level)."""
    depth = 0
    for event in yaml.parse(text, Loader=_BASE):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise yaml.constructor.ConstructorError(None, None, f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_tree(data: Any, source: str) -> None:
    """Count the values (aliases expanded) and reject non-finite numbers, iteratively
    (paths are only worked out for the error: counting a million values stays cheap)."""
    count = 0
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ScenarioError(f"{source}: more than {MAX_NODES:,} values (aliases expanded); the file is too large")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise ScenarioError(f"{source}: {_path_to(data, node) or '(top level)'}: numbers must be finite, found {node}")


def _path_to(data: Any, target: float) -> str:
    """The dotted path of the first non-finite number equal (or NaN) like `target`."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack.extend((v, f"{path}.{clip(k, 40)}" if path else clip(k, 40)) for k, v in reversed(list(items)))
    return ""


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML text strictly; every problem is a one-line `ScenarioError`."""
    try:
        _check_depth(text)
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a safe loader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{source}{where}: malformed YAML: {clip(problem, 200)}") from None
    except RecursionError:  # a nesting the depth check cannot see (e.g. inside a flow scalar)
        raise ScenarioError(f"{source}: malformed YAML: nested too deeply") from None
    _check_tree(data, source)
    return data


def read_yaml(path: Path) -> Any:
    """Read and parse a YAML file of at most `MAX_FILE_BYTES`."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(f"{path}: file is {size:,} bytes; scenario and tournament files may be at most {MAX_FILE_BYTES:,}")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read ({exc.__class__.__name__}: {clip(exc, 200)})") from None
    return load_yaml(text, str(path))
