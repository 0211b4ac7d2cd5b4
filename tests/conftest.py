"""Shared fixtures: built-in scenario names, a scenario-writing helper, the embedded model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from mas import registry

BUILTIN = sorted(registry.builtin_scenarios())

# `mas run` writes an HTML report and figures after every run (about 3 s); tests that are
# about something else skip it (inherited by CLI subprocesses). tests/test_main_job.py
# checks the report with it unset.
os.environ.setdefault("MAS_NO_REPORT", "1")

# torch's CPU threads shared fairly between xdist workers, here and in CLI subprocesses:
# two workers of two threads each on two cores made small torch tests up to 15x slower
_THREADS = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))


@pytest.fixture(autouse=True, scope="session")
def _share_torch_threads():
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    yield


def _plays_fast(name: str) -> bool:
    import mas

    return not any(a.policy.type in ("llm", "iql", "mappo") for a in mas.load_scenario(name).agents)


# scenarios `mas run` plays in milliseconds: LLM scenarios have their own tests, and
# learners' scenarios are for `mas train` (tests/test_rl_*.py)
FAST_BUILTIN = [name for name in BUILTIN if _plays_fast(name)]


@pytest.fixture
def write_scenario(tmp_path: Path):
    """Write a dict (or raw text) as a YAML scenario file and return its path."""

    def write(content, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
        return path

    return write


PD = {
    "name": "pd",
    "game": {
        "kind": "normal_form",
        "actions": ["C", "D"],
        "payoffs": {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]},
        "cooperate": "C",
        "defect": "D",
    },
    "rounds": 6,
    "agents": [{"id": "a", "policy": "tit_for_tat"}, {"id": "b", "policy": "alternator"}],
}


@pytest.fixture(scope="module")
def loaded():
    """The embedded model (torch's threads are shared between xdist workers above)."""
    from mas.agents.llm.models import load_model

    return load_model()
