"""The small shared RL helpers, each against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mas.agents.rl.common import (  # noqa: E402
    MultiMLP,
    ReplayBuffer,
    RunningMeanStd,
    epsilon_greedy,
    gae,
    linear_schedule,
    resolve_device,
    torch_generator,
)
from mas.errors import MasError  # noqa: E402


def test_linear_schedule_moves_then_holds():
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 1000) == pytest.approx(0.1)


def test_gae_matches_the_textbook_recursion_and_cuts_at_episode_ends():
    rng = np.random.default_rng(0)
    T, gamma, lam = 6, 0.9, 0.8
    r, v = rng.normal(size=T), rng.normal(size=T)
    nxt = 0.7
    done = np.array([0, 0, 1, 0, 0, 0], dtype=bool)
    expected = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):  # written independently of the implementation
        v_next = nxt if t == T - 1 else v[t + 1]
        if done[t]:
            delta, running = r[t] - v[t], r[t] - v[t]
        else:
            delta = r[t] + gamma * v_next - v[t]
            running = delta + gamma * lam * running
        expected[t] = running
    adv, ret = gae(torch.tensor(r), torch.tensor(v), torch.tensor(nxt, dtype=torch.float64), torch.tensor(done), gamma, lam)
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(ret.numpy(), expected + v, rtol=1e-6)
    # lambda = 1 with no episode end: the advantage is the discounted return minus the value
    adv1, _ = gae(torch.tensor(r), torch.tensor(v), torch.tensor(0.0, dtype=torch.float64), torch.zeros(T, dtype=torch.bool), 0.5, 1.0)
    discounted = sum(0.5**k * r[k] for k in range(T))
    assert adv1[0].item() == pytest.approx(discounted - v[0])


def test_running_mean_std_equals_the_statistics_of_everything_seen():
    stats = RunningMeanStd(epsilon=0.0)
    rng = np.random.default_rng(1)
    chunks = [rng.normal(3.0, 2.0, size=n) for n in (5, 17, 40)]
    stats.count.fill_(0.0)
    stats.update(torch.tensor(chunks[0]))
    for chunk in chunks[1:]:
        stats.update(torch.tensor(chunk))
    everything = np.concatenate(chunks)
    assert stats.mean.item() == pytest.approx(everything.mean(), rel=1e-5)
    assert stats.var.item() == pytest.approx(everything.var(), rel=1e-5)
    x = torch.tensor([1.0, 5.0])
    np.testing.assert_allclose(stats.denormalize(stats.normalize(x)).numpy(), x.numpy(), rtol=1e-5)


def test_replay_buffer_overwrites_the_oldest_and_samples_only_filled_slots():
    buffer = ReplayBuffer(4, {"x": ((), torch.int64)}, torch.device("cpu"))
    buffer.add(x=torch.tensor([1, 2, 3]))
    assert buffer.size == 3
    sample = buffer.sample(200, torch_generator(0, torch.device("cpu")))["x"]
    assert set(sample.tolist()) == {1, 2, 3}
    buffer.add(x=torch.tensor([4, 5]))  # 5 overwrites 1
    assert buffer.size == 4 and sorted(buffer.data["x"].tolist()) == [2, 3, 4, 5]


def test_multi_mlp_heads_are_independent_networks():
    torch.manual_seed(0)
    net = MultiMLP(heads=3, n_in=4, hidden=8, n_out=2, layer_norm=True)
    x = torch.randn(5, 3, 4)
    before = net(x)
    with torch.no_grad():
        net.weights[0][1, 0, :] += 1.0  # change only head 1 (one input row: LayerNorm centres inputs)
    after = net(x)
    assert torch.equal(before[:, 0], after[:, 0]) and torch.equal(before[:, 2], after[:, 2])
    assert not torch.allclose(before[:, 1], after[:, 1])
    # each head equals a plain MLP with its own weights
    h = torch.relu(net.norm(x[:, 2]) @ net.weights[0][2] + net.biases[0][2])
    h = torch.relu(h @ net.weights[1][2] + net.biases[1][2])
    torch.testing.assert_close(after[:, 2], h @ net.weights[2][2] + net.biases[2][2])


def test_epsilon_greedy_respects_the_mask_and_epsilon():
    gen = torch_generator(0, torch.device("cpu"))
    q = torch.tensor([[5.0, 1.0, 0.0]]).repeat(2000, 1)
    mask = torch.tensor([[False, True, True]]).repeat(2000, 1)
    greedy = epsilon_greedy(q, mask, 0.0, gen)
    assert (greedy == 1).all()  # the best *legal* action
    explore = epsilon_greedy(q, mask, 1.0, gen)
    assert set(explore.tolist()) == {1, 2}  # never the illegal action 0
    assert 0.4 < (explore == 2).float().mean().item() < 0.6


def test_device_auto_is_cpu_without_cuda_and_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(MasError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(MasError, match="unknown device"):
        resolve_device("tpu9")
