"""Optional: TorchRL's PettingZoo wrapper accepts a talking env in token mode (skipped
without torchrl, which is no dependency of mas; `pip install torchrl` to run it)."""

from __future__ import annotations

import pytest

import mas

pytest.importorskip("torchrl")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torchrl_wraps_and_rolls_out_the_token_env() -> None:
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    env = mas.make_env("private_coordination", messages="tokens")
    wrapped = PettingZooWrapper(env, use_mask=True, categorical_actions=True, seed=0)
    check_env_specs(wrapped)  # specs match what reset and step return
    rollout = wrapped.rollout(32, break_when_any_done=False)
    actions = rollout["ann", "action"].reshape(-1, 2)  # [steps, (game action, token)]
    talking = rollout["ann", "observation", "heard"].reshape(-1, 3)[:, 0].bool()  # its talking flag
    assert bool((actions[~talking, 1] == 0).all())  # the mask allows no word in action steps
    assert bool((actions[talking, 1] > 0).any())  # random tokens in talk steps say words
    heard = rollout["next", "ann", "observation", "heard"].reshape(-1, 3)
    assert heard.shape[-1] == 3 and bool((heard[:, 1:].sum(-1) <= 1).all())
    assert env.message_log and {m.text for m in env.message_log} <= {"zib", "wug"}
