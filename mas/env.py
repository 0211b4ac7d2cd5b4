"""The PettingZoo `ParallelEnv`: a batch-of-one view of a game, plus talk.

Each game round is `talk_rounds` talk-only steps (agents send messages; their discrete
actions are ignored) followed by one action step (messages and actions both count). With
communication off there are no talk steps and no messages.

Spaces (cached per agent):
- action: `Discrete(A)` with communication off; with it on, a `Dict` of
  `action: Discrete(A)` and `message: Text(max_length)`, whose `sample(mask)` also accepts
  the plain action mask PettingZoo's test helpers pass.
- observation: a `Dict` of `observation` (the game's numeric vector), `action_mask`
  (int8 legal actions) and, with communication on, `inbox` (the delivered messages as
  labelled text) and `talking` (1 in talk-only steps).

Episodes end by termination (the game ended, e.g. a collapse, an agreement, or the
continuation draw said stop) or truncation (the fixed number of rounds, or the
continuation cap). Illegal or missing actions are replaced by the first legal action and
flagged in `infos[agent]["illegal_action"]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from mas import registry
from mas.agents.base import AgentView
from mas.comms import CHARSET, Message, build_graph, deliver, empty_graph, inbox_capacity, render_inbox
from mas.games.base import sanitize_actions
from mas.scenario import ContinuationRounds, Scenario


class MessageActionSpace(spaces.Dict):
    """`Dict(action=Discrete, message=Text)` whose `sample` also takes a plain action mask."""

    def sample(self, mask: Any = None, probability: Any = None) -> dict[str, Any]:  # type: ignore[override]
        if mask is not None and not isinstance(mask, dict):
            mask = {"action": np.asarray(mask, dtype=np.int8), "message": None}
        return super().sample(mask=mask, probability=probability)


class MasParallelEnv(ParallelEnv):
    """A scenario's game and communication graph as a PettingZoo parallel environment."""

    metadata = {"name": "mas_v0", "render_modes": ["human", "ansi"], "is_parallelizable": True}

    def __init__(self, scenario: Scenario, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.scenario = scenario
        self.render_mode = render_mode
        self.possible_agents = scenario.agent_ids
        self.agents: list[str] = []
        self.game = registry.make_game(scenario.game, len(self.possible_agents))
        self.comms_mode = scenario.comms.mode
        # comms off: nobody talks, so no edges (a complete graph of 1000 agents is ~250 MB)
        self.graph = (
            build_graph(scenario.comms.topology, self.possible_agents) if self.comms_mode != "off" else empty_graph(self.possible_agents)
        )
        self.talk_rounds = scenario.comms.talk_rounds if self.comms_mode != "off" else 0
        self.max_length = scenario.comms.max_length
        self._personas = {a.id: a.persona for a in scenario.agents}
        self._action_names = {aid: tuple(self.game.action_names(i)) for i, aid in enumerate(self.possible_agents)}
        self._build_spaces()
        self._rng = np.random.default_rng()
        self.episode = 0
        self.message_log: list[Message] = []

    # ----- spaces --------------------------------------------------------------------
    def _build_spaces(self) -> None:
        game = self.game
        num_actions = game.num_actions
        self._action_spaces: dict[str, spaces.Space] = {}
        self._observation_spaces: dict[str, spaces.Space] = {}
        for agent in self.possible_agents:
            obs = {
                "observation": spaces.Box(-np.inf, np.inf, shape=(game.obs_dim,), dtype=np.float32),
                "action_mask": spaces.Box(0, 1, shape=(num_actions,), dtype=np.int8),
            }
            if self.comms_mode == "off":
                self._action_spaces[agent] = spaces.Discrete(num_actions)
            else:
                message_space = spaces.Text(max_length=self.max_length, min_length=0, charset=CHARSET)
                self._action_spaces[agent] = MessageActionSpace({"action": spaces.Discrete(num_actions), "message": message_space})
                capacity = inbox_capacity(self.graph, agent, self.max_length)
                obs["inbox"] = spaces.Text(max_length=capacity, min_length=0, charset=CHARSET)
                obs["talking"] = spaces.Discrete(2)
            self._observation_spaces[agent] = spaces.Dict(obs)
        self.state_space = spaces.Box(-np.inf, np.inf, shape=(game.state_dim,), dtype=np.float32)

    def observation_space(self, agent: str) -> spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._action_spaces[agent]

    # ----- episode -------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        options = options or {}
        self.episode = int(options.get("episode", self.episode))
        self.agents = list(self.possible_agents)
        self._game_state = self.game.reset(1, self._rng)
        self._vectors = None
        self.round = 0
        self.steps = 0
        self._talk_step = 0
        self._inboxes: dict[str, tuple[Message, ...]] = {a: () for a in self.possible_agents}
        self._last_actions: dict[str, int] | None = None
        self._last_rewards: dict[str, float] | None = None
        self._last_illegal: dict[str, bool] = dict.fromkeys(self.possible_agents, False)
        self.message_log = []
        self._mask = self.game.action_mask(self._game_state)[0]
        return self._observations(), self._infos()

    @property
    def talking(self) -> bool:
        """True when the next step is a talk-only step."""
        return self._talk_step < self.talk_rounds

    def _split(self, actions: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, str]]:
        chosen = np.full(len(self.possible_agents), -1, dtype=np.int64)
        said: dict[str, str] = {}
        for i, agent in enumerate(self.possible_agents):
            value = actions.get(agent)
            if isinstance(value, Mapping):
                said[agent] = str(value.get("message") or "")
                value = value.get("action")
            if value is not None:
                try:
                    chosen[i] = int(value)
                except (TypeError, ValueError):
                    chosen[i] = -1
        return chosen, said

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        chosen, said = self._split(actions)
        talking = self.talking
        inboxes, log = deliver(
            self.graph, self.comms_mode, said,
            episode=self.episode, round=self.round, step=self.steps, max_length=self.max_length,
        )
        self.message_log.extend(log)
        self._inboxes = {a: tuple(m) for a, m in inboxes.items()}
        rewards = dict.fromkeys(self.possible_agents, 0.0)
        terminated = truncated = False
        if talking:
            self._talk_step += 1
            self._last_illegal = dict.fromkeys(self.possible_agents, False)
        else:
            legal, illegal = sanitize_actions(chosen[None, :], self._mask[None, :, :])
            result = self.game.step(self._game_state, legal, self._rng)
            self._game_state = result.state
            self._vectors = None
            values = result.rewards[0]
            rewards = {a: float(values[i]) for i, a in enumerate(self.possible_agents)}
            self._last_actions = {a: int(legal[0, i]) for i, a in enumerate(self.possible_agents)}
            self._last_rewards = rewards
            self._last_illegal = {a: bool(illegal[0, i]) for i, a in enumerate(self.possible_agents)}
            self._mask = self.game.action_mask(self._game_state)[0]
            self.round += 1
            self._talk_step = 0
            terminated, truncated = self._episode_end(bool(result.terminated[0]))
        self.steps += 1
        observations, infos = self._observations(), self._infos()
        terms = dict.fromkeys(self.agents, terminated)
        truncs = dict.fromkeys(self.agents, truncated)
        if terminated or truncated:
            self.agents = []
        if self.render_mode == "human":
            print(self.render())
        return observations, rewards, terms, truncs, infos

    def _episode_end(self, game_over: bool) -> tuple[bool, bool]:
        rounds = self.scenario.rounds
        if game_over:
            return True, False
        if isinstance(rounds, ContinuationRounds):
            if self._rng.random() >= rounds.continuation:
                return True, False
            return False, self.round >= rounds.max
        return False, self.round >= rounds

    # ----- what agents see -----------------------------------------------------------
    def _observation_vectors(self) -> np.ndarray:
        """Every seat's observation vector, computed once per game state (step() and the
        policies' views() both need them)."""
        if self._vectors is None:
            self._vectors = self.game.observe(self._game_state)[0]
        return self._vectors

    def _observations(self) -> dict[str, dict[str, Any]]:
        vectors = self._observation_vectors()
        talking = int(self.talking)
        out = {}
        for i, agent in enumerate(self.possible_agents):
            obs: dict[str, Any] = {"observation": vectors[i], "action_mask": self._mask[i]}
            if self.comms_mode != "off":
                obs["inbox"] = render_inbox(self._inboxes[agent])
                obs["talking"] = talking
            out[agent] = obs
        return out

    def _infos(self) -> dict[str, dict[str, Any]]:
        base = {"round": self.round, "talking": self.talking}
        return {
            agent: {**base, "inbox": self._inboxes[agent], "illegal_action": self._last_illegal[agent]}
            for agent in self.possible_agents
        }

    def views(self, agents: list[str] | None = None, text: bool = False) -> dict[str, AgentView]:
        """Plain-data views of the current step for policies (text only when asked)."""
        vectors = self._observation_vectors()
        summary = self.game.summary(self._game_state, 0)
        talking = self.talking
        out = {}
        for agent in agents if agents is not None else self.agents:
            seat = self.possible_agents.index(agent)
            out[agent] = AgentView(
                agent=agent,
                seat=seat,
                observation=vectors[seat],
                action_mask=self._mask[seat],
                action_names=self._action_names[agent],
                round=self.round,
                talking=talking,
                inbox=self._inboxes[agent],
                last_actions=self._last_actions,
                last_rewards=self._last_rewards,
                summary=summary,
                rules=self.game.rules_text(seat) if text else "",
                situation=self.game.situation_text(self._game_state, 0, seat) if text else "",
                persona=self._personas[agent],
                message_limit=self.max_length if self.comms_mode != "off" else 0,
            )
        return out

    @property
    def last_actions(self) -> dict[str, int] | None:
        """Every agent's executed (legal) action in the last action step."""
        return self._last_actions

    def action_name(self, agent: str, action: int) -> str:
        return self._action_names[agent][action]

    def summary(self) -> dict[str, Any]:
        """The game's summary of the current state (e.g. the resource stock)."""
        return self.game.summary(self._game_state, 0)

    def cooperation(self, actions: Mapping[str, int]) -> dict[str, float] | None:
        """How cooperative the given actions are in the current state (None if undefined)."""
        joint = np.array([[actions[a] for a in self.possible_agents]], dtype=np.int64)
        values = self.game.cooperation(self._game_state, joint)
        if values is None:
            return None
        return {a: float(values[0, i]) for i, a in enumerate(self.possible_agents)}

    def state(self) -> np.ndarray:
        return self.game.global_state(self._game_state)[0]

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        lines = [f"episode {self.episode} round {self.round} step {self.steps}{' (talk)' if self.talking else ''}"]
        if self._last_actions is not None:
            for agent, action in self._last_actions.items():
                reward = self._last_rewards[agent] if self._last_rewards else 0.0
                lines.append(f"  {agent}: {self._action_names[agent][action]} -> {reward:g}")
        for message in self.message_log[-len(self.possible_agents) * 2:]:
            if message.step == self.steps - 1 and message.delivered:
                lines.append(f"  {message.sender} -> {message.recipient}: {message.text}")
        return "\n".join(lines)

    def close(self) -> None:
        pass


def make_env(scenario: Scenario | str, seed: int | None = None, render_mode: str | None = None) -> MasParallelEnv:
    """A PettingZoo ParallelEnv for a scenario (object, file path or built-in name).

    Args:
        scenario: a `Scenario`, a path to a YAML file, or a built-in scenario name.
        seed: if given, the env is reset with it once, so it is ready to step.
        render_mode: None, "human" (print each step) or "ansi" (`render()` returns text).
    """
    from mas.scenario import load_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    env = MasParallelEnv(scenario, render_mode=render_mode)
    if seed is not None:
        env.reset(seed=seed)
    return env


def make_aec_env(scenario: Scenario | str, render_mode: str | None = None) -> Any:
    """The AEC view of `make_env`, through PettingZoo's own converter."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(make_env(scenario, render_mode=render_mode))
