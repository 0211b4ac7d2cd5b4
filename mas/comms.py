"""Communication: who may talk to whom (a networkx graph) and how messages are delivered.

Pure and deterministic: `deliver` maps what each agent said to what each agent receives,
following the graph's edges and the mode, and returns a log entry for every message,
delivered or not. Messages are frozen values stamped with episode, round and step.

Modes:
- broadcast: a message reaches every out-neighbour of its sender.
- direct: a message must start with "@id" naming one out-neighbour; it reaches only
  that agent. Unaddressed messages, or ones addressed to a non-neighbour, are logged
  as undelivered with the reason.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

#: characters a message may contain (the gymnasium Text space's charset);
#: anything else is transliterated to ASCII or replaced by '?'
CHARSET = "".join(c for c in string.printable if c not in "\x0b\x0c\r")

_ADDRESS = re.compile(r"^\s*@([A-Za-z][A-Za-z0-9_\-]*)[\s:,]*(.*)$", re.DOTALL)
_ALLOWED = frozenset(CHARSET)
_QUOTE = {'"': "'"}  # an inbox line's delimiter, and its stand-in inside a message


@dataclass(frozen=True)
class Message:
    """One message as logged: `recipient` is None when it reached no one."""

    episode: int
    round: int
    step: int
    sender: str
    recipient: str | None
    text: str
    delivered: bool = True
    reason: str = ""


def clean_text(text: str, max_length: int) -> str:
    """Cut to `max_length` and keep only characters of `CHARSET` (accents stripped)."""
    if not text:
        return ""
    normalised = unicodedata.normalize("NFKD", str(text))
    kept = "".join(c if c in _ALLOWED else ("" if unicodedata.combining(c) else "?") for c in normalised)
    return kept[:max_length]


def one_line(text: str, delimiters: Mapping[str, str]) -> str:
    """Untrusted text (another agent's, a model's) made safe to place between delimiters:
    every run of whitespace, newlines included, becomes one space, and each delimiter
    character is replaced (`delimiters`: character -> stand-in), so the text can neither
    close its delimiter nor start a line that looks like the environment's. Never longer
    than `text` when each stand-in is one character."""
    flat = " ".join(str(text).split())
    return flat.translate(str.maketrans(dict(delimiters))) if delimiters else flat


def check_topology(topology: object, agent_ids: Sequence[str]) -> None:
    """Raise ValueError (naming the problem) if the topology does not fit the agents;
    cheap (no graph is built), so scenarios with comms off never allocate one."""
    ids = list(agent_ids)
    n = len(ids)
    kind = getattr(topology, "kind")
    if kind == "ring" and n < 3:
        raise ValueError(f"a ring needs at least 3 agents, found {n}")
    if kind == "star":
        if n < 2:
            raise ValueError(f"a star needs at least 2 agents, found {n}")
        center = getattr(topology, "center") or ids[0]
        if center not in ids:
            raise ValueError(f"star centre '{center}' is not an agent; agents: {ids}")
    if kind == "small_world":
        k = getattr(topology, "k")
        if n < 3 or k >= n:
            raise ValueError(f"small_world needs more agents than k (k={k}, agents={n}, at least 3)")
    if kind == "edges":
        known = set(ids)
        for a, b in getattr(topology, "edges"):
            for end in (a, b):
                if end not in known:
                    raise ValueError(f"edge [{a}, {b}] names unknown agent '{end}'; agents: {ids}")
            if a == b:
                raise ValueError(f"edge [{a}, {b}] joins an agent to itself")
    if kind not in ("complete", "ring", "star", "small_world", "random", "edges"):
        raise ValueError(f"unknown topology '{kind}'")


def empty_graph(agent_ids: Sequence[str]) -> nx.DiGraph:
    """The agents with no edges: the graph when comms are off (nobody talks)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(agent_ids)
    return graph


def build_graph(topology: object, agent_ids: Sequence[str]) -> nx.DiGraph:
    """The directed communication graph for a topology config and the agents in seat order.

    Raises:
        ValueError: the topology does not fit the agents (named in the message).
    """
    check_topology(topology, agent_ids)
    ids = list(agent_ids)
    n = len(ids)
    kind = getattr(topology, "kind")
    if kind == "complete":
        undirected = nx.complete_graph(n)
    elif kind == "ring":
        undirected = nx.cycle_graph(n)
    elif kind == "star":
        center = getattr(topology, "center") or ids[0]
        undirected = nx.star_graph(n - 1)
        undirected = nx.relabel_nodes(undirected, {0: ids.index(center), ids.index(center): 0})
    elif kind == "small_world":
        undirected = nx.watts_strogatz_graph(n, getattr(topology, "k"), getattr(topology, "p"), seed=getattr(topology, "seed"))
    elif kind == "random":
        undirected = nx.gnp_random_graph(n, getattr(topology, "p"), seed=getattr(topology, "seed"))
    else:  # edges
        graph = empty_graph(ids)
        for a, b in getattr(topology, "edges"):
            graph.add_edge(a, b)
            if not getattr(topology, "directed"):
                graph.add_edge(b, a)
        return graph
    graph = empty_graph(ids)
    graph.add_edges_from((ids[u], ids[v]) for u, v in undirected.edges())
    graph.add_edges_from((ids[v], ids[u]) for u, v in undirected.edges())
    return graph


def deliver(
    graph: nx.DiGraph,
    mode: str,
    outgoing: Mapping[str, str],
    *,
    episode: int,
    round: int,
    step: int,
    max_length: int,
) -> tuple[dict[str, list[Message]], list[Message]]:
    """Route what each agent said this step.

    Args:
        graph: the communication graph (edges point from sender to recipient).
        mode: "broadcast" or "direct" ("off" delivers nothing).
        outgoing: sender id -> raw text ("" means silent).

    Returns:
        (inboxes: recipient -> messages in sender seat order, log: every message).
    """
    inboxes: dict[str, list[Message]] = {node: [] for node in graph.nodes}
    log: list[Message] = []
    if mode == "off":
        return inboxes, log
    for sender, raw in outgoing.items():
        text = clean_text(raw, max_length)
        if not text.strip():
            continue
        stamp = {"episode": episode, "round": round, "step": step, "sender": sender}
        if mode == "broadcast":
            for recipient in graph.successors(sender):
                message = Message(**stamp, recipient=recipient, text=text)
                inboxes[recipient].append(message)
                log.append(message)
            if graph.out_degree(sender) == 0:
                log.append(Message(**stamp, recipient=None, text=text, delivered=False, reason="sender has no neighbours"))
            continue
        match = _ADDRESS.match(text)
        if not match:
            log.append(Message(**stamp, recipient=None, text=text, delivered=False, reason="direct message without @recipient"))
            continue
        recipient, body = match.group(1), match.group(2).strip()
        if not graph.has_edge(sender, recipient):
            log.append(Message(**stamp, recipient=None, text=text, delivered=False, reason=f"'{recipient}' is not a neighbour"))
            continue
        message = Message(**stamp, recipient=recipient, text=body)
        inboxes[recipient].append(message)
        log.append(message)
    return inboxes, log


def render_inbox(messages: Sequence[Message]) -> str:
    """The inbox as text: one labelled, delimited line per message (for the Text obs).

    Messages from other agents are untrusted; the label and quotes keep them apart from
    anything the environment says, and `one_line` (newlines to spaces, double quotes to
    single) keeps a message inside its own line and quotes.
    """
    return "\n".join(f'[round {m.round + 1}] {m.sender}: "{one_line(m.text, _QUOTE)}"' for m in messages)


def inbox_capacity(graph: nx.DiGraph, agent: str, max_length: int) -> int:
    """Upper bound on the length of `render_inbox` for `agent` (Text space size)."""
    senders = max(1, graph.in_degree(agent))
    return senders * (max_length + 64)
