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
from dataclasses import dataclass
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

    # ----- meaning, for metrics and text ---------------------------------------------
    def cooperation(self, state: State, actions: np.ndarray) -> np.ndarray | None:
        """How cooperative each agent's action was, float [B, N] in [0, 1], NaN where the
        notion does not apply this step; None if the game defines no cooperation."""
        return None

    def summary(self, state: State, index: int) -> dict[str, Any]:
        """A small JSON-able summary of copy `index` (stored each step; e.g. the stock)."""
        return {}

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
    clipped = np.where(in_range, actions, 0)
    batch_index = np.arange(actions.shape[0])[:, None]
    agent_index = np.arange(actions.shape[1])[None, :]
    legal = in_range & (mask[batch_index, agent_index, clipped] > 0)
    first_legal = np.argmax(mask > 0, axis=-1)
    return np.where(legal, clipped, first_legal).astype(np.int64), ~legal


def one_hot(indices: np.ndarray, size: int) -> np.ndarray:
    """float32 one-hot of integer `indices` (any shape); negative indices give all zeros."""
    return _eye(size)[np.where(indices < 0, size, indices)]


@functools.lru_cache(maxsize=64)
def _eye(size: int) -> np.ndarray:
    # an extra all-zero row at index `size` encodes "no action yet"
    return np.eye(size + 1, dtype=np.float32)[:, :size]
