"""LLM-guided RL per situation (`prior_mode: situation`): a stored run replayed so each
stored action distribution is paired with the learner observation it was made in; MAPPO
clones it per state, tabular IQL and DQN explore from it; learners that talk keep the
prior on game actions and explore their message tokens uniformly or from `prior_words`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mas.agents.rl.config import IQLSpec, MAPPOSpec  # noqa: E402
from mas.agents.rl.iql import make_iql  # noqa: E402
from mas.agents.rl.mappo import MAPPO  # noqa: E402
from mas.agents.rl.prior import masked_prior  # noqa: E402
from mas.agents.rl.prior_replay import stored_situations  # noqa: E402
from mas.errors import MasError  # noqa: E402
from mas.scenario import parse_scenario  # noqa: E402
from mas.vector import VectorEnv  # noqa: E402
from experiments.stag_hunt_prior import situational_run  # noqa: E402
from tests.conftest import PD  # noqa: E402

GENEROSITY = 0.2  # P(C) of the stored agent after the partner defected; 1 at the start and after C
TALK = {"mode": "broadcast", "talk_rounds": 1, "vocabulary": ["coop", "cheat"]}


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    return situational_run(tmp_path_factory.mktemp("run") / "llm", PD["game"], episodes=8, rounds=6, generosity=GENEROSITY)


def partner_defected(obs: np.ndarray) -> np.ndarray:
    """PD observation [own C, own D, partner C, partner D, first round]: the partner's last action was D."""
    return obs[..., 3] == 1


def env_for(policy: dict, num_envs: int, comms: dict | None = None, opponent: dict | None = None) -> VectorEnv:
    data = {**PD, "rounds": 6, "agents": [{"id": "a", "policy": policy},
                                          {"id": "b", "policy": opponent or {"type": "random", "p": 0.5}}]}
    if comms:
        data["comms"] = comms
    return VectorEnv(parse_scenario(data), ["a"], num_envs, 0)


def test_the_replay_pairs_each_stored_distribution_with_the_situation_it_was_made_in(stored):
    found = stored_situations(stored, "llm")
    assert found.obs.shape == (8 * 6, 5) and found.mask.all()
    p_cooperate = np.array([d["C"] for d in found.distributions])
    assert set(np.round(p_cooperate, 6)) == {1.0, GENEROSITY}
    # the stored distribution is the generous tit for tat of the observation replayed
    assert (p_cooperate[partner_defected(found.obs)] == GENEROSITY).all()
    assert (p_cooperate[~partner_defected(found.obs)] == 1.0).all()
    assert (found.obs[::6, 4] == 1).all() and (found.obs[:, 4].sum() == 8)  # each episode starts in the first-round state


def test_a_replay_that_does_not_give_back_the_stored_rewards_is_refused(stored, tmp_path):
    import shutil

    tampered = tmp_path / "tampered"
    shutil.copytree(stored, tampered)
    with sqlite3.connect(tampered / "run.sqlite") as db:
        db.execute("UPDATE steps SET reward = reward + 1 WHERE episode = 2 AND step = 3 AND agent = 'partner'")
    with pytest.raises(MasError, match=r"replaying episode 2 does not reproduce the stored rewards \(step 3, agent partner"):
        stored_situations(tampered, "llm")
    with pytest.raises(MasError, match="no agent 'ghost'"):
        stored_situations(stored, "ghost")


def test_mappo_clones_the_stored_distribution_per_situation_where_the_marginal_cannot(stored):
    def cloned(mode: str) -> tuple[MAPPO, VectorEnv]:
        policy = {"type": "mappo", "prior_run": str(stored), "prior_agent": "llm", "prior_mode": mode, "bc_epochs": 150,
                  "lr": 0.01, "num_envs": 16, "rollout_steps": 6}
        env = env_for(policy, 16)
        learner = MAPPO(MAPPOSpec(**policy).to_config(), env, torch.device("cpu"), 0, 10_000)
        return learner, env

    learner, env = cloned("situation")
    prior = learner.guide(env)
    (table,) = prior.tables
    before = learner.env_steps
    assert learner.behaviour_clone() < 0.01 and learner.env_steps == before  # offline: no env steps
    with torch.no_grad():
        obs = torch.as_tensor(table.obs).unsqueeze(1)
        probs = torch.softmax(learner.logits(obs, torch.as_tensor(table.mask).unsqueeze(1)), -1)[:, 0].numpy()
    target = masked_prior(table.probs, table.mask)
    assert np.abs(probs - target).max() < 0.05  # every stored state: its own distribution
    after_d = partner_defected(table.obs)
    assert after_d.any() and (~after_d).any()
    assert probs[after_d, 0].max() < GENEROSITY + 0.05 and probs[~after_d, 0].min() > 0.95

    marginal, env = cloned("marginal")
    step, metrics, _ = marginal.collect_and_update(env, env.reset())
    assert metrics["bc_kl"] < 1e-3
    with torch.no_grad():
        flat = torch.softmax(marginal.logits(obs, torch.as_tensor(table.mask).unsqueeze(1)), -1)[:, 0].numpy()
    assert np.ptp(flat[:, 0]) < 0.1  # one distribution whatever the situation

    step, metrics, n = learner.collect_and_update(env, env.reset())  # a fresh learner would clone here
    assert "bc_kl" not in metrics and n == 16 * 6  # cloned already: a plain update


def test_the_first_update_of_a_situation_clone_reports_its_kl_and_plays_a_rollout(stored):
    policy = {"type": "mappo", "prior_run": str(stored), "prior_agent": "llm", "prior_mode": "situation", "bc_epochs": 5,
              "kl_prior_coef": 1.0, "num_envs": 8, "rollout_steps": 4}
    env = env_for(policy, 8)
    learner = MAPPO(MAPPOSpec(**policy).to_config(), env, torch.device("cpu"), 0, 10_000)
    _, metrics, n = learner.collect_and_update(env, env.reset())
    assert n == 32 and {"bc_kl", "policy_loss", "kl_prior"} <= set(metrics)


class Recorder:
    """The env, recording the observations the learner acted on and its actions."""

    def __init__(self, env: VectorEnv) -> None:
        self.env, self.obs, self.actions = env, [], []

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def reset(self):
        self.last = self.env.reset()
        return self.last

    def step(self, actions):
        obs = self.last.obs  # tensors, or numpy arrays once tabular IQL switched the env to them
        self.obs.append(obs.numpy() if hasattr(obs, "numpy") else np.asarray(obs))
        self.actions.append(np.asarray(actions))
        self.last = self.env.step(actions)
        return self.last


def explore(policy: dict, steps: int = 40, num_envs: int = 64, comms: dict | None = None, opponent: dict | None = None) -> Recorder:
    """`steps` updates of an IQL learner that always explores (epsilon 1)."""
    config = IQLSpec(**policy, epsilon_start=1.0, epsilon_end=1.0, learning_starts=10**9).to_config()
    env = Recorder(env_for({"type": "iql"}, num_envs, comms, opponent))
    learner = make_iql(config, env, torch.device("cpu"), 0, 10_000)
    step = env.reset()
    for _ in range(steps):
        step, _, _ = learner.collect_and_update(env, step)
    return env


@pytest.mark.parametrize("variant", ["tabular", "dqn"])
def test_iql_explores_from_the_prior_of_the_state_it_is_in(stored, variant):
    env = explore({"type": "iql", "variant": variant, "prior_run": str(stored), "prior_agent": "llm", "prior_mode": "situation"})
    obs, actions = np.concatenate(env.obs)[:, 0], np.concatenate(env.actions)[:, 0]
    after_d = partner_defected(obs)
    assert after_d.sum() > 500 and (~after_d).sum() > 500
    assert (actions[~after_d] == 0).all()  # the stored agent always cooperated there
    assert (actions[after_d] == 0).mean() == pytest.approx(GENEROSITY, abs=0.04)


def test_dqn_explores_from_a_marginal_prior():
    env = explore({"type": "iql", "variant": "dqn", "prior": {"C": 0.2, "D": 0.8}})
    assert (np.concatenate(env.actions) == 0).mean() == pytest.approx(0.2, abs=0.03)  # 2560 draws: sd 0.008


def test_learners_that_talk_explore_game_actions_from_the_prior_and_words_uniformly_or_from_prior_words():
    def shares(**prior) -> tuple[float, np.ndarray]:
        env = explore({"type": "iql", "prior": {"C": 0.2, "D": 0.8}, **prior}, comms=TALK)
        obs, actions = np.concatenate(env.obs)[:, 0], np.concatenate(env.actions)[:, 0]
        talking = obs[:, 5] == 1  # the channel's talking flag follows the game observation
        assert talking.sum() > 1000 and (~talking).sum() > 1000
        assert (actions[talking] >= 2).all() and (actions[~talking] < 2).all()
        tokens = np.bincount(actions[talking] - 2, minlength=3) / talking.sum()  # silence, coop, cheat
        return float((actions[~talking] == 0).mean()), tokens

    cooperate, tokens = shares()
    assert cooperate == pytest.approx(0.2, abs=0.04) and tokens == pytest.approx([1 / 3] * 3, abs=0.04)
    cooperate, tokens = shares(prior_words={"coop": 0.7, "": 0.3})
    assert cooperate == pytest.approx(0.2, abs=0.04) and tokens == pytest.approx([0.3, 0.7, 0.0], abs=0.04)
    with pytest.raises(MasError, match="prior_words: 'hi' is not a word of comms.vocabulary \\(coop, cheat\\)"):
        shares(prior_words={"hi": 1.0})
    with pytest.raises(MasError, match="prior_words: the learners do not talk"):
        explore({"type": "iql", "prior": {"C": 1.0}, "prior_words": {"coop": 1.0}}, steps=1)


def test_a_situation_prior_with_talk_reads_the_heard_words_of_the_replayed_run(tmp_path):
    # the stored partner says "coop" in every talk step; the training partner too, so the
    # learner's observations (game part + talking flag + word heard) are the stored ones
    partner = {"type": "random", "p": 0.5, "message": "coop"}
    run = situational_run(tmp_path / "talk", {**PD["game"]}, episodes=8, rounds=6, generosity=GENEROSITY, comms=TALK, partner=partner)
    found = stored_situations(run, "llm", env_for({"type": "iql"}, 1, TALK).channel)
    assert found.obs.shape == (48, 5 + 1 + 2) and (found.obs[:, 5] == 0).all()  # action steps only
    assert (found.obs[:, 6] == 1).all()  # heard "coop" from the partner
    assert (found.mask[:, :2].all()) and not found.mask[:, 2:].any()
    env = explore({"type": "iql", "prior_run": str(run), "prior_agent": "llm", "prior_mode": "situation"}, comms=TALK, opponent=partner)
    obs, actions = np.concatenate(env.obs)[:, 0], np.concatenate(env.actions)[:, 0]
    acting = obs[:, 5] == 0
    after_d = acting & partner_defected(obs)
    assert (actions[acting & ~after_d] == 0).all()
    assert (actions[after_d] == 0).mean() == pytest.approx(GENEROSITY, abs=0.05)
    tokens = np.bincount(actions[~acting] - 2, minlength=3) / (~acting).sum()
    assert tokens == pytest.approx([1 / 3] * 3, abs=0.04)


def test_a_situation_prior_from_another_game_is_refused(stored):
    game = {**PD["game"], "memory": 2}
    sc = parse_scenario({**PD, "game": game, "agents": [{"id": "a", "policy": {"type": "iql"}}, {"id": "b", "policy": "tit_for_tat"}]})
    env = VectorEnv(sc, ["a"], 2, 0)
    config = IQLSpec(type="iql", prior_run=str(stored), prior_agent="llm", prior_mode="situation").to_config()
    with pytest.raises(MasError, match="prior_mode situation needs the same game"):
        make_iql(config, env, torch.device("cpu"), 0, 100).collect_and_update(env, env.reset())
