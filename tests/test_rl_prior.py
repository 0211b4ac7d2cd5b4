"""LLM-guided RL: a prior over actions from a config or from an LLM agent's stored
decisions, used by tabular IQL's exploration and by MAPPO's KL penalty and warm start."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mas.agents.rl.config import IQLSpec, MAPPOSpec  # noqa: E402
from mas.agents.rl.iql import make_iql  # noqa: E402
from mas.agents.rl.mappo import MAPPO  # noqa: E402
from mas.agents.rl.prior import stored_distribution  # noqa: E402
from mas.errors import MasError  # noqa: E402
from mas.records import DecisionRecord, EpisodeRecord  # noqa: E402
from mas.scenario import parse_scenario  # noqa: E402
from mas.store import RunStore  # noqa: E402
from mas.vector import VectorEnv  # noqa: E402
from experiments.stag_hunt_prior import GAME as STAG_HUNT, share  # noqa: E402
from tests.conftest import PD  # noqa: E402


def llm_run(tmp_path: Path, stags: list[float]) -> Path:
    """A run store whose agent 'llm' stored one action distribution per value of `stags`
    (P(Stag)), plus a talk decision and a record without a distribution, to be skipped."""
    run = tmp_path / "llm_run"
    store = RunStore.create(run, {"name": "sh"}, 0, [("llm", {"type": "llm"}, ""), ("other", {"type": "random"}, "")])
    decisions = [DecisionRecord(0, i, i, "llm", False, None, {"distribution": {"Stag": p, "Hare": 1 - p}})
                 for i, p in enumerate(stags)]
    decisions += [DecisionRecord(0, 100, 50, "llm", True, None, {"distribution": {"Stag": 0.0, "Hare": 1.0}}),
                  DecisionRecord(0, 101, 51, "llm", False, None, {"raw": "Hare"})]
    with store:
        store.write_episode(EpisodeRecord(episode=0, seed=0, decisions=tuple(decisions)))
    return run


def scenario(policy: dict, opponent: object = "always_cooperate", game: dict = STAG_HUNT):
    return parse_scenario({**PD, "game": game, "rounds": 5, "agents": [{"id": "a", "policy": policy}, {"id": "b", "policy": opponent}]})


def test_the_stored_prior_is_the_mean_of_the_agents_action_distributions(tmp_path):
    run = llm_run(tmp_path, [0.7, 0.9, 0.8])
    dist = stored_distribution(run, "llm")
    assert dist["Stag"] == pytest.approx(0.8) and dist["Hare"] == pytest.approx(0.2)
    with pytest.raises(MasError, match="no agent 'ghost'.*prior_agent"):
        stored_distribution(run, "ghost")
    with pytest.raises(MasError, match="'other' has no stored action distributions"):
        stored_distribution(run, "other")


@pytest.mark.parametrize(("spec", "values", "message"), [
    (IQLSpec, {"prior": {"Stag": 1.0}, "prior_run": "x"}, "either prior or prior_run"),
    (IQLSpec, {"prior": {"Stag": 1.0}, "exploration": "boltzmann"}, "epsilon_greedy only"),
    (IQLSpec, {"prior": {"Stag": 1.0}, "prior_mode": "situation"}, "prior_mode situation needs prior_run"),
    (IQLSpec, {"prior_words": {"stag": 1.0}}, "prior_words needs prior or prior_run"),
    (IQLSpec, {"prior": {"Stag": 1.0}, "prior_words": {"stag": 0.0}}, "prior_words: probabilities"),
    (IQLSpec, {"prior": {"Stag": 0.0}}, "not all 0"),
    (IQLSpec, {"prior_agent": "llm"}, "prior_agent needs prior_run"),
    (MAPPOSpec, {"prior": {"Stag": 1.0}}, "kl_prior_coef > 0 or bc_epochs > 0"),
    (MAPPOSpec, {"kl_prior_coef": 0.5}, "need a prior"),
])
def test_bad_prior_settings_are_one_line_errors(spec, values, message):
    with pytest.raises(MasError, match=message):
        spec(type=spec.model_fields["type"].default).to_config(**values)


def test_a_prior_label_the_game_lacks_is_named(tmp_path):
    sc = scenario({"type": "iql", "prior": {"Stg": 1.0}})
    config = IQLSpec(type="iql", prior={"Stg": 1.0}).to_config()
    env = VectorEnv(sc, ["a"], 4, 0)
    learner = make_iql(config, env, torch.device("cpu"), 0, 100)
    with pytest.raises(MasError, match="action 'Stg' is not one of learner a's actions \\(Stag, Hare\\)"):
        learner.collect_and_update(env, env.reset())


class Recorder:
    """The env, recording the learner's actions."""

    def __init__(self, env: VectorEnv) -> None:
        self.env, self.actions = env, []

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def step(self, actions):
        self.actions.append(np.asarray(actions))
        return self.env.step(actions)


def test_iql_explores_from_the_prior_instead_of_uniformly(tmp_path):
    config = IQLSpec(type="iql", prior={"Stag": 0.2, "Hare": 0.8}, epsilon_start=1.0, epsilon_end=1.0).to_config()
    env = Recorder(VectorEnv(scenario({"type": "iql"}), ["a"], 64, 0))
    learner = make_iql(config, env, torch.device("cpu"), 0, 10_000)
    step = env.reset()
    for _ in range(40):
        step, _, _ = learner.collect_and_update(env, step)
    stag_share = float((np.concatenate(env.actions) == 0).mean())  # 2560 draws: sd 0.008
    assert stag_share == pytest.approx(0.2, abs=0.03)


def test_a_prior_favouring_stag_raises_the_share_of_seeds_reaching_the_payoff_dominant_equilibrium():
    # the README's figure is 0/20 uniform vs 20/20 with the prior, at 4000 steps (experiments/stag_hunt_prior.py)
    uniform, guided = share(3, 4_000, None), share(3, 4_000, {"Stag": 0.9, "Hare": 0.1})
    assert uniform == 0.0 and guided == 1.0


def test_behaviour_cloning_reproduces_the_stored_decisions_distribution(tmp_path):
    run = llm_run(tmp_path, [0.7, 0.9, 0.8, 0.6, 1.0])  # mean P(Stag) 0.8
    policy = {"type": "mappo", "prior_run": str(run), "prior_agent": "llm", "bc_epochs": 60, "lr": 0.01, "num_envs": 16, "rollout_steps": 5}
    sc = scenario(policy, opponent={"type": "random", "p": 0.5})
    config = MAPPOSpec(**policy).to_config()
    env = VectorEnv(sc, ["a"], config.num_envs, 0)
    learner = MAPPO(config, env, torch.device("cpu"), 0, 10_000)
    step = env.reset()
    before = torch.softmax(learner.logits(step.obs, step.mask), -1)[..., 0]
    assert before.mean().item() == pytest.approx(0.5, abs=0.05)  # untrained: near uniform
    step, metrics, n = learner.collect_and_update(env, step)
    assert n == learner.env_steps == 16 * 5 and metrics["bc_kl"] < 1e-3
    for _ in range(3):  # observations the clone was and was not trained on
        probs = torch.softmax(learner.logits(step.obs, step.mask), -1)[..., 0]
        assert probs.mean().item() == pytest.approx(0.8, abs=0.02)
        assert (probs - 0.8).abs().max().item() < 0.05
        step = env.step(learner.act_batch(step, greedy=False))
    resumed = MAPPO(config, env, torch.device("cpu"), 1, 10_000)
    resumed.load_state_dict(learner.state_dict())
    _, metrics, _ = resumed.collect_and_update(env, step)
    assert "bc_kl" not in metrics and "policy_loss" in metrics  # a resume does not clone again


def test_the_kl_penalty_holds_mappo_near_the_prior_and_its_weight_anneals_to_zero():
    game = PD["game"]  # against always-cooperate, defecting is strictly better
    def trained(policy: dict) -> tuple[float, MAPPO]:
        config = MAPPOSpec(type="mappo", num_envs=32, rollout_steps=10, lr=0.01, **policy).to_config()
        env = VectorEnv(scenario({"type": "mappo"}, game=game), ["a"], config.num_envs, 0)
        learner = MAPPO(config, env, torch.device("cpu"), 0, 20 * 320)
        step = env.reset()
        for _ in range(10):
            step, metrics, _ = learner.collect_and_update(env, step)
        return torch.softmax(learner.logits(step.obs, step.mask), -1)[..., 0].mean().item(), learner
    free, _ = trained({})
    held, learner = trained({"prior": {"C": 0.9, "D": 0.1}, "kl_prior_coef": 5.0, "kl_prior_fraction": 1.0})
    assert free < 0.2 and held > 0.6
    assert learner.kl_weight == pytest.approx(2.5)  # half of the 20 iterations: half the weight
    learner.env_steps = learner.total_steps
    assert learner.kl_weight == 0.0
