"""The learner registry: every training algorithm, registered once.

`mas train --algo NAME`, the CLI's choices, checkpoints, `infer_algo` and the config
resolution all read this one dict. A record names code as "module:attr" strings, imported
only when used, so importing the registry (the CLI does, to build its parser) costs nothing.

Adding an algorithm: a learner module under `mas.agents.rl` (its config dataclass in
`mas.agents.rl.config`, which stays free of torch so scenario files validate without it)
and one record here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mas.errors import UnknownNameError
from mas.registry import load_attr, suggest


@dataclass(frozen=True)
class Algorithm:
    """One training algorithm.

    Attributes:
        name: the `--algo` name.
        summary: one line for help texts.
        learner: "module:attr" of the learner (a class or factory; imports torch).
        hyperparameters: "module:attr" of the pydantic model that validates its
            hyperparameters; the model's `config_class` is the frozen config dataclass.
        policy_type: the scenario policy type of the agents it trains.
        llm: fine-tunes LLM-policy agents (LoRA adapters, `mas.training.llm`); their
            hyperparameters are the agent spec's `train:` block, not the spec itself.
        alias_of: the algorithm this one is a preset of (its checkpoints are that algorithm's).
        fixed: hyperparameters the preset pins (before the user's overrides).
    """

    name: str
    summary: str
    learner: str
    hyperparameters: str
    policy_type: str
    llm: bool = False
    alias_of: str | None = None
    fixed: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def family(self) -> str:
        """The algorithm its checkpoints record (itself, or what it is an alias of)."""
        return self.alias_of or self.name


_CONFIG = "mas.agents.rl.config"

ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("iql", "independent Q-learning (tabular or DQN)", "mas.agents.rl.iql:make_iql", f"{_CONFIG}:IQLSpec", "iql"),
        Algorithm("mappo", "MAPPO: PPO with a centralised critic", "mas.agents.rl.mappo:MAPPO", f"{_CONFIG}:MAPPOSpec", "mappo"),
        Algorithm("ippo", "IPPO: MAPPO with decentralised critics", "mas.agents.rl.mappo:MAPPO", f"{_CONFIG}:MAPPOSpec", "mappo",
                  alias_of="mappo", fixed=MappingProxyType({"centralised_critic": False})),
        Algorithm("llm-ppo", "PPO fine-tuning of LLM agents (LoRA, value head)", "mas.agents.rl.llm_ppo:LLMPPO",
                  f"{_CONFIG}:LLMTrainSpec", "llm", llm=True),
        Algorithm("llm-mappo", "llm-ppo with a centralised critic", "mas.agents.rl.llm_ppo:LLMPPO",
                  f"{_CONFIG}:LLMTrainSpec", "llm", llm=True, alias_of="llm-ppo",
                  fixed=MappingProxyType({"centralised_critic": True})),
    )
}


def get(name: str) -> Algorithm:
    """The record of `name`; an unknown name is a one-line error with a suggestion."""
    if name not in ALGORITHMS:
        raise UnknownNameError(f"--algo: unknown algorithm '{name}'{suggest(name, list(ALGORITHMS))}; "
                               f"known: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


def learner_types() -> set[str]:
    """Scenario policy types that mark numeric learners (`iql`, `mappo`)."""
    return {a.policy_type for a in ALGORITHMS.values() if not a.llm}


def for_policy_type(policy_type: str) -> Algorithm:
    """The (non-alias) algorithm that trains agents of `policy_type`."""
    return next(a for a in ALGORITHMS.values() if a.policy_type == policy_type and a.alias_of is None)


def checkpoint_algorithms() -> list[str]:
    """Algorithms a `checkpoint.pt` of a numeric learner can hold."""
    return [a.name for a in ALGORITHMS.values() if not a.llm and a.alias_of is None]


def hyperparameter_model(algo: Algorithm) -> Any:
    """The pydantic model validating `algo`'s hyperparameters (imports no torch)."""
    return load_attr(algo.hyperparameters)


def make_config(algo: Algorithm, values: Mapping[str, Any]) -> Any:
    """`algo`'s frozen config from plain values, validated like the scenario file."""
    from mas.agents.rl.config import validated_config

    return validated_config(hyperparameter_model(algo), dict(values), algo.name)


def learner_factory(algo: Algorithm) -> Any:
    """The learner class or factory of `algo` (imports torch)."""
    return load_attr(algo.learner, "rl")
