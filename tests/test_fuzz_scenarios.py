"""Property-based fuzzing of scenario and tournament files (Hypothesis).

Every built-in file, mutated structurally (see tests/fuzz.py), must end in a valid
scenario or a clean one-line error within a time and memory bound; small valid scripted
mutants are also played for one episode into a store. The suite runs a CI-sized budget;
MAS_FUZZ_EXAMPLES=5000 runs a long one by hand (benchmarks/fuzz_scenarios.py prints figures).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzz

EXAMPLES = int(os.environ.get("MAS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 15, deadline=None, derandomize=not EXAMPLES, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.mark.parametrize("path", fuzz.SCENARIO_FILES, ids=lambda p: p.stem)
@FUZZ
@given(data=st.data())
def test_mutated_scenario_is_valid_or_a_clean_error(path: Path, data: st.DataObject) -> None:
    mutant = data.draw(fuzz.mutant(fuzz.load_base(path)))
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "mutant.yaml"
        file.write_text(fuzz.dump(mutant), encoding="utf-8")
        fuzz.check(file, tournament=False, play_dir=Path(tmp) / "run")


@pytest.mark.parametrize("path", fuzz.TOURNAMENT_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("inline", [False, True], ids=["path", "inline"])
@settings(FUZZ, max_examples=EXAMPLES or 30)
@given(data=st.data())
def test_mutated_tournament_is_valid_or_a_clean_error(path: Path, inline: bool, data: st.DataObject) -> None:
    mutant = data.draw(fuzz.mutant(fuzz.load_base(path, inline=inline)))
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "mutant.yaml"
        file.write_text(fuzz.dump(mutant), encoding="utf-8")
        fuzz.check(file, tournament=True)


def _limited_memory() -> None:  # runs in the child: 2 GiB of address space at most
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))


@settings(FUZZ, max_examples=EXAMPLES // 50 or 3)
@given(data=st.data())
def test_mas_validate_on_mutants_exits_cleanly_under_a_memory_limit(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(fuzz.SCENARIO_FILES))
    mutant = data.draw(fuzz.mutant(fuzz.load_base(path)))
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "mutant.yaml"
        file.write_text(fuzz.dump(mutant), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", "mas.cli", "validate", str(file)],
            capture_output=True, text=True, timeout=60, preexec_fn=_limited_memory,
        )
    assert proc.returncode in (0, 1), proc.stderr[-500:]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-500:]
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith(str(file)) for line in lines), proc.stdout[:500]
