"""The classic iterated-PD roster: exact textbook match scores for every deterministic
pair over 200 rounds with T=5 R=3 P=1 S=0, and the defining behaviour of the random ones.

Every expected score below is derived by hand in the comment beside it (rounds counted
from 0; "(X,Y)" is the joint move, first player first).
"""

from __future__ import annotations

import copy

import pytest

from mas.episode import EpisodeEngine
from mas.runner import play_episode
from mas.scenario import parse_scenario
from tests.conftest import PD

ROUNDS = 200


def play(first: dict | str, second: dict | str, seed: int = 0, rounds: int = ROUNDS) -> tuple[tuple[float, float], list[tuple[str, str]]]:
    """Scores and the moves of one match between two policy specs."""
    data = copy.deepcopy(PD)
    data["rounds"] = rounds
    data["agents"] = [{"id": "a", "policy": first}, {"id": "b", "policy": second}]
    scenario = parse_scenario(data)
    record = play_episode(EpisodeEngine(scenario), 0, seed)
    moves: dict[int, dict[str, str]] = {}
    for step in record.step_records:
        moves.setdefault(step.round, {})[step.agent] = step.action_name
    return (record.returns["a"], record.returns["b"]), [(m["a"], m["b"]) for _, m in sorted(moves.items())]


# (first, second, first's score, second's score)
TEXTBOOK = [
    # --- always_cooperate ---
    ("always_cooperate", "always_cooperate", 600, 600),  # (C,C) x 200 = 3 x 200
    ("always_cooperate", "always_defect", 0, 1000),  # (C,D) x 200: 0 and 5 x 200
    ("always_cooperate", "tit_for_tat", 600, 600),  # (C,C) throughout
    ("always_cooperate", "tit_for_two_tats", 600, 600),  # (C,C) throughout
    ("always_cooperate", "grim_trigger", 600, 600),  # (C,C) throughout
    ("always_cooperate", "pavlov", 600, 600),  # pavlov: same moves -> stay C
    ("always_cooperate", "suspicious_tit_for_tat", 597, 602),  # (C,D) once: 0/5, then (C,C) x 199 = 597
    ("always_cooperate", "alternator", 300, 800),  # even rounds (C,C) x 100: 300/300; odd (C,D) x 100: 0/500
    # tester: round 0 D (5), rounds 1-2 C (3+3), then D on odd rounds 3..199 (99 x 5) and C on even
    # rounds 4..198 (98 x 3): tester 5+6+495+294 = 800; always_cooperate 0+6+0+294 = 300
    ("always_cooperate", "tester", 300, 800),
    # --- always_defect ---
    ("always_defect", "always_defect", 200, 200),  # (D,D) x 200
    ("always_defect", "tit_for_tat", 204, 199),  # (D,C): 5/0, then (D,D) x 199
    ("always_defect", "tit_for_two_tats", 208, 198),  # TF2T forgives one: (D,C) x 2 = 10/0, then (D,D) x 198
    ("always_defect", "grim_trigger", 204, 199),  # (D,C), then grim defects for ever: (D,D) x 199
    # pavlov: C, then (D,C) differ -> D, (D,D) same -> C, ...: C on even rounds, D on odd.
    # even (D,C) x 100: 500/0; odd (D,D) x 100: 100/100
    ("always_defect", "pavlov", 600, 100),
    ("always_defect", "suspicious_tit_for_tat", 200, 200),  # (D,D) x 200
    ("always_defect", "alternator", 600, 100),  # even (D,C) x 100: 500/0; odd (D,D) x 100: 100/100
    # tester: (D,D) 1/1; round 1 apology (D,C) 5/0; then tit for tat: (D,D) x 198
    ("always_defect", "tester", 204, 199),
    # --- tit_for_tat ---
    ("tit_for_tat", "tit_for_tat", 600, 600),
    ("tit_for_tat", "tit_for_two_tats", 600, 600),
    ("tit_for_tat", "grim_trigger", 600, 600),
    ("tit_for_tat", "pavlov", 600, 600),
    # STFT opens D, then each copies the other: (C,D),(D,C),(C,D),... 100 of each: 0+500 vs 500+0
    ("tit_for_tat", "suspicious_tit_for_tat", 500, 500),
    # (C,C) in round 0; then TFT echoes the alternator one round late: odd rounds (C,D) x 100 = 0/500,
    # even rounds 2..198 (D,C) x 99 = 495/0. TFT 3+0+495 = 498, alternator 3+500+0 = 503
    ("tit_for_tat", "alternator", 498, 503),
    # (C,D) 0/5; (D,C) 5/0 (tester still probing plays C, TFT retaliates); round 2 tester apologises
    # (C,C) and TFT copies its C: (C,C) x 198 = 594 each. Both 599
    ("tit_for_tat", "tester", 599, 599),
    # --- tit_for_two_tats ---
    ("tit_for_two_tats", "tit_for_two_tats", 600, 600),
    ("tit_for_two_tats", "grim_trigger", 600, 600),
    ("tit_for_two_tats", "pavlov", 600, 600),
    # (C,D) once (one defection is forgiven), STFT copies C: (C,C) x 199. 597 vs 5+597
    ("tit_for_two_tats", "suspicious_tit_for_tat", 597, 602),
    ("tit_for_two_tats", "alternator", 300, 800),  # never two defections in a row: TF2T is always C
    ("tit_for_two_tats", "tester", 300, 800),  # tester never defects twice in a row and sees no defection: as vs ALLC
    # --- grim_trigger ---
    ("grim_trigger", "grim_trigger", 600, 600),
    ("grim_trigger", "pavlov", 600, 600),
    # (C,D) 0/5; grim then D for ever, STFT copies C once: (D,C) 5/0; then (D,D) x 198: 203 each
    ("grim_trigger", "suspicious_tit_for_tat", 203, 203),
    # (C,C) 3/3; (C,D) 0/5; then grim D for ever: even rounds 2..198 (D,C) x 99 = 495/0,
    # odd rounds 3..199 (D,D) x 99 = 99/99. Grim 3+0+495+99 = 597, alternator 3+5+0+99 = 107
    ("grim_trigger", "alternator", 597, 107),
    # (C,D) 0/5; (D,C) 5/0; round 2 apology (D,C) 5/0; then tester copies D: (D,D) x 197.
    # Grim 0+5+5+197 = 207, tester 5+0+0+197 = 202
    ("grim_trigger", "tester", 207, 202),
    # --- pavlov ---
    ("pavlov", "pavlov", 600, 600),
    # cycle of 3 from round 0: (C,D) 0/5, (D,C) 5/0, (D,D) 1/1. Rounds = 0 mod 3: 67, = 1: 67, = 2: 66.
    # Pavlov 0 + 335 + 66 = 401, STFT 335 + 0 + 66 = 401
    ("pavlov", "suspicious_tit_for_tat", 401, 401),
    # cycle of 4 from round 0: (C,C),(C,D),(D,C),(D,D): 9 each per cycle, 50 cycles = 450 each
    ("pavlov", "alternator", 450, 450),
    # (C,D) 0/5; (D,C) 5/0 (tester probing C); (D,C) 5/0 (apology); then tester plays tit for tat and
    # a cycle of 3 from round 3: (D,D) 1/1, (C,D) 0/5, (D,C) 5/0. Rounds 3..199 = 65 cycles (390 each)
    # + rounds 198 (D,D) and 199 (C,D). Pavlov 10+390+1+0 = 401, tester 5+390+1+5 = 401
    ("pavlov", "tester", 401, 401),
    # --- suspicious_tit_for_tat ---
    ("suspicious_tit_for_tat", "suspicious_tit_for_tat", 200, 200),  # (D,D) x 200
    # (D,C) 5/0; then STFT copies the alternator one round late: odd rounds (C,D) x 100 = 0/500,
    # even rounds 2..198 (D,C) x 99 = 495/0. STFT 5+0+495 = 500, alternator 0+500+0 = 500
    ("suspicious_tit_for_tat", "alternator", 500, 500),
    # (D,D) 1/1; round 1 tester apologises: (D,C) 5/0; then each copies the other: (C,D) on even rounds
    # 2..198 (99: 0/5) and (D,C) on odd rounds 3..199 (99: 5/0). STFT 1+5+495 = 501, tester 1+0+495 = 496
    ("suspicious_tit_for_tat", "tester", 501, 496),
    # --- alternator ---
    ("alternator", "alternator", 400, 400),  # (C,C) x 100 + (D,D) x 100
    # (C,D) 0/5; (D,C) 5/0 (tester probing C); (C,C) 3/3 (apology); then tester copies: odd rounds
    # 3..199 (D,C) x 99 = 495/0, even rounds 4..198 (C,D) x 98 = 0/490. Alternator 8+495 = 503, tester 8+490 = 498
    ("alternator", "tester", 503, 498),
    # --- tester ---
    ("tester", "tester", 598, 598),  # (D,D) 1/1; both apologise (C,C) and copy C: (C,C) x 199 = 597
]


@pytest.mark.parametrize("first, second, first_score, second_score", TEXTBOOK, ids=[f"{a}-{b}" for a, b, *_ in TEXTBOOK])
def test_textbook_match_scores(first: str, second: str, first_score: int, second_score: int) -> None:
    assert play(first, second)[0] == (first_score, second_score)
    # the seat does not matter: the same match with seats exchanged mirrors the scores
    assert play(second, first)[0] == (second_score, first_score)


def test_every_deterministic_pair_is_covered() -> None:
    deterministic = {"always_cooperate", "always_defect", "tit_for_tat", "tit_for_two_tats", "grim_trigger", "pavlov",
                     "suspicious_tit_for_tat", "alternator", "tester"}
    pairs = {frozenset((a, b)) for a, b, *_ in TEXTBOOK}
    assert pairs == {frozenset((a, b)) for a in deterministic for b in deterministic}


def test_tester_probes_then_exploits_a_sucker() -> None:
    _, moves = play("tester", "always_cooperate", rounds=10)
    assert "".join(m[0] for m in moves) == "DCCDCDCDCD"


def test_tester_apologises_once_then_plays_tit_for_tat() -> None:
    # always_defect defects in round 0: apology C in round 1, then copies D
    _, moves = play("tester", "always_defect", rounds=6)
    assert "".join(m[0] for m in moves) == "DCDDDD"
    # the alternator first defects in round 1: tester apologises in round 2 and copies from
    # round 3 (C, the alternator's round-2 move, where the probe pattern would defect)
    _, moves = play("tester", "alternator", rounds=6)
    assert "".join(m[0] for m in moves) == "DCCCDC"


def test_joss_defects_after_a_defection_and_sneaks_about_one_time_in_ten() -> None:
    # against always_defect the random part never matters: (C,D) then (D,D) x 199
    assert play("joss", "always_defect", seed=3)[0] == (199, 204)
    _, moves = play("joss", "always_cooperate", seed=5, rounds=2000)
    assert moves[0][0] == "C"
    sneaky = sum(m[0] == "D" for m in moves[1:]) / 1999
    assert 0.08 < sneaky < 0.12  # binomial(1999, 0.1): sd 0.0067
    _, none = play({"type": "joss", "sneakiness": 0.0}, "always_cooperate", rounds=50)
    assert all(m[0] == "C" for m in none)


def test_random_strategies_are_fixed_by_the_seed_and_differ_across_seeds() -> None:
    for spec in ({"type": "random", "p": 0.5}, "joss", {"type": "generous_tit_for_tat", "generosity": 0.5}):
        same_a, same_b = play(spec, "alternator", seed=11)[1], play(spec, "alternator", seed=11)[1]
        assert same_a == same_b
        assert play(spec, "alternator", seed=12)[1] != same_a


def test_generous_tit_for_tat_forgives_at_its_rate() -> None:
    _, moves = play({"type": "generous_tit_for_tat", "generosity": 1 / 3}, "always_defect", seed=2, rounds=3000)
    forgiving = sum(m[0] == "C" for m in moves[1:]) / 2999
    assert abs(forgiving - 1 / 3) < 0.03  # binomial sd 0.0086
