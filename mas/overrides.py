"""`--set path.to.field=value`: change any field of a scenario file from the command line.

Each override is applied to the file's raw data before validation, so the result is
checked exactly like a file that says the same (every problem named with its field path,
"did you mean" for typos). Paths are dot-separated keys; a list is indexed by position
(`agents.0.policy.type`) or, for agents, by id (`agents.bob.persona`). Values are read as
YAML scalars or flow collections (`3`, `0.5`, `true`, `C`, `[C, D]`,
`{continuation: 0.9, max: 20}`). A shorthand in the way (`policy: grim_trigger`,
`topology: ring`) is expanded to the mapping it stands for, and a field the file leaves
at its default is filled in from the validated scenario, so any field can be reached.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mas.errors import ScenarioError
from mas.scenario import Scenario, parse_scenario, read_yaml, resolve_path
from mas.yaml_loader import clip, load_yaml

#: the most characters of one override (a value is read with the bounded YAML loader)
MAX_SET_CHARS = 10_000


def parse_set(item: str) -> tuple[list[str], Any]:
    """'a.b.c=value' as (['a', 'b', 'c'], the value read as YAML); ScenarioError if malformed."""
    if len(item) > MAX_SET_CHARS:
        raise ScenarioError(f"--set: override longer than {MAX_SET_CHARS:,} characters")
    path, sep, text = item.partition("=")
    parts = path.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise ScenarioError(f"--set: expected path.to.field=value, got '{clip(item)}'")
    try:
        value = load_yaml(text, source="value")
    except ScenarioError as exc:
        raise ScenarioError(f"--set {clip(path)}: the value '{clip(text, 40)}' is not valid YAML ({exc})") from None
    return [p.strip() for p in parts], value


def apply_sets(data: dict[str, Any], normal: dict[str, Any], items: Sequence[str]) -> dict[str, Any]:
    """A copy of raw scenario `data` with every override applied in order.

    `normal` is the validated scenario's dump (`Scenario.to_dict`): it supplies fields the
    file leaves at their defaults and the expanded form of shorthands.
    """
    data = copy.deepcopy(data)
    for item in items:
        parts, value = parse_set(item)
        _assign(data, normal, parts, value)
    return data


def load_with_sets(path_or_name: str | Path, items: Sequence[str]) -> Scenario:
    """Load a scenario file or built-in name, apply the `--set` overrides and validate."""
    path = resolve_path(path_or_name)
    raw = read_yaml(path)
    scenario = parse_scenario(raw, source=str(path))
    if not items:
        return scenario
    data = apply_sets(raw, scenario.to_dict(), items)
    shown = " ".join(f"--set {clip(i, 60)}" for i in items)
    return parse_scenario(data, source=f"{path} with {shown}")


def _assign(data: dict[str, Any], normal: Any, parts: list[str], value: Any) -> None:
    node: Any = data
    for depth, part in enumerate(parts):
        where = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if isinstance(node, list):
            index = _list_index(node, part, ".".join(parts[:depth]))
            normal = _normal_item(normal, node[index], index)
            if last:
                node[index] = value
                return
            node[index] = _as_mapping(node[index], normal, where)
            node = node[index]
            continue
        # a mapping: a key the file leaves out is filled from the validated scenario
        known = set(node) | (set(normal) if isinstance(normal, dict) else set())
        if part not in known:
            close = difflib.get_close_matches(part, sorted(known), n=1, cutoff=0.7)
            if close:
                raise ScenarioError(f"--set {'.'.join(parts)}: unknown field '{clip(part)}' at {where} (did you mean '{close[0]}'?)")
        normal = normal.get(part) if isinstance(normal, dict) else None
        if last:
            node[part] = value
            return
        if part not in node:
            node[part] = copy.deepcopy(normal) if isinstance(normal, (dict, list)) else {}
        node[part] = _as_mapping(node[part], normal, where)
        node = node[part]


def _as_mapping(value: Any, normal: Any, where: str) -> Any:
    """`value` if it can hold keys; a shorthand expanded to its validated mapping; else an error."""
    if isinstance(value, (dict, list)):
        return value
    if isinstance(normal, dict):
        return copy.deepcopy(normal)
    raise ScenarioError(f"--set: {where} is {clip(repr(value), 40)}, not a mapping; set it whole, e.g. --set '{where}={{...}}'")


def _list_index(items: list[Any], part: str, where: str) -> int:
    """A position in a list: a whole number, or the id of an item that has one."""
    if part.lstrip("-").isdigit():
        index = int(part)
        if not 0 <= index < len(items):
            raise ScenarioError(f"--set: {where} has {len(items)} entries (0 to {len(items) - 1}), not {index}")
        return index
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("id") == part:
            return index
    close = difflib.get_close_matches(part, [str(i) for i in ids if i is not None], n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ScenarioError(f"--set: {where} has no entry with id '{clip(part)}'{hint}; give an id or a position 0 to {len(items) - 1}")


def _normal_item(normal: Any, raw_item: Any, index: int) -> Any:
    """The validated counterpart of a raw list item: the agent of the same id (or the first
    of its `count` copies), else the item at the same position."""
    if not isinstance(normal, list):
        return None
    if isinstance(raw_item, dict) and "id" in raw_item:
        for item in normal:
            if isinstance(item, dict) and item.get("id") in (raw_item["id"], f"{raw_item['id']}_0"):
                return item
    return normal[index] if index < len(normal) else None
