"""The grid world by hand: maps, moves, apples and their regrowth, tagging, goals, what an
agent sees, the social-outcome metrics, and value iteration for the one-agent maze."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mas.analysis import grid_metrics as gm
from mas.errors import ScenarioError
from mas.games.grid import DOWN, LEFT, RIGHT, STAY, TAG, UP, GridConfig, GridGame
from mas.games.grid_map import count_near, parse_map
from mas.scenario import load_scenario, parse_scenario
from mas.solve.mdp import value_iteration


def game(rows: list[str], n: int = 1, **params) -> GridGame:
    return GridGame(GridConfig(map=rows, **params), n)


def place(g: GridGame, cells: list[tuple[int, int]], apples: list[tuple[int, int]] | None = None, facing=None):
    """A batch-of-one state with agents at `cells` (row, col) and apples where given
    (default: the map's)."""
    state = g.reset(1, np.random.default_rng(0))
    state["pos"] = np.array([[r * g.map.width + c for r, c in cells]])
    if apples is not None:
        state["apples"] = np.zeros_like(state["apples"])
        for r, c in apples:
            state["apples"][0, r * g.map.width + c] = True
    if facing is not None:
        state["facing"] = np.array([facing])
    return state


def cells_of(g: GridGame, state) -> list:
    return [None if p < 0 else divmod(int(p), g.map.width) for p in state["pos"][0]]


def step(g: GridGame, state, actions: list[int], seed: int = 0):
    return g.step(state, np.array([actions]), np.random.default_rng(seed))


# ----- maps -------------------------------------------------------------------------------
@pytest.mark.parametrize("rows, fragment", [
    (["#S#", "##"], "row 1 has 2 cells, row 0 has 3"),
    (["#Sx#"], "row 0, column 2: unknown cell 'x'"),
    (["#..#"], "no spawn point"),
])
def test_bad_maps_are_one_line_errors_naming_the_cell(rows, fragment):
    with pytest.raises(ScenarioError, match=fragment):
        parse_scenario({"name": "g", "game": {"kind": "grid", "map": rows}, "agents": [{"id": "a", "policy": "random"}]})


def test_more_agents_than_spawn_points_is_an_error():
    data = {"name": "g", "game": {"kind": "grid", "map": ["S.S"]}, "agents": [{"id": "a", "count": 3, "policy": "random"}]}
    with pytest.raises(ScenarioError, match="2 spawn point"):
        parse_scenario(data)


# ----- moves -------------------------------------------------------------------------------
def test_walls_block_and_turn_the_agent():
    g = game(["###", "#S#", "#.#", "###"])
    state = place(g, [(1, 1)])
    after = step(g, state, [UP]).state
    assert cells_of(g, after) == [(1, 1)] and after["facing"][0, 0] == 0  # faces up
    after = step(g, after, [DOWN]).state
    assert cells_of(g, after) == [(2, 1)]


def test_two_agents_never_share_a_cell():
    g = game(["S.S"], n=2)
    winners = set()
    for seed in range(20):  # both step into the middle: one at random gets it
        after = step(g, place(g, [(0, 0), (0, 2)]), [RIGHT, LEFT], seed).state
        cells = cells_of(g, after)
        assert (0, 1) in cells and len(set(cells)) == 2
        winners.add(cells.index((0, 1)))
    assert winners == {0, 1}
    # into a cell whose occupant stays: blocked; a swap: both blocked
    assert cells_of(g, step(g, place(g, [(0, 0), (0, 1)]), [RIGHT, STAY]).state) == [(0, 0), (0, 1)]
    assert cells_of(g, step(g, place(g, [(0, 0), (0, 1)]), [RIGHT, LEFT]).state) == [(0, 0), (0, 1)]
    # a chain moving the same way all moves
    g3 = game(["SSS."], n=3)
    assert cells_of(g3, step(g3, place(g3, [(0, 0), (0, 1), (0, 2)]), [RIGHT, RIGHT, RIGHT]).state) == [(0, 1), (0, 2), (0, 3)]


# ----- apples ------------------------------------------------------------------------------
def test_stepping_on_an_apple_collects_it():
    g = game(["S@."], apple_reward=2.5, regrowth=[0.0])
    result = step(g, place(g, [(0, 0)]), [RIGHT])
    assert result.rewards.tolist() == [[2.5]]
    assert not result.state["apples"][0, 1] and result.state["collected"][0, 0] == 1
    assert step(g, result.state, [RIGHT]).rewards.tolist() == [[0.0]]


def test_count_near_counts_apples_within_the_euclidean_radius():
    layer = np.zeros((1, 5, 5), dtype=bool)
    layer[0, 2, 2] = True  # one apple in the middle
    near = count_near(layer, 2)[0]
    # distance <= 2: the 12 cells of the disk around it (itself excluded), not the corners (2, 2)
    assert near.sum() == 12 and near[2, 2] == 0 and near[0, 2] == 1 and near[1, 1] == 1 and near[0, 0] == 0 and near[0, 1] == 0


def test_regrowth_needs_apples_nearby_and_a_free_cell():
    # regrowth [0, 1]: certain next to an apple, never without one
    g = game(["S@@.@@@@"], regrowth=[0.0, 1.0], regrowth_radius=1)
    state = place(g, [(0, 0)], apples=[(0, 1)])  # cells 2 (next to an apple), 4-7 bare
    after = step(g, state, [STAY]).state
    assert after["apples"][0].nonzero()[0].tolist() == [1, 2]  # only the neighbour of the apple regrew
    # an agent standing on an empty apple cell keeps it from regrowing
    g2 = game(["@S"], regrowth=[0.0, 1.0], regrowth_radius=1)
    s2 = place(g2, [(0, 0)], apples=[(0, 1)])
    s2["apples"][0] = [False, False]
    assert not step(g2, s2, [STAY]).state["apples"][0].any()


def test_regrowth_probability_rises_with_the_apples_nearby():
    # apple cells 1..6, radius 1: an empty cell regrows with p = 0.1 next to one apple and
    # p = 0.5 between two, never with none; 4000 copies measure it
    g = game(["S@@@@@@"], regrowth=[0.0, 0.1, 0.5], regrowth_radius=1)
    rng = np.random.default_rng(1)
    state = g.reset(4000, rng)
    stay = np.zeros((4000, 1), dtype=np.int64)
    state["apples"][:] = False
    state["apples"][:, [2, 6]] = True  # cells 1, 3 and 5 have one apple next to them, cell 4 none
    after = g.step(state, stay, rng).state["apples"]
    assert [after[:, c].mean() for c in (1, 3, 5)] == [pytest.approx(0.1, abs=0.02)] * 3 and not after[:, 4].any()
    state["apples"][:] = False
    state["apples"][:, [2, 4]] = True  # cell 3 between two apples
    after = g.step(state, stay, rng).state["apples"]
    assert after[:, 3].mean() == pytest.approx(0.5, abs=0.03) and after[:, 1].mean() == pytest.approx(0.1, abs=0.02)


# ----- tagging -----------------------------------------------------------------------------
def test_a_beam_tags_the_first_agent_ahead_out_for_the_timeout():
    g = game(["S.SS.S"], n=3, tag_timeout=2, beam_length=4, regrowth=[0.0])
    state = place(g, [(0, 0), (0, 2), (0, 3)], facing=[1, 0, 0])  # agent 0 faces right
    result = step(g, state, [TAG, STAY, STAY])
    assert result.state["tagged"][0].tolist() == [False, True, False]  # the beam stops at agent 1
    assert cells_of(g, result.state)[1] is None and result.state["out"][0, 1] == 2
    assert result.state["beam"][0].nonzero()[0].tolist() == [1, 2]
    assert g.action_mask(result.state)[0, 1].tolist() == [1, 0, 0, 0, 0, 0]  # off the map: stay only
    later = step(g, result.state, [STAY, STAY, STAY]).state
    assert cells_of(g, later)[1] is None and later["out"][0, 1] == 1
    back = step(g, later, [STAY, STAY, STAY]).state
    assert back["out"][0, 1] == 0 and cells_of(g, back)[1] in [(0, 2), (0, 5)]  # a free spawn point


def test_walls_stop_beams_and_without_tagging_there_is_no_tag_action():
    g = game(["S#S"], n=2, tag_timeout=5)
    result = step(g, place(g, [(0, 0), (0, 2)], facing=[1, 0]), [TAG, STAY])
    assert not result.state["tagged"].any()
    assert game(["S"]).action_names(0) == ["stay", "up", "down", "left", "right"]


# ----- goals -------------------------------------------------------------------------------
def test_reaching_a_goal_pays_and_the_episode_ends_when_all_arrived():
    g = game(["SG", "S."], n=2, goal_reward=1.0, step_reward=-0.1)
    state = place(g, [(0, 0), (1, 0)])
    first = step(g, state, [RIGHT, STAY])
    assert first.rewards.tolist() == [[pytest.approx(0.9), pytest.approx(-0.1)]]
    assert first.state["finished"][0].tolist() == [True, False] and not first.terminated[0]
    second = step(g, first.state, [STAY, UP])  # agent 1 moves up... into (0, 0), then right
    third = step(g, second.state, [STAY, RIGHT])
    assert second.rewards[0, 0] == 0.0 and third.terminated[0]


# ----- what an agent sees ------------------------------------------------------------------
def test_the_egocentric_window_by_hand():
    g = game(["#####", "#S@G#", "#S..#", "#####"], n=2, view_radius=1)
    state = place(g, [(1, 1), (2, 1)], apples=[(1, 2)])
    window = g.windows(state)[0, 0]  # [channels wall, apple, agent, goal][3][3] around (1, 1)
    assert window[0].tolist() == [[1, 1, 1], [1, 0, 0], [1, 0, 0]]
    assert window[1].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert window[2].tolist() == [[0, 0, 0], [0, 0, 0], [0, 1, 0]]  # the other agent below, not itself
    obs = g.observe(state)[0, 0]
    assert obs.shape == (g.obs_dim,) and obs[-2:].tolist() == [pytest.approx(1 / 3), pytest.approx(1 / 4)]
    assert "#Y@" in g.situation_text(state, 0, 0) and "#2." in g.situation_text(state, 0, 0)
    far = game(["S" + "." * 9], view_radius=1)
    assert far.capabilities.hidden_information and not game(["S."], view_radius=1).capabilities.hidden_information
    alone = game(["S"], view_radius=1)
    assert alone.windows(place(alone, [(0, 0)]))[0, 0, 0].sum() == 8  # outside the map is wall


def test_rgb_array_draws_agents_and_apples():
    from mas.games.grid_render import AGENT_COLOURS, CELL_PX

    g = game(["S@"], regrowth=[0.0])
    image = g.rgb_array(place(g, [(0, 0)]), 0)
    assert image.shape == (CELL_PX, 2 * CELL_PX, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == AGENT_COLOURS[0] and image[0, CELL_PX, 1] > image[0, CELL_PX, 0]  # green apple



def test_the_picture_is_rebuilt_exactly_from_the_stored_summary():
    import json

    g = game(["S@@.SS", "..@@.."], n=3, tag_timeout=2, beam_length=4, regrowth=[0.0])
    state = place(g, [(0, 0), (0, 4), (0, 5)], facing=[1, 3, 0])
    for actions in ([RIGHT, TAG, STAY], [STAY, STAY, DOWN], [DOWN, STAY, LEFT]):  # eat, tag (beam, one out), move
        state = step(g, state, actions).state
        stored = json.loads(json.dumps(g.summary(state, 0)))  # as the run store keeps it
        np.testing.assert_array_equal(g.summary_rgb(stored), g.rgb_array(state, 0))
    assert g.summary_rgb({"positions": []}) is None  # not this game's summary
    assert "_apple_bits" not in game(["S.G"]).summary(place(game(["S.G"]), [(0, 0)]), 0)  # a maze stores no layers


# ----- metrics -----------------------------------------------------------------------------
def test_social_outcome_metrics_by_hand():
    episodes = pd.DataFrame({"episode": [0, 0], "agent": ["a", "b"], "return": [3.0, 1.0], "rounds": [4, 4]})
    steps = pd.DataFrame({"episode": [0] * 4, "round": [0, 2, 3, 1], "agent": ["a", "a", "a", "b"], "reward": [1, 1, 1, 1]})
    states = pd.DataFrame({"episode": [0] * 4, "out": [[0, 0], [0, 2], [0, 1], [0, 0]]})
    assert gm.efficiency(episodes).tolist() == [1.0]  # (3 + 1) / 4 rounds
    # a rewarded in rounds 1, 3, 4 (mean 8/3), b in round 2: (8/3 + 2) / 2
    assert gm.sustainability(steps).tolist() == [pytest.approx((8 / 3 + 2) / 2)]
    assert gm.peace(states, episodes, 2).tolist() == [pytest.approx((2 * 4 - 2) / 4)]


# ----- the maze as an MDP, and Q-learning on it ----------------------------------------------
def test_value_iteration_on_the_builtin_maze_by_hand():
    scenario = load_scenario("grid_maze")
    g = GridGame(scenario.game, 1)
    mdp = g.tabular_mdp()
    solution = value_iteration(mdp, 0.95)
    # 10 steps to the goal: nine of -0.01, then 1 - 0.01, discounted
    expected = sum(-0.01 * 0.95**t for t in range(9)) + 0.99 * 0.95**9
    assert solution.steps_to_end[mdp.start] == 10 and solution.values[mdp.start] == pytest.approx(expected)
    assert game(["S", "S", "G"], n=2).tabular_mdp() is None and game(["S@G"]).tabular_mdp() is None


def test_tabular_q_learning_finds_the_shortest_path_and_the_exact_values(tmp_path):
    """Budget: 15,000 environment steps (16 copies); the greedy walker then needs the 10
    steps of the shortest path, and its Q values along that path equal value iteration's."""
    pytest.importorskip("torch")
    from mas.analysis.load import load_run
    from mas.training.checkpoint import load_checkpoint
    from mas.training.run import train

    scenario = load_scenario("grid_maze")
    result = train(scenario, "iql", 15_000, 0, tmp_path / "run", device="cpu", final_episodes=1, tensorboard=False)
    assert load_run(tmp_path / "run" / "eval").episodes["rounds"].tolist() == [10]
    g = GridGame(scenario.game, 1)
    mdp = g.tabular_mdp()
    exact = value_iteration(mdp, 0.95)
    table = load_checkpoint(result.checkpoint)["learner"]["tables"][0]
    learned = {}
    for obs, q in zip(table["obs"].numpy(), table["q"].numpy()):
        if obs.any():  # off the map (arrived) is all zeros
            row, col = np.rint(obs[-2:] * [g.map.height - 1, g.map.width - 1]).astype(int)
            learned[f"row {row}, column {col}"] = q.max()
    state, on_path = mdp.start, []
    while True:  # the optimal path from the start
        on_path.append(state)
        action = exact.policy[state]
        if mdp.ends[state, action]:
            break
        state = mdp.next_state[state, action]
    assert len(on_path) == 10
    for s in on_path:
        assert learned[mdp.labels[s]] == pytest.approx(exact.values[s], abs=1e-3), mdp.labels[s]


def test_the_pettingzoo_env_renders_the_grid_as_an_rgb_array():
    import mas

    env = mas.make_env("grid_harvest", seed=0, render_mode="rgb_array")
    image = env.render()
    assert image.shape == (8 * 8, 20 * 8, 3) and image.dtype == np.uint8
    assert mas.make_env("prisoners_dilemma", seed=0, render_mode="rgb_array").render() is None
