"""Hyperparameters of the learners, and the scenario specs built from them.

Each algorithm's hyperparameters are one frozen dataclass with documented defaults (the
single source of truth). The scenario spec of the policy type (`iql`, `mappo`) is a
pydantic model generated from that dataclass, so every hyperparameter can be set in a
scenario file (`policy: {type: mappo, lr: 0.001}`) and a mistyped or out-of-range one is
named like any other scenario error. LLM agents are trained by `llm-ppo`/`llm-mappo` with
`LLMPPOConfig`, set in the agent's optional `train:` block (`policy: {type: llm, train:
{lr: 0.0005}}`), since the spec's own fields are those of play. `mas train --set key=value`
overrides either, validated by the same rules. The algorithms themselves are registered in
`mas.training.registry`. This module imports no torch: scenario files are validated without it.

Policy types:
- `iql`, `mappo`: an agent that *learns* in `mas train`. `mas run` refuses to play an
  untrained learner; play the trained one with `checkpoint`.
- `checkpoint`: a trained agent loaded from a `mas train` checkpoint, for `mas run` and
  tournaments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from mas.agents.base import Policy, PolicySpec
from mas.errors import MasError
from mas.registry import suggest


def hp(default: Any, doc: str, **bounds: Any) -> Any:
    """A documented hyperparameter; `bounds` are pydantic constraints (ge, gt, le, lt)."""
    return field(default=default, metadata={"doc": doc, **bounds})


def _prior_hp() -> Any:
    return hp(None, "LLM-guided: a fixed prior over action labels, e.g. {Stag: 0.9, Hare: 0.1} (mas.agents.rl.prior).")


def _prior_run_hp() -> Any:
    return hp(None, "LLM-guided: a run directory whose stored LLM action distributions make the prior (averaged, or per state: prior_mode).")


def _prior_agent_hp() -> Any:
    return hp(None, "LLM-guided: whose stored decisions in prior_run make the prior (default: the learner's own id).")


def _prior_mode_hp() -> Any:
    return hp("marginal", "LLM-guided, prior_run: marginal: one distribution per learner, the mean of the stored ones; situation: "
              "the run replayed so each stored distribution is paired with the learner observation it was made in, a "
              "distribution per state (the marginal where the run never went).")


def _prior_words_hp() -> Any:
    return hp(None, "LLM-guided, learners that talk: a prior over the message tokens, {word: p} ('' is silence); default uniform.")


@dataclass(frozen=True)
class IQLConfig:
    """Independent Q-learning: every learning agent has its own Q-function."""

    variant: Literal["tabular", "dqn"] = hp("tabular", "tabular: a Q table over the (hashable) observation; dqn: a Q-network with replay.")
    update: Literal["q_learning", "sarsa", "monte_carlo"] = hp(
        "q_learning", "Tabular target: max over next actions (Q-learning), the next action taken (SARSA) or the episode's return (Monte Carlo).")
    visits: Literal["every", "first"] = hp("every", "Monte Carlo: count every visit of a state-action pair in an episode, or only the first.")
    gamma: float = hp(0.95, "Discount factor.", ge=0.0, le=1.0)
    alpha: float = hp(0.1, "Tabular step size.", gt=0.0, le=1.0)
    epsilon_start: float = hp(1.0, "Exploration rate at the start (epsilon-greedy).", ge=0.0, le=1.0)
    epsilon_end: float = hp(0.05, "Exploration rate after the decay.", ge=0.0, le=1.0)
    exploration_fraction: float = hp(0.5, "Fraction of the training steps over which epsilon (or the temperature) decays.", gt=0.0, le=1.0)
    exploration: Literal["epsilon_greedy", "boltzmann"] = hp(
        "epsilon_greedy", "Tabular: epsilon-greedy, or Boltzmann (softmax of Q / temperature) exploration.")
    temperature_start: float = hp(10.0, "Boltzmann: temperature at the start.", gt=0.0)
    temperature_end: float = hp(0.05, "Boltzmann: temperature after the decay (geometric, over exploration_fraction).", gt=0.0)
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
    prior: dict[str, float] | None = _prior_hp()
    prior_run: str | None = _prior_run_hp()
    prior_agent: str | None = _prior_agent_hp()
    prior_mode: Literal["marginal", "situation"] = _prior_mode_hp()
    prior_words: dict[str, float] | None = _prior_words_hp()


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
    prior: dict[str, float] | None = _prior_hp()
    prior_run: str | None = _prior_run_hp()
    prior_agent: str | None = _prior_agent_hp()
    prior_mode: Literal["marginal", "situation"] = _prior_mode_hp()
    prior_words: dict[str, float] | None = _prior_words_hp()
    kl_prior_coef: float = hp(0.0, "LLM-guided: weight of the KL(policy || prior) penalty at the start.", ge=0.0)
    kl_prior_fraction: float = hp(0.5, "LLM-guided: fraction of the training steps over which kl_prior_coef falls linearly to 0.", gt=0.0, le=1.0)
    bc_epochs: int = hp(0, "LLM-guided: warm start, behaviour-cloning epochs toward the prior on a first rollout played from it (prior_mode situation: on the stored decisions' states, no rollout).", ge=0, le=100_000)


@dataclass(frozen=True)
class LLMPPOConfig:
    """LLM-PPO and LLM-MAPPO (`mas train --algo llm-ppo | llm-mappo`): PPO on the LLM
    policy's distribution over legal actions, through LoRA adapters. The sampling
    temperature is the agent spec's `temperature` (the policy trained is the policy played)."""

    estimator: Literal["ppo", "reinforce", "group"] = hp("ppo", "ppo: GAE advantages, clipped objective, several epochs; reinforce: Monte-Carlo return minus the baseline, one epoch, no clip; group (GRPO/RLOO): episodes of one game seed form a group, advantage = episode return minus the group's mean (over its spread with group_std), clipped objective.")
    group_size: int = hp(4, "group: episodes per group (one game seed, different sampling seeds); divides episodes_per_update.", ge=2)
    group_std: bool = hp(True, "group: divide the advantages by the group's standard deviation (GRPO); false: the mean baseline only.")
    episodes_per_update: int = hp(4, "Episodes played between two updates.", ge=1)
    adapters: Literal["shared", "per_agent", "selfplay"] = hp("shared", "shared: one LoRA adapter for all learners (parameter sharing); per_agent: each learner its own adapter, trained on its own decisions and saved to adapters/<agent>; selfplay: one shared adapter played in every seat, the other seats' policies set aside.")
    train: Literal["actions", "messages", "both"] = hp("actions", "What the update trains: the action choice, the messages the learners write (token-level policy gradient; needs learners that talk), or both.")
    batched: bool = hp(True, "Play an update's episodes (and the evaluation's) at once as copies of the engine, every step's decisions in one packed scoring call; false: one episode at a time.")
    epochs: int = hp(4, "Passes over each batch (ppo).", ge=1)
    minibatch: int = hp(16, "Decisions per gradient step.", ge=1)
    lr: float = hp(1e-3, "Adam learning rate of the adapters.", gt=0.0)
    critic_lr: float = hp(3e-3, "Adam learning rate of the value head or centralised critic.", gt=0.0)
    gamma: float = hp(0.95, "Discount factor.", ge=0.0, le=1.0)
    gae_lambda: float = hp(0.95, "GAE lambda (ppo).", ge=0.0, le=1.0)
    clip: float = hp(0.2, "PPO ratio clip.", gt=0.0)
    kl_coef: float = hp(0.0, "Weight of the exact KL(policy || base model) penalty per decision.", ge=0.0)
    entropy_coef: float = hp(0.0, "Entropy bonus weight.", ge=0.0)
    max_grad_norm: float = hp(1.0, "Gradient-norm clip of the adapters.", gt=0.0)
    normalize_advantages: bool = hp(True, "Normalise advantages per batch.")
    lora_rank: int = hp(8, "LoRA rank of the adapters.", ge=1)
    lora_alpha: float = hp(16.0, "LoRA alpha (the adapters' scale is alpha / rank).", gt=0.0)
    lora_layers: int = hp(0, "Adapters on the last N decoder layers only (0: every layer); the layers below keep no activations for the backward pass, so an update needs less memory and time.", ge=0)
    centralised_critic: bool = hp(False, "A critic on the game's global state, one value per learner (llm-mappo); false: a value head on the model's hidden state (llm-ppo).")
    critic_hidden: int = hp(64, "Hidden units of the centralised critic.", ge=1)
    prefix_grad: bool = hp(True, "Gradient through the shared system prompt; false: exact scores, cheaper steps.")


def validated_config(model: type[BaseModel], values: dict[str, Any], algo: str) -> Any:
    """The frozen config of `model` (a spec or `train:` block generated from a config
    dataclass) from plain values, checked by the scenario file's rules: an unknown key or a
    bad value is a one-line `MasError` naming it."""
    cls = model.config_class  # type: ignore[attr-defined]
    known = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in known:
            raise MasError(f"unknown {algo} hyperparameter '{key}'{suggest(key, known)}; known: {', '.join(known)}")
    try:
        merged = model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise MasError(f"{algo} hyperparameter {where}: {message}" if where else f"{algo} hyperparameters: {message}") from None
    return cls(**_values(merged))


# ----- scenario specs ------------------------------------------------------------------
class LearnerSpec(PolicySpec):
    """Base of the learner specs: the hyperparameters, as scenario fields."""

    config_class: ClassVar[type]

    def hyperparameters(self) -> dict[str, Any]:
        """This spec's hyperparameter values (every config field)."""
        return _values(self)

    def to_config(self, **overrides: Any) -> Any:
        """The algorithm's frozen config from this spec (plus CLI overrides)."""
        return validated_config(type(self), {**self.hyperparameters(), **overrides}, self.type)  # type: ignore[attr-defined]


class LLMTrainBlock(BaseModel):
    """Base of an LLM agent's `train:` block."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    config_class: ClassVar[type]

    def hyperparameters(self) -> dict[str, Any]:
        """This block's hyperparameter values (every config field)."""
        return _values(self)


def _values(model: Any) -> dict[str, Any]:
    return {f.name: getattr(model, f.name) for f in dataclasses.fields(model.config_class)}


def _model_from_config(name: str, cls: type, base: type[BaseModel], doc: str, check: Any = None, **extra: Any) -> Any:
    """A pydantic model with one field per hyperparameter of `cls` (its doc and bounds)."""
    hints = get_type_hints(cls)
    fields: dict[str, Any] = dict(extra)
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        fields[f.name] = (hints[f.name], Field(f.default, description=meta.pop("doc"), **meta))
    validators = {"_check": model_validator(mode="after")(check)} if check else None
    model = create_model(name, __base__=base, __module__=__name__, __validators__=validators, **fields)
    model.__doc__ = doc
    model.config_class = cls
    return model


def _spec_from_config(name: str, cls: type, doc: str, check: Any = None) -> type[LearnerSpec]:
    spec_name = f"{cls.__name__.removesuffix('Config')}Spec"
    return _model_from_config(spec_name, cls, LearnerSpec, doc, check, type=(Literal[name], name))  # type: ignore[valid-type]


def _check_prior(spec: Any) -> None:
    if spec.prior is not None and spec.prior_run is not None:
        raise ValueError("give either prior or prior_run, not both")
    if spec.prior is not None:
        if any(p < 0 for p in spec.prior.values()) or sum(spec.prior.values()) <= 0:
            raise ValueError("prior: probabilities must be >= 0 and not all 0")
    if spec.prior_agent is not None and spec.prior_run is None:
        raise ValueError("prior_agent needs prior_run")
    if spec.prior_mode == "situation" and spec.prior_run is None:
        raise ValueError("prior_mode situation needs prior_run (the stored run to replay)")
    if spec.prior_words is not None:
        if spec.prior is None and spec.prior_run is None:
            raise ValueError("prior_words needs prior or prior_run (the prior over game actions)")
        if any(p < 0 for p in spec.prior_words.values()) or sum(spec.prior_words.values()) <= 0:
            raise ValueError("prior_words: probabilities must be >= 0 and not all 0")


def _check_mappo(spec: Any) -> Any:
    _check_prior(spec)
    guided = spec.prior is not None or spec.prior_run is not None
    uses = spec.kl_prior_coef > 0 or spec.bc_epochs > 0
    if guided and not uses:
        raise ValueError("a prior is used through kl_prior_coef > 0 or bc_epochs > 0; set one")
    if uses and not guided:
        raise ValueError("kl_prior_coef and bc_epochs need a prior (prior or prior_run)")
    return spec


def _check_iql(spec: Any) -> Any:
    _check_prior(spec)
    if (spec.prior is not None or spec.prior_run is not None) and spec.exploration != "epsilon_greedy":
        raise ValueError("prior: exploration from a prior is implemented for epsilon_greedy only")
    if spec.update in ("sarsa", "monte_carlo") and spec.variant != "tabular":
        raise ValueError(f"update: {spec.update} is implemented for the tabular variant only; use update: q_learning with dqn")
    if spec.exploration == "boltzmann" and spec.variant != "tabular":
        raise ValueError("exploration: boltzmann is implemented for the tabular variant only; use epsilon_greedy with dqn")
    if spec.temperature_end > spec.temperature_start:
        raise ValueError(f"temperature_end ({spec.temperature_end}) must not exceed temperature_start ({spec.temperature_start})")
    if spec.epsilon_end > spec.epsilon_start:
        raise ValueError(f"epsilon_end ({spec.epsilon_end}) must not exceed epsilon_start ({spec.epsilon_start})")
    return spec


IQLSpec = _spec_from_config("iql", IQLConfig, "Independent Q-learner (tabular or DQN); trained by `mas train --algo iql`.", _check_iql)
MAPPOSpec = _spec_from_config("mappo", MAPPOConfig, "MAPPO/IPPO learner; trained by `mas train --algo mappo` (or ippo).", _check_mappo)


def _check_llm(spec: Any) -> Any:
    if spec.estimator == "group" and spec.episodes_per_update % spec.group_size:
        raise ValueError(f"estimator group: episodes_per_update ({spec.episodes_per_update}) must be a multiple of "
                         f"group_size ({spec.group_size})")
    return spec


LLMTrainSpec = _model_from_config(
    "LLMTrainSpec", LLMPPOConfig, LLMTrainBlock,
    "Hyperparameters of `mas train --algo llm-ppo | llm-mappo` for this LLM agent (`--set` overrides them).", _check_llm,
)


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
