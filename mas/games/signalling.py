"""A referential signalling game (Lewis): a speaker names a hidden target with a word.

Seat 0 is the speaker; seats 1..N-1 are listeners. Every round has two steps.
- Signal step: a target is drawn uniformly from `targets` (with the rng given to
  reset/step) and only the speaker sees it. The speaker says one word of `vocabulary`
  (action 1+k = "say vocabulary[k]"); listeners can only wait.
- Pick step: the listeners hear the word (never the target) and each picks a target
  (action 1+k = "pick targets[k]"); the speaker can only wait. Then a new target is drawn.
The words mean nothing in advance: a shared language has to emerge or be agreed on.

Actions: WAIT=0, then 1+k; num_actions = 1 + max(len(targets), len(vocabulary)) and the
indices a role cannot use are masked out.
Observation (per agent): [pick-step flag, one-hot target (speaker only; zeros for
listeners), one-hot word said this round (zeros before a word was said; the speaker knows
what it said, which lets a learner that only sees its own observation, such as IQL, credit
its word with the reward of the pick step), is-speaker flag]. With `listeners_hear: false`
the listeners' word is always zeros: the ablation in which no language can form.
State (global): [pick-step flag, one-hot target, one-hot word said (zeros before one)].
Rewards: a team reward shared by every agent at the pick step, `reward` times the fraction
of listeners who picked the target; 0 at signal steps. The game never terminates itself.
Capabilities: sequential, roles (speaker, listeners), hidden information: the summary's
`target` is private to the speaker (a listener's view never holds it); success measure
(the fraction of listeners who picked the target, at pick steps). `constants` hold the
`targets`, the `vocabulary`, the `speaker` seat and `wait`. Analysis hooks: the episode
optimum is `reward` x N per pick step; run metrics are the signalling success and the
mutual information between target and signal (and the speaker's messages).
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from mas.games.base import MAX_ACTIONS, MAX_NAME, Capabilities, Game, GameConfigBase, Name, one_hot, State, StepResult

_ONSETS = ["bl", "gl", "fl", "sn", "tr", "kr", "zw", "pl"]
_VOWELS = ["i", "o", "u", "e", "a"]
_CODAS = ["p", "k", "m", "t"]


def default_vocabulary(n: int) -> list[str]:
    """`n` distinct made-up words ("blip", "blop", "blup", ...) that carry no meaning."""
    words = ["".join(parts) for parts in itertools.product(_CODAS, _ONSETS, _VOWELS)]
    words = [w[1:] + w[0] for w in words]  # onset + vowel + coda, vowels varying fastest
    out = words[:n]
    extra = itertools.count(2)
    while len(out) < n:
        suffix = next(extra)
        out.extend(f"{w}{suffix}" for w in words[: n - len(out)])
    return out


class SignallingConfig(GameConfigBase):
    """Scenario parameters of a referential signalling game."""

    kind: Literal["signalling"] = "signalling"
    targets: list[Name] = Field(
        default_factory=lambda: ["red", "green", "blue"], min_length=2, max_length=MAX_ACTIONS,
        description=f"Things the speaker can be asked to name (at most {MAX_ACTIONS}, each at most {MAX_NAME} characters).",
    )
    vocabulary: list[Name] | None = Field(
        None, max_length=MAX_ACTIONS, description="The speaker's words; default: as many made-up words as targets (blip, blop, ...)."
    )
    reward: float = Field(1.0, description="Team reward when every listener picks the target (scaled by the fraction who do).")
    listeners_hear: bool = Field(True, description="Whether the listeners' observation holds the word said; false: an ablation (they pick blind).")

    @model_validator(mode="after")
    def _check(self) -> "SignallingConfig":
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets must be distinct, got {self.targets}")
        if self.vocabulary is not None:
            if len(set(self.vocabulary)) != len(self.vocabulary):
                raise ValueError(f"vocabulary: words must be distinct, got {self.vocabulary}")
            if len(self.vocabulary) < len(self.targets):
                raise ValueError(
                    f"vocabulary: {len(self.vocabulary)} words cannot name {len(self.targets)} targets; give at least {len(self.targets)}"
                )
        return self

    def words(self) -> list[str]:
        """The speaker's vocabulary, with the default filled in."""
        return list(self.vocabulary) if self.vocabulary is not None else default_vocabulary(len(self.targets))


class SignallingGame(Game):
    """See the module docstring."""

    kind = "signalling"

    WAIT = 0
    SPEAKER = 0

    def __init__(self, config: SignallingConfig, n_agents: int) -> None:
        if int(n_agents) < 2:
            raise ValueError(f"n_agents: signalling needs a speaker and at least one listener, got {n_agents} agents")
        super().__init__(n_agents)
        self.config = config
        self.targets = list(config.targets)
        self.vocabulary = config.words()

    @property
    def num_actions(self) -> int:
        return 1 + max(len(self.targets), len(self.vocabulary))

    @property
    def obs_dim(self) -> int:
        return 1 + len(self.targets) + len(self.vocabulary) + 1

    @property
    def state_dim(self) -> int:
        return 1 + len(self.targets) + len(self.vocabulary)

    def action_names(self, agent: int) -> list[str]:
        if agent == self.SPEAKER:
            names = ["wait"] + [f"say {w}" for w in self.vocabulary]
        else:
            names = ["wait"] + [f"pick {t}" for t in self.targets]
        return names + [f"unused {i}" for i in range(len(names), self.num_actions)]

    # ----- dynamics -----------------------------------------------------------------
    def reset(self, batch_size: int, rng: np.random.Generator) -> State:
        return {
            "phase": np.zeros(batch_size, dtype=np.int64),  # 0 = signal step, 1 = pick step
            "target": rng.integers(0, len(self.targets), size=batch_size, dtype=np.int64),
            "signal": np.full(batch_size, -1, dtype=np.int64),  # word said this round, -1 if none yet
            "last_success": np.full(batch_size, np.nan, dtype=np.float32),  # fraction right last round
        }

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> StepResult:
        batch = actions.shape[0]
        phase, target = state["phase"], state["target"]
        picking = phase == 1
        # Signal step: record the speaker's word (-1 if it only waited).
        said = np.where(actions[:, self.SPEAKER] > 0, actions[:, self.SPEAKER] - 1, -1)
        # Pick step: the fraction of listeners whose pick is the target.
        success = ((actions[:, 1:] - 1) == target[:, None]).mean(axis=1).astype(np.float32)
        rewards = np.where(picking, np.float32(self.config.reward) * success, np.float32(0.0))
        rewards = np.repeat(rewards[:, None], self.n_agents, axis=1).astype(np.float32)
        fresh = rng.integers(0, len(self.targets), size=batch, dtype=np.int64)
        new_state = {
            "phase": 1 - phase,
            "target": np.where(picking, fresh, target),
            "signal": np.where(picking, -1, said),
            "last_success": np.where(picking, success, state["last_success"]).astype(np.float32),
        }
        return StepResult(new_state, rewards, np.zeros(batch, dtype=bool))

    def action_mask(self, state: State) -> np.ndarray:
        picking = state["phase"] == 1
        batch = picking.shape[0]
        mask = np.zeros((batch, self.n_agents, self.num_actions), dtype=np.int8)
        n_words, n_targets = len(self.vocabulary), len(self.targets)
        mask[:, self.SPEAKER, 0] = picking
        mask[:, self.SPEAKER, 1 : 1 + n_words] = ~picking[:, None]
        mask[:, 1:, 0] = ~picking[:, None]
        mask[:, 1:, 1 : 1 + n_targets] = picking[:, None, None]
        return mask

    # ----- observations -------------------------------------------------------------
    def observe(self, state: State) -> np.ndarray:
        batch = state["phase"].shape[0]
        n = self.n_agents
        is_speaker = (np.arange(n) == self.SPEAKER)[None, :, None]
        phase = np.broadcast_to(state["phase"].astype(np.float32)[:, None, None], (batch, n, 1))
        target = np.where(is_speaker, one_hot(state["target"], len(self.targets))[:, None, :], np.float32(0.0))
        word = one_hot(state["signal"], len(self.vocabulary))[:, None, :]
        heard = np.where(is_speaker | self.config.listeners_hear, word, np.float32(0.0))
        role = np.broadcast_to(is_speaker.astype(np.float32), (batch, n, 1))
        return np.concatenate([phase, target, heard, role], axis=-1).astype(np.float32)

    def global_state(self, state: State) -> np.ndarray:
        phase = state["phase"].astype(np.float32)[:, None]
        target = one_hot(state["target"], len(self.targets))
        word = one_hot(state["signal"], len(self.vocabulary))
        return np.concatenate([phase, target, word], axis=-1).astype(np.float32)

    # ----- meaning, for metrics and text ---------------------------------------------
    @functools.cached_property
    def capabilities(self) -> Capabilities:
        # the target is the speaker's alone: a listener's view never holds it
        return Capabilities(
            simultaneous=False,
            roles=("speaker",) + ("listener",) * (self.n_agents - 1),
            private={"target": frozenset({self.SPEAKER})},
            hidden_information=True,
            success_measure=True,
        )

    def constants(self) -> dict[str, Any]:
        return {"targets": tuple(self.targets), "vocabulary": tuple(self.vocabulary), "speaker": self.SPEAKER, "wait": self.WAIT}

    def success(self, state: State, rewards: np.ndarray) -> np.ndarray | None:
        # the team reward of a pick step is `reward` x the fraction of listeners who were right
        return np.where(state["phase"] == 1, rewards[:, 0] / self.config.reward, np.nan)

    def episode_optimum(self, run: Any) -> Any:
        if run.episodes.empty or not len(run.states):
            return None
        rounds = run.episodes.drop_duplicates("episode").set_index("episode")["rounds"]
        picks = run.states[run.states["phase"] == "signal"].groupby("episode").size()
        return picks.reindex(rounds.index).fillna(0) * self.config.reward * self.n_agents

    def run_metrics(self, run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        from mas.analysis import communication as comm
        from mas.analysis import game_metrics as gm
        from mas.analysis import metrics as m

        if not len(run.states):
            return {}, {}
        rounds = gm.signalling_rounds(run.states)
        overview: dict[str, Any] = {"signalling success": m.mean_ci(rounds.groupby("episode")["success"].mean().tolist())}
        spoken = rounds[rounds["signal"].notna()]
        overview["I(target; signal) bits"] = comm.mutual_information(spoken["target"].tolist(), spoken["signal"].tolist())
        overview["H(target) bits"] = comm.entropy(rounds["target"].tolist())
        agents = list(run.agents["agent"]) if len(run.agents) else []
        speaker = agents[self.SPEAKER] if agents else None
        sent = comm.sent_messages(run.messages)
        said = sent[sent["sender"] == speaker].set_index(["episode", "step"])["text"]
        if len(said):
            # the speaker's free-text message sent in the signal step, paired with that step's target
            frame = run.states[run.states["phase"] == "pick"]
            pairs = [(t, said.get((e, s))) for e, s, t in zip(frame["episode"], frame["step"], frame["target"])]
            pairs = [(t, text) for t, text in pairs if text is not None]
            if pairs:
                overview["I(target; message) bits"] = comm.mutual_information(*zip(*pairs))
        return overview, {"signalling rounds": rounds}

    def cooperation(self, state: State, actions: np.ndarray) -> np.ndarray | None:
        return None

    def summary(self, state: State, index: int) -> dict[str, Any]:
        signal = int(state["signal"][index])
        last = float(state["last_success"][index])
        return {
            "phase": "pick" if int(state["phase"][index]) == 1 else "signal",
            "target": self.targets[int(state["target"][index])],
            "signal": self.vocabulary[signal] if signal >= 0 else None,
            "last_success": None if np.isnan(last) else last,
        }

    def rules_text(self, agent: int) -> str:
        targets = ", ".join(self.targets)
        words = ", ".join(self.vocabulary)
        n_listeners = self.n_agents - 1
        listeners = "one listener" if n_listeners == 1 else f"{n_listeners} listeners"
        common = (
            f"This is a signalling game with one speaker (player 1) and {listeners}. Each round a target is drawn "
            f"at random from: {targets}. Only the speaker sees it. The speaker says one word from: {words}. "
            "The words have no agreed meaning at the start. The listeners hear the word (not the target) and each "
            f"picks a target. Everyone shares the reward: {self.config.reward:g} times the fraction of listeners who "
            "picked the right target."
        )
        if agent == self.SPEAKER:
            role = "You are the speaker: when you see the target, say the word that will make the listeners pick it. While the listeners pick, you wait."
        else:
            role = f"You are a listener (player {agent + 1}): while the speaker chooses a word you wait; then pick the target you think the word names."
        return f"{common}\n{role}"

    def situation_text(self, state: State, index: int, agent: int) -> str:
        picking = int(state["phase"][index]) == 1
        target = self.targets[int(state["target"][index])]
        signal = int(state["signal"][index])
        word = self.vocabulary[signal] if signal >= 0 else None
        last = float(state["last_success"][index])
        parts: list[str] = []
        if not np.isnan(last):
            parts.append(f"Last round {last:.0%} of the listeners picked the right target.")
        if agent == self.SPEAKER:
            if picking:
                said = f"you said '{word}'" if word else "you said nothing"
                parts.append(f"The target is {target}; {said}. The listeners are picking now; you wait.")
            else:
                parts.append(f"The target is {target}. Choose a word to say.")
        elif picking:
            if not self.config.listeners_hear:  # the word is not heard: only messages (if any) reach you
                heard = "You do not hear the speaker's word."
            else:
                heard = f"The speaker said '{word}'." if word else "The speaker said nothing."
            parts.append(f"{heard} Pick the target you think it names.")
        else:
            parts.append("The speaker is choosing a word; you wait.")
        return " ".join(parts)
