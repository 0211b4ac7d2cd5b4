"""Reading a model's free text: which legal action it names, and the message it wrote.

Parsing is strict on purpose. A reply names an action when, after trimming quotes and
punctuation, it *is* a legal option, or (with `json`) it is a JSON object whose "action"
is one, or it mentions exactly one legal option as a whole phrase. A reply that names no
option or several different ones is invalid: the policy retries and finally falls back
to a declared default, and every invalid reply is counted. Nothing is guessed, because
tools that quietly map unreadable replies to "cooperate" overstate cooperation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mas.comms import clean_text

_EDGE = " \t\r\n\"'`*.,;:!?()[]{}<>"


@dataclass(frozen=True)
class Parsed:
    """The outcome of parsing one reply: `label` is the option named (None if invalid) and
    `reason` says why it was rejected."""

    label: str | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.label is not None


def _phrase(label: str) -> re.Pattern[str]:
    # a whole phrase, not inside a longer word or number ("harvest 1" must not match
    # "harvest 10", "D" must not match "I'd"); one-letter names must match their case
    flags = re.IGNORECASE if len(label) > 1 else 0
    return re.compile(r"(?<![\w.'])" + re.escape(label) + r"(?!\w|\.\d)", flags)


def _from_json(text: str) -> str | None:
    """The "action" field of the first JSON object in `text`, if any."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict) and isinstance(value.get("action"), (str, int)):
            return str(value["action"])
        return None
    return None


def parse_action(
    text: str, options: Sequence[str], use_json: bool = False, aliases: Mapping[str, str] | None = None
) -> Parsed:
    """Which of the legal `options` (action names) the reply `text` names.

    Args:
        text: the model's raw reply.
        options: names of the legal actions.
        use_json: look for {"action": ...} first (the prompt asked for JSON).
        aliases: other words for an option (e.g. "cooperate" for "C"), alias -> option;
            aliases of options that are not legal are ignored.
    """
    if not text or not text.strip():
        return Parsed(None, "empty reply")
    names = {o: o for o in options}
    names.update({alias: option for alias, option in (aliases or {}).items() if option in names and alias})
    by_lower = {name.lower(): option for name, option in names.items()}
    if use_json:
        field = _from_json(text)
        if field is not None:
            label = by_lower.get(field.strip(_EDGE).lower())
            return Parsed(label, "" if label else f"JSON action {field!r} is not one of {list(options)}")
    whole = text.strip(_EDGE).lower()
    if whole in by_lower:
        return Parsed(by_lower[whole])
    spans: list[tuple[int, int, str]] = []
    for name in sorted(names, key=len, reverse=True):  # longest first, so a phrase inside a longer name is skipped
        option = names[name]
        for match in _phrase(name).finditer(text):
            if not any(start <= match.start() and match.end() <= end for start, end, _ in spans):
                spans.append((match.start(), match.end(), option))
    found = sorted({option for _, _, option in spans})
    if len(found) == 1:
        return Parsed(found[0])
    if not found:
        return Parsed(None, f"names none of {list(options)}")
    return Parsed(None, f"names several options {found}")


def clean_message(text: str, limit: int) -> str:
    """A generated message as it will be sent: one line, without surrounding quotes or a
    leading speaker label, cut to the game's message limit (`limit` characters)."""
    flat = " ".join(text.split())
    flat = re.sub(r"^(message|me|you)\s*:\s*", "", flat, flags=re.IGNORECASE)
    if len(flat) >= 2 and flat[0] == flat[-1] and flat[0] in "\"'":
        flat = flat[1:-1].strip()
    return clean_text(flat, limit)
