"""Hyperparameters of the learners, and the scenario specs built from them.

Each algorithm's hyperparameters are one frozen dataclass with documented defaults (the
single source of truth). The scenario spec of the policy type (`iql`, `mappo`) is a
pydantic model generated from that dataclass, so every hyperparameter can be set in a
scenario file (`policy: {type: mappo, lr: 0.001}`) and a mistyped or out-of-range one is
named like any other scenario error. This module imports no torch: scenario files are
validated without it.

Policy types:
- `iql`, `mappo`: an agent that *learns* in `mas train`. `mas run` refuses to play an
  untrained learner; play the trained one with `checkpoint`.
- `checkpoint`: a trained agent loaded from a `mas train` checkpoint, for `mas run` and
  tournaments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_type_hints

from pydantic import Field, ValidationError, create_model, model_validator

from mas.agents.base import Policy, PolicySpec
from mas.errors import MasError


def hp(default: Any, doc: str, **bounds: Any) -> Any:
    """A documented hyperparameter; `bounds` are pydantic constraints (ge, gt, le, lt)."""
    return field(default=default, metadata={"doc": doc, **bounds})


@dataclass(frozen=True)
class IQLConfig:
    """Independent Q-learning: every learning agent has its own Q-function."""

    variant: Literal["tabular", "dqn"] = hp("tabular", "tabular: a Q table over the (hashable) observation; dqn: a Q-network with replay.")
    update: Literal["q_learning", "sarsa"] = hp("q_learning", "Tabular target: max over next actions (Q-learning) or the next action taken (SARSA).")
    gamma: float = hp(0.95, "Discount factor.", ge=0.0, le=1.0)
    alpha: float = hp(0.1, "Tabular step size.", gt=0.0, le=1.0)
    epsilon_start: float = hp(1.0, "Exploration rate at the start (epsilon-greedy).", ge=0.0, le=1.0)
    epsilon_end: float = hp(0.05, "Exploration rate after the decay.", ge=0.0, le=1.0)
    exploration_fraction: float = hp(0.5, "Fraction of the training steps over which epsilon decays linearly.", gt=0.0, le=1.0)
    num_envs: int = hp(16, "Game copies stepped at once.", ge=1, le=65536)
    lr: float = hp(5e-4, "DQN: Adam learning rate.", gt=0.0)
    hidden: int = hp(64, "DQN: hidden units of the two-layer Q-network.", ge=1, le=65536)
    buffer_size: int = hp(50_000, "DQN: replay buffer capacity, in vector steps (each holds every copy).", ge=1, le=10_000_000)
    batch_size: int = hp(256, "DQN: transitions per gradient step.", ge=1, le=1_000_000)
    learning_starts: int = hp(1_000, "DQN: env steps collected before the first gradient step.", ge=0)
    train_frequency: int = hp(1, "DQN: vector steps between gradient steps.", ge=1)
    target_update_interval: int = hp(200, "DQN: gradient steps between target-network copies.", ge=1)
    double_q: bool = hp(True, "DQN: pick the next action with the online net, value it with the target net.")
    shared: bool = hp(False, "DQN: one network for all learners, with the agent id appended to the observation.")
    max_grad_norm: float = hp(10.0, "DQN: gradient-norm clip.", gt=0.0)


@dataclass(frozen=True)
class MAPPOConfig:
    """MAPPO (centralised critic) or IPPO (decentralised critics). Defaults follow the
    official MPE configuration of Yu et al. (marlbenchmark/on-policy)."""

    num_envs: int = hp(128, "Game copies stepped at once (the authors advise at least 50).", ge=1, le=65536)
    rollout_steps: int = hp(25, "Vector steps collected per update.", ge=1, le=100_000)
    epochs: int = hp(10, "PPO epochs over each rollout.", ge=1, le=1000)
    minibatches: int = hp(1, "Minibatches per epoch.", ge=1, le=4096)
    lr: float = hp(7e-4, "Actor Adam learning rate.", gt=0.0)
    critic_lr: float = hp(7e-4, "Critic Adam learning rate.", gt=0.0)
    clip: float = hp(0.2, "PPO ratio clip (also clips the value update).", gt=0.0)
    gamma: float = hp(0.99, "Discount factor.", ge=0.0, le=1.0)
    gae_lambda: float = hp(0.95, "GAE lambda.", ge=0.0, le=1.0)
    entropy_coef: float = hp(0.01, "Entropy bonus weight.", ge=0.0)
    value_coef: float = hp(1.0, "Value loss weight.", ge=0.0)
    max_grad_norm: float = hp(10.0, "Gradient-norm clip.", gt=0.0)
    huber_delta: float = hp(10.0, "Huber loss delta of the value loss.", gt=0.0)
    value_norm: bool = hp(True, "Normalise value targets with running mean and std.")
    layer_norm: bool = hp(True, "LayerNorm on network inputs.")
    hidden: int = hp(64, "Hidden units of the two-layer actor and critic.", ge=1, le=65536)
    shared_actor: bool = hp(True, "One actor for all learners, with the agent id appended to the observation.")
    centralised_critic: bool = hp(True, "Critic on the game's global state (MAPPO); false: on each agent's own observation (IPPO).")


ALGORITHMS: dict[str, type] = {"iql": IQLConfig, "mappo": MAPPOConfig}


def config_from(cls: type, values: dict[str, Any]) -> Any:
    """A config dataclass from plain values; unknown keys raise MasError naming them."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise MasError(f"{cls.__name__}: unknown hyperparameter(s) {unknown}; known: {sorted(names)}")
    return cls(**values)


# ----- scenario specs ------------------------------------------------------------------
class LearnerSpec(PolicySpec):
    """Base of the learner specs: the hyperparameters, as scenario fields."""

    def to_config(self, **overrides: Any) -> Any:
        """The algorithm's frozen config from this spec (plus CLI overrides)."""
        cls = ALGORITHMS[self.type]  # type: ignore[attr-defined]
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise MasError(f"unknown {self.type} hyperparameter(s) {unknown}; known: {sorted(f.name for f in dataclasses.fields(cls))}")
        try:  # validate the overrides with the same rules as the scenario file
            merged = type(self).model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or self.type
            raise MasError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
        return cls(**{f.name: getattr(merged, f.name) for f in dataclasses.fields(cls)})


def _spec_from_config(name: str, cls: type, doc: str, check: Any = None) -> type[LearnerSpec]:
    hints = get_type_hints(cls)
    fields: dict[str, Any] = {"type": (Literal[name], name)}  # type: ignore[valid-type]
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        fields[f.name] = (hints[f.name], Field(f.default, description=meta.pop("doc"), **meta))
    validators = {"_check": model_validator(mode="after")(check)} if check else None
    model = create_model(
        f"{cls.__name__.removesuffix('Config')}Spec", __base__=LearnerSpec, __module__=__name__, __validators__=validators, **fields
    )
    model.__doc__ = doc
    return model


def _check_iql(spec: Any) -> Any:
    if spec.update == "sarsa" and spec.variant != "tabular":
        raise ValueError("update: sarsa is implemented for the tabular variant only; use update: q_learning with dqn")
    if spec.epsilon_end > spec.epsilon_start:
        raise ValueError(f"epsilon_end ({spec.epsilon_end}) must not exceed epsilon_start ({spec.epsilon_start})")
    return spec


IQLSpec = _spec_from_config("iql", IQLConfig, "Independent Q-learner (tabular or DQN); trained by `mas train --algo iql`.", _check_iql)
MAPPOSpec = _spec_from_config("mappo", MAPPOConfig, "MAPPO/IPPO learner; trained by `mas train --algo mappo` (or ippo).")


class CheckpointSpec(PolicySpec):
    """A trained agent from a `mas train` checkpoint."""

    type: Literal["checkpoint"] = "checkpoint"
    path: str = Field(min_length=1, description="Checkpoint file written by `mas train` (relative to the working directory).")
    agent: str | None = Field(None, description="Which trained agent's policy to play; default: the seat's own agent id.")
    mode: Literal["greedy", "sample"] = Field(
        "greedy",
        description="greedy: the best action (highest Q or probability); sample: draw from the policy "
        "(MAPPO: its action distribution; IQL: epsilon-greedy with the final training epsilon).",
    )


class UntrainedLearner(Policy):
    """A learner seat in `mas run`: refuses to play, since an untrained agent would be a
    silent stand-in for a trained one."""

    def __init__(self, spec: Any, game: Any, agents: Any, agent_ids: Any) -> None:
        ids = ", ".join(a.agent for a in agents)
        raise MasError(
            f"agent(s) {ids}: policy '{spec.type}' is a learner; train it with 'mas train SCENARIO --algo {spec.type}' "
            "and play the result with policy {type: checkpoint, path: <run dir>/checkpoint.pt} "
            "(mas train also writes <run dir>/play.yaml)"
        )

    def act(self, views: Any) -> list:  # pragma: no cover - never constructed
        raise NotImplementedError


class IQLLearner(UntrainedLearner):
    """Independent Q-learner (tabular or DQN): trained by `mas train --algo iql`; play it as a checkpoint."""


class MAPPOLearner(UntrainedLearner):
    """MAPPO learner (IPPO with --algo ippo): trained by `mas train`; play it as a checkpoint."""
