"""The PettingZoo `ParallelEnv`: the episode engine's batch of one, every seat played from outside.

Each game round is `talk_rounds` talk-only steps (agents send messages; their discrete
actions are ignored) followed by one action step (messages and actions both count). With
communication off there are no talk steps and no messages.

Spaces (cached per agent):
- action: `Discrete(A)` with communication off; with it on, a `Dict` of
  `action: Discrete(A)` and `message: Text(max_length)`, whose `sample(mask)` also accepts
  the plain action mask PettingZoo's test helpers pass.
- observation: a `Dict` of `observation` (the game's numeric vector), `action_mask`
  (int8 legal actions) and, with communication on, `inbox` (the delivered messages as
  labelled text) and `talking` (1 in talk-only steps). When the scenario declares a
  `comms.vocabulary`, also `heard`: the learners' encoding of the inbox
  (`mas.vocabulary.LearnerChannel`: talking flag, then a one-hot word per other agent).

Token messages (`messages="tokens"`, for array-only trainers such as TorchRL or RLlib,
which reject `Text` spaces): a scenario with a vocabulary can expose messages as token
ids instead. The action is `MultiDiscrete([A, 1 + V])`: a game action and a token
(0 silence, k the k-th word). The observation and the infos drop `inbox`; its `action_mask` is the
flat `[A + 1 + V]` concatenation of both parts' masks. In talk steps every token is
legal and the game action is ignored (its part keeps the game's mask, so that every part
has a legal value, as TorchRL's samplers need); in action steps the token must be silence.

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

from mas.agents.base import AgentView
from mas.comms import CHARSET, Message, inbox_capacity, one_line, render_inbox
from mas.episode import EpisodeEngine
from mas.errors import ScenarioError
from mas.scenario import Scenario
from mas.vocabulary import LearnerChannel

#: how messages travel in the env's spaces (see the module docstring)
MESSAGE_FORMS = ("text", "tokens")


class MessageActionSpace(spaces.Dict):
    """`Dict(action=Discrete, message=Text)` whose `sample` also takes a plain action mask."""

    def sample(self, mask: Any = None, probability: Any = None) -> dict[str, Any]:  # type: ignore[override]
        if mask is not None and not isinstance(mask, dict):
            mask = {"action": np.asarray(mask, dtype=np.int8), "message": None}
        return super().sample(mask=mask, probability=probability)


class TokenActionSpace(spaces.MultiDiscrete):
    """`MultiDiscrete([A, 1 + V])` whose `sample` also takes the flat `[A + 1 + V]` mask."""

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:  # type: ignore[override]
        if mask is not None and not isinstance(mask, tuple):
            flat = np.asarray(mask, dtype=np.int8)
            mask = (flat[: self.nvec[0]], flat[self.nvec[0]:])
        return super().sample(mask=mask, probability=probability)


class MasParallelEnv(ParallelEnv):
    """A scenario's game and communication graph as a PettingZoo parallel environment."""

    metadata = {"name": "mas_v0", "render_modes": ["human", "ansi", "rgb_array"], "is_parallelizable": True}

    def __init__(self, scenario: Scenario, render_mode: str | None = None, messages: str = "text") -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        if messages not in MESSAGE_FORMS:
            raise ValueError(f"messages must be one of {MESSAGE_FORMS}, got {messages!r}")
        self.scenario = scenario
        self.render_mode = render_mode
        self.possible_agents = scenario.agent_ids
        self.agents: list[str] = []
        # a batch of one whose every seat is played from outside: the caller's policies
        self.engine = EpisodeEngine(scenario, batch_size=1, external=self.possible_agents, measure_cooperation=False)
        self.game = self.engine.game
        self.graph = self.engine.graph
        self.comms_mode = scenario.comms.mode
        self.talk_rounds = self.engine.talk_rounds
        self.max_length = scenario.comms.max_length
        self._action_names = dict(zip(self.possible_agents, self.engine.info.action_names))
        self.channel = LearnerChannel.from_scenario(scenario, self.game.num_actions)
        if messages == "tokens" and self.channel is None:
            raise ScenarioError(f"messages='tokens' needs a scenario whose agents talk (comms on, talk_rounds >= 1) "
                                f"over a comms.vocabulary; '{scenario.name}' has none")
        self.messages = messages
        self._num_actions = self.game.num_actions
        self._going = dict.fromkeys(self.possible_agents, False)  # nobody's episode ended
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
            if self.channel is not None:
                obs["heard"] = spaces.Box(0.0, 1.0, shape=(self.channel.extra_obs,), dtype=np.float32)
            if self.comms_mode == "off":
                self._action_spaces[agent] = spaces.Discrete(num_actions)
            elif self.messages == "tokens":
                self._action_spaces[agent] = TokenActionSpace([num_actions, 1 + self.channel.size])
                obs["action_mask"] = spaces.Box(0, 1, shape=(self.channel.num_actions,), dtype=np.int8)
                obs["talking"] = spaces.Discrete(2)
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
        self.engine.reset(self._rng, episodes=[self.episode])
        self._last_illegal: dict[str, bool] = dict.fromkeys(self.possible_agents, False)
        self.message_log = []
        return self._observations(), self._infos()

    @property
    def round(self) -> int:
        """Index of the current game round (action steps taken)."""
        return int(self.engine.rounds[0])

    @property
    def steps(self) -> int:
        """Steps taken in this episode (talk and action steps)."""
        return int(self.engine.steps[0])

    @property
    def talking(self) -> bool:
        """True when the next step is a talk-only step."""
        return self.engine.talking

    def _split(self, actions: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, str]]:
        chosen = np.full(len(self.possible_agents), -1, dtype=np.int64)
        said: dict[str, str] = {}
        for i, agent in enumerate(self.possible_agents):
            value = actions.get(agent)
            if self.messages == "tokens" and value is not None:
                value, said[agent] = self._token_action(value)
            if isinstance(value, Mapping):
                said[agent] = str(value.get("message") or "")
                value = value.get("action")
            if value is not None:
                try:
                    chosen[i] = int(value)
                except (TypeError, ValueError, OverflowError):
                    chosen[i] = -1
        return chosen, said

    def _token_action(self, value: Any) -> tuple[Any, str]:
        """(game action, said text) of a `[action, token]` pair; a word is said only in talk
        steps (the mask allows none in action steps), anything malformed is illegal and silent."""
        pair = np.asarray(value).reshape(-1)
        if pair.shape != (2,) or not np.issubdtype(pair.dtype, np.integer):
            return None, ""
        word = self.channel.word(self.game.num_actions + int(pair[1])) if self.talking else ""
        return int(pair[0]), word

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        if self.comms_mode == "off":  # the common case: plain numbers, no words, no arrays
            agents, num_actions = self.possible_agents, self._num_actions
            row = [v if type(v) is int and 0 <= v < num_actions else _as_action(v) for v in map(actions.get, agents)]
            rewards, illegal, terminated, truncated, round = self.engine.step_one(row)
            observations = self._observations()
            # `_infos` without the detour (`_last_illegal` serves only it, after talk steps)
            if True in illegal:
                infos = {agent: {"round": round, "talking": False, "illegal_action": flag, "inbox": ()}
                         for agent, flag in zip(agents, illegal)}
            else:
                info = {"round": round, "talking": False, "illegal_action": False, "inbox": ()}
                infos = {agent: info.copy() for agent in agents}
            if terminated or truncated:
                terms, truncs = dict.fromkeys(agents, terminated), dict.fromkeys(agents, truncated)
                self.agents = []
            else:  # every agent plays until the end: copies of one all-False dict
                terms, truncs = self._going.copy(), self._going.copy()
            if self.render_mode == "human":
                print(self.render())
            return observations, rewards, terms, truncs, infos
        chosen, said = self._split(actions)
        moved = self.engine.step(chosen[None, :], [said] if self.comms_mode != "off" else None)
        self.message_log.extend(moved.messages[0])
        rewards = dict(zip(self.possible_agents, moved.total_rewards[0].tolist()))  # with any reward-model component
        if moved.talking:
            self._last_illegal = dict.fromkeys(self.possible_agents, False)
        else:
            self._last_illegal = dict(zip(self.possible_agents, moved.illegal[0].tolist()))
        terminated, truncated = bool(moved.terminated[0]), bool(moved.truncated[0])
        observations, infos = self._observations(), self._infos()
        terms = dict.fromkeys(self.agents, terminated)
        truncs = dict.fromkeys(self.agents, truncated)
        if terminated or truncated:
            self.agents = []
        if self.render_mode == "human":
            print(self.render())
        return observations, rewards, terms, truncs, infos

    # ----- what agents see -----------------------------------------------------------
    def _observations(self) -> dict[str, dict[str, Any]]:
        engine = self.engine
        # copies: the engine's arrays are read-only and shared while a state repeats, and users
        # keep (and may change) what they are given
        if self.comms_mode == "off":
            return {agent: {"observation": v.copy(), "action_mask": m.copy()}
                    for agent, (v, m) in zip(self.possible_agents, engine.seat_rows)}
        vectors = engine.observations[0].copy()
        mask = engine.mask[0].copy()
        talking = int(self.talking)
        out = {}
        for i, agent in enumerate(self.possible_agents):
            obs: dict[str, Any] = {"observation": vectors[i], "action_mask": mask[i]}
            inbox = engine.inboxes[0][agent] if self.comms_mode != "off" else ()
            if self.channel is not None:
                obs["heard"] = self.channel.encode(agent, inbox, bool(talking))
            if self.messages == "tokens":
                words = np.full(1 + self.channel.size, talking, dtype=np.int8)  # talk: every token
                words[0] = 1  # silence is always legal (the only legal token in action steps)
                obs["action_mask"] = np.concatenate([mask[i].astype(np.int8), words])
                obs["talking"] = talking
            elif self.comms_mode != "off":
                obs["inbox"] = render_inbox(inbox)
                obs["talking"] = talking
            out[agent] = obs
        return out

    def _infos(self) -> dict[str, dict[str, Any]]:
        base = {"round": self.round, "talking": self.talking}
        inboxes = self.engine.inboxes[0]
        # token mode: numbers only (TorchRL makes a tensor of every info value)
        return {
            agent: {**base, "illegal_action": self._last_illegal[agent],
                    **({"inbox": inboxes[agent]} if self.messages == "text" else {})}
            for agent in self.possible_agents
        }

    def views(self, agents: list[str] | None = None, text: bool = False) -> dict[str, AgentView]:
        """What each agent may know now, as plain data for policies (text only when asked)."""
        chosen = agents if agents is not None else self.agents
        seats = [self.possible_agents.index(a) for a in chosen]
        return {view.agent: view for view in self.engine.views(0, seats, text=text)}

    @property
    def last_actions(self) -> dict[str, int] | None:
        """Every agent's executed (legal) action in the last action step."""
        if not self.engine.played[0]:
            return None
        return dict(zip(self.possible_agents, self.engine.last_actions[0].tolist()))

    def action_name(self, agent: str, action: int) -> str:
        return self._action_names[agent][action]

    def summary(self) -> dict[str, Any]:
        """The game's full summary of the current state (e.g. the resource stock); it may
        hold private information, so it is for analysis, not for agents."""
        return self.game.summary(self.engine.state, 0)

    def cooperation(self, actions: Mapping[str, int]) -> dict[str, float] | None:
        """How cooperative the given actions are in the current state (None if undefined)."""
        joint = np.array([[actions[a] for a in self.possible_agents]], dtype=np.int64)
        values = self.game.cooperation(self.engine.state, joint)
        if values is None:
            return None
        return {a: float(values[0, i]) for i, a in enumerate(self.possible_agents)}

    def state(self) -> np.ndarray:
        return self.game.global_state(self.engine.state)[0]

    def render(self) -> Any:
        if self.render_mode is None:
            return None
        if self.render_mode == "rgb_array":  # the game's picture (None for games without one)
            return self.game.rgb_array(self.engine.state, 0)
        lines = [f"episode {self.episode} round {self.round} step {self.steps}{' (talk)' if self.talking else ''}"]
        last = self.last_actions
        if last is not None:
            rewards = self.engine.last_rewards[0]
            for seat, (agent, action) in enumerate(last.items()):
                lines.append(f"  {agent}: {self._action_names[agent][action]} -> {float(rewards[seat]):g}")
        for message in self.message_log[-len(self.possible_agents) * 2:]:
            if message.step == self.steps - 1 and message.delivered:
                lines.append(f"  {message.sender} -> {message.recipient}: {one_line(message.text, {})}")
        return "\n".join(lines)

    def close(self) -> None:
        pass


def _as_action(value: Any) -> int:
    """The discrete action in an agent's entry (a number, or a dict's "action"); -1
    (illegal) when there is none or it is not an int64 number."""
    if isinstance(value, Mapping):
        value = value.get("action")
    if value is None:
        return -1
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return -1
    return number if -2**63 <= number < 2**63 else -1


def make_env(
    scenario: Scenario | str, seed: int | None = None, render_mode: str | None = None, messages: str = "text",
) -> MasParallelEnv:
    """A PettingZoo ParallelEnv for a scenario (object, file path or built-in name).

    Args:
        scenario: a `Scenario`, a path to a YAML file, or a built-in scenario name.
        seed: if given, the env is reset with it once, so it is ready to step.
        render_mode: None, "human" (print each step), "ansi" (`render()` returns text) or "rgb_array"
            (`render()` returns the game's picture, a uint8 [H, W, 3] array; grid worlds draw one).
        messages: "text" (a `Text` message space) or "tokens" (token ids over the
            scenario's `comms.vocabulary`; see the module docstring).
    """
    from mas.scenario import load_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    env = MasParallelEnv(scenario, render_mode=render_mode, messages=messages)
    if seed is not None:
        env.reset(seed=seed)
    return env


def make_aec_env(scenario: Scenario | str, render_mode: str | None = None, messages: str = "text") -> Any:
    """The AEC view of `make_env`, through PettingZoo's own converter."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(make_env(scenario, render_mode=render_mode, messages=messages))
