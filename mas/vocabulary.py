"""The learners' message channel: a scenario's vocabulary as discrete tokens.

RL learners talk and listen through the same communication graph as every other agent,
with a small action and observation encoding (`comms.vocabulary` in the scenario):

- **Saying**: a learner's action space is its game actions followed by `1 + V` message
  tokens: silence, then each word of the vocabulary. In a talk step only message tokens
  are legal, in an action step only game actions (the mask says so), so one policy
  learns both what to say and what to do. The word travels as text: scripted and LLM
  agents read it like any message, and it is stored and shown in transcripts.
- **Hearing**: a learner observes its game observation, a talking flag, and for each
  other agent (in seat order) a one-hot of the vocabulary word it heard from that agent in
  the last step (zeros: nothing, or a message that is no word of the vocabulary).

The same encoding serves training (`mas.vector`), trained agents playing from a checkpoint,
and the PettingZoo env's `heard` observation.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mas.comms import Message
    from mas.scenario import Scenario


@dataclass(frozen=True)
class LearnerChannel:
    """Tokens and inbox encoding of one scenario's vocabulary (see the module docstring)."""

    vocabulary: tuple[str, ...]
    agent_ids: tuple[str, ...]
    num_game_actions: int

    @classmethod
    def from_scenario(cls, scenario: "Scenario", num_game_actions: int) -> "LearnerChannel | None":
        """The channel of a scenario whose agents talk and that declares a vocabulary, else None."""
        comms = scenario.comms
        if comms.mode == "off" or comms.talk_rounds == 0 or not comms.vocabulary:
            return None
        return cls(tuple(comms.vocabulary), tuple(scenario.agent_ids), int(num_game_actions))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "LearnerChannel | None":
        if not data:
            return None
        return cls(tuple(data["vocabulary"]), tuple(data["agent_ids"]), int(data["num_game_actions"]))

    def to_dict(self) -> dict[str, Any]:
        return {"vocabulary": list(self.vocabulary), "agent_ids": list(self.agent_ids), "num_game_actions": self.num_game_actions}

    # ----- sizes ---------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.vocabulary)

    @property
    def num_actions(self) -> int:
        """Game actions, silence, then one token per word."""
        return self.num_game_actions + 1 + self.size

    @property
    def extra_obs(self) -> int:
        """Talking flag plus one one-hot block per other agent."""
        return 1 + (len(self.agent_ids) - 1) * self.size

    # ----- saying -----------------------------------------------------------------------
    def word(self, action: int) -> str:
        """The text an action index says ("" for silence and for game actions)."""
        k = int(action) - self.num_game_actions - 1
        return self.vocabulary[k] if 0 <= k < self.size else ""

    def token(self, text: str) -> int | None:
        """The vocabulary index of a message's text (case and surrounding space ignored)."""
        wanted = text.strip().lower()
        for k, word in enumerate(self.vocabulary):
            if word.lower() == wanted:
                return k
        return None

    def mask(self, game_mask: np.ndarray, talking: bool) -> np.ndarray:
        """The full mask [..., num_actions] from the game's mask [..., A]."""
        shape = game_mask.shape[:-1]
        words = np.full(shape + (1 + self.size,), talking, dtype=bool)
        game = np.zeros_like(game_mask, dtype=bool) if talking else game_mask > 0
        return np.concatenate([game, words], axis=-1)

    # ----- hearing ------------------------------------------------------------------------
    def encode(self, agent: str, inbox: Sequence["Message"], talking: bool) -> np.ndarray:
        """The extra observation of `agent`: [talking, one-hot word per other agent]."""
        return self.encode_batch([{agent: tuple(inbox)}], [agent], talking)[0, 0]

    def encode_batch(self, inboxes: Sequence[Mapping[str, Sequence["Message"]]], agents: Sequence[str],
                     talking: bool) -> np.ndarray:
        """The extra observations [B, len(agents), extra_obs] of `agents` in each copy, from
        each copy's inboxes (agent -> messages); one pass over the messages, no per-agent arrays."""
        out = np.zeros((len(inboxes), len(agents), self.extra_obs), dtype=np.float32)
        out[:, :, 0] = float(talking)
        tokens, slots = self._lookups
        for copy, inbox in enumerate(inboxes):
            for i, agent in enumerate(agents):
                for message in inbox.get(agent, ()):
                    k = tokens.get(message.text.strip().lower())
                    slot = slots[agent].get(message.sender)
                    if k is None or slot is None:
                        continue
                    start = 1 + slot * self.size
                    out[copy, i, start : start + self.size] = 0.0  # the last word from a sender counts
                    out[copy, i, start + k] = 1.0
        return out

    @functools.cached_property
    def _lookups(self) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """word (lower case) -> index; agent -> (other agent -> its slot)."""
        tokens = {word.lower(): k for k, word in enumerate(self.vocabulary)}
        slots = {a: {o: i for i, o in enumerate(x for x in self.agent_ids if x != a)} for a in self.agent_ids}
        return tokens, slots
