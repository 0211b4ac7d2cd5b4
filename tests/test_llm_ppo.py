"""llm-ppo / llm-mappo on the real embedded model: the update, adapters for play, seeds, errors.

Small on purpose (2 rounds, a few updates) so the file runs in about a minute on 2 cores.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from mas.errors import MasError
from mas.scenario import load_scenario, parse_scenario

PD_LLM = {
    "name": "llm_pd_tiny",
    "game": {
        "kind": "normal_form", "actions": ["C", "D"], "action_descriptions": {"C": "cooperate", "D": "defect"},
        "payoffs": {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]}, "cooperate": "C", "defect": "D",
    },
    "rounds": 2,
    "agents": [
        {"id": "llm", "policy": {"type": "llm", "mode": "score", "history_rounds": 1}},
        {"id": "tft", "policy": "tit_for_tat"},
    ],
    "seed": 3,
}


def scenario(data: dict = PD_LLM):
    return parse_scenario(copy.deepcopy(data), source="test")


def trainable_lm():
    """The embedded model with fresh adapters (seed 1), on one CPU thread."""
    from mas.agents.llm.models import load_model
    from mas.agents.rl.llm_model import LoraSettings, TrainableLM

    torch.set_num_threads(1)
    return TrainableLM(load_model("default", "cpu", "float32"), LoraSettings(), seed=1)


@pytest.fixture(scope="module")
def trained():
    """A TrainableLM after one PPO update on a fixed batch, with the batch's decision."""
    from mas.agents.llm.backend import ScoreRequest
    from mas.agents.rl.scoring_backend import ScoringBackend
    from mas.agents.rl.config import LLMPPOConfig
    from mas.agents.rl.llm_ppo import LLMPPO, Rollouts, mixture

    lm = trainable_lm()
    backend = ScoringBackend(lm, "test")
    rollouts = Rollouts(scenario(), ["llm"], backend)
    (trajectory,), _ = rollouts.play(seed=5, episode=0)
    first = trajectory[0]
    request = [ScoreRequest(messages=first.prompts[0], candidates=first.candidates)]

    def logprobs() -> np.ndarray:
        with torch.no_grad():
            return torch.log(mixture(lm.score(request)[0], first.temperature)).numpy()

    before = logprobs()
    rewarded = first.candidates.index("D")  # reward the action the base model likes less
    batch = []
    for action in range(len(first.candidates)):
        decision = dataclasses.replace(first, action=action, old_logp=float(before[action]),
                                       reward=1.0 if action == rewarded else 0.0, done=True)
        batch.append([decision])
    config = LLMPPOConfig(epochs=2, minibatch=2, lr=1e-3)
    metrics = LLMPPO(lm, config, centralised=False, state_dim=0, learners=["llm"], seed=1).update(batch)
    return {"lm": lm, "first": first, "before": before, "after": logprobs(), "rewarded": rewarded, "metrics": metrics,
            "rollouts": rollouts}


def test_scorer_matches_the_inference_backend(trained) -> None:
    """The differentiable scorer with adapters disabled gives the play backend's numbers."""
    from mas.agents.llm.backend import ScoreRequest
    from mas.agents.llm.config import LocalBackendConfig
    from mas.agents.llm.factory import get_backend

    first = trained["first"]
    request = [ScoreRequest(messages=first.prompts[0], candidates=first.candidates)]
    plain = get_backend(LocalBackendConfig(device="cpu", dtype="float32")).score(request)[0].logprobs
    with torch.no_grad():
        base = trained["lm"].score(request, adapters=False)[0][0].numpy()
    np.testing.assert_allclose(base, plain, atol=2e-4)


def test_candidates_continue_their_prompt_as_a_full_forward_would(trained) -> None:
    """Multi-token candidates and messages continue their prompt's keys/values (the prompt is
    computed once): the same per-token log-probabilities and adapter gradients as a plain
    forward pass of each whole prompt + candidate, on prompts of different lengths."""
    lm = trained["lm"]
    system = trained["first"].prompts[0][:1]
    conversations = [trained["first"].prompts[0], [*system, {"role": "user", "content": "Say something short."}]]
    candidates = [[lm.text_ids("say cooperate now"), lm.text_ids("D"), lm.text_ids("say defect")],
                  [lm.text_ids("Hello there, friend.")]]

    def plain() -> list[torch.Tensor]:
        out = []
        for messages, cands in zip(conversations, candidates):
            prompt = lm.prompt_ids(messages)
            for c in cands:
                logits = lm.model(input_ids=torch.tensor([prompt + c])).logits[0, len(prompt) - 1: len(prompt) - 1 + len(c)]
                out.append(torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(c)[:, None])[:, 0])
        return out

    def gradients(values: list[torch.Tensor]) -> list[torch.Tensor]:
        params = lm.parameters()
        for p in params:
            p.grad = None
        torch.stack([v.sum() * (k + 1) for k, v in enumerate(values)]).sum().backward()
        return [p.grad.clone() for p in params]

    with torch.no_grad():
        fast = [t for cands in lm._reads(conversations, candidates, True)[0] for t in cands]
        reference = plain()
    assert [len(t) for t in fast] == [len(c) for cands in candidates for c in cands]
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-4)
    lm.prefix_grad = True  # the exact gradient (through the shared system turn too)
    fast_grads = gradients([t for cands in lm._reads(conversations, candidates, True)[0] for t in cands])
    reference_grads = gradients(plain())
    assert any(float(g.abs().max()) > 0 for g in reference_grads)
    for a, b in zip(fast_grads, reference_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4, rtol=1e-3)


def test_one_ppo_update_raises_the_rewarded_action(trained) -> None:
    before, after, rewarded = trained["before"], trained["after"], trained["rewarded"]
    assert after[rewarded] > before[rewarded] + 0.01, (before, after)
    assert set(trained["metrics"]) >= {"policy_loss", "value_loss", "entropy", "kl", "clip_frac"}


def test_adapters_save_load_and_play_the_same_distribution(trained, tmp_path: Path) -> None:
    """Saved adapters, loaded by the local backend through a play scenario (as `mas run`
    does), give the trained model's action distribution; the base model's differs."""
    from mas.agents.rl.llm_ppo import mixture
    from mas.episode import EpisodeEngine
    from mas.runner import play_episode
    from mas.training.rundir import write_llm_play_scenario

    lm, first = trained["lm"], trained["first"]
    lm.save(tmp_path / "adapter")
    data = copy.deepcopy(PD_LLM)
    data["agents"][0]["policy"]["backend"] = {"kind": "local", "device": "cpu", "dtype": "float32"}
    play = write_llm_play_scenario(scenario(data), ["llm"], tmp_path / "adapter", tmp_path / "play.yaml")
    assert load_scenario(str(tmp_path / "play.yaml")).agents[0].policy.backend.adapter == str((tmp_path / "adapter").resolve())
    record = play_episode(EpisodeEngine(play), 0, 5)
    decision = next(d.record for d in record.decisions if d.agent == "llm")
    played = np.array([decision["distribution"][c] for c in first.candidates])
    from mas.agents.llm.backend import ScoreRequest

    request = [ScoreRequest(messages=tuple(decision["prompt"]), candidates=first.candidates)]
    with torch.no_grad():
        tuned = mixture(lm.score(request)[0], first.temperature).numpy()
        base = mixture(lm.score(request, adapters=False)[0], first.temperature).numpy()
    np.testing.assert_allclose(played, tuned, atol=1e-4)
    assert np.abs(played - base).max() > 1e-3


def test_batched_rollouts_give_the_one_at_a_time_trajectories(trained) -> None:
    """Three seeded episodes played at once (copies of the engine, one packed scoring call
    per step) are the three episodes played one by one: same prompts, actions, rewards."""
    from mas.agents.rl.scoring_backend import ScoringBackend
    from mas.agents.rl.llm_ppo import Rollouts

    data = copy.deepcopy(PD_LLM)
    data["rounds"] = {"continuation": 0.6, "max": 3}  # episodes of different lengths
    backend = ScoringBackend(trained["lm"], "test")
    calls = []
    score = backend.score
    backend.score = lambda requests: calls.append(len(requests)) or score(requests)  # type: ignore[method-assign]
    rollouts = Rollouts(scenario(data), ["llm"], backend)
    alone = [rollouts.play(seed=9, episode=e) for e in (4, 5, 6)]
    single_calls, calls[:] = list(calls), []
    together = rollouts.play_many(seed=9, episodes=[4, 5, 6])
    assert len(calls) == max(len(t[0][0]) for t in alone) and max(calls) == 3  # one call per step for all copies
    assert len(single_calls) == sum(len(t[0][0]) for t in alone)
    assert len({len(t[0][0]) for t in alone}) > 1
    for (traj_a, stats_a), (traj_b, stats_b) in zip(alone, together):
        assert stats_a == stats_b
        for a, b in zip(traj_a[0], traj_b[0], strict=True):
            assert (a.prompts, a.candidates, a.action, a.reward, a.done) == (b.prompts, b.candidates, b.action, b.reward, b.done)
            np.testing.assert_allclose(a.probs, b.probs, atol=1e-4)
            np.testing.assert_allclose(a.base_probs, b.base_probs, atol=1e-4)


def test_remembered_scores_are_forgotten_after_an_update(trained) -> None:
    """The rollout backend answers a repeated request from memory, but not once the weights changed."""
    from mas.agents.llm.backend import ScoreRequest
    from mas.agents.rl.scoring_backend import ScoringBackend

    lm, first = trained["lm"], trained["first"]
    backend = ScoringBackend(lm, "test", base_scores=False)
    request = [ScoreRequest(messages=first.prompts[0], candidates=first.candidates)]
    before = backend.score(request)[0].logprobs
    param = lm.parameters()[0]
    with torch.no_grad():
        param.add_(0.05)
        assert backend.score(request)[0].logprobs == before  # same weights version: remembered
        lm.forget_prefixes()  # what an update does
        after = backend.score(request)[0].logprobs
        param.sub_(0.05)
    lm.forget_prefixes()
    assert after != before


@pytest.mark.parametrize("spread", [True, False])
def test_group_advantages_match_a_hand_computation(trained, spread: bool) -> None:
    """Every decision of an episode gets (return - its group's mean) / the group's spread."""
    from mas.agents.rl.config import LLMPPOConfig
    from mas.agents.rl.llm_ppo import LLMPPO

    first = trained["first"]

    def episode(*rewards: float) -> list:
        return [dataclasses.replace(first, reward=r, done=i == len(rewards) - 1) for i, r in enumerate(rewards)]

    trajectories = [episode(0.5, 0.5), episode(1.0, 2.0), episode(4.0), episode(1.0, 3.0), episode(0.0, 1.0)]
    groups = [0, 0, 1, 1, 1]  # returns: group 0 [1, 3]; group 1 [4, 4, 1]
    config = LLMPPOConfig(estimator="group", group_size=2, episodes_per_update=4, group_std=spread)
    learner = LLMPPO(trained["lm"], config, centralised=False, state_dim=0, learners=["llm"], seed=0)
    _, adv, _ = learner.advantages(trajectories, groups)
    root2 = np.sqrt(2.0)  # group 1: mean 3, population std sqrt(((1 + 1 + 4) / 3)) = sqrt(2)
    by_episode = [-1.0, 1.0, 1 / root2, 1 / root2, -2 / root2] if spread else [-1.0, 1.0, 1.0, 1.0, -2.0]
    expected = [a for a, traj in zip(by_episode, trajectories) for _ in traj]
    np.testing.assert_allclose(adv.numpy(), expected, atol=1e-5)


def test_episodes_of_a_group_play_one_game_seed(trained) -> None:
    from mas.agents.rl.scoring_backend import ScoringBackend
    from mas.agents.rl.llm_ppo import Rollouts

    data = copy.deepcopy(PD_LLM)
    data["rounds"] = {"continuation": 0.6, "max": 6}
    rollouts = Rollouts(scenario(data), ["llm"], ScoringBackend(trained["lm"], "test"))
    played = rollouts.play_many(seed=2, episodes=[0, 1, 2, 3, 4, 5], groups=[0, 0, 0, 1, 1, 1])
    lengths = [stats.steps for _, stats in played]
    assert len(set(lengths[:3])) == 1 and len(set(lengths[3:])) == 1  # one continuation stream per group
    assert lengths[0] != lengths[3]


def _curves(path: Path) -> list[dict[str, str]]:
    with (path / "curves.csv").open() as handle:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(handle)]


def test_seeded_llm_ppo_runs_are_reproducible(tmp_path: Path) -> None:
    from mas.training.run import train

    overrides = {"episodes_per_update": 2, "epochs": 1, "minibatch": 4}
    runs = [train(scenario(), "llm-ppo", 8, 11, tmp_path / f"run{i}", device="cpu", eval_episodes=1, final_episodes=0,
                  overrides=overrides, tensorboard=False) for i in range(2)]
    first, second = _curves(runs[0].out_dir), _curves(runs[1].out_dir)
    assert len(first) == 2 and first == second
    assert {"kl", "entropy", "cooperation_rate", "eval_cooperation/llm"} <= set(first[0])
    assert (runs[0].out_dir / "adapter" / "adapter_config.json").is_file()
    assert load_scenario(str(runs[0].play_scenario)).agents[0].policy.backend.adapter


def test_group_estimator_trains_end_to_end(tmp_path: Path) -> None:
    from mas.training.run import train

    overrides = {"estimator": "group", "group_size": 2, "episodes_per_update": 2, "epochs": 1}
    result = train(scenario(), "llm-ppo", 4, 5, tmp_path / "g", device="cpu", eval_episodes=1, final_episodes=0,
                   overrides=overrides, tensorboard=False)
    rows = _curves(result.out_dir)
    assert len(rows) == 1 and rows[0]["episodes"] == "2" and np.isfinite(float(rows[0]["policy_loss"]))


def test_adapters_on_the_last_layers_only(tmp_path: Path) -> None:
    import json

    from safetensors import safe_open

    from mas.training.run import train

    overrides = {"lora_layers": 2, "episodes_per_update": 2, "epochs": 1, "prefix_grad": False}
    result = train(scenario(), "llm-ppo", 4, 5, tmp_path / "last2", device="cpu", eval_episodes=1, final_episodes=0,
                   overrides=overrides, tensorboard=False)
    adapter = result.out_dir / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["layers_to_transform"] == [28, 29]  # of 30
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as weights:
        layers = {int(key.split(".layers.")[1].split(".")[0]) for key in weights.keys()}
    assert layers == {28, 29}
    assert np.isfinite(float(_curves(result.out_dir)[0]["policy_loss"]))
    with pytest.raises(MasError, match="lora_layers: 31 is more than the 30 decoder layers"):
        train(scenario(), "llm-ppo", 4, 5, tmp_path / "x", device="cpu", overrides={"lora_layers": 31})


def test_llm_mappo_trains_two_agents_with_a_central_critic(tmp_path: Path) -> None:
    from mas.training.run import train

    data = {
        "name": "llm_coord_tiny",
        "game": {"kind": "normal_form", "actions": ["Left", "Right"],
                 "payoffs": {"Left,Left": [1, 1], "Right,Right": [1, 1], "Left,Right": [0, 0], "Right,Left": [0, 0]}},
        "rounds": 2,
        "agents": [{"id": "p", "count": 2, "policy": {"type": "llm", "mode": "score", "history_rounds": 1}}],
    }
    result = train(scenario(data), "llm-mappo", 4, 2, tmp_path / "m", device="cpu", eval_episodes=1, final_episodes=1,
                   overrides={"epochs": 1, "episodes_per_update": 2, "estimator": "reinforce"}, tensorboard=False)
    rows = _curves(result.out_dir)
    assert rows and rows[-1]["value_loss"] != "" and rows[-1]["eval_return/p_0"] != ""
    assert result.learners == ["p_0", "p_1"] and result.eval_run is not None
    assert (result.eval_run / "run.sqlite").is_file()


@pytest.mark.parametrize(("algo", "change", "fragment"), [
    ("llm-ppo", None, "no LLM agent"),
    ("llm-ppo", {"mode": "generate"}, "mode: score"),
    ("llm-mappo", {}, "two or more LLM learners"),
    ("llm-ppo", {"choice": "argmax"}, "choice: sample"),
])
def test_bad_input_is_a_one_line_error(algo: str, change: dict | None, fragment: str, tmp_path: Path) -> None:
    from mas.training.run import train

    if change is None:
        sc = load_scenario("scenarios/prisoners_dilemma.yaml")
    else:
        data = copy.deepcopy(PD_LLM)
        data["agents"][0]["policy"].update(change)
        sc = scenario(data)
    with pytest.raises(MasError, match=fragment):
        train(sc, algo, 4, 0, tmp_path / "x", device="cpu")


def test_unknown_hyperparameter_and_missing_adapter_are_named(tmp_path: Path) -> None:
    from mas.agents.llm.models import load_model
    from mas.training.learners import resolve_config

    with pytest.raises(MasError, match="unknown llm-ppo hyperparameter 'learning_rate'"):
        resolve_config(scenario(), "llm-ppo", ["llm"], {"learning_rate": 0.1})
    with pytest.raises(MasError, match="estimator") as info:
        resolve_config(scenario(), "llm-ppo", ["llm"], {"estimator": "a2c"})
    assert "\n" not in str(info.value) and "group" in str(info.value)
    with pytest.raises(MasError, match="multiple of group_size"):
        resolve_config(scenario(), "llm-ppo", ["llm"], {"estimator": "group", "episodes_per_update": 6, "group_size": 4})
    with pytest.raises(MasError, match="backend.adapter"):
        load_model("default", "cpu", "float32", str(tmp_path / "nowhere"))
