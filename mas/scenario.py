"""Scenario files: YAML validated by pydantic into a frozen `Scenario`.

A scenario is pure data: a game and its parameters, the rounds, the agents (id, policy,
persona) and the communication settings. It names games and policies by registry name,
never Python code. Every problem is reported with the file, the field path and what was
expected; a mistyped key gets a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from mas import registry
from mas.errors import ScenarioError
from mas.reward_model import RewardModelConfig
from mas.yaml_loader import clip, read_yaml  # noqa: F401 - read_yaml is part of this module's API

AGENT_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]{0,31}$"

# Upper bounds, checked before anything is allocated (documented in the JSON Schema too).
#: the most rounds of one episode (fixed, or the cap of random-length episodes)
MAX_ROUNDS = 100_000
#: the most agents in one scenario (after `count` expansion)
MAX_AGENTS = 1024
#: the most agent-rounds in one episode (agents x rounds): an episode's records are held in memory
MAX_AGENT_ROUNDS = 1_000_000
#: the most episodes `mas run` plays by default
MAX_EPISODES = 1_000_000
#: seeds are stored as SQLite integers (signed 64-bit)
MAX_SEED = 2**63 - 1
#: at most this many problems are listed in one error
MAX_PROBLEMS = 20


class _Frozen(BaseModel):
    # allow_inf_nan=False: NaN or inf in any float field is an error naming the field
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ----- rounds -----------------------------------------------------------------------
class ContinuationRounds(_Frozen):
    """Rounds drawn at random: after each round the game goes on with probability
    `continuation` (the shadow of the future), up to `max` rounds."""

    continuation: float = Field(gt=0.0, lt=1.0, description="Probability of another round after each round.")
    max: int = Field(1000, ge=1, le=MAX_ROUNDS, description=f"Hard cap on the number of rounds (at most {MAX_ROUNDS:,}).")


def _rounds_kind(value: Any) -> str:
    return "continuation" if isinstance(value, (dict, ContinuationRounds)) else "fixed"


Rounds = Annotated[
    Union[
        Annotated[int, Field(ge=1, le=MAX_ROUNDS, description=f"A fixed number of rounds (action steps), at most {MAX_ROUNDS:,}."), Tag("fixed")],
        Annotated[ContinuationRounds, Tag("continuation")],
    ],
    Discriminator(_rounds_kind),
]
_UNION_TAGS = {"fixed", "continuation", "round_robin", "ecological"}  # rounds; tournament formats


# ----- communication ----------------------------------------------------------------
class CompleteTopology(_Frozen):
    kind: Literal["complete"] = "complete"


class RingTopology(_Frozen):
    kind: Literal["ring"] = "ring"


class StarTopology(_Frozen):
    kind: Literal["star"] = "star"
    center: str | None = Field(None, description="Agent id at the centre (default: the first agent).")


class SmallWorldTopology(_Frozen):
    kind: Literal["small_world"] = "small_world"
    k: int = Field(2, ge=2, description="Each agent is joined to its k nearest neighbours in a ring.")
    p: float = Field(0.1, ge=0.0, le=1.0, description="Rewiring probability (Watts-Strogatz).")
    seed: int = 0


class RandomTopology(_Frozen):
    kind: Literal["random"] = "random"
    p: float = Field(0.5, ge=0.0, le=1.0, description="Edge probability (Erdos-Renyi).")
    seed: int = 0


class EdgesTopology(_Frozen):
    kind: Literal["edges"] = "edges"
    edges: list[tuple[str, str]] = Field(max_length=MAX_AGENTS * MAX_AGENTS, description="Pairs of agent ids that may talk.")
    directed: bool = Field(False, description="If true, [a, b] lets a talk to b only.")


Topology = Annotated[
    Union[CompleteTopology, RingTopology, StarTopology, SmallWorldTopology, RandomTopology, EdgesTopology],
    Field(discriminator="kind"),
]


class CommsConfig(_Frozen):
    """Who may talk to whom, and how."""

    mode: Literal["off", "broadcast", "direct"] = Field(
        "off",
        description="off: no messages; broadcast: a message reaches all graph neighbours; "
        "direct: a message starting with '@id' reaches that neighbour only.",
    )
    topology: Topology = Field(default_factory=CompleteTopology)
    max_length: int = Field(280, ge=1, le=4000, description="Messages are cut to this many characters.")
    talk_rounds: int = Field(1, ge=0, le=16, description="Talk-only steps before each action step.")
    vocabulary: list[str] | None = Field(
        None, max_length=64,
        description="Words or short phrases that RL learners may say (one per talk step, or silence) and "
        "hear (each other agent's last word, one-hot); messages of other agents that are not one of them "
        "reach learners as silence. Without it learners neither talk nor listen.",
    )

    @field_validator("vocabulary")
    @classmethod
    def _check_vocabulary(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        from mas.comms import CHARSET

        cleaned = [str(w).strip() for w in value]
        for word in cleaned:
            if not word or len(word) > 40 or any(c not in CHARSET or c in "\n\t" for c in word) or word.startswith("@"):
                raise ValueError(f"vocabulary: '{word[:40]}' must be 1-40 printable characters on one line, not starting with @")
        if len({w.lower() for w in cleaned}) != len(cleaned):
            raise ValueError("vocabulary: words must be distinct (ignoring case)")
        if not cleaned:
            raise ValueError("vocabulary: give at least one word")
        return cleaned

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` as the boolean false
        return "off" if value is False else value

    @field_validator("topology", mode="before")
    @classmethod
    def _topology_shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value


# ----- agents -----------------------------------------------------------------------
def _policy_union() -> Any:
    registry.load_plugins()  # before iterating: plugins join the registry
    models = tuple(registry.policy_spec_model(name) for name in registry.POLICIES)
    return Annotated[Union[models], Field(discriminator="type")]


def _game_union() -> Any:
    registry.load_plugins()
    models = tuple(registry.game_config_model(kind) for kind in registry.GAMES)
    return Annotated[Union[models], Field(discriminator="kind")]


PolicyConfig = _policy_union()
GameConfig = _game_union()


class AgentConfig(_Frozen):
    """One seat (or `count` identical seats, named id_0, id_1, ...)."""

    id: str = Field(pattern=AGENT_ID_PATTERN, description="Agent id: a letter, then letters, digits, _ or -.")
    policy: PolicyConfig
    persona: str = Field("", max_length=4000, description="Who the agent is, in words (LLM prompts use it).")
    count: int = Field(1, ge=1, le=MAX_AGENTS, description="Expand into this many agents id_0..id_{count-1}.")

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


class Scenario(_Frozen):
    """A validated scenario. `agents` is already expanded (no `count` > 1 remains)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$", description="Short name, used for run directories.")
    description: str = Field("", max_length=10_000)
    game: GameConfig
    rounds: Rounds = 10
    agents: list[AgentConfig] = Field(
        min_length=1, max_length=MAX_AGENTS,
        description=f"The seats; at most {MAX_AGENTS} agents after `count` expansion, and at most "
        f"{MAX_AGENT_ROUNDS:,} agent-rounds (agents x rounds) per episode.",
    )
    comms: CommsConfig = Field(default_factory=CommsConfig)
    episodes: int = Field(1, ge=1, le=MAX_EPISODES, description="Default number of episodes for `mas run`.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Default master seed.")
    reward_model: RewardModelConfig | None = Field(
        None, description="A reward component a judge model computes from messages or outcomes (see mas.reward_model)."
    )

    @field_validator("agents", mode="after")
    @classmethod
    def _expand_counts(cls, agents: list[AgentConfig]) -> list[AgentConfig]:
        total = sum(a.count for a in agents)
        if total > MAX_AGENTS:  # before expanding: thousands of copies are not built to be refused
            raise ValueError(f"at most {MAX_AGENTS} agents, found {total} (counts included)")
        expanded: list[AgentConfig] = []
        for agent in agents:
            if agent.count == 1:
                expanded.append(agent)
            else:
                expanded.extend(agent.model_copy(update={"id": f"{agent.id}_{i}", "count": 1}) for i in range(agent.count))
        ids = [a.id for a in expanded]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"agent ids must be unique; repeated: {duplicates}")
        return expanded

    @model_validator(mode="after")
    def _fits_together(self) -> "Scenario":
        n = len(self.agents)
        rounds = self.rounds if isinstance(self.rounds, int) else self.rounds.max
        if n * rounds > MAX_AGENT_ROUNDS:
            raise ValueError(
                f"rounds: {n} agents x {rounds:,} rounds is more than {MAX_AGENT_ROUNDS:,} agent-rounds per episode; "
                "use fewer rounds or agents"
            )
        try:
            game = registry.make_game(self.game, n)
        except ValueError as exc:
            raise ValueError(f"game: {exc}") from None
        for i, agent in enumerate(self.agents):
            try:
                agent.policy.check_game(game.info())
            except ValueError as exc:
                raise ValueError(f"agents.{i}.policy: {agent.policy.type} cannot play this game: {exc}") from None
        if self.reward_model is not None:
            self.reward_model.check_agents(self.agent_ids)
        from mas.comms import build_graph, check_topology  # local: comms imports this module's types

        try:  # with comms off the graph is never used: check the topology without building it
            (build_graph if self.comms.mode != "off" else check_topology)(self.comms.topology, self.agent_ids)
        except ValueError as exc:
            raise ValueError(f"comms.topology: {exc}") from None
        return self

    @property
    def agent_ids(self) -> list[str]:
        return [a.id for a in self.agents]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able resolved scenario (stored with every run); an unset reward model is
        left out, so scenarios stored before it existed still compare equal (resume)."""
        data = json.loads(self.model_dump_json())
        if data.get("reward_model") is None:
            data.pop("reward_model", None)
        return data


# ----- loading and errors -------------------------------------------------------------
def _fields_of(model: Any) -> list[str]:
    return list(getattr(model, "model_fields", {}))


def _is_union_label(part: Any) -> bool:
    """A location part pydantic adds for a union member: a tag ("normal_form") or a type
    ("dict[str,list[float]]", "str"), never a key the user wrote."""
    if not isinstance(part, str):
        return False
    return (
        part in (registry.GAMES.keys() | registry.POLICIES.keys() | _UNION_TAGS | _TYPE_NAMES)
        or "[" in part
        or part.startswith("function-")
    )


_TYPE_NAMES = {"str", "int", "float", "bool", "none", "bytes"}


def error_path(loc: tuple[Any, ...], data: Any) -> list[str]:
    """The parts of a pydantic error location as the user wrote them (union labels dropped,
    each part cut to `MAX_ECHO` characters)."""
    cleaned: list[str] = []
    node = data
    for i, part in enumerate(loc):
        # pydantic puts union labels in the location ("game.normal_form.actions",
        # "game.payoffs.dict[str,list[float]].C,C"): drop them unless the data has that key
        # and the rest of the location goes on inside it ({continuation: 0.5, max: 1e9})
        if _is_union_label(part) and not (isinstance(node, dict) and part in node and _continues(node[part], loc[i + 1:], node)):
            continue
        cleaned.append(clip(part))
        if isinstance(node, dict):
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return cleaned


def _continues(child: Any, rest: tuple[Any, ...], node: Any) -> bool:
    """Whether the location `rest` goes on inside `child` rather than beside it in `node`."""
    if not rest:
        return True
    inside = isinstance(child, dict) and rest[0] in child or isinstance(child, list) and isinstance(rest[0], int)
    beside = isinstance(node, dict) and rest[0] in node
    return inside or not beside


def _describe_error(err: dict[str, Any], data: Any) -> str:
    """One line for one pydantic error: the field path (without union labels) and the
    problem, with any echoed input cut to `MAX_ECHO` characters."""
    cleaned = error_path(err["loc"], data)
    path = clip(".".join(cleaned), 160) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        name = cleaned[-1] if cleaned else "?"
        return f"{path}: unknown key '{name}'{_did_you_mean_key(err, data)}"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        tag = clip(ctx.get("tag", "?"))
        known = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
        what = "game" if ctx.get("discriminator") == "'kind'" and "normal_form" in known else (
            "policy" if ctx.get("discriminator") == "'type'" else "kind")
        return f"{path}: unknown {what} '{tag}'{registry.suggest(tag, known)}; known: {', '.join(known)}"
    if kind == "union_tag_not_found":
        return f"{path}: missing '{err.get('ctx', {}).get('discriminator', 'kind').strip(chr(39))}'"
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    message = _clip_words(message)
    if kind == "missing":
        message = "required field is missing"
    # model-level checks already start with their own field path ("game: ...")
    return message if path == "(top level)" and ":" in message else f"{path}: {message}"


def _clip_words(message: str) -> str:
    """The message on one line, each over-long word (an echoed value) cut, at most 400 characters."""
    return clip(" ".join(clip(word) for word in message.split()), 400)


def _did_you_mean_key(err: dict[str, Any], data: Any) -> str:
    """Suggest the closest allowed key for a mistyped one."""
    bad = str(err["loc"][-1])
    if len(bad) > 200:  # difflib is quadratic in the length
        return ""
    if len(err["loc"]) == 1:  # a top-level key: the scenario's own fields first ('rounds', not a policy's 'round')
        close = difflib.get_close_matches(bad, sorted(_fields_of(Scenario)), n=1, cutoff=0.7)
        if close:
            return f" (did you mean '{close[0]}'?)"
    candidates: set[str] = set()
    for model in (Scenario, AgentConfig, CommsConfig, ContinuationRounds):
        candidates.update(_fields_of(model))
    for kind in registry.GAMES:
        candidates.update(_fields_of(registry.game_config_model(kind)))
    for name in registry.POLICIES:
        spec = registry.policy_spec_model(name)
        candidates.update(_fields_of(spec))
        for info in spec.model_fields.values():  # nested blocks: an LLM agent's train:, template:, ...
            for inner in (info.annotation, *get_args(info.annotation)):
                candidates.update(_fields_of(inner))
    close = difflib.get_close_matches(bad, sorted(candidates), n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""


def scenario_problems(data: Any) -> list[str]:
    """Every problem of raw scenario data, one line each; empty when valid."""
    if not isinstance(data, dict):
        return [f"(top level): expected a mapping of scenario fields, found {type(data).__name__}"]
    try:
        Scenario.model_validate(data)
    except ValidationError as exc:
        return _first_problems([_describe_error(e, data) for e in exc.errors(include_url=False)])
    return []


def _first_problems(problems: list[str]) -> list[str]:
    """At most `MAX_PROBLEMS` distinct problems, then a count of the rest."""
    unique = list(dict.fromkeys(problems))
    if len(unique) <= MAX_PROBLEMS:
        return unique
    return unique[:MAX_PROBLEMS] + [f"... and {len(unique) - MAX_PROBLEMS} more problems"]


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate raw data into a `Scenario`, raising `ScenarioError` naming every problem."""
    problems = scenario_problems(data)
    if problems:
        raise ScenarioError(f"{source}: " + "; ".join(problems), problems=problems, source=source)
    return Scenario.model_validate(data)


def resolve_path(path_or_name: str | Path) -> Path:
    """A scenario file path, or the file of a built-in scenario name."""
    path = Path(path_or_name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if path.is_dir():
            raise ScenarioError(f"{path}: is a directory, not a scenario file")
        if not path.is_file():
            raise ScenarioError(f"{path}: no such scenario file")
        return path
    builtins = registry.builtin_scenarios()
    if str(path_or_name) in builtins:
        return builtins[str(path_or_name)]
    raise registry.unknown("scenario", str(path_or_name), list(builtins))


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Load and validate a scenario file or built-in scenario name.

    Args:
        path_or_name: a path to a YAML file, or the name of a built-in scenario
            (see `mas list`).

    Raises:
        ScenarioError: the file is missing, malformed or invalid (every problem named).
    """
    path = resolve_path(path_or_name)
    return parse_scenario(read_yaml(path), source=str(path))


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files, for editor completion."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mas scenario"
    return schema
