"""The `axelrod` extra: the library's strategies play through mas's engine and store with
exactly the scores the library gives when it plays alone."""

from __future__ import annotations

import itertools
import warnings

import pytest

from mas.errors import ScenarioError
from mas.runner import run
from mas.scenario import parse_scenario

axl = pytest.importorskip("axelrod")

ROUNDS = 200
PD = {"kind": "normal_form", "actions": ["C", "D"], "payoffs": {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]},
      "cooperate": "C", "defect": "D"}
#: deterministic strategies; the last three read the match length or the payoffs (told through
#: `match_length` and the game's table), the others remember from 0 rounds to the whole game
DETERMINISTIC = ["Tit For Tat", "Defector", "Grudger", "Tit For 2 Tats", "Win-Stay Lose-Shift", "Alternator",
                 "First by Davis", "First by Nydegger", "First by Shubik",
                 "First by Tideman and Chieruzzi", "First by Stein and Rapoport", "First by Downing"]


def scenario(a: object, b: object, rounds: int = ROUNDS, game: dict | None = None) -> object:
    return parse_scenario({"name": "axl", "game": game or PD, "rounds": rounds, "comms": {"mode": "off"},
                           "agents": [{"id": "a", "policy": a}, {"id": "b", "policy": b}]})


def entrant(name: str) -> dict:
    return {"type": "axelrod", "strategy": name, "match_length": ROUNDS}


def library_scores(a: str, b: str) -> tuple[float, float]:
    by_name = {cls.name: cls for cls in axl.all_strategies}
    match = axl.Match([by_name[a](), by_name[b]()], turns=ROUNDS)
    match.play()
    return tuple(float(x) for x in match.final_score())


def test_strategies_classified_deterministic() -> None:
    by_name = {cls.name: cls for cls in axl.all_strategies}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not any(axl.Classifiers["stochastic"](by_name[n]()) for n in DETERMINISTIC)


@pytest.mark.parametrize("a,b", list(itertools.combinations_with_replacement(DETERMINISTIC, 2)))
def test_match_scores_equal_the_library_alone(a: str, b: str) -> None:
    returns = run(scenario(entrant(a), entrant(b)), 1, 7)[0].returns
    assert (returns["a"], returns["b"]) == library_scores(a, b)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_mas_tit_for_tat_meets_axelrod_strategies_as_the_library_does(name: str) -> None:
    returns = run(scenario("tit_for_tat", entrant(name)), 1, 3)[0].returns
    assert (returns["a"], returns["b"]) == library_scores("Tit For Tat", name)


def test_length_is_what_the_spec_tells() -> None:
    # Stein and Rapoport defects in the last two rounds only when it knows the length
    known = run(scenario(entrant("First by Stein and Rapoport"), "always_cooperate"), 1, 0)[0].returns
    unknown = run(scenario({"type": "axelrod", "strategy": "First by Stein and Rapoport"}, "always_cooperate"), 1, 0)[0].returns
    assert known["a"] == unknown["a"] + 4  # two rounds of T=5 instead of R=3


def test_stochastic_strategies_follow_the_run_seed() -> None:
    pair = scenario({"type": "axelrod", "strategy": "Random"}, {"type": "axelrod", "strategy": "First by Joss"})
    first = [r.returns for r in run(pair, 4, 11)]
    assert first == [r.returns for r in run(pair, 4, 11)]  # reproducible from the seed
    assert len({tuple(r.values()) for r in first}) > 1  # episodes draw differently
    assert first != [r.returns for r in run(pair, 4, 12)]


def test_talk_steps_reuse_the_rounds_move() -> None:
    # with talk steps the policy is asked several times a round; the history must grow once a round
    talk = parse_scenario({"name": "axl", "game": PD, "rounds": ROUNDS, "comms": {"mode": "broadcast", "talk_rounds": 2},
                           "agents": [{"id": "a", "policy": entrant("First by Nydegger")},
                                      {"id": "b", "policy": entrant("Tit For 2 Tats")}]})
    returns = run(talk, 1, 0)[0].returns
    assert (returns["a"], returns["b"]) == library_scores("First by Nydegger", "Tit For 2 Tats")


def test_unknown_strategy_is_one_line_with_did_you_mean() -> None:
    with pytest.raises(ScenarioError) as err:
        scenario({"type": "axelrod", "strategy": "Tit For Two Tats"}, "tit_for_tat")
    message = str(err.value)
    assert "unknown axelrod strategy 'Tit For Two Tats'" in message and "did you mean 'Tit For 2 Tats'" in message
    assert "\n" not in message


def test_strategies_that_read_the_opponents_code_are_refused() -> None:
    with pytest.raises(ScenarioError, match="reads or changes its opponent's code"):
        scenario({"type": "axelrod", "strategy": "Darwin"}, "tit_for_tat")


def test_games_other_than_two_player_cooperate_defect_are_refused() -> None:
    three = dict(PD, actions=["C", "D", "X"], payoffs=[[[1, 1]] * 3] * 3)
    with pytest.raises(ScenarioError, match="two-player simultaneous games whose only actions are cooperate and defect"):
        scenario(entrant("Tit For Tat"), "tit_for_tat", game=three)


def test_strategies_are_told_the_scenarios_payoffs() -> None:
    # Downing weighs the payoffs; under R=2.5 S=0 T=3 P=2 it plays differently than under 3/0/5/1
    payoffs = {"C,C": [2.5, 2.5], "C,D": [0, 3], "D,C": [3, 0], "D,D": [2, 2]}
    returns = run(scenario(entrant("First by Downing"), entrant("Win-Stay Lose-Shift"), game=dict(PD, payoffs=payoffs)), 1, 0)[0].returns
    told, default = (axl.Match([axl.FirstByDowning(), axl.WinStayLoseShift()], turns=ROUNDS, game=game)
                     for game in (axl.Game(r=2.5, s=0, t=3, p=2), axl.DefaultGame))
    told.play()
    default.play()
    assert told.result != default.result  # the payoffs matter to this pair
    assert (returns["a"], returns["b"]) == tuple(float(x) for x in told.final_score())


def test_without_the_package_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from mas.agents import axelrod_policy

    axelrod_policy._strategies.cache_clear()
    monkeypatch.setitem(sys.modules, "axelrod", None)  # what `import axelrod` meets when it is not installed
    try:
        with pytest.raises(ScenarioError, match=r"needs the 'axelrod' package: pip install 'mas-sim\[axelrod\]'"):
            scenario(entrant("Tit For Tat"), "tit_for_tat")
    finally:
        axelrod_policy._strategies.cache_clear()
