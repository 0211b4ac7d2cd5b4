"""Independent Q-learning reaches the known outcomes (REFERENCES.md) on small budgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from mas.scenario import parse_scenario  # noqa: E402
from mas.training.run import train  # noqa: E402
from tests.conftest import PD  # noqa: E402

ROUNDS = 10


def learn(tmp_path: Path, agents: list, steps: int, game: dict | None = None, seed: int = 0) -> dict[str, float]:
    data = {**PD, "rounds": ROUNDS, "agents": agents}
    if game is not None:
        data["game"] = game
    result = train(parse_scenario(data), "iql", steps, seed, tmp_path / "run", device="cpu", final_episodes=0, tensorboard=False)
    return result.final_eval


def iql(**params) -> dict:
    return {"type": "iql", **params}


def test_tabular_iql_learns_to_defect_against_always_cooperate(tmp_path):
    result = learn(tmp_path, [{"id": "me", "policy": iql()}, {"id": "them", "policy": "always_cooperate"}], 8_000)
    assert result["eval_cooperation/me"] == 0.0
    assert result["eval_return/me"] == 5.0 * ROUNDS  # the temptation payoff every round


@pytest.mark.parametrize("update", ["q_learning", "sarsa"])
def test_tabular_iql_learns_to_cooperate_with_tit_for_tat_given_memory_and_discount(tmp_path, update):
    # Sandholm & Crites 1996: cooperating with TFT is optimal once gamma > 2/3 (T5 R3 P1 S0)
    me = iql(update=update, gamma=0.95)
    result = learn(tmp_path, [{"id": "me", "policy": me}, {"id": "them", "policy": "tit_for_tat"}], 40_000)
    assert result["eval_cooperation/me"] == 1.0
    assert result["eval_return/me"] == 3.0 * ROUNDS


def test_a_short_sighted_learner_defects_against_tit_for_tat(tmp_path):
    # the control: with gamma = 0.1 always defecting (5 + g/(1-g) = 5.11) beats both
    # cooperating (3/(1-g) = 3.33) and alternating D, C (5/(1-g^2) = 5.05)
    me = iql(gamma=0.1)
    result = learn(tmp_path, [{"id": "me", "policy": me}, {"id": "them", "policy": "tit_for_tat"}], 20_000)
    assert result["eval_cooperation/me"] == 0.0
    assert result["eval_return/me"] == 5.0 + 1.0 * (ROUNDS - 1)


def test_two_independent_learners_coordinate_in_a_pure_coordination_game(tmp_path):
    game = {"kind": "normal_form", "actions": ["L", "R"], "payoffs": {"L,L": [1, 1], "R,R": [1, 1], "L,R": [0, 0], "R,L": [0, 0]}}
    agents = [{"id": "a", "policy": iql(gamma=0.5)}, {"id": "b", "policy": iql(gamma=0.5)}]
    result = learn(tmp_path, agents, 20_000, game=game)
    assert result["eval_return/a"] == result["eval_return/b"] == 1.0 * ROUNDS  # matched every round


def test_dqn_with_double_q_learns_to_cooperate_with_tit_for_tat(tmp_path):
    me = iql(variant="dqn", gamma=0.9, learning_starts=200, double_q=True)
    result = learn(tmp_path, [{"id": "me", "policy": me}, {"id": "them", "policy": "tit_for_tat"}], 20_000)
    assert result["eval_cooperation/me"] == 1.0


def test_parameter_shared_dqn_learns_to_defect_against_always_cooperate(tmp_path):
    me = iql(variant="dqn", shared=True, double_q=False, gamma=0.5, learning_starts=200)
    result = learn(tmp_path, [{"id": "me", "policy": me}, {"id": "them", "policy": "always_cooperate"}], 5_000)
    assert result["eval_cooperation/me"] == 0.0


def test_who_learns_and_with_which_hyperparameters():
    from mas.errors import MasError
    from mas.training.learners import learning_agents, resolve_config

    plain = parse_scenario(PD)  # no learner in the scenario: everybody learns (self-play)
    assert learning_agents(plain, "iql") == ["a", "b"]
    assert learning_agents(plain, "mappo", ["b"]) == ["b"]
    mixed = parse_scenario({**PD, "agents": [{"id": "a", "policy": iql(gamma=0.5)}, {"id": "b", "policy": "tit_for_tat"}]})
    assert learning_agents(mixed, "iql") == ["a"]
    assert resolve_config(mixed, "iql", ["a"], {"alpha": 0.3}).gamma == 0.5  # scenario value, then overrides
    assert resolve_config(mixed, "iql", ["a"], {"alpha": 0.3}).alpha == 0.3
    with pytest.raises(MasError, match="use --algo iql"):
        learning_agents(mixed, "mappo")
    differing = parse_scenario({**PD, "agents": [{"id": "a", "policy": iql(gamma=0.5)}, {"id": "b", "policy": iql(gamma=0.9)}]})
    with pytest.raises(MasError, match="must share hyperparameters"):
        resolve_config(differing, "iql", ["a", "b"], {})
    assert resolve_config(plain, "ippo", ["a", "b"], {}).centralised_critic is False


def _reference_rows(index: dict, obs: np.ndarray) -> np.ndarray:
    """The lookup before the hash cache: sorted unique observations, added in that order."""
    unique, inverse = np.unique(obs + np.float32(0.0), axis=0, return_inverse=True)
    found = np.array([index.setdefault(row.tobytes(), len(index)) for row in unique], dtype=np.int64)
    return found[inverse.reshape(-1)]


def test_the_q_table_lookup_equals_the_plain_unique_lookup_on_random_observations():
    from mas.agents.rl.qtable import QTable

    rng = np.random.default_rng(4)
    table, index = QTable(2, 5), {}
    values = np.array([0.0, -0.0, 1.0, 0.5, np.nan], dtype=np.float32)  # -0.0 is 0.0; NaN is a state
    for step in range(300):
        kinds = 2 if step < 100 else 5  # few states first (the cached path), then new ones arrive
        # batches of a few rows (looked up one by one) and of many (vectorised hashes)
        obs = values[rng.integers(0, kinds, size=(int(rng.integers(1, 40 if step % 2 else 150)), 5))]
        np.testing.assert_array_equal(table.rows(obs), _reference_rows(index, obs))
    assert len(table.index) == len(index) > 32
    unseen = np.full((3, 5), 7.0, dtype=np.float32)
    assert (table.rows(unseen, add=False) == -1).all()
    again = QTable.from_state_dict(table.state_dict(), 2)
    for size in (20, 100):
        obs = values[rng.integers(0, 5, size=(size, 5))]
        np.testing.assert_array_equal(again.rows(obs, add=False), table.rows(obs, add=False))
        mixed = np.concatenate([obs[:10], unseen[:1]])  # one unseen row among known ones: -1 for it alone
        assert table.rows(mixed, add=False).tolist() == table.rows(obs[:10], add=False).tolist() + [-1]


def test_an_update_of_the_whole_table_equals_one_of_the_touched_entries(monkeypatch):
    """Small tables add the mean errors to every entry at once (untouched ones add 0.0):
    bit for bit what updating only the touched entries gives."""
    from mas.agents.rl import iql

    rng = np.random.default_rng(7)
    start = rng.normal(size=(40, 3))
    start[rng.random(start.shape) < 0.3] = 0.0  # zeros stay +0.0
    tables = {}
    for whole in (10**6, 0):
        monkeypatch.setattr(iql, "WHOLE_TABLE", whole)
        q, gen = start.copy(), np.random.default_rng(8)
        for _ in range(50):
            flat = gen.integers(0, 12, size=16)  # few entries, many repeated
            iql._step_toward(q, flat, gen.normal(size=16), 0.1)
        tables[whole] = q
    assert tables[0].tobytes() == tables[10**6].tobytes()
    assert not np.array_equal(tables[0], start)


def test_boltzmann_exploration_draws_from_the_softmax_and_cools_geometrically():
    import numpy as np

    from mas.agents.rl.config import IQLConfig
    from mas.agents.rl.iql import TabularIQL

    config = IQLConfig(exploration="boltzmann", temperature_start=8.0, temperature_end=0.5, exploration_fraction=1.0)
    learner = TabularIQL(config, 1, 2, 3, "cpu", 0, 100)
    rows = learner.tables[0].rows(np.zeros((20_000, 2), dtype=np.float32))
    learner.tables[0].q[0] = [1.0, 0.0, -1.0]
    mask = np.ones((len(rows), 3), dtype=bool)
    mask[:, 2] = False  # a masked action is never drawn, whatever its value
    drawn = np.bincount(learner._policy(0, rows, mask, 1.0), minlength=3) / len(rows)
    assert drawn[2] == 0.0 and drawn[0] == pytest.approx(np.e / (np.e + 1), abs=0.01)
    assert (learner._policy(0, rows, mask, 0.0) == 0).all()  # temperature 0: greedy
    learner.env_steps = 50  # half-way: geometric mean of 8 and 0.5
    assert learner.temperature == pytest.approx(2.0)


def test_boltzmann_is_tabular_only_and_its_bounds_are_named():
    from mas.errors import MasError
    from mas.training.learners import resolve_config

    for policy, message in [(iql(variant="dqn", exploration="boltzmann"), "boltzmann is implemented for the tabular variant only"),
                            (iql(exploration="boltzmann", temperature_start=0.1, temperature_end=1.0), "temperature_end")]:
        with pytest.raises(Exception, match=message):
            scenario = parse_scenario({**PD, "agents": [{"id": "a", "policy": policy}, {"id": "b", "policy": "tit_for_tat"}]})
            resolve_config(scenario, "iql", ["a"], {})
    with pytest.raises(MasError, match="exploration"):
        resolve_config(parse_scenario(PD), "iql", ["a", "b"], {"exploration": "softmax"})
