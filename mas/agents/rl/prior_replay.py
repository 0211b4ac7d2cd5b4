"""The situations of a stored run's decisions: each stored action distribution of an agent
paired with the learner observation it was made in (`prior_mode: situation`).

A decision record holds the prompt's distribution, not the observation vector a learner
sees, so the stored run is replayed: its scenario on `mas.episode.EpisodeEngine` with every
seat played from outside, each episode's game chances seeded as `mas run` seeded them (the
stored episode seed), the stored actions (and what every agent said, for learners that
talk) as the external inputs. Before each decision of the agent the engine's observation of
its seat (and, with a learner channel, the words heard, `mas.vocabulary`) is taken. A replay
that does not give back the stored rewards (the game or its code changed since the run) is
refused in one line rather than pairing decisions with wrong situations.

This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mas.errors import MasError

#: reward difference tolerated between the store (REAL) and the replay (float32)
REWARD_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Situations:
    """The stored action decisions of one agent with what a learner in its seat saw.

    obs [n, d] float32, mask [n, A] bool (legal actions, learner action space), and one
    distribution (action label -> probability) per row.
    """

    obs: np.ndarray
    mask: np.ndarray
    distributions: tuple[Mapping[str, float], ...]


def stored_situations(run_dir: str | Path, agent: str, channel: Any = None) -> Situations:
    """Replay the run at `run_dir` and pair each of `agent`'s stored action distributions with
    its seat's observation; `channel` (a `LearnerChannel` or None) appends the heard words
    and widens the mask as the training env does."""
    from mas.episode import EpisodeEngine
    from mas.runner import stored_run
    from mas.store import RunStore

    where = f"prior_run {run_dir}"
    scenario, _, _ = stored_run(Path(run_dir))
    if agent not in scenario.agent_ids:
        raise MasError(f"{where}: no agent '{agent}' in the stored run (agents: {', '.join(scenario.agent_ids)}); set prior_agent")
    engine = EpisodeEngine(scenario, external=scenario.agent_ids, measure_cooperation=False)
    if channel is not None:  # the stored run's agents in the training agents' seats: words heard by seat
        channel = dataclasses.replace(channel, agent_ids=tuple(scenario.agent_ids))
    seat = scenario.agent_ids.index(agent)
    obs: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    dists: list[Mapping[str, float]] = []
    with RunStore.open(Path(run_dir)) as store:
        for episode, seed, length in store.query("SELECT episode, seed, steps FROM episodes ORDER BY episode"):
            wanted = _distributions(store, episode, agent)
            if not wanted:
                continue
            actions, rewards = _steps(store, episode, scenario.agent_ids)
            said = _said(store, episode, engine.comms_mode)
            engine.reset(np.random.default_rng(int(seed)), episodes=[int(episode)])
            while engine.active[0]:
                step = int(engine.steps[0])
                if step >= length:
                    raise MasError(f"{where}: replaying episode {episode} runs past its {length} stored steps; "
                                   "the game or its code changed since the run")
                if step in wanted:
                    o, m = _seat_view(engine, seat, agent, channel)
                    obs.append(o)
                    masks.append(m)
                    dists.append(wanted[step])
                if engine.talking:
                    engine.step(None, [said.get(step, {})])
                    continue
                if step not in actions:
                    raise MasError(f"{where}: episode {episode} has no stored actions at step {step}; the run cannot be replayed")
                moved = engine.step(actions[step][None, :], [said.get(step, {})])
                diff = np.abs(moved.rewards[0] - rewards[step])
                if diff.max() > REWARD_TOLERANCE:
                    who = scenario.agent_ids[int(diff.argmax())]
                    raise MasError(
                        f"{where}: replaying episode {episode} does not reproduce the stored rewards (step {step}, agent {who}: "
                        f"stored {rewards[step][int(diff.argmax())]:g}, replayed {moved.rewards[0][int(diff.argmax())]:g}); "
                        "the game or its code changed since the run")
    if not dists:
        raise MasError(f"{where}: agent '{agent}' has no stored action distributions "
                       "(only LLM agents in score mode store them)")
    return Situations(np.stack(obs), np.stack(masks), tuple(dists))


def _seat_view(engine: Any, seat: int, agent: str, channel: Any) -> tuple[np.ndarray, np.ndarray]:
    """The observation and legal actions of `seat` now, as the training env encodes them."""
    obs = np.array(engine.observations[0, seat], dtype=np.float32)
    mask = np.asarray(engine.mask[0, seat]) > 0
    if channel is None:
        return obs, mask
    heard = channel.encode_batch(engine.inboxes, [agent], engine.talking)[0, 0]
    return np.concatenate([obs, heard]), channel.mask(mask, engine.talking)


def _distributions(store: Any, episode: int, agent: str) -> dict[int, Mapping[str, float]]:
    """step -> the stored action distribution of `agent` (records without one skipped)."""
    out = {}
    rows = store.query("SELECT step, record FROM decisions WHERE episode = ? AND agent = ? AND talking = 0", (episode, agent))
    for step, text in rows:
        distribution = json.loads(text).get("distribution")
        if isinstance(distribution, Mapping) and distribution:
            out[int(step)] = {str(k): float(v) for k, v in distribution.items()}
    return out


def _steps(store: Any, episode: int, agents: list[str]) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """step -> every seat's stored action, and its reward (seat order)."""
    seat = {a: i for i, a in enumerate(agents)}
    actions: dict[int, np.ndarray] = {}
    rewards: dict[int, np.ndarray] = {}
    for step, agent, action, reward in store.query("SELECT step, agent, action, reward FROM steps WHERE episode = ?", (episode,)):
        if step not in actions:
            actions[step] = np.full(len(agents), -1, dtype=np.int64)
            rewards[step] = np.zeros(len(agents), dtype=np.float64)
        actions[step][seat[agent]] = action
        rewards[step][seat[agent]] = reward
    return actions, rewards


def _said(store: Any, episode: int, mode: str) -> dict[int, dict[str, str]]:
    """step -> what each sender said, rebuilt from the message log (a direct message that
    reached its recipient was logged without its `@recipient` address)."""
    out: dict[int, dict[str, str]] = {}
    rows = store.query("SELECT step, sender, recipient, text, delivered FROM messages WHERE episode = ? ORDER BY rowid", (episode,))
    for step, sender, recipient, text, delivered in rows:
        words = out.setdefault(int(step), {})
        if sender not in words:
            words[sender] = f"@{recipient} {text}" if mode == "direct" and delivered else text
    return out
