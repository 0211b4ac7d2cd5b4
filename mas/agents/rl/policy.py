"""The `checkpoint` policy: a trained agent plays in `mas run` and tournaments.

`policy: {type: checkpoint, path: runs/x/checkpoint.pt, agent: bob, mode: greedy}` loads
the checkpoint once per process and plays trained agent `agent` (default: the seat's own
id). `greedy` plays the best action; `sample` draws from the trained policy (MAPPO) or
plays epsilon-greedy with the final training epsilon (IQL). A tabular agent that meets
an observation it never saw in training plays its first legal action, and the decision
record says so (`unseen_observation`), so the fallback is a stored fact, not a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mas.agents.base import AgentSetup, AgentView, Decision, Policy, RoundMessages
from mas.training.checkpoint import CheckpointError, build_learner, load_checkpoint
from mas.vocabulary import LearnerChannel

_CACHE: dict[tuple[str, float], dict[str, Any]] = {}


def cached_checkpoint(path: str) -> dict[str, Any]:
    """Load a checkpoint once per process (keyed by resolved path and modification time)."""
    resolved = Path(path).resolve()
    key = (str(resolved), resolved.stat().st_mtime if resolved.exists() else -1.0)
    if key not in _CACHE:
        _CACHE[key] = load_checkpoint(resolved)
    return _CACHE[key]


class CheckpointPolicy(Policy):
    """A trained agent from a `mas train` checkpoint (greedy or sampling)."""

    def __init__(self, spec: Any, game: Any, agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        data = cached_checkpoint(spec.path)
        where = f"{spec.path}"
        self.channel = LearnerChannel.from_dict(data.get("channel"))
        extra = self.channel.extra_obs if self.channel is not None else 0
        expected = (data["game_kind"], data["obs_dim"], data["num_actions"])
        found = (game.kind, game.obs_dim + extra,
                 self.channel.num_actions if self.channel is not None else game.num_actions)
        if expected != found:
            raise CheckpointError(
                f"{where}: trained on a {expected[0]} game with {expected[1]} observation features and {expected[2]} actions, "
                f"but this game is {found[0]} with {found[1]} and {found[2]}"
            )
        trained = list(data["learners"])
        self.learner_index = []
        for setup in agents:
            name = spec.agent or setup.agent
            if name not in trained:
                raise CheckpointError(f"{where}: no trained agent '{name}' (agent {setup.agent}); trained agents: {', '.join(trained)}")
            self.learner_index.append(trained.index(name))
        self.learner = build_learner(data, torch.device("cpu"), where=where)
        self.greedy = spec.mode == "greedy"
        self.reset(0)

    def reset(self, seed: int) -> None:
        self._messages = RoundMessages(self.spec.message)
        self.learner.reseed(seed)

    def act(self, views: Sequence[AgentView]) -> list[Decision]:
        seats = {setup.agent: i for i, setup in enumerate(self.agents)}
        channel = self.channel
        if channel is None:
            obs = np.stack([np.asarray(v.observation, dtype=np.float32) for v in views])
            mask = np.stack([np.asarray(v.action_mask) > 0 for v in views])
        else:  # the learner hears and talks through its channel, as in training
            obs = np.stack([np.concatenate([np.asarray(v.observation, dtype=np.float32), channel.encode(v.agent, v.inbox, v.talking)])
                            for v in views])
            mask = np.stack([channel.mask(np.asarray(v.action_mask), v.talking) for v in views])
        who = torch.tensor([self.learner_index[seats[v.agent]] for v in views], dtype=torch.long)
        actions, unseen = self.learner.act(torch.from_numpy(obs), torch.from_numpy(mask), who, greedy=self.greedy)
        decisions = []
        for view, action, new in zip(views, actions.tolist(), unseen.tolist()):
            record = {"unseen_observation": True, "fallback": "first legal action"} if new else None
            if channel is not None and view.talking:
                decisions.append(Decision(0, channel.word(int(action)), record))
            elif channel is not None:
                decisions.append(Decision(int(action), "", record))
            else:
                decisions.append(Decision(int(action), self._messages.say(view, int(action)), record))
        return decisions
