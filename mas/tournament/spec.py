"""Tournament files: YAML validated by pydantic into a `Tournament`.

A tournament file names a base scenario (the game), a roster of entrants, the format, the
repetitions, the rounds per match and a seed. Each match is the base scenario with its
`agents` replaced by the match's entrants, so every field of a scenario file (comms,
talk rounds, the game's parameters) applies to tournaments too.

    name: axelrod_classic
    scenario: prisoners_dilemma     # built-in name, a path (relative to this file), or inline
    rounds: 200                     # optional; or {continuation: 0.99654, max: 1000}
    repetitions: 5
    self_play: true
    seed: 1
    format: {kind: ecological, dynamics: replicator, generations: 1000}  # or round_robin
    entrants:
      - {name: tit_for_tat, policy: tit_for_tat}
      - {name: joss, policy: {type: joss, sneakiness: 0.1}, persona: "..."}

Errors use the scenario files' style: the file, the field path, what was expected and a
"did you mean" for a mistyped key.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mas import registry
from mas.errors import MasError, ScenarioError
from mas.scenario import (
    AGENT_ID_PATTERN,
    AgentConfig,
    ContinuationRounds,
    PolicyConfig,
    Rounds,
    Scenario,
    MAX_AGENTS,
    MAX_SEED,
    _describe_error,
    _fields_of,
    _first_problems,
    clip,
    error_path,
    parse_scenario,
    read_yaml,
    resolve_path,
)

#: the most matches one tournament file may schedule (repetitions x groups x seat rotations)
MAX_MATCHES = 1_000_000


class TournamentError(ScenarioError):
    """A tournament file is missing, malformed or invalid, or a run directory does not
    match it; `problems` lists each problem."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Entrant(_Frozen):
    """One member of the roster: a name and any registered policy spec."""

    name: str = Field(pattern=AGENT_ID_PATTERN, description="Entrant name: a letter, then letters, digits, _ or -.")
    policy: PolicyConfig
    persona: str = Field("", max_length=4000, description="Who the entrant is, in words (LLM prompts use it).")

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


class RoundRobinFormat(_Frozen):
    """Every pair (or balanced group) plays; entrants are ranked by mean score per match."""

    kind: Literal["round_robin"] = "round_robin"


class EcologicalFormat(_Frozen):
    """A round robin, then population shares evolve from its payoff matrix (Axelrod's
    ecological analysis)."""

    kind: Literal["ecological"] = "ecological"
    dynamics: Literal["replicator", "moran"] = Field(
        "replicator", description="replicator: discrete replicator dynamics on shares; moran: a finite-population Moran process."
    )
    generations: int = Field(1000, ge=1, le=1_000_000, description="Replicator generations, or Moran birth-death steps (at most).")
    population: int = Field(100, ge=2, le=1_000_000, description="Moran process: number of individuals.")
    initial: dict[str, float] | None = Field(None, description="Starting share per entrant name (normalised); default equal shares.")


Format = Annotated[Union[RoundRobinFormat, EcologicalFormat], Field(discriminator="kind")]


class RatingsConfig(_Frozen):
    """How the ranking's uncertainty and ratings are computed."""

    bootstrap: int = Field(1000, ge=10, le=100_000, description="Bootstrap resamples of matches for intervals and rank stability.")
    confidence: float = Field(0.95, gt=0.0, lt=1.0, description="Coverage of the bootstrap intervals.")
    elo_k: float = Field(16.0, gt=0.0, le=400.0, description="Elo update step per match.")
    self_play: Literal["seats", "match"] = Field(
        "seats", description="How a self-play match counts in the scores: once per seat, or once per match (the axelrod library's convention).")


class TournamentFile(_Frozen):
    """The validated contents of a tournament file (the base scenario still unresolved)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$", description="Short name, used for run directories.")
    description: str = Field("", max_length=10_000)
    scenario: str | dict[str, Any] = Field(
        description="The base scenario: a built-in name, a path (relative to the tournament file) or an inline scenario."
    )
    rounds: Rounds | None = Field(None, description="Rounds per match; default: the base scenario's.")
    entrants: list[Entrant] = Field(min_length=2, max_length=MAX_AGENTS, description=f"The roster (2 to {MAX_AGENTS} entrants).")
    format: Format = Field(default_factory=RoundRobinFormat)
    repetitions: int = Field(1, ge=1, le=100_000, description="How many times every pairing (or group draw) is played.")
    self_play: bool = Field(False, description="Two-player games: each entrant also plays a copy of itself.")
    seats: Literal["auto", "swap", "fixed"] = Field(
        "auto",
        description="swap: every pairing is also played with seats exchanged (rotated for groups); "
        "fixed: never; auto: swap only when the game is not symmetric.",
    )
    group_size: int | None = Field(None, ge=2, le=64, description="Players per match; default: the base scenario's agent count.")
    matches_per_entrant: int | None = Field(
        None, ge=1, le=100_000, description="Groups of 3 or more: matches each entrant plays per repetition (before seat rotation)."
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Master seed: fixes every match.")
    ratings: RatingsConfig = Field(default_factory=RatingsConfig)

    @field_validator("format", mode="before")
    @classmethod
    def _format_shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("entrants", mode="after")
    @classmethod
    def _unique_names(cls, entrants: list[Entrant]) -> list[Entrant]:
        names = [e.name for e in entrants]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"entrant names must be unique; repeated: {repeated}")
        return entrants

    @model_validator(mode="after")
    def _format_fits(self) -> "TournamentFile":
        names = {e.name for e in self.entrants}
        if isinstance(self.format, EcologicalFormat) and self.format.initial is not None:
            unknown = sorted(set(self.format.initial) - names)
            if unknown:
                raise ValueError(f"format.initial: unknown entrant(s) {unknown}; entrants: {sorted(names)}")
            if any(v < 0 or not math.isfinite(v) for v in self.format.initial.values()) or sum(self.format.initial.values()) <= 0:
                raise ValueError("format.initial: shares must be >= 0 with a positive total")
        return self


@dataclass(frozen=True)
class Tournament:
    """A validated tournament: the file's settings plus the resolved base scenario.

    Attributes:
        spec: the validated file.
        base: the base scenario (its own agents are replaced per match).
        group_size: players per match.
        seat_ids: agent ids of the seats in every match (the base scenario's ids when the
            sizes agree, else player_1..player_k); neutral, so entrants never learn each
            other's names from message senders.
        source: where it was read from (for messages).
    """

    spec: TournamentFile
    base: Scenario
    group_size: int
    seat_ids: tuple[str, ...]
    source: str = "<tournament>"

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.spec.entrants]

    @property
    def rounds(self) -> int | ContinuationRounds:
        return self.spec.rounds if self.spec.rounds is not None else self.base.rounds

    @property
    def max_rounds(self) -> int:
        """The most rounds a match can last (the fixed number, or the continuation's cap)."""
        return self.rounds if isinstance(self.rounds, int) else self.rounds.max

    def match_scenario(self, seats: tuple[int, ...]) -> Scenario:
        """The base scenario with its seats filled by the given entrants (by index)."""
        entrants = self.spec.entrants
        agents = [
            AgentConfig(id=seat_id, policy=entrants[e].policy, persona=entrants[e].persona)
            for seat_id, e in zip(self.seat_ids, seats)
        ]
        return self.base.model_copy(update={"agents": agents, "rounds": self.rounds})

    def with_seed(self, seed: int) -> "Tournament":
        """The same tournament with another master seed (`--seed`)."""
        return replace(self, spec=self.spec.model_copy(update={"seed": seed}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able resolved tournament, with the base scenario inline (stored with the run)."""
        data = json.loads(self.spec.model_dump_json())
        data["scenario"] = self.base.to_dict()
        return data


# ----- loading and errors -------------------------------------------------------------------
_MODELS = (TournamentFile, Entrant, RoundRobinFormat, EcologicalFormat, RatingsConfig, ContinuationRounds)


def _describe(err: dict[str, Any], data: Any) -> str:
    """One line per pydantic error; unknown keys get a suggestion from tournament fields."""
    if err["type"] == "extra_forbidden":
        bad = str(err["loc"][-1])
        candidates = {f for model in _MODELS for f in _fields_of(model)}
        candidates.update(f for name in registry.POLICIES for f in _fields_of(registry.policy_spec_model(name)))
        close = difflib.get_close_matches(bad, sorted(candidates), n=1, cutoff=0.7) if len(bad) <= 200 else []
        path = ".".join(error_path(err["loc"], data))
        return f"{clip(path, 160)}: unknown key '{clip(bad)}'" + (f" (did you mean '{close[0]}'?)" if close else "")
    if err["type"] == "union_tag_invalid" and err.get("ctx", {}).get("discriminator") == "'kind'" and err["loc"][:1] == ("format",):
        tag = clip(err["ctx"].get("tag", "?"))
        known = ["round_robin", "ecological"]
        return f"format: unknown format '{tag}'{registry.suggest(tag, known)}; known: {', '.join(known)}"
    return _describe_error(err, data)


def _fail(source: str, problems: list[str]) -> TournamentError:
    return TournamentError(f"{source}: " + "; ".join(problems), problems=problems, source=source)


def parse_tournament(data: Any, source: str = "<tournament>", base_dir: Path | None = None) -> Tournament:
    """Validate raw tournament data (a parsed YAML mapping) into a `Tournament`.

    Args:
        data: the mapping read from a tournament file, or a stored resolved tournament.
        source: the file name, for messages.
        base_dir: where a relative base-scenario path is looked up first.

    Raises:
        TournamentError: naming every problem, with the file and field path.
    """
    if not isinstance(data, dict):
        raise _fail(source, [f"(top level): expected a mapping of tournament fields, found {type(data).__name__}"])
    try:
        spec = TournamentFile.model_validate(data)
    except ValidationError as exc:
        raise _fail(source, _first_problems([_describe(e, data) for e in exc.errors(include_url=False)])) from None
    base_data, base_source = _base_scenario_data(spec.scenario, base_dir)
    if "agents" not in base_data:  # an inline base may leave the seats to the entrants
        size = spec.group_size or 2
        base_data = {**base_data, "agents": [{"id": f"player_{i + 1}", "policy": "random"} for i in range(size)]}
    try:
        base = parse_scenario(base_data, source=base_source)
    except ScenarioError as exc:
        raise _fail(source, [f"scenario: {p}" for p in exc.problems] if base_source == "<inline>" else [str(exc)]) from None
    group_size = spec.group_size or len(base.agents)
    seat_ids = tuple(base.agent_ids) if len(base.agents) == group_size else tuple(f"player_{i + 1}" for i in range(group_size))
    tournament = Tournament(spec=spec, base=base, group_size=group_size, seat_ids=seat_ids, source=source)
    problems = _fit_problems(tournament)
    if problems:
        raise _fail(source, problems)
    return tournament


def _base_scenario_data(scenario: str | dict[str, Any], base_dir: Path | None) -> tuple[dict[str, Any], str]:
    if isinstance(scenario, dict):
        return scenario, "<inline>"
    candidate = (base_dir / scenario) if base_dir is not None else None
    path = candidate if candidate is not None and candidate.is_file() else resolve_path(scenario)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: (top level): expected a mapping of scenario fields, found {type(data).__name__}")
    return data, str(path)


def _fit_problems(tournament: Tournament) -> list[str]:
    """Problems that need the game: can every entrant play it, do the settings fit."""
    spec, k = tournament.spec, tournament.group_size
    n = len(spec.entrants)
    problems: list[str] = []
    try:
        game = registry.make_game(tournament.base.game, k)
    except ValueError as exc:
        return [f"group_size: the game cannot be played by {k} players ({exc})"]
    for i, entrant in enumerate(spec.entrants):
        try:
            entrant.policy.check_game(game.info())
        except ValueError as exc:
            problems.append(f"entrants.{i}.policy: {entrant.policy.type} cannot play this game: {exc}")
    if k > n:
        problems.append(f"group_size: groups of {k} need at least {k} entrants, found {n}")
    if k == 2 and spec.matches_per_entrant is not None:
        problems.append("matches_per_entrant: applies to groups of 3 or more; two-player games play a full round robin")
    if k > 2 and spec.matches_per_entrant is not None and (n * spec.matches_per_entrant) % k:
        problems.append(
            f"matches_per_entrant: {n} entrants x {spec.matches_per_entrant} matches must fill groups of {k} exactly"
        )
    # before any schedule is built: an upper bound (seat rotations counted unless seats: fixed)
    per_repetition = n * (n + 1) // 2 if k == 2 else n * (spec.matches_per_entrant or k) // k
    matches = spec.repetitions * per_repetition * (1 if spec.seats == "fixed" else k)
    if matches > MAX_MATCHES:
        problems.append(f"repetitions: about {matches:,} matches (repetitions x groups x seat rotations); at most {MAX_MATCHES:,}")
    if isinstance(spec.format, EcologicalFormat) and (k != 2 or not spec.self_play):
        problems.append("format: ecological tournaments need a two-player game and self_play: true (a full payoff matrix)")
    if not problems:
        try:  # one representative match: catches e.g. a comms topology naming the base's agents
            first = tuple(i % n for i in range(k))
            match = tournament.match_scenario(first)
            Scenario.model_validate(match.to_dict())
        except ValidationError as exc:
            problems.extend(f"scenario: {_describe_error(e, {})}" for e in exc.errors(include_url=False))
    return problems


def load_tournament(path: str | Path) -> Tournament:
    """Load and validate a tournament file or built-in tournament name (see `mas list`).

    Raises:
        TournamentError: the file is missing, malformed or invalid (every problem named).
    """
    path = Path(path)
    if path.is_dir():
        raise TournamentError(f"{path}: is a directory, not a tournament file")
    builtins = registry.builtin_tournaments()
    if not path.exists() and path.suffix not in (".yaml", ".yml") and str(path) in builtins:
        path = builtins[str(path)]
    if not path.is_file():
        raise TournamentError(f"{path}: no such tournament file")
    try:
        data = read_yaml(path)
    except ScenarioError as exc:
        raise TournamentError(str(exc), source=str(path)) from None
    try:
        return parse_tournament(data, source=str(path), base_dir=path.parent)
    except TournamentError:
        raise
    except MasError as exc:  # the base scenario: missing file, unknown built-in name
        raise TournamentError(f"{path}: scenario: {exc}", source=str(path)) from None
