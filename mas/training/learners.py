"""Who learns in a scenario, and with which hyperparameters.

Numeric learners (`iql`, `mappo`/`ippo`): the agents whose policy type is the algorithm's,
or the ids given as `learners`; when the scenario names no learner at all, every agent
learns (self-play). Their hyperparameters are the fields of their policy spec. LLM learners
(`llm-ppo`, `llm-mappo`): the scenario's `type: llm` agents (or `learners`), checked to be
trainable; their hyperparameters are the spec's optional `train:` block. Either way all
learners share one set: the scenario's, then the algorithm's preset (ippo: no centralised
critic), then `overrides` (the CLI's `--set`), validated by the scenario file's rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mas.errors import MasError
from mas.scenario import Scenario
from mas.training import registry


def learning_agents(scenario: Scenario, algo: str, learners: Sequence[str] | None = None) -> list[str]:
    """The agents trained by numeric learner `algo`; see the module docstring."""
    record = registry.get(algo)
    ids = scenario.agent_ids
    if learners:
        _check_known(learners, ids)
        return [a for a in ids if a in learners]
    chosen = [a.id for a in scenario.agents if a.policy.type == record.policy_type]
    if chosen:
        return chosen
    others = sorted({a.policy.type for a in scenario.agents} & registry.learner_types())
    if others:
        raise MasError(f"--algo {algo}: the scenario's learning agents use policy type {others[0]}; use --algo {others[0]} or --learners")
    return list(ids)


def _check_known(learners: Sequence[str], ids: Sequence[str]) -> None:
    unknown = [a for a in learners if a not in ids]
    if unknown:
        raise MasError(f"--learners: unknown agent(s) {unknown}; agents: {', '.join(ids)}")


def infer_algo(scenario: Scenario, resume: Path | None = None) -> str:
    """The algorithm when --algo is not given: the checkpoint's, or the scenario's one learner type."""
    if resume is not None:
        from mas.training.checkpoint import load_checkpoint

        if Path(resume).is_dir() and (Path(resume) / "train.json").is_file():  # an LLM run directory
            try:
                return str(json.loads((Path(resume) / "train.json").read_text(encoding="utf-8"))["algorithm"])
            except (OSError, ValueError, KeyError, TypeError):
                raise MasError(f"--resume {resume}: unreadable train.json; name the algorithm with --algo") from None
        return load_checkpoint(resume)["algorithm"]
    types = sorted({a.policy.type for a in scenario.agents} & registry.learner_types())
    if len(types) != 1:
        numeric = [a.name for a in registry.ALGORITHMS.values() if not a.llm]
        llm = [a.name for a in registry.ALGORITHMS.values() if a.llm]
        found = f"learner types {types}" if types else f"no learning agent (policy {' or '.join(sorted(registry.learner_types()))})"
        raise MasError(f"--algo: the scenario has {found}; name the algorithm with --algo {', '.join(numeric)} "
                       f"({', '.join(llm)} for LLM agents)")
    return registry.for_policy_type(types[0]).name


def resolve_config(scenario: Scenario, algo: str, learners: Sequence[str], overrides: Mapping[str, Any]) -> Any:
    """The learners' shared hyperparameters: their scenario values, the preset, then `overrides`."""
    record = registry.get(algo)
    specs = [a.policy for a in scenario.agents if a.id in learners and a.policy.type == record.policy_type]
    blocks = [_scenario_values(record, spec) for spec in specs]
    if len({json.dumps(b, sort_keys=True) for b in blocks}) > 1:
        where = "train: blocks" if record.llm else f"{record.policy_type} specs"
        raise MasError(f"learners {', '.join(learners)} must share hyperparameters: their {where} differ")
    values = blocks[0] if blocks else {}
    return registry.make_config(record, {**values, **record.fixed, **overrides})


def _scenario_values(record: registry.Algorithm, spec: Any) -> dict[str, Any]:
    block = getattr(spec, "train", None) if record.llm else spec
    return block.hyperparameters() if block is not None else {}


def check_message_training(scenario: Scenario, names: Sequence[str], train: str) -> None:
    """With `train` messages or both, every learner must write its own messages."""
    if train == "actions":
        return
    by_id = {a.id: a for a in scenario.agents}
    for name in names:
        spec = by_id[name].policy
        where = f"agents.{name}.policy"
        if scenario.comms.mode == "off":
            raise MasError(f"--set train={train}: learner {name} cannot talk (comms mode: off); turn comms on or use train=actions")
        if not spec.talk or spec.message:
            raise MasError(f"--set train={train}: learner {name} writes no messages of its own ({where}: talk: true and no fixed message needed)")
        if not (spec.talk_on_action_steps or scenario.comms.talk_rounds > 0):
            raise MasError(f"--set train={train}: learner {name} is never asked to talk; set comms.talk_rounds >= 1 or {where}.talk_on_action_steps: true")
        if spec.message_temperature <= 0:
            raise MasError(f"{where}.message_temperature: --set train={train} samples messages; needs a temperature > 0")


def llm_learners(scenario: Scenario, algo: str, learners: Sequence[str] | None) -> list[str]:
    """The LLM agents trained by `algo`, checked to be trainable (one-line errors otherwise)."""
    by_id = {a.id: a for a in scenario.agents}
    if learners:
        _check_known(learners, list(by_id))
        names = [a for a in by_id if a in learners]
    else:
        names = [a.id for a in scenario.agents if a.policy.type == "llm"]
    if not names:
        raise MasError(f"--algo {algo}: the scenario has no LLM agent (policy type llm) to fine-tune; "
                       "use --algo iql, mappo or ippo for numeric learners")
    models = set()
    for name in names:
        spec = by_id[name].policy
        where = f"agents.{name}.policy"
        if spec.type != "llm":
            raise MasError(f"--learners: agent {name} has policy type {spec.type}; --algo {algo} trains only type llm")
        if spec.mode != "score":
            raise MasError(f"{where}.mode: --algo {algo} needs mode: score (the policy is the distribution over "
                           f"legal actions), found '{spec.mode}'")
        if spec.backend.kind != "local":
            raise MasError(f"{where}.backend.kind: --algo {algo} fine-tunes a local model, found '{spec.backend.kind}'")
        if spec.temperature <= 0 or spec.choice != "sample":
            raise MasError(f"{where}: --algo {algo} samples actions; needs temperature > 0 and choice: sample")
        if spec.narrator is not None:
            raise MasError(f"{where}.narrator: --algo {algo} does not train with a narrator; remove it")
        models.add((spec.backend.model, spec.backend.adapter))
    if len(models) > 1:
        raise MasError(f"--algo {algo}: the learners train adapters on one base model, so they must use one backend model; found {sorted(map(str, models))}")
    return names
