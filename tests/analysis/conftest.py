"""Small stored runs for the analysis tests, made once per test session by the real runner."""

from __future__ import annotations

from pathlib import Path

import pytest

import mas
from mas.runner import run


def _play(tmp_path_factory: pytest.TempPathFactory, name: str, episodes: int, seed: int = 3, rounds: int | None = None) -> Path:
    scenario = mas.load_scenario(name)
    if rounds is not None:
        scenario = scenario.model_copy(update={"rounds": rounds})
    out = tmp_path_factory.mktemp(name) / "run"
    run(scenario, episodes=episodes, seed=seed, out_dir=out)
    return out


@pytest.fixture(scope="session")
def pd_talk_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prisoner's dilemma with a talk step: messages, promises, cooperation."""
    return _play(tmp_path_factory, "prisoners_dilemma_talk", episodes=3)


@pytest.fixture(scope="session")
def commons_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The eight-fisher commons, 15 rounds: stock, over-harvest, cooperation."""
    return _play(tmp_path_factory, "commons", episodes=3, rounds=15)


@pytest.fixture(scope="session")
def signalling_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _play(tmp_path_factory, "signalling", episodes=2, rounds=10)


@pytest.fixture(scope="session")
def bargaining_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _play(tmp_path_factory, "bargaining", episodes=2)


@pytest.fixture(scope="session")
def tournament_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished round robin of four classic strategies (real `mas tournament` code)."""
    from mas.tournament.spec import parse_tournament
    from mas.tournament.run import run_tournament

    spec = {
        "name": "mini", "scenario": "prisoners_dilemma", "rounds": 10, "repetitions": 2, "self_play": True, "seed": 1,
        "format": {"kind": "ecological", "dynamics": "replicator", "generations": 30},
        "entrants": [
            {"name": "tit_for_tat", "policy": "tit_for_tat"},
            {"name": "always_defect", "policy": "always_defect"},
            {"name": "always_cooperate", "policy": "always_cooperate"},
        ],
    }
    out = tmp_path_factory.mktemp("tournament") / "t"
    run_tournament(parse_tournament(spec), out_dir=out, workers=1, backend="serial")
    return out


#: text an agent could send to break a report that does not escape it
HOSTILE = '<img src=x onerror="document.title=1"><script>document.title="pwned"</script>'


@pytest.fixture(scope="session")
def llm_like_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-agent PD run whose decisions carry LLM records (prompt, raw reply, status,
    distribution), written through the real run store; one message is hostile HTML."""
    import json

    from mas.comms import Message
    from mas.records import DecisionRecord, DecisionStatus, EpisodeRecord, StateRecord, StepRecord
    from mas.store import RunStore

    scenario = mas.load_scenario("prisoners_dilemma_talk")
    out = tmp_path_factory.mktemp("llm_like") / "run"
    agents = [(a.id, {"type": "llm"}, a.persona) for a in scenario.agents]
    store = RunStore.create(out, scenario.to_dict(), seed=5, agents=agents)
    moves = {0: ["CC", "CD", "DD"], 1: ["CC", "CC"]}  # per episode, per round: alice's and bob's letters
    for episode, rounds in moves.items():
        messages, steps, decisions, states = [], [], [], []
        totals = {"alice": 0.0, "bob": 0.0}
        payoff = {"CC": (3, 3), "CD": (0, 5), "DC": (5, 0), "DD": (1, 1)}
        for r, letters in enumerate(rounds):
            talk, act = 2 * r, 2 * r + 1
            text_a = HOSTILE if (episode, r) == (0, 0) else f"I will play {letters[0]}."
            for sender, recipient, text in (("alice", "bob", text_a), ("bob", "alice", "I will cooperate.")):
                messages.append(Message(episode, r, talk, sender, recipient, text))
            for seat, agent in enumerate(("alice", "bob")):
                letter = letters[seat]
                reward = payoff[letters][seat]
                totals[agent] += reward
                steps.append(StepRecord(episode, act, r, agent, int(letter == "D"), letter, False, float(reward), float(letter == "C")))
                status = "fallback" if (episode, r, agent) == (0, 2, "bob") else "ok"
                llm = {
                    "prompt": [{"role": "system", "content": "You play the prisoner's dilemma."},
                               {"role": "user", "content": f"Round {r + 1}. Answer C or D."}],
                    "raw": f"I choose {letter}" if status == "ok" else "banana",
                    "status": status, "parsed": letter if status == "ok" else None,
                    "distribution": {"C": 0.7, "D": 0.3}, "outputs": 1, "invalid": int(status != "ok"),
                }
                decisions.append(DecisionRecord(episode, act, r, agent, False, DecisionStatus(status), llm))
            states.append(StateRecord(episode, act, r, {}))
        record = EpisodeRecord(
            episode=episode, seed=episode, rounds=len(rounds), steps=2 * len(rounds), truncated=True,
            returns=totals, cooperation={a: None for a in totals}, step_records=tuple(steps),
            state_records=tuple(states), messages=tuple(messages), decisions=tuple(decisions),
        )
        store.write_episode(record)
    store.close()
    return out
