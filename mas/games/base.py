"""The game interface: rules written once over a leading batch dimension.

A `Game` is a stateless rule book. Its state is a dict of numpy arrays whose first axis
is the batch (B copies of the game); every method takes and returns whole batches. The
PettingZoo env is the batch-of-one view, the vector env (RL) steps thousands of copies,
and both call the same code, so rules are never written twice.

Conventions every game follows:
- Agents are indexed 0..N-1; every agent has the same number of discrete actions `A`
  (turn-based games mask the idle agents down to a "wait" action).
- `step` never mutates its input state; it returns a new dict.
- Illegal actions are replaced by the agent's first legal action *by the caller*
  (`sanitize_actions`), which reports them, so games may assume legal input.
- Rewards are float32 [B, N]; `terminated` is bool [B] (the game itself ended, e.g. a
  collapse or an accepted offer). Round limits are the env's business (truncation).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

State = dict[str, np.ndarray]

#: pydantic settings of every game config: unknown keys, NaN and inf are errors naming the field
CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
#: the most actions (or choice levels) a game config may give one agent
MAX_ACTIONS = 1001
#: the longest action, target or word name (characters)
MAX_NAME = 64
#: an action, target or word name
Name = Annotated[str, StringConstraints(max_length=MAX_NAME)]
#: the largest magnitude of any number in a game config (payoffs, endowments, pies, ...):
#: rewards are float32 (at most ~3.4e38) and add up over up to 100,000 rounds
MAX_MAGNITUDE = 1e12


class GameConfigBase(BaseModel):
    """Base of every game's scenario parameters: strict keys, finite numbers of at most
    `MAX_MAGNITUDE` in magnitude (nested lists and mappings included)."""

    model_config = CONFIG

    @model_validator(mode="after")
    def _bounded_numbers(self) -> "GameConfigBase":
        for name in type(self).model_fields:
            found = _too_large(getattr(self, name), name)
            if found is not None:
                raise ValueError(f"{found[0]}: {found[1]:g} is larger than {MAX_MAGNITUDE:g} in magnitude")
        return self


def _too_large(value: Any, path: str) -> tuple[str, float] | None:
    """(path, number) of the first number in `value` beyond `MAX_MAGNITUDE`, else None."""
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            if not abs(node) <= MAX_MAGNITUDE:  # also catches NaN
                return where, float(node) if abs(node) < 1e308 else float("inf")
        elif isinstance(node, dict):
            stack.extend((v, f"{where}.{k}") for k, v in reversed(list(node.items())))
        elif isinstance(node, (list, tuple)):
            stack.extend((v, f"{where}.{i}") for i, v in reversed(list(enumerate(node))))
    return None


@dataclass(frozen=True)
class StepResult:
    """What one batched step returns."""

    state: State
    rewards: np.ndarray  # float32 [B, N]
    terminated: np.ndarray  # bool [B]


@dataclass(frozen=True)
class Capabilities:
    """What a game offers, declared by the game so that strategies, prompts, trainers and
    metrics ask for a capability instead of checking the game's `kind`.

    Attributes:
        cooperate: the action index that means "cooperate" (the same for every seat), or
            None when the game has no such action.
        defect: the action index that means "defect", or None.
        simultaneous: every seat acts every step (False: turns, idle seats only WAIT).
        symmetric: exchanging seats cannot change anything (tournaments then play one
            seat order).
        roles: a role name per seat, e.g. ("speaker", "listener"); empty when seats are alike.
        private: summary keys that only some seats may see -> those seats; every other
            seat's view omits them (the signalling target is the speaker's alone).
        hidden_information: some seat's observation lacks what another's holds.
        cooperation_measure: `Game.cooperation` defines how cooperative actions are.
        social_optimum: `Game.social_optimum` gives the best total payoff per round.
        competitive: winning is what counts (tournament reports show Elo); False for a
            non-constant-sum social dilemma, where beating the partner is not the point.
        success_measure: `Game.success` scores each step as a success or a failure (e.g.
            the signalling game's pick); trainers then report a success rate.
    """

    cooperate: int | None = None
    defect: int | None = None
    simultaneous: bool = True
    symmetric: bool = False
    roles: tuple[str, ...] = ()
    private: Mapping[str, frozenset[int]] = field(default_factory=dict)
    hidden_information: bool = False
    cooperation_measure: bool = False
    social_optimum: bool = False
    competitive: bool = True
    success_measure: bool = False

    @property
    def has_cooperate_defect(self) -> bool:
        """Both a cooperate and a distinct defect action exist (what PD strategies need)."""
        return self.cooperate is not None and self.defect is not None and self.cooperate != self.defect


@dataclass(frozen=True)
class Outcomes:
    """A small discrete set of round outcomes an agent may predict (the LLM world model,
    `mas.agents.llm.world_model`): the question asked, the labels, and `classify`, which
    maps the game's summary after the round (as stored) to its label. Plain data only."""

    question: str
    labels: tuple[str, ...]
    classify: Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class GameInfo:
    """A read-only description of a game, all a policy is given: the rules, never the
    rule engine or its state.

    Attributes:
        kind: the game's registry name (for display and checkpoints; never branch on it).
        n_agents, num_actions, obs_dim, state_dim: sizes.
        action_names: each seat's action names.
        rules: each seat's rules in words.
        capabilities: what the game offers (see `Capabilities`).
        config: the game's validated scenario parameters (frozen; public rules).
        constants: derived public values a strategy may use (e.g. the harvest `amounts`).
        labels: (seat, summary) -> the action names as they apply in that state (e.g. the
            public goods game's punish step renames its actions).
        task: the sentence that asks an agent for its action (LLM prompts end with it).
        aliases: per seat, every name its actions go by in any state (for checking names
            a scenario gives, e.g. an LLM agent's fallback action).
        stage_payoffs: `Game.stage_payoffs()` (the public payoff table of one round) as
            nested tuples indexed by each seat's action, then the seat paid; or None.
        outcomes: `Game.outcomes()`: round outcomes an agent may predict, or None.
        round_payoff: `Game.round_payoff()`: (visible summary, joint actions int [K, N]) ->
            every seat's payoff float [K, N] of one round from that state, for games whose
            payoffs depend on the state (games with `stage_payoffs` need none); or None.
    """

    kind: str
    n_agents: int
    num_actions: int
    obs_dim: int
    state_dim: int
    action_names: tuple[tuple[str, ...], ...]
    rules: tuple[str, ...]
    capabilities: Capabilities
    config: Any = None
    constants: Mapping[str, Any] = field(default_factory=dict)
    labels: Callable[[int, Mapping[str, Any]], list[str]] | None = None
    task: str = "Choose your action."
    aliases: tuple[tuple[str, ...], ...] = ()
    stage_payoffs: tuple[Any, ...] | None = None
    outcomes: Outcomes | None = None
    round_payoff: Callable[[Mapping[str, Any], np.ndarray], np.ndarray] | None = None

    def action_labels(self, seat: int, summary: Mapping[str, Any]) -> list[str]:
        """Seat `seat`'s action names as they apply in the state described by `summary`."""
        if self.labels is None:
            return list(self.action_names[seat])
        return list(self.labels(seat, summary))


class Game(ABC):
    """Rules of one game family over batches; see the module docstring for conventions."""

    #: registry name of the game kind, e.g. "normal_form"
    kind: str = ""

    def __init__(self, n_agents: int) -> None:
        self.n_agents = int(n_agents)

    # ----- sizes --------------------------------------------------------------------
    @property
    @abstractmethod
    def num_actions(self) -> int:
        """Size `A` of every agent's discrete action space."""

    @property
    @abstractmethod
    def obs_dim(self) -> int:
        """Length of one agent's numeric observation vector."""

    @property
    @abstractmethod
    def state_dim(self) -> int:
        """Length of the global state vector used by centralised critics."""

    @abstractmethod
    def action_names(self, agent: int) -> list[str]:
        """Human-readable names of agent `agent`'s actions, length `num_actions`."""

    # ----- dynamics -----------------------------------------------------------------
    @abstractmethod
    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        """Initial states of `batch_size` copies."""

    @abstractmethod
    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        """Apply joint actions (int64 [B, N], assumed legal) to every copy."""

    @abstractmethod
    def observe(self, state: State) -> np.ndarray:
        """Per-agent numeric observations, float32 [B, N, obs_dim]."""

    @abstractmethod
    def global_state(self, state: State) -> np.ndarray:
        """Global state for centralised critics, float32 [B, state_dim]."""

    def action_mask(self, state: State) -> np.ndarray:
        """Legal actions, int8 [B, N, A]; simultaneous games allow everything."""
        batch = next(iter(state.values())).shape[0]
        return np.ones((batch, self.n_agents, self.num_actions), dtype=np.int8)

    def observe_key(self, state: State) -> Hashable | None:
        """A hashable name of the state such that `observe` and `action_mask` depend on it
        alone, or None (the default: no such name). A batch of one reuses the arrays of a
        state it saw before under the same key; it is called every step, so keep it cheap
        (a few `tobytes`), and override it only for games with few distinct observations."""
        return None

    #: Not None: the game's step is memoisable for a batch of one (`mas.state_memo`). It
    #: then promises, for states it names by `observe_key`: the state apart from these
    #: fields (counters that `step` advances by exactly one, e.g. rounds played) is fixed by
    #: the key; `step` draws nothing from `rng`; its rewards, game-over flags and the new
    #: state's key and other fields depend on the key and the actions alone.
    memo_counters: tuple[str, ...] | None = None

    # ----- meaning, for metrics and text ---------------------------------------------
    def cooperation(self, state: State, actions: np.ndarray) -> np.ndarray | None:
        """How cooperative each agent's action was, float [B, N] in [0, 1], NaN where the
        notion does not apply this step; None if the game defines no cooperation."""
        return None

    def summary(self, state: State, index: int) -> dict[str, Any]:
        """A small JSON-able summary of copy `index` (stored each step; e.g. the stock).
        It may hold private information: agents get `view_summary`, the store this."""
        return {}

    # ----- what one agent may know -------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        """What this game offers; override to declare more than the defaults."""
        return Capabilities()

    def constants(self) -> dict[str, Any]:
        """Derived public values for `GameInfo.constants` (e.g. action amounts)."""
        return {}

    def action_labels(self, seat: int, summary: Mapping[str, Any]) -> list[str]:
        """Seat `seat`'s action names as they apply in the state `summary` describes."""
        labeller = self.labeller()
        return self.action_names(seat) if labeller is None else list(labeller(seat, summary))

    def labeller(self) -> Callable[[int, Mapping[str, Any]], list[str]] | None:
        """A function (seat, summary) -> action labels for `GameInfo.labels`, holding only
        plain data (never the game), or None when the labels are the action names."""
        return None

    def action_aliases(self, seat: int) -> list[str]:
        """Every name an action of seat `seat` goes by in any state (default: its names)."""
        return self.action_names(seat)

    def task_text(self) -> str:
        """The sentence that asks an agent for its action (the end of an LLM prompt)."""
        return "Choose your action."

    def social_optimum(self) -> float | None:
        """The best total payoff of all agents in one round, or None when the game cannot
        say it in closed form (declare `Capabilities.social_optimum` when it can)."""
        return None

    def stage_payoffs(self) -> np.ndarray | None:
        """The payoff table of one round, float [A]*N + [N] (entry [a_0, ..., a_{N-1}, i]:
        seat i's payoff for that joint action), when a round's payoffs do not depend on
        the state; None otherwise. The exact baselines (`mas solve`) analyse it."""
        return None

    def outcomes(self) -> Outcomes | None:
        """Round outcomes an agent may predict (`Outcomes`, plain data), or None."""
        return None

    def round_payoff(self) -> Callable[[Mapping[str, Any], np.ndarray], np.ndarray] | None:
        """A function (visible summary, joint actions [K, N]) -> payoffs [K, N] of one round,
        holding only plain data (never the game), for state-dependent payoffs; or None."""
        return None

    def rgb_array(self, state: State, index: int) -> np.ndarray | None:
        """Copy `index` drawn as an RGB image, uint8 [height, width, 3], or None when the
        game has no picture (the PettingZoo env's `render_mode="rgb_array"`)."""
        return None

    def summary_rgb(self, summary: dict[str, Any]) -> np.ndarray | None:
        """The picture `rgb_array` draws, rebuilt from a stored `summary` of a state (the
        report's animated episode), or None when the game has no picture."""
        return None

    def tabular_mdp(self) -> Any:
        """The game as a finite single-agent Markov decision process (a
        `mas.solve.mdp.TabularMDP`) when it is one (e.g. a one-agent maze), else None."""
        return None

    def success(self, state: State, rewards: np.ndarray) -> np.ndarray | None:
        """Per copy, 1.0/0.0 whether the step taken in `state` (which earned `rewards`
        [B, N]) succeeded, NaN where no success is scored; None without a success measure."""
        return None

    # ----- analysis hooks (read a stored run; the analysis finds them through the registry)
    def episode_optimum(self, run: Any) -> Any:
        """The social optimum of each episode of a stored `run` (pandas Series by episode,
        over the rounds it was played), or None. Default: rounds x `social_optimum()`."""
        per_round = self.social_optimum()
        if per_round is None or run.episodes.empty:
            return None
        rounds = run.episodes.drop_duplicates("episode").set_index("episode")["rounds"].astype(int)
        return rounds * per_round

    def run_metrics(self, run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Game-specific overview metrics (name -> Interval or number) and tables (name ->
        DataFrame) of a stored `run`, shown by `mas report` after the shared ones."""
        return {}, {}

    def view_summary(self, state: State, index: int, seat: int) -> dict[str, Any]:
        """The part of `summary` that seat `seat` may know (see `visible`)."""
        return self.visible(self.summary(state, index), seat)

    def visible(self, summary: Mapping[str, Any], seat: int) -> dict[str, Any]:
        """`summary` less the keys the capabilities declare private to other seats (one
        summary of a state serves every seat's view)."""
        private = self.info().capabilities.private
        if not private:
            return dict(summary)
        return {k: v for k, v in summary.items() if k not in private or seat in private[k]}

    def info(self) -> GameInfo:
        """The read-only description policies are built with (computed once)."""
        cached = self.__dict__.get("_info")
        if cached is None:
            seats = range(self.n_agents)
            cached = GameInfo(
                kind=self.kind,
                n_agents=self.n_agents,
                num_actions=self.num_actions,
                obs_dim=self.obs_dim,
                state_dim=self.state_dim,
                action_names=tuple(tuple(self.action_names(s)) for s in seats),
                rules=tuple(self.rules_text(s) for s in seats),
                capabilities=self.capabilities,
                config=getattr(self, "config", None),
                constants=self.constants(),
                labels=self.labeller(),
                task=self.task_text(),
                aliases=tuple(tuple(self.action_aliases(s)) for s in seats),
                stage_payoffs=_nested_tuple(self.stage_payoffs()),
                outcomes=self.outcomes(),
                round_payoff=self.round_payoff(),
            )
            self.__dict__["_info"] = cached
        return cached

    @abstractmethod
    def rules_text(self, agent: int) -> str:
        """The rules as agent `agent` is told them (LLM prompts build on this)."""

    @abstractmethod
    def situation_text(self, state: State, index: int, agent: int) -> str:
        """What agent `agent` currently sees in copy `index`, in words."""


def sanitize_actions(actions: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace illegal actions by the first legal one; returns (legal actions, was_illegal).

    Args:
        actions: int [B, N] chosen actions (may be out of range).
        mask: int8 [B, N, A] legal-action mask.
    """
    num_actions = mask.shape[-1]
    in_range = (actions >= 0) & (actions < num_actions)
    clipped = np.where(in_range, actions, 0).astype(np.int64)
    batch_index, agent_index = _grid(*actions.shape)
    legal = in_range & (mask[batch_index, agent_index, clipped] > 0)
    if legal.all():  # the common case: nothing to replace
        return clipped, ~legal
    first_legal = np.argmax(mask > 0, axis=-1)
    return np.where(legal, clipped, first_legal).astype(np.int64), ~legal


def one_hot(indices: np.ndarray, size: int) -> np.ndarray:
    """float32 one-hot of integer `indices` (any shape); negative indices give all zeros."""
    return _eye(size)[np.where(indices < 0, size, indices)]


@functools.lru_cache(maxsize=64)
def _grid(batch: int, agents: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays [B, 1] and [1, N] that pick one entry per copy and agent."""
    return np.arange(batch)[:, None], np.arange(agents)[None, :]


@functools.lru_cache(maxsize=64)
def _eye(size: int) -> np.ndarray:
    # an extra all-zero row at index `size` encodes "no action yet"
    return np.eye(size + 1, dtype=np.float32)[:, :size]


def _nested_tuple(table: np.ndarray | None) -> tuple[Any, ...] | None:
    """A payoff table as nested tuples of floats (GameInfo holds no mutable arrays)."""
    if table is None:
        return None
    return tuple(_nested_tuple(row) if row.ndim else float(row) for row in np.asarray(table, dtype=float))  # type: ignore[misc]
