"""Communication metrics: who says how much to whom, vocabulary, informativeness of
messages, and whether agents do what they said they would.

`messages` is `Run.messages`: one row per delivery (a broadcast to three neighbours is
three rows) plus one row per undelivered message. A *sent* message is one (episode,
step, sender) with its text; statistics of speech count sent messages, the talk matrix
counts deliveries.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

_WORD = re.compile(r"[A-Za-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, apostrophes) of a message."""
    return [w.lower() for w in _WORD.findall(text or "")]


def sent_messages(messages: pd.DataFrame) -> pd.DataFrame:
    """One row per message sent (deliveries of the same message merged): episode, step,
    round, sender, text, recipients (number of agents it reached)."""
    if messages.empty:
        return pd.DataFrame(columns=["episode", "step", "round", "sender", "text", "recipients"])
    keys = ["episode", "step", "sender"]
    grouped = messages.groupby(keys, sort=True)
    first = grouped.first().reset_index()
    first["recipients"] = grouped["delivered"].sum().to_numpy().astype(int)
    return first[["episode", "step", "round", "sender", "text", "recipients"]]


def message_stats(messages: pd.DataFrame, agents: Sequence[str], episodes: int) -> pd.DataFrame:
    """Per agent: messages sent, sent per episode, mean length in characters and in words,
    and the fraction of its messages that reached no one. Agents that never spoke get 0."""
    sent = sent_messages(messages)
    sent = sent.assign(chars=sent["text"].str.len(), words=sent["text"].map(lambda t: len(words(t))))
    out = pd.DataFrame(index=pd.Index(list(agents), name="agent"))
    grouped = sent.groupby("sender")
    out["sent"] = grouped.size().reindex(out.index).fillna(0).astype(int)
    out["per_episode"] = out["sent"] / max(episodes, 1)
    out["mean_chars"] = grouped["chars"].mean().reindex(out.index)
    out["mean_words"] = grouped["words"].mean().reindex(out.index)
    out["undelivered"] = grouped["recipients"].apply(lambda r: float((r == 0).mean())).reindex(out.index)
    return out


def vocabulary_over_time(messages: pd.DataFrame) -> pd.DataFrame:
    """Per game round (pooled over episodes): messages sent, mean length in words,
    distinct words used in that round, and the cumulative vocabulary (distinct words used
    in this or any earlier round) — a rising curve means agents keep coining words."""
    sent = sent_messages(messages)
    rows = []
    seen: set[str] = set()
    for game_round, group in sent.groupby("round", sort=True):
        tokens = [words(t) for t in group["text"]]
        used = {w for toks in tokens for w in toks}
        seen |= used
        rows.append({
            "round": int(game_round), "messages": len(group), "mean_words": float(np.mean([len(t) for t in tokens])),
            "distinct_words": len(used), "cumulative_vocabulary": len(seen),
        })
    return pd.DataFrame(rows, columns=["round", "messages", "mean_words", "distinct_words", "cumulative_vocabulary"])


def talk_matrix(messages: pd.DataFrame, agents: Sequence[str]) -> pd.DataFrame:
    """Delivered-message counts, sender (rows) x recipient (columns), over all episodes."""
    delivered = messages[messages["delivered"].astype(bool) & messages["recipient"].notna()]
    counts = delivered.groupby(["sender", "recipient"]).size()
    out = pd.DataFrame(0, index=list(agents), columns=list(agents), dtype=int)
    for (sender, recipient), count in counts.items():
        if sender in out.index and recipient in out.columns:
            out.loc[sender, recipient] = int(count)
    out.index.name, out.columns.name = "sender", "recipient"
    return out


def mutual_information(xs: Sequence[object], ys: Sequence[object]) -> float:
    """Plug-in mutual information I(X; Y) in bits between two paired discrete sequences:

        I = sum_{x,y} p(x,y) log2( p(x,y) / (p(x) p(y)) )

    using empirical frequencies. 0 when Y says nothing about X, H(X) when Y determines X.
    The plug-in estimate is biased upwards on small samples (roughly (|X|-1)(|Y|-1) /
    (2 n ln 2) bits), so compare values from runs of similar size.
    """
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True)]
    n = len(pairs)
    if n == 0:
        return math.nan
    joint = Counter(pairs)
    px = Counter(x for x, _ in pairs)
    py = Counter(y for _, y in pairs)
    total = sum(c / n * math.log2(c * n / (px[x] * py[y])) for (x, y), c in joint.items())
    return max(0.0, total)


def entropy(xs: Sequence[object]) -> float:
    """Empirical Shannon entropy H(X) in bits (the most any message can tell about X)."""
    n = len(xs)
    if n == 0:
        return math.nan
    return float(-sum(c / n * math.log2(c / n) for c in Counter(xs).values()))


# ----- promise keeping --------------------------------------------------------------------
#: phrases that announce the speaker's own next move
_CUES = (
    r"i will|i'll|i shall|i am going to|i'm going to|i'm gonna|i plan to|i intend to|i promise to|"
    r"i choose|i pick|i play|i'll play|my (?:next )?(?:move|action|choice) (?:is|will be)|let's|let us"
)
_CUE = re.compile(rf"\b(?:{_CUES})\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|never|no)\b|n't\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?;](?!\d)|\n")  # "2.5" does not end a sentence


def action_phrases(action_names: Sequence[str], descriptions: Mapping[str, str] | None = None) -> dict[int, list[str]]:
    """The phrases that name each action in text: its name, each part of a compound name
    ("contribute 5 / punish player 2" gives both halves) and its description words."""
    descriptions = descriptions or {}
    phrases: dict[int, list[str]] = {}
    for index, name in enumerate(action_names):
        parts = [p.strip() for p in name.split(" / ") if p.strip() and p.strip() != "(unused)"]
        if name in descriptions:
            parts.append(descriptions[name])
        phrases[index] = parts
    return phrases


@functools.lru_cache(maxsize=4096)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    # short names ("C", "D") are matched case-sensitively so "a" or "I" in prose do not count
    flags = 0 if len(phrase) <= 2 else re.IGNORECASE
    return re.compile(rf"(?<![\w.]){re.escape(phrase)}(?![\w]|\.\d)", flags)


def stated_intention(text: str, phrases: Mapping[int, Sequence[str]]) -> int | None:
    """The action a message announces the speaker will take, or None.

    Heuristic: find a first-person intention cue ("I will", "I'll", "I'm going to",
    "I choose", "let's", ...) and look for action phrases between it and the end of its
    sentence. If the phrases found all name one action, and no negation ("not", "never",
    "n't", "no") stands between the cue and the phrase, that is the stated intention.
    Limits: paraphrases ("I'll be nice"), numbers in other words ("catch three"),
    conditionals ("I will cooperate if you do") and statements about others are not
    understood; mentions of two different actions count as no statement.
    """
    compiled = [(action, _phrase_pattern(p)) for action, group in phrases.items() for p in group]
    for cue in _CUE.finditer(text):
        end = _SENTENCE_END.search(text, cue.end())
        clause = text[cue.end() : end.start() if end else len(text)]
        found: dict[int, int] = {}
        for action, pattern in compiled:
            match = pattern.search(clause)
            if match:
                found[action] = min(found.get(action, match.start()), match.start())
        if len(found) != 1:
            continue
        (action, position), = found.items()
        if _NEGATION.search(clause[:position]):
            continue
        return action
    return None


def promise_keeping(
    messages: pd.DataFrame, steps: pd.DataFrame, phrases: Mapping[str, Mapping[int, Sequence[str]]],
    talk_only: bool | None = None,
) -> pd.DataFrame:
    """Each stated intention matched with the speaker's next action.

    `phrases` gives, per agent, the phrases naming each of its actions (`action_phrases`;
    agents with different roles may have different actions). Agents not in it are skipped.

    A message sent at step s announces the sender's action at its first action step after
    s (for a message sent together with an action, that is the next round's action).
    `talk_only` keeps only messages from talk-only steps; by default it is True when the
    run has talk-only steps (where agents speak before they act) and False otherwise.

    Returns one row per statement: episode, step, sender, text, stated (action index),
    action (the action taken; NaN if the episode ended first), kept (bool or NaN).
    """
    columns = ["episode", "step", "sender", "text", "stated", "action", "kept"]
    sent = sent_messages(messages)
    if sent.empty or steps.empty:
        return pd.DataFrame(columns=columns)
    action_steps = steps[["episode", "step"]].drop_duplicates()
    is_action = set(zip(action_steps["episode"], action_steps["step"]))
    talking = [(e, s) not in is_action for e, s in zip(sent["episode"], sent["step"])]
    if talk_only is None:
        talk_only = any(talking)
    if talk_only:
        sent = sent[np.asarray(talking, dtype=bool)]
    acts = steps.sort_values(["episode", "agent", "step"])
    # per (episode, agent): its action steps in order and the actions taken, for a binary search
    by_agent = {key: (g["step"].to_numpy(), g["action"].to_numpy()) for key, g in acts.groupby(["episode", "agent"])}
    rows = []
    for row in sent.itertuples(index=False):
        if row.sender not in phrases:
            continue
        stated = stated_intention(row.text, phrases[row.sender])
        if stated is None:
            continue
        agent_steps, agent_actions = by_agent.get((row.episode, row.sender), (np.array([]), np.array([])))
        following = int(np.searchsorted(agent_steps, row.step, side="right"))  # first action step after the message
        action = int(agent_actions[following]) if following < len(agent_steps) else math.nan
        kept = (action == stated) if action == action else math.nan
        rows.append({"episode": row.episode, "step": row.step, "sender": row.sender, "text": row.text,
                     "stated": stated, "action": action, "kept": kept})
    return pd.DataFrame(rows, columns=columns)
