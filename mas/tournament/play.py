"""Playing matches: the base scenario with the match's entrants, through the runner.

A match is one episode of `mas.runner.play_episode` with the match's seed, so it is the
same interaction loop as `mas run` and the result depends on nothing but the tournament
file and the match. Tournaments of scripted entrants play many matches at once as the
copies of one engine, with identical results (`play_many`, `mas.tournament.batch`). The result is a small picklable value that worker processes send
back to the one process that writes the store.

Per-round actions are kept compactly as one string per seat (`ActionCodec`): the action
names themselves when every name is one character (the prisoner's dilemma's "CDDC..."),
else the indices written in base 62.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mas.comms import Message
from mas.episode import EpisodeEngine
from mas.records import DecisionRecord
from mas.runner import play_episode
from mas.tournament.batch import MAX_COPIES, batchable, play_batch
from mas.tournament.schedule import Match
from mas.tournament.spec import Tournament

ACTION_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class MatchResult:
    """What one match produced, by seat.

    Attributes:
        match, repetition, seats, seed: as scheduled (`seats` are roster indices).
        rounds, steps, terminated, truncated: how the episode went.
        scores: total payoff of each seat.
        cooperation: each seat's mean cooperation (None where the game defines none).
        illegal: how many illegal actions each seat tried (replaced by a legal one).
        actions: each seat's actions, encoded by `ActionCodec`.
        messages: every message of the match (episode 0).
        decisions: the records of policies that keep them (LLM agents).
    """

    match: int
    repetition: int
    seats: tuple[int, ...]
    seed: int
    rounds: int
    steps: int
    terminated: bool
    truncated: bool
    scores: tuple[float, ...]
    cooperation: tuple[float | None, ...]
    illegal: tuple[int, ...]
    actions: tuple[str, ...]
    messages: tuple[Message, ...] = ()
    decisions: tuple[DecisionRecord, ...] = ()


@dataclass(frozen=True)
class ActionCodec:
    """Writes a seat's actions as a short string: one character per round when every seat
    has the same one-character action names (the names themselves), else fixed-width
    base-62 digits of the action indices."""

    names: str | None  # the one-character names, or None for base-62 digits
    width: int = 1

    @classmethod
    def for_game(cls, names_by_seat: list[list[str]]) -> "ActionCodec":
        first = names_by_seat[0]
        same = all(names == first for names in names_by_seat)
        if same and all(len(n) == 1 for n in first) and len(set(first)) == len(first):
            return cls("".join(first))
        width = 1
        while len(ACTION_ALPHABET) ** width < len(first):
            width += 1
        return cls(None, width)

    def encode(self, actions: list[int]) -> str:
        if self.names is not None:
            return "".join(self.names[a] for a in actions)
        return "".join(_base62(a, self.width) for a in actions)

    def encode_array(self, actions: np.ndarray) -> str:
        """`encode` of an integer array (one table lookup for one-character names)."""
        if self.names is not None and self.names.isascii():
            return np.frombuffer(self.names.encode("ascii"), dtype=np.uint8)[actions].tobytes().decode("ascii")
        return self.encode([int(a) for a in actions])

    def decode(self, text: str) -> list[int]:
        if self.names is not None:
            return [self.names.index(c) for c in text]
        out = []
        for start in range(0, len(text), self.width):
            value = 0
            for char in text[start : start + self.width]:
                value = value * len(ACTION_ALPHABET) + ACTION_ALPHABET.index(char)
            out.append(value)
        return out


def _base62(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, digit = divmod(value, len(ACTION_ALPHABET))
        digits.append(ACTION_ALPHABET[digit])
    return "".join(reversed(digits))


class MatchPlayer:
    """Plays matches of one tournament; built once per worker process."""

    def __init__(self, tournament: Tournament) -> None:
        self.tournament = tournament
        probe = EpisodeEngine(tournament.match_scenario(tuple(range(tournament.group_size))))
        self.action_names = [list(names) for names in probe.info.action_names]
        self.codec = ActionCodec.for_game(self.action_names)
        self.batchable = batchable(tournament)

    def play_many(self, matches: Sequence[Match]) -> list[MatchResult]:
        """Play `matches`: as copies of one engine when every entrant is scripted
        (`mas.tournament.batch`: the same results, much faster), else one by one."""
        if not self.batchable:
            return [self.play(m) for m in matches]
        out = []
        for start in range(0, len(matches), MAX_COPIES):
            out.extend(play_batch(self, matches[start : start + MAX_COPIES]))
        return out

    def play(self, match: Match) -> MatchResult:
        """Play one scheduled match and return its result."""
        scenario = self.tournament.match_scenario(match.seats)
        record = play_episode(EpisodeEngine(scenario), 0, match.seed)
        seat_ids = scenario.agent_ids
        actions: dict[str, list[int]] = {a: [] for a in seat_ids}
        illegal = dict.fromkeys(seat_ids, 0)
        for step in record.step_records:
            actions[step.agent].append(step.action)
            illegal[step.agent] += int(step.illegal)
        return MatchResult(
            match=match.index,
            repetition=match.repetition,
            seats=match.seats,
            seed=match.seed,
            rounds=record.rounds,
            steps=record.steps,
            terminated=record.terminated,
            truncated=record.truncated,
            scores=tuple(float(record.returns[a]) for a in seat_ids),
            cooperation=tuple(record.cooperation[a] for a in seat_ids),
            illegal=tuple(illegal[a] for a in seat_ids),
            actions=tuple(self.codec.encode(actions[a]) for a in seat_ids),
            messages=record.messages,
            decisions=record.decisions,
        )
