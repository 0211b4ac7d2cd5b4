"""A scripted teacher behind the LLM backend interface: what the tuned adapter imitates.

`ReciprocatorTeacher` answers every request an `LLMPolicy` makes (score and generate, talk
steps and action steps) from the prompt text alone, as a reciprocator of the prisoner's
dilemma would: cooperate in the first round and whenever every other player cooperated in
the last round the prompt lists, else defect (tit for tat; against a defector it defects
from the second round on). In a talk step it announces that move ("I will play C. ..."),
and since the action prompt repeats what the agent said and lists the same history, the
action it then takes is the one announced: imitating it teaches promise keeping too.

Deciding from the prompt (not from the game state) is the point: the teacher sees exactly
what the model will see, so its replies are a function the model can learn. Every reply is
kept in `examples` as (conversation, reply text): the behaviour-cloning data set
(`mas.training.llm_bc`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mas.agents.llm.backend import BackendInfo, GenerateRequest, Generation, LLMBackend, Scores, ScoreRequest

ChatMessage = dict[str, str]

_HISTORY_LINE = re.compile(r"^- Round \d+: (?P<moves>.*?); you got \S+$", re.MULTILINE)
_OPTIONS = re.compile(r"Reply with exactly one of: (?P<options>.+?)\.\s*$", re.MULTILINE)
#: log-likelihood given to the options the teacher does not pick (probability ~1e-13)
_UNLIKELY = -30.0


class ReciprocatorTeacher(LLMBackend):
    """Tit for tat with an honest announcement, read from the prompt (see the module docstring).

    Args:
        cooperate: the name of the cooperative action in prompts (e.g. "C").
        defect: the name of the defection.
    """

    def __init__(self, cooperate: str = "C", defect: str = "D") -> None:
        self.cooperate = cooperate
        self.defect = defect
        self.examples: list[tuple[tuple[ChatMessage, ...], str]] = []

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(kind="teacher", model="reciprocator")

    # ----- the rule ----------------------------------------------------------------------
    def defectors(self, messages: Sequence[ChatMessage]) -> list[str]:
        """The other players who defected in the last round the prompt's history lists."""
        lines = _HISTORY_LINE.findall(messages[-1]["content"]) if messages else []
        if not lines:
            return []
        moves = [part.strip() for part in lines[-1].split(",")]
        out = []
        for move in moves[1:]:  # the first is "you played X"
            agent, _, action = move.rpartition(" played ")
            if action == self.defect:
                out.append(agent)
        return out

    def choose(self, messages: Sequence[ChatMessage]) -> str:
        """The teacher's action in this situation."""
        return self.defect if self.defectors(messages) else self.cooperate

    def message(self, messages: Sequence[ChatMessage]) -> str:
        """What the teacher says before it acts: its move, and why."""
        defectors = self.defectors(messages)
        if defectors:
            who = " and ".join(defectors)
            return f"{who} defected last round, so I will play {self.defect}."
        if _HISTORY_LINE.search(messages[-1]["content"]):
            return f"I will play {self.cooperate} again. Let us keep cooperating."
        return f"I will play {self.cooperate}. Let us both cooperate."

    def reply(self, messages: Sequence[ChatMessage]) -> str:
        """The reply to a conversation: an action name for an action prompt, else a message."""
        options = _OPTIONS.search(messages[-1]["content"]) if messages else None
        if options is None:
            return self.message(messages)
        return self.choose(messages)

    # ----- the backend interface -----------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]:
        out = []
        for request in requests:
            text = self.reply(request.messages)
            self.examples.append((tuple(request.messages), text))
            out.append(Generation(text=text, prompt_tokens=0, completion_tokens=len(text.split())))
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scores]:
        out = []
        for request in requests:
            pick = self.choose(request.messages)
            self.examples.append((tuple(request.messages), pick))
            logprobs = tuple(0.0 if c == pick else _UNLIKELY for c in request.candidates)
            out.append(Scores(logprobs=logprobs, candidate_tokens=(1,) * len(logprobs), prompt_tokens=0))
        return out
