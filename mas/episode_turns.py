"""What the agents of the episode engine see, decide and say (`EpisodeEngine` turns).

Part of `mas.episode.EpisodeEngine` (a base class only to keep that module short, as
`mas.episode_memo` is): each agent's view of its copy (`views`: only what it may know),
the scenario policies' decisions, every copy's at once per policy class (`decide`), and
the words of a step, gathered (`_said`), delivered along the communication graph
(`_deliver`) and kept for the reward model's judge (`_remember_words`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mas.agents.base import AgentView, Decision
from mas.comms import Message, deliver


class AgentTurns:
    """The agents' side of `EpisodeEngine` (which holds every attribute used here)."""

    def views(self, copy: int, seats: Sequence[int] | None = None, text: bool | None = None) -> list[AgentView]:
        """What each of `seats` (default: all) may know in copy `copy` now.

        `text` renders the rules and situation in words (default: when a scenario policy
        reads text)."""
        text = self.needs_text if text is None else text
        obs = self.observations
        last_actions = last_rewards = None
        if self.played[copy]:
            last_actions = dict(zip(self.agent_ids, self.last_actions[copy].tolist()))
            last_rewards = dict(zip(self.agent_ids, self.last_rewards[copy].tolist()))
        talking = self.talking
        inbox = self.inboxes[copy]
        limit = self.max_length if self.comms_mode != "off" else 0
        summary = self.game.summary(self.state, copy)  # once per copy; each seat sees its part
        out = []
        for seat in range(self.n_agents) if seats is None else seats:
            agent = self.agent_ids[seat]
            out.append(AgentView(
                agent=agent, seat=seat, observation=obs[copy, seat], action_mask=self.mask[copy, seat],
                action_names=self.info.action_names[seat], round=int(self.rounds[copy]), talking=talking,
                inbox=inbox[agent], last_actions=last_actions, last_rewards=last_rewards,
                summary=self.game.visible(summary, seat),
                rules=self.info.rules[seat] if text else "",
                situation=self.game.situation_text(self.state, copy, seat) if text else "",
                persona=self._personas[copy][seat], message_limit=limit,
            ))
        return out

    def decide(self) -> list[Mapping[str, Decision]]:
        """The scenario policies' decisions for every active copy (empty for finished ones)."""
        if not self._per_copy:  # every seat is played from outside (the PettingZoo env) or batched
            return self._nothing
        out: list[dict[str, Decision]] = [{} for _ in range(self.batch_size)]
        live = [c for c in range(self.batch_size) if self.active[c] and self.groups[c]]
        if not live:
            return out
        by_seat = {c: {v.seat: v for v in self.views(c, self.internal_seats)} for c in live}
        # groups of the same policy class decide together, across seats and copies (copies
        # may hold different rosters, e.g. tournament matches): an LLM policy's `act_many`
        # then asks its model once a step for all of them
        buckets: dict[type, list[tuple[int, Any]]] = {}  # -> (copy, PolicyGroup)
        for c in live:
            for group in self.groups[c]:
                buckets.setdefault(type(group.policy), []).append((c, group))
        for cls, members in buckets.items():
            views = [[by_seat[c][s] for s in group.seats] for c, group in members]
            act_many = getattr(cls, "act_many", None)  # plugins may not subclass Policy
            answers = (act_many([group.policy for _, group in members], views) if act_many is not None
                       else [group.policy.act(v) for (_, group), v in zip(members, views)])
            for (c, group), decisions in zip(members, answers):
                out[c].update(zip(group.agents, decisions))
        return out

    def _remember_words(self, said: list[dict[str, str]]) -> None:
        """Keep what each agent said this round (the reward model judges it at the action step)."""
        for copy, outgoing in enumerate(said):
            if self.active[copy]:
                for agent, text in outgoing.items():
                    if text:
                        self._words[copy].setdefault(agent, []).append(text)

    def _said(self, joint: np.ndarray, decisions: list[dict[str, Decision]],
              messages: Sequence[Mapping[str, str]] | None) -> list[dict[str, str]]:
        """Fill the scenario policies' actions into `joint` (in place) and gather what
        every agent says, per copy (external agents' words from `messages`)."""
        if messages is None and not self._per_copy:
            return self._nothing
        said: list[dict[str, str]] = []
        for copy in range(self.batch_size):
            words = {a: t for a, t in messages[copy].items() if a in self._external_set} if messages is not None else {}
            for agent, decision in decisions[copy].items():
                joint[copy, self._seat[agent]] = decision.action
                words[agent] = decision.message
            said.append({a: words[a] for a in self.agent_ids if a in words} if len(words) > 1 else words)  # seat order
        return said

    def _deliver(self, said: list[dict[str, str]]) -> tuple[tuple[Message, ...], ...]:
        if self.comms_mode == "off":  # nobody talks: inboxes stay empty
            return self._silence
        logs = []
        for copy, outgoing in enumerate(said):
            if not self.active[copy]:
                logs.append(())
                continue
            inboxes, log = deliver(
                self.graph, self.comms_mode, outgoing, episode=int(self.episodes[copy]), round=int(self.rounds[copy]),
                step=int(self.steps[copy]), max_length=self.max_length,
            )
            self.inboxes[copy] = {a: tuple(m) for a, m in inboxes.items()}
            logs.append(tuple(log))
        return tuple(logs)
