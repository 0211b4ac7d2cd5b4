"""What `mas run` shows while it plays: each round's talk and actions, and its progress.

Everything goes to stderr (stdout keeps the result, `--json` included) in one of three forms:
- on a terminal: the **feed**, round by round what each agent said and did, printed above
  a progress bar that advances per round (not per episode);
- without a terminal (CI logs, `nohup`, pipes): a **progress line** every `LINE_EVERY`
  of the work or every `LINE_SECONDS` seconds, whichever comes first; `--feed` adds the
  round-by-round feed there too;
- `--no-progress`: nothing.

The feed reads the runner's per-step events (`mas.runner.StepEvent`); it keeps no loop of
its own. A message an agent repeats within a round (scripted agents say their line in
the talk step and again with their action) is shown once. It stops after `FEED_ROUNDS` rounds (the store keeps everything; `mas transcript`
and `mas report` show the rest) and names at most `FEED_AGENTS` agents per line, so a
long run or a crowd does not flood the terminal. Agents' messages are untrusted text:
they are printed as plain text (never as console markup), on one line each.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from mas.records import EpisodeRecord
from mas.runner import StepEvent
from mas.scenario import Scenario

#: the feed prints at most this many rounds in all (then a note says where the rest is)
FEED_ROUNDS = 30
#: at most this many agents are named per feed line
FEED_AGENTS = 8
#: without a terminal, a progress line after this fraction of the work ...
LINE_EVERY = 0.1
#: ... or after this many seconds, whichever comes first
LINE_SECONDS = 30.0


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class RunProgress:
    """Live output of one `mas run` (see the module docstring); a context manager whose
    `on_step` and `on_episode` are the runner's callbacks.

    Args:
        scenario: the scenario being played.
        episodes: episodes of the run (stored ones of a resumed run included).
        enabled: False for `--no-progress`: nothing is printed.
        feed: the round-by-round feed: None on a terminal only, True also without one, False never.
        console: where to print (default: stderr).
    """

    def __init__(self, scenario: Scenario, episodes: int, *, enabled: bool = True, feed: bool | None = None,
                 console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.scenario = scenario
        self.episodes = episodes
        terminal = self.console.is_terminal
        self.show_feed = enabled and (terminal if feed is None else feed)
        self.show_bar = enabled and terminal
        self.show_lines = enabled and not terminal
        fixed = isinstance(scenario.rounds, int)
        # continuation rounds: the expected length stands in for the unknown one
        expected = scenario.rounds if fixed else min(scenario.rounds.max, max(1, round(1 / (1 - scenario.rounds.continuation))))
        self.rounds_per_episode = int(expected)
        self.rounds_known = fixed
        self.total = episodes * self.rounds_per_episode
        self.episodes_done = 0
        self.round_in_episode = 0
        self.episode_now = -1
        self.fed_rounds = 0
        self.feed_round: tuple[int, int] | None = None
        self.said_this_round: set[tuple[str, str]] = set()
        self.started = time.monotonic()
        self.last_line = (0.0, self.started)
        self.progress = Progress(
            TextColumn(f"[bold]{scenario.name}"), BarColumn(), TextColumn("{task.fields[where]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, disable=not self.show_bar,
        )
        self.task = self.progress.add_task("run", total=self.total, where="")

    # ----- context --------------------------------------------------------------------
    def __enter__(self) -> "RunProgress":
        self.progress.start()
        if self.show_lines:  # a log shows at once that the run started (models may take a while to load)
            rounds = f"{self.rounds_per_episode} rounds" if self.rounds_known else "random-length rounds"
            self._line(f"playing {self.episodes} episode(s) of {rounds}; a progress line every "
                       f"{LINE_EVERY:.0%} or {LINE_SECONDS:.0f} s" + ("" if self.show_feed else " (--feed shows what the agents say)"))
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()
        if self.show_lines and exc[0] is None:
            self._line(f"done: {self.episodes_done} of {self.episodes} episodes in {_clock(time.monotonic() - self.started)}")

    # ----- callbacks ------------------------------------------------------------------
    def on_step(self, event: StepEvent) -> None:
        """One engine step: feed it, and advance the progress after an action step."""
        if event.episode != self.episode_now:
            self.episode_now, self.round_in_episode = event.episode, 0
        if self.show_feed:
            self._feed(event)
        if not event.talking:
            self.round_in_episode = event.round + 1
            self._advance()

    def on_episode(self, record: EpisodeRecord) -> None:
        """An episode finished (or was found stored when resuming)."""
        self.episodes_done += 1
        self.round_in_episode = 0
        self.episode_now = -1
        self._advance()

    # ----- progress -------------------------------------------------------------------
    def _done(self) -> int:
        return self.episodes_done * self.rounds_per_episode + min(self.round_in_episode, self.rounds_per_episode - (not self.rounds_known))

    def _where(self) -> str:
        if not self.round_in_episode:
            return f"{self.episodes_done}/{self.episodes} episodes done"
        episode = min(self.episodes_done + 1, self.episodes)
        rounds = f"/{self.rounds_per_episode}" if self.rounds_known else ""
        return f"episode {episode}/{self.episodes}, round {self.round_in_episode}{rounds}"

    def _advance(self) -> None:
        done = self._done()
        self.progress.update(self.task, completed=done, where=self._where())
        if not self.show_lines or not self.total:
            return
        fraction = done / self.total
        now = time.monotonic()
        last_fraction, last_time = self.last_line
        if fraction - last_fraction >= LINE_EVERY - 1e-9 or now - last_time >= LINE_SECONDS:
            self.last_line = (fraction, now)
            elapsed = now - self.started
            left = f", about {_clock(elapsed / fraction - elapsed)} left" if 0 < fraction < 1 else ""
            self._line(f"{self._where()} ({fraction:.0%}), {_clock(elapsed)} elapsed{left}")

    def _line(self, text: str) -> None:
        self.console.print(Text(f"{self.scenario.name}: {text}"))

    # ----- the feed -------------------------------------------------------------------
    def _feed(self, event: StepEvent) -> None:
        key = (event.episode, event.round)
        if key != self.feed_round:
            self.feed_round = key
            self.said_this_round = set()
            self.fed_rounds += 1
            if self.fed_rounds == FEED_ROUNDS + 1:
                self.console.print(Text(f"(the feed stops after {FEED_ROUNDS} rounds; the run goes on and stores every round)",
                                        style="dim"))
            if self.fed_rounds > FEED_ROUNDS:
                return
            episode = f"episode {event.episode + 1}/{self.episodes}, " if self.episodes > 1 else ""
            rounds = f"/{self.rounds_per_episode}" if self.rounds_known else ""
            self.console.print(Text(f"{episode}round {event.round + 1}{rounds}", style="bold"))
        if self.fed_rounds > FEED_ROUNDS:
            return
        # a scripted agent says its line in the talk step and again with its action: shown once
        fresh = [m for m in event.transition.messages[0] if (m.sender, m.text) not in self.said_this_round]
        self.said_this_round.update((m.sender, m.text) for m in fresh)
        for line in said_lines(fresh, self.scenario.agent_ids):
            self.console.print(line)
        if event.records:
            self.console.print(acted_line(event.records))


def said_lines(messages: Sequence[Any], agent_ids: Sequence[str]) -> list[Text]:
    """One line per sender of this step: to whom and what (a broadcast reaching every
    other agent is "to all"; undelivered messages name the reason)."""
    by_sender: dict[str, list[Any]] = {}
    for message in messages:
        by_sender.setdefault(message.sender, []).append(message)
    lines = []
    senders = [a for a in agent_ids if a in by_sender]
    for sender in senders[:FEED_AGENTS]:
        sent = by_sender[sender]
        reached = [m.recipient for m in sent if m.delivered and m.recipient]
        others = len(agent_ids) - 1
        if not reached:
            to = f"nobody ({sent[0].reason})" if sent[0].reason else "nobody"
        elif len(reached) == others and others > 1:
            to = "all"
        else:
            to = ", ".join(reached)
        line = Text("  ")
        line.append(sender, style="bold cyan")
        line.append(f" → {to}: ", style="dim")
        line.append(_one_line(sent[0].text))
        lines.append(line)
    if len(senders) > FEED_AGENTS:
        lines.append(Text(f"  … and {len(senders) - FEED_AGENTS} more agents spoke", style="dim"))
    return lines


def acted_line(records: Sequence[Any]) -> Text:
    """What each agent did in an action step and what it earned."""
    line = Text("  ")
    for i, record in enumerate(records[:FEED_AGENTS]):
        if i:
            line.append("   ")
        line.append(record.agent, style="bold")
        line.append(f" {record.action_name}", style="yellow")
        line.append(f" ({record.reward:+.3g})" + (" illegal, replaced" if record.illegal else ""), style="dim")
    if len(records) > FEED_AGENTS:
        line.append(f"   … and {len(records) - FEED_AGENTS} more", style="dim")
    return line
