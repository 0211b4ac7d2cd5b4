"""Messages travel only along graph edges; topologies are built as named."""

from __future__ import annotations

import pytest

from mas.comms import build_graph, clean_text, deliver
from mas.scenario import EdgesTopology, RingTopology, SmallWorldTopology, StarTopology, CompleteTopology

IDS = ["a", "b", "c", "d", "e"]


def _deliver(graph, mode, said):
    return deliver(graph, mode, said, episode=0, round=2, step=5, max_length=20)


def test_ring_messages_reach_only_neighbours() -> None:
    graph = build_graph(RingTopology(), IDS)
    inboxes, log = _deliver(graph, "broadcast", {"a": "hello"})
    assert sorted(m.recipient for m in log) == ["b", "e"]
    assert [m.text for m in inboxes["b"]] == ["hello"] and inboxes["c"] == [] and inboxes["a"] == []
    assert all(m.round == 2 and m.step == 5 and m.sender == "a" for m in log)


def test_star_centre_hears_all_leaves_hear_centre() -> None:
    graph = build_graph(StarTopology(center="c"), IDS)
    inboxes, _ = _deliver(graph, "broadcast", {"a": "from a", "c": "from c"})
    assert [m.text for m in inboxes["c"]] == ["from a"]
    assert [m.text for m in inboxes["b"]] == ["from c"]
    assert [m.text for m in inboxes["a"]] == ["from c"]


def test_direct_messages_need_an_address_and_an_edge() -> None:
    graph = build_graph(EdgesTopology(edges=[("a", "b")], directed=True), IDS)
    inboxes, log = _deliver(graph, "direct", {"a": "@b: meet me", "b": "@a reply", "c": "no address"})
    assert [m.text for m in inboxes["b"]] == ["meet me"]
    assert inboxes["a"] == []  # the edge is one-way
    undelivered = {m.sender: m.reason for m in log if not m.delivered}
    assert "not a neighbour" in undelivered["b"]
    assert "without @recipient" in undelivered["c"]


def test_off_delivers_nothing_and_silence_is_not_logged() -> None:
    graph = build_graph(CompleteTopology(), IDS)
    assert _deliver(graph, "off", {"a": "hi"}) == ({i: [] for i in IDS}, [])
    _, log = _deliver(graph, "broadcast", {"a": "", "b": "   "})
    assert log == []


def test_messages_are_cut_and_cleaned() -> None:
    assert clean_text("Café au lait, très bien!", 12) == "Cafe au lait"
    assert clean_text("emoji \U0001F600 here", 40) == "emoji ? here"


def test_small_world_is_seeded() -> None:
    ids = [f"x{i}" for i in range(10)]
    one = build_graph(SmallWorldTopology(k=2, p=0.5, seed=1), ids)
    two = build_graph(SmallWorldTopology(k=2, p=0.5, seed=1), ids)
    three = build_graph(SmallWorldTopology(k=2, p=0.5, seed=2), ids)
    assert set(one.edges) == set(two.edges)
    assert set(one.edges) != set(three.edges)


@pytest.mark.parametrize(
    "topology, ids, fragment",
    [
        (RingTopology(), ["a", "b"], "at least 3"),
        (StarTopology(center="z"), IDS, "not an agent"),
        (SmallWorldTopology(k=6), IDS, "more agents than k"),
        (EdgesTopology(edges=[("a", "q")]), IDS, "unknown agent 'q'"),
    ],
)
def test_topologies_that_do_not_fit(topology, ids, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        build_graph(topology, ids)
