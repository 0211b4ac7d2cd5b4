"""Every numeric option of the `mas` command refuses out-of-range values with one line
naming the flag (argparse, exit 2), before any work starts."""

from __future__ import annotations

import pytest

from mas.cli import build_parser, main

BAD = [
    (["run", "prisoners_dilemma"], "--episodes", "-5", "expected a number >= 1, got -5"),
    (["run", "prisoners_dilemma"], "--episodes", "0", "expected a number >= 1, got 0"),
    (["run", "prisoners_dilemma"], "--seed", "-1", "expected a seed >= 0, got -1"),
    (["run", "prisoners_dilemma"], "--episodes", "1e3", "expected a whole number, got '1e3'"),
    (["transcript", "runs/x"], "--round", "0", "expected a number >= 1, got 0"),
    (["transcript", "runs/x"], "--episode", "-1", "expected a number >= 0, got -1"),
    (["tournament", "t.yaml"], "--workers", "0", "expected a number >= 1, got 0"),
    (["tournament", "t.yaml"], "--workers", "-2", "expected a number >= 1, got -2"),
    (["tournament", "t.yaml"], "--seed", "-3", "expected a seed >= 0, got -3"),
    (["train", "prisoners_dilemma"], "--steps", "-5", "expected a number >= 1, got -5"),
    (["train", "prisoners_dilemma"], "--steps", "0", "expected a number >= 1, got 0"),
    (["train", "prisoners_dilemma"], "--seed", "-1", "expected a seed >= 0, got -1"),
    (["train", "prisoners_dilemma"], "--eval-every", "0", "expected a number >= 1, got 0"),
    (["train", "prisoners_dilemma"], "--eval-episodes", "0", "expected a number >= 1, got 0"),
    (["train", "prisoners_dilemma"], "--eval-episodes", "1000000000", "expected a number <= 100,000"),
    (["train", "prisoners_dilemma"], "--episodes", "-5", "expected a number >= 0, got -5"),
    (["report", "runs/x"], "--episodes", "0", "expected a number >= 1, got 0"),
]


@pytest.mark.parametrize("command, flag, value, message", BAD, ids=[f"{c[0]} {f} {v}" for c, f, v, _ in BAD])
def test_out_of_range_numbers_are_one_line_errors_naming_the_flag(capsys, command, flag, value, message):
    with pytest.raises(SystemExit) as stop:
        main([*command, flag, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {flag}: {message}" in err, err


def test_zero_stays_valid_where_it_means_none():
    args = build_parser().parse_args(["train", "prisoners_dilemma", "--episodes", "0", "--seed", "0"])
    assert (args.episodes, args.seed) == (0, 0)
    assert build_parser().parse_args(["transcript", "runs/x", "--episode", "0"]).episode == 0
