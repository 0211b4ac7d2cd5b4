"""Pages generated at build time (mkdocs-gen-files runs this script on every `mkdocs build`):

- `reference/scenario.md`: the scenario file reference, from the JSON Schema `mas schema` prints;
- `games/<kind>.md`: one page per registered game, from its module docstring and config model,
  and `games/index.md` listing them.

Nothing here is written into the source tree; the pages exist only in the built site.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import mkdocs_gen_files

from mas import registry
from mas.scenario import scenario_json_schema


def _anchor(name: str) -> str:
    return name.lower()


def _type(prop: dict[str, Any]) -> str:
    """A JSON Schema property's type in words, with links to the definitions it names."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    for key in ("oneOf", "anyOf"):
        if key in prop:
            return " or ".join(_type(p) for p in prop[key])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"map to {_type(prop['additionalProperties'])}"
    return f"`{kind}`"


def _bounds(prop: dict[str, Any]) -> str:
    words = {"minimum": "≥", "maximum": "≤", "exclusiveMinimum": ">", "exclusiveMaximum": "<",
             "minLength": "length ≥", "maxLength": "length ≤", "minItems": "items ≥", "maxItems": "items ≤"}
    return ", ".join(f"{word} {prop[key]}" for key, word in words.items() if key in prop)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fields(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    lines = ["| field | type | default | description |", "| --- | --- | --- | --- |"]
    for name, prop in schema.get("properties", {}).items():
        default = "*required*" if name in required else f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
        description = " ".join(p for p in (prop.get("description", ""), _bounds(prop)) if p)
        lines.append(f"| `{name}` | {_cell(_type(prop))} | {_cell(default)} | {_cell(description)} |")
    return lines


def scenario_reference() -> str:
    schema = scenario_json_schema()
    out = ["# Scenario file reference", "",
           "Generated from the JSON Schema of scenario files (`mas schema` prints it; point your editor's",
           "YAML language server at it for completion). Unknown fields are errors. A policy given as a",
           "plain name (`policy: tit_for_tat`) is short for `{type: tit_for_tat}`.", "",
           "## Scenario", "", *(schema.get("description", "").splitlines()), "", *_fields(schema), ""]
    for name, definition in sorted(schema.get("$defs", {}).items()):
        out += [f"## {name}", ""]
        if definition.get("description"):
            out += [definition["description"], ""]
        out += [*_fields(definition), ""] if definition.get("properties") else [f"Type: {_type(definition)}", ""]
    return "\n".join(out)


def game_page(kind: str) -> str:
    config_target, game_target = registry.GAMES[kind]
    module = importlib.import_module(game_target.partition(":")[0])
    config = registry.load_attr(config_target)
    doc = (module.__doc__ or "").strip()
    title, _, body = doc.partition("\n")
    # the docstrings' "Actions: ...", "Rewards: ..." lines become paragraphs with a bold label
    body = re.sub(r"(?m)^([A-Z][A-Za-z ()/-]{0,40}):(\s)", r"\n**\1:**\2", body.strip())
    return "\n".join([
        f"# `{kind}`", "", f"*{title.strip()}*", "", body, "",
        "## Configuration (`game:` block)", "",
        f"Source: `{module.__name__}` ([scenario reference](../reference/scenario.md#{_anchor(config.__name__)})).", "",
        *_fields(config.model_json_schema()), "",
    ])


with mkdocs_gen_files.open("reference/scenario.md", "w") as page:
    page.write(scenario_reference())

index = ["# Games", "", "Each game's page is its module's documentation (observation, actions, rewards, global",
         "state, cooperation measure, capabilities) and the fields of its `game:` block.", "",
         "| kind | what |", "| --- | --- |"]
for kind in registry.GAMES:
    with mkdocs_gen_files.open(f"games/{kind}.md", "w") as page:
        page.write(game_page(kind))
    index.append(f"| [`{kind}`]({kind}.md) | {_cell(registry.doc_line(registry.GAMES[kind][1].partition(':')[0]))} |")
with mkdocs_gen_files.open("games/index.md", "w") as page:
    page.write("\n".join(index) + "\n")
