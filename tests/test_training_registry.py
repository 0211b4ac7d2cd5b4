"""The learner registry: one record per algorithm, the CLI's choices, and hyperparameters
(LLM-PPO's included) from the scenario file and `--set`, checked like every other field."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import get_args

import pytest
import yaml

from mas import registry as names
from mas.cli import build_parser, main
from mas.errors import MasError, ScenarioError, UnknownNameError
from mas.scenario import parse_scenario
from mas.training import registry
from mas.training.learners import infer_algo, resolve_config
from tests.conftest import PD

LLM_PD = {**PD, "name": "llm_pd", "agents": [
    {"id": "llm", "policy": {"type": "llm", "mode": "score", "train": {"kl_coef": 0.05, "lr": 0.0005}}},
    {"id": "tft", "policy": "tit_for_tat"},
]}


def _train_subparser():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["train"]


def test_every_algorithm_is_registered_once_and_is_the_clis_choice() -> None:
    assert list(registry.ALGORITHMS) == ["iql", "mappo", "ippo", "llm-ppo", "llm-mappo"]
    algo = next(a for a in _train_subparser()._actions if a.dest == "algo")
    assert list(algo.choices) == list(registry.ALGORITHMS)
    assert "ippo" in _train_subparser().format_help()


@pytest.mark.parametrize("name", list(registry.ALGORITHMS))
def test_each_record_points_at_real_code(name: str) -> None:
    """Its policy type is a scenario policy whose spec carries its hyperparameters, a frozen
    config with a doc for every field; its alias is registered, its presets are real fields."""
    record = registry.get(name)
    model = registry.hyperparameter_model(record)
    spec = names.policy_spec_model(record.policy_type)
    # settable in the scenario file: the learner's spec, or an LLM agent's train: block
    assert model in get_args(spec.model_fields["train"].annotation) if record.llm else model is spec
    config = model.config_class
    assert dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen
    assert all(f.metadata.get("doc") for f in dataclasses.fields(config))
    assert set(record.fixed) <= {f.name for f in dataclasses.fields(config)}
    assert record.alias_of is None or record.alias_of in registry.ALGORITHMS
    pytest.importorskip("torch")
    assert callable(registry.learner_factory(record))


def test_unknown_algorithm_suggests_the_close_one() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown algorithm 'mapo' \(did you mean 'mappo'\?\)"):
        registry.get("mapo")


def test_presets_and_inference_come_from_the_registry() -> None:
    plain = parse_scenario(copy.deepcopy(PD))
    assert resolve_config(plain, "ippo", ["a", "b"], {}).centralised_critic is False
    assert resolve_config(plain, "mappo", ["a", "b"], {}).centralised_critic is True
    learner = parse_scenario({**PD, "agents": [{"id": "a", "policy": {"type": "mappo"}}, {"id": "b", "policy": "tit_for_tat"}]})
    assert infer_algo(learner) == "mappo"
    with pytest.raises(MasError, match="--algo iql, mappo, ippo \\(llm-ppo, llm-mappo for LLM agents\\)"):
        infer_algo(plain)


def test_llm_ppo_hyperparameters_from_the_scenario_file_then_set() -> None:
    scenario = parse_scenario(copy.deepcopy(LLM_PD))
    config = resolve_config(scenario, "llm-ppo", ["llm"], {"lr": 0.002, "epochs": 2})
    assert (config.kl_coef, config.lr, config.epochs) == (0.05, 0.002, 2)  # file, then --set
    assert config.centralised_critic is False and config.clip == 0.2  # defaults
    assert resolve_config(scenario, "llm-mappo", ["llm"], {}).centralised_critic is True  # the preset
    plain = parse_scenario({**LLM_PD, "agents": [{"id": "llm", "policy": {"type": "llm"}}, {"id": "tft", "policy": "tit_for_tat"}]})
    assert resolve_config(plain, "llm-ppo", ["llm"], {}).kl_coef == 0.0  # no train: block: the defaults


def test_bad_llm_ppo_hyperparameters_are_one_line_errors() -> None:
    scenario = parse_scenario(copy.deepcopy(LLM_PD))
    with pytest.raises(MasError, match=r"unknown llm-ppo hyperparameter 'kl_coeff' \(did you mean 'kl_coef'\?\); known: "):
        resolve_config(scenario, "llm-ppo", ["llm"], {"kl_coeff": 0.1})
    with pytest.raises(MasError, match="llm-ppo hyperparameter epochs: Input should be greater than or equal to 1"):
        resolve_config(scenario, "llm-ppo", ["llm"], {"epochs": 0})
    with pytest.raises(MasError, match="llm-ppo hyperparameter estimator: Input should be 'ppo', 'reinforce' or 'group'"):
        resolve_config(scenario, "llm-ppo", ["llm"], {"estimator": "a2c"})
    two = parse_scenario({**LLM_PD, "agents": [LLM_PD["agents"][0], {"id": "other", "policy": {"type": "llm", "mode": "score"}}]})
    with pytest.raises(MasError, match="must share hyperparameters: their train: blocks differ"):
        resolve_config(two, "llm-ppo", ["llm", "other"], {})


def test_a_mistyped_train_key_in_the_scenario_file_is_named_with_a_suggestion() -> None:
    data = copy.deepcopy(LLM_PD)
    data["agents"][0]["policy"]["train"] = {"kl_coeff": 0.1, "lora_rank": 0}
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data)
    assert "agents.0.policy.train.kl_coeff: unknown key 'kl_coeff' (did you mean 'kl_coef'?)" in caught.value.problems
    assert "agents.0.policy.train.lora_rank: Input should be greater than or equal to 1" in caught.value.problems


def test_set_reaches_the_llm_ppo_config_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`mas train --set` with a mistyped LLM-PPO key fails in one line before any model loads."""
    path = tmp_path / "llm.yaml"
    path.write_text(yaml.safe_dump(LLM_PD), encoding="utf-8")
    code = main(["train", str(path), "--algo", "llm-ppo", "--set", "kl_coeff=0.1", "--out", str(tmp_path / "t"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert "unknown llm-ppo hyperparameter 'kl_coeff' (did you mean 'kl_coef'?)" in err[0]
    code = main(["train", str(path), "--algo", "llm-ppo", "--set", "clip=-1", "--out", str(tmp_path / "t"), "--no-progress"])
    assert code == 1 and "llm-ppo hyperparameter clip: Input should be greater than 0" in capsys.readouterr().err
    assert not (tmp_path / "t" / "curves.csv").exists()
