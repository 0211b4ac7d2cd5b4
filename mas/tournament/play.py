"""Playing matches: the base scenario with the match's entrants, through the runner.

A match is one episode of `mas.runner.play_episode` with the match's seed, so it is the
same interaction loop as `mas run` and the result depends on nothing but the tournament
file and the match. Tournaments of scripted and LLM entrants play many matches at once as
the copies of one engine, with the same actions and scores (`play_many`,
`mas.tournament.batch`).

A chunk of matches comes back as one `MatchBatch`: a column (array) per field rather than
a `MatchResult` object per match, so what worker processes send back to the one process
that writes the store costs little to pickle and to read (measured on 3,883 matches:
2 MB of `MatchResult`s took 10 ms to pickle and 12 ms to unpickle, the columns about 1 ms
each). Iterating a `MatchBatch` gives its matches' `MatchResult`s.

Per-round actions are kept compactly as one string per seat (`ActionCodec`): the action
names themselves when every name is one character (the prisoner's dilemma's "CDDC..."),
else the indices written in base 62.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mas.comms import Message
from mas.episode import EpisodeEngine
from mas.records import DecisionRecord
from mas.runner import play_episode
from mas.tournament.batch import batchable, max_copies, play_batch
from mas.tournament.schedule import Match, Schedule
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


@dataclass(frozen=True, eq=False)
class MatchBatch:
    """The results of a chunk of matches, one column per field of `MatchResult`: row `i` is
    the chunk's `i`-th match, and [n, seats] columns are by seat.

    Attributes:
        match, repetition, seed, rounds, steps: [n] integers; terminated, truncated: [n] bools.
        seats: [n, seats] roster indices; scores: [n, seats] total payoffs; cooperation:
            [n, seats] mean cooperation, NaN where the game defines none; illegal: [n, seats].
        actions: every seat's encoded actions, match by match (`n * seats` strings).
        messages, decisions: per match, or empty when no match has any.
    """

    match: np.ndarray
    repetition: np.ndarray
    seed: np.ndarray
    rounds: np.ndarray
    steps: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    seats: np.ndarray
    scores: np.ndarray
    cooperation: np.ndarray
    illegal: np.ndarray
    actions: tuple[str, ...]
    messages: tuple[tuple[Message, ...], ...] = ()
    decisions: tuple[tuple[DecisionRecord, ...], ...] = ()

    def __len__(self) -> int:
        return len(self.match)

    def seat_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(match, seat) of each flattened [n, seats] entry (the store's score rows)."""
        width = self.seats.shape[1]
        return np.repeat(self.match, width), np.tile(np.arange(width), len(self))

    def __iter__(self) -> Iterator[MatchResult]:
        width = self.seats.shape[1]
        columns = zip(self.match.tolist(), self.repetition.tolist(), self.seed.tolist(), self.rounds.tolist(),
                      self.steps.tolist(), self.terminated.tolist(), self.truncated.tolist(), self.seats.tolist(),
                      self.scores.tolist(), self.cooperation.tolist(), self.illegal.tolist())
        for i, (match, repetition, seed, rounds, steps, terminated, truncated, seats, scores, cooperation, illegal) in enumerate(columns):
            yield MatchResult(
                match=match, repetition=repetition, seats=tuple(seats), seed=seed, rounds=rounds, steps=steps,
                terminated=terminated, truncated=truncated, scores=tuple(scores),
                cooperation=tuple(None if c != c else c for c in cooperation), illegal=tuple(illegal),
                actions=self.actions[i * width : (i + 1) * width],
                messages=self.messages[i] if self.messages else (), decisions=self.decisions[i] if self.decisions else (),
            )

    @classmethod
    def of(cls, results: Sequence[MatchResult]) -> "MatchBatch":
        """The columns of `results` (matches of one tournament: the same number of seats)."""
        def column(field: str, dtype: type) -> np.ndarray:
            return np.array([getattr(r, field) for r in results], dtype=dtype)

        def by_seat(field: str, dtype: type) -> np.ndarray:
            values = [[np.nan if v is None else v for v in getattr(r, field)] for r in results]
            return np.array(values, dtype=dtype).reshape(len(results), len(values[0]) if values else 0)

        messages = tuple(r.messages for r in results)
        decisions = tuple(r.decisions for r in results)
        return cls(
            match=column("match", np.int64), repetition=column("repetition", np.int64), seed=column("seed", np.int64),
            rounds=column("rounds", np.int64), steps=column("steps", np.int64), terminated=column("terminated", bool),
            truncated=column("truncated", bool), seats=by_seat("seats", np.int64), scores=by_seat("scores", np.float64),
            cooperation=by_seat("cooperation", np.float64), illegal=by_seat("illegal", np.int64),
            actions=tuple(a for r in results for a in r.actions),
            messages=messages if any(messages) else (), decisions=decisions if any(decisions) else (),
        )


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

    def encode_copies(self, actions: np.ndarray, rounds: np.ndarray) -> list[str]:
        """`encode_array` of every copy's and seat's actions in [rounds, copies, seats]
        `actions` (copy `c` played `rounds[c]` of them), copy by copy: for one-character
        ASCII names, one table lookup and one decode for all of them."""
        max_rounds, copies, seats = actions.shape
        lengths = np.repeat(np.asarray(rounds, dtype=np.int64), seats).tolist()
        if self.names is None or not self.names.isascii():
            rows = actions.transpose(1, 2, 0).reshape(copies * seats, max_rounds)
            return [self.encode_array(row[:length]) for row, length in zip(rows, lengths)]
        table = np.frombuffer(self.names.encode("ascii"), dtype=np.uint8)
        text = table[actions.transpose(1, 2, 0)].tobytes().decode("ascii")  # row i: copy i // seats, seat i % seats
        return [text[i * max_rounds : i * max_rounds + length] for i, length in enumerate(lengths)]

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

    def play_many(self, matches: Schedule | Sequence[Match]) -> MatchBatch:
        """Play `matches`: as copies of one engine when every entrant plays in batches
        (scripted and LLM policies, `mas.tournament.batch`: the same results, much
        faster), else one by one."""
        if not self.batchable:
            return MatchBatch.of([self.play(m) for m in matches])
        matches, most = Schedule.of(matches), max_copies(self.tournament)
        parts = [play_batch(self, matches[start : start + most]) for start in range(0, len(matches), most)]
        return parts[0] if len(parts) == 1 else MatchBatch.of([r for part in parts for r in part])  # none, or past max_copies

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
