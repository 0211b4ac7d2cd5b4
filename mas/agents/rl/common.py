"""Small shared pieces of the learners: device choice, schedules, GAE, running
statistics, a replay buffer and a multi-agent MLP. Each is tested on its own; the
algorithms stay one file each."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mas import devices


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; 'cpu', 'cuda', 'cuda:1' as given."""
    return devices.resolve_device(name, "--device")


def linear_schedule(start: float, end: float, duration: float, t: float) -> float:
    """`start` at t=0, moving linearly to `end` at t=duration, then `end`."""
    if duration <= 0:
        return end
    return start + (end - start) * min(1.0, max(0.0, t / duration))


def gae(
    rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, dones: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a rollout of T steps.

    Args:
        rewards, values, dones: [T, ...]; `dones[t]` is 1 when the episode ended at step t
            (truncated steps should already carry the bootstrap `gamma * V(final)` in their
            reward, so both endings cut the chain here).
        next_values: [...] value of the state after the last step.
    Returns:
        (advantages, returns), both [T, ...]; returns = advantages + values.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_values)
    for t in reversed(range(steps)):
        following = next_values if t == steps - 1 else values[t + 1]
        alive = 1.0 - dones[t].float()
        delta = rewards[t] + gamma * following * alive - values[t]
        last = delta + gamma * lam * alive * last
        advantages[t] = last
    return advantages, advantages + values


class RunningMeanStd(nn.Module):
    """Running mean and variance (parallel update of Chan et al.), for value normalisation.
    Kept as buffers so they travel in the state dict."""

    def __init__(self, epsilon: float = 1e-5) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("var", torch.ones(()))
        self.register_buffer("count", torch.tensor(epsilon))

    @torch.no_grad()
    def update(self, values: torch.Tensor) -> None:
        values = values.detach().reshape(-1).to(self.mean.dtype)
        batch_mean, batch_var, n = values.mean(), values.var(unbiased=False), values.numel()
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean) / torch.sqrt(self.var + 1e-8)

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        return values * torch.sqrt(self.var + 1e-8) + self.mean


class ReplayBuffer:
    """A circular buffer of tensors on one device; every field has a leading capacity axis."""

    def __init__(self, capacity: int, shapes: dict[str, tuple[tuple[int, ...], torch.dtype]], device: torch.device) -> None:
        self.capacity = int(capacity)
        self.data = {k: torch.zeros((self.capacity, *shape), dtype=dtype, device=device) for k, (shape, dtype) in shapes.items()}
        self.position = 0
        self.size = 0

    def add(self, **batch: torch.Tensor) -> None:
        """Append a batch (leading axis n) of every field, overwriting the oldest entries."""
        n = next(iter(batch.values())).shape[0]
        index = (self.position + torch.arange(n, device=next(iter(self.data.values())).device)) % self.capacity
        for key, value in batch.items():
            self.data[key][index] = value
        self.position = (self.position + n) % self.capacity
        self.size = min(self.capacity, self.size + n)

    def sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        index = torch.randint(0, self.size, (n,), generator=generator, device=generator.device)
        return {k: v[index] for k, v in self.data.items()}


class MultiMLP(nn.Module):
    """`heads` independent two-layer MLPs evaluated in one batched call (no Python loop
    over agents); `heads=1` is one network shared by everybody.

    Input [..., heads, in] -> output [..., heads, out]. Orthogonal initialisation (gain
    sqrt(2) for hidden layers, `out_gain` for the last) and optional LayerNorm on the input,
    as in the MAPPO implementation.
    """

    def __init__(self, heads: int, n_in: int, hidden: int, n_out: int, layer_norm: bool = False, out_gain: float = 1.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(n_in) if layer_norm else nn.Identity()
        sizes = [(n_in, hidden), (hidden, hidden), (hidden, n_out)]
        gains = [math.sqrt(2), math.sqrt(2), out_gain]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for (a, b), gain in zip(sizes, gains):
            weight = torch.empty(heads, a, b)
            for h in range(heads):
                nn.init.orthogonal_(weight[h].T, gain=gain)
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(torch.zeros(heads, b)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            if self.heads == 1:
                x = x @ weight[0] + bias[0]
            else:
                x = torch.einsum("...hi,hio->...ho", x, weight) + bias
            if i < last:
                x = torch.relu(x)
        return x


def with_agent_id(x: torch.Tensor, n_agents: int) -> torch.Tensor:
    """Append a one-hot agent id to [..., n_agents, d] inputs (for parameter sharing)."""
    eye = torch.eye(n_agents, dtype=x.dtype, device=x.device)
    return torch.cat([x, eye.expand(*x.shape[:-1], n_agents)], dim=-1)


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Illegal actions get a very low logit (not -inf, which makes NaN entropies)."""
    return logits.masked_fill(~mask, -1e9)


def epsilon_greedy(q: torch.Tensor, mask: torch.Tensor, epsilon: float, generator: torch.Generator,
                   explore_probs: torch.Tensor | None = None) -> torch.Tensor:
    """Argmax of Q over legal actions; with probability epsilon a uniform legal action, or
    one drawn from `explore_probs` (like `mask`, zero off the legal actions) when given."""
    greedy = masked_logits(q, mask).argmax(-1)
    if explore_probs is None:
        noise = torch.rand(mask.shape, generator=generator, device=generator.device)
        random_legal = torch.where(mask, noise, torch.full_like(noise, -1.0)).argmax(-1)
    else:
        flat = explore_probs.reshape(-1, explore_probs.shape[-1])
        random_legal = torch.multinomial(flat, 1, generator=generator).reshape(greedy.shape)
    explore = torch.rand(greedy.shape, generator=generator, device=generator.device) < epsilon
    return torch.where(explore, random_legal, greedy)


def torch_generator(seed: int, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) % (2**63))
    return generator


def numpy_to(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)
