"""Prompts: Jinja2 templates rendered in a sandbox into a chat conversation.

A prompt is two turns: a system turn with only trusted text (the game's rules, the
scenario's persona) and a user turn with the round, the situation, the agent's own
history, its inbox and the task. Templates come from `mas.agents.llm.templates` or from
the scenario, and are rendered by `sandbox.LimitedSandbox` (Jinja2's sandbox with time and
memory limits), so a template cannot reach Python objects, loop forever or fill memory, and
undefined variables are errors rather than blanks.

Messages from other agents are untrusted. `untrusted` flattens each one onto one line and
replaces `<` and `>`, so a message cannot close its `<message>` tag, open a new turn or
pose as the environment; it is labelled with its sender and round. The legal actions never
come from text: they are the view's action mask, turned into names by the game's
`GameInfo.action_labels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mas.agents.llm import templates
from mas.comms import one_line
from mas.errors import MasError
from mas.yaml_loader import clip

if TYPE_CHECKING:
    from mas.agents.base import AgentView

ChatMessage = dict[str, str]

#: the task sentence of a game that does not name its own
DEFAULT_TASK = "Choose your action."

SYSTEM_VARIABLES = frozenset({"rules", "persona", "agent", "json"})
USER_VARIABLES = frozenset(
    {"agent", "round", "talking", "situation", "narration", "history", "inbox", "last_message",
     "options", "message_limit", "json", "persona"}
)


class PromptError(MasError):
    """A prompt template is malformed or failed to render (named with the cause)."""


def untrusted(text: str) -> str:
    """Another agent's (or a model's) text made safe to place between tags: one line, no
    `<`/`>` (they become `‹`/`›`), so it cannot close its delimiter or start a new block."""
    return one_line(text, {"<": "‹", ">": "›"})


@dataclass(frozen=True)
class PromptContext:
    """Everything a template may read for one agent at one step (see `templates`)."""

    agent: str
    round: int
    talking: bool
    rules: str
    situation: str
    options: list[str]
    persona: str = ""
    narration: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    last_message: str = ""
    message_limit: int = 0
    json: bool = False


def inbox_entries(view: "AgentView") -> list[dict[str, Any]]:
    """The view's inbox as template data: sender, 1-based round, sanitised text."""
    return [{"sender": m.sender, "round": m.round + 1, "text": untrusted(m.text)} for m in view.inbox]


def _environment(task: str, system: str | None, user: str | None) -> Any:
    from jinja2 import DictLoader, StrictUndefined

    from mas.agents.llm.sandbox import LimitedSandbox

    sources = {"system": templates.SYSTEM, "generic_user": templates.USER, "user": templates.user_template(task)}
    if system is not None:
        sources["custom_system"] = system
    if user is not None:
        sources["custom_user"] = user
    return LimitedSandbox(loader=DictLoader(sources), undefined=StrictUndefined, autoescape=False)


def check_template(source: str, allowed: frozenset[str], what: str) -> None:
    """Raise ValueError (one line) if `source` is not valid Jinja2, reads a variable that
    is not in `allowed`, or fails on a sample step (e.g. over the sandbox's time or size
    limits); called when a scenario is validated, before any model is loaded."""
    from jinja2 import TemplateSyntaxError, meta

    env = _environment(DEFAULT_TASK, None, None)
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"{what} template, line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise ValueError(f"{what} template is nested too deeply") from None
    unknown = sorted(meta.find_undeclared_variables(ast) - allowed)
    if unknown:
        raise ValueError(f"{what} template uses unknown variable(s) {unknown}; known: {sorted(allowed)}")
    for name in meta.find_referenced_templates(ast):
        if name not in (None, "system", "user"):
            raise ValueError(f"{what} template refers to template '{name}'; only \"system\" and \"user\" (the defaults) exist")
    builder = PromptBuilder("", system=source if what == "system" else None, user=source if what == "user" else None)
    for talking in (False, True):
        try:
            builder.render(_sample_context(talking))
        except PromptError as exc:
            raise ValueError(f"{what} template fails on a sample step: {str(exc).partition(': ')[2]}") from None


def _sample_context(talking: bool) -> PromptContext:
    """A typical step, for rendering a template once when a scenario is validated."""
    history = [{"round": r, "you": "C", "others": [{"agent": "bob", "action": "D"}], "reward": 1.0} for r in range(1, 6)]
    inbox = [{"sender": "bob", "round": 5, "text": "let us cooperate"}]
    return PromptContext(
        agent="alice", round=6, talking=talking, rules="The rules.", situation="Round 6.", options=["C", "D"],
        persona="A player.", narration="A story.", history=history, inbox=inbox, last_message="hello", message_limit=280,
    )


class PromptBuilder:
    """Renders the chat prompt of one agent-step from a `PromptContext`.

    Args:
        task: the game's task sentence (`GameInfo.task`), the default user template's task block.
        system: a scenario's system template (None: the default).
        user: a scenario's user template (None: the default with `task`).
    """

    def __init__(self, task: str = DEFAULT_TASK, system: str | None = None, user: str | None = None) -> None:
        from jinja2 import TemplateError

        env = _environment(task, system, user)
        try:
            self._system = env.get_template("custom_system" if system is not None else "system")
            self._user = env.get_template("custom_user" if user is not None else "user")
        except TemplateError as exc:
            raise PromptError(f"prompt template: {exc.__class__.__name__}: {clip(exc, 200)}") from None
        except RecursionError:
            raise PromptError("prompt template: nested too deeply") from None

    def render(self, context: PromptContext) -> tuple[ChatMessage, ...]:
        """The conversation: a system turn (rules, persona) and a user turn (the step)."""
        from jinja2 import TemplateError

        from mas.agents.llm.sandbox import render_limited

        values = asdict(context)
        try:
            system = render_limited(self._system, {k: values[k] for k in SYSTEM_VARIABLES})
            user = render_limited(self._user, {k: values[k] for k in USER_VARIABLES})
        except TemplateError as exc:
            raise PromptError(f"prompt template failed for agent {context.agent}: {exc.__class__.__name__}: {clip(exc, 200)}") from None
        return ({"role": "system", "content": _tidy(system)}, {"role": "user", "content": _tidy(user)})


def _tidy(text: str) -> str:
    """Strip trailing spaces and collapse runs of blank lines left by template blocks."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out)


def rotations(options: Sequence[str]) -> list[list[str]]:
    """Every cyclic rotation of `options`: each option is listed once in every position,
    which is what order debiasing averages over (both orders for two options)."""
    items = list(options)
    return [items[i:] + items[:i] for i in range(len(items))] or [items]
