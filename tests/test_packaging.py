"""The distribution: the wheel carries the built-in scenarios, tournaments, py.typed and the
licence, and the package finds its scenarios inside itself (importlib.resources), not
beside the repository. `.ci/wheel_check.sh` installs the wheel into a fresh environment
and runs it; this test checks what the wheel holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mas
from mas import registry
from mas.tournament import load_tournament

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(mas.__file__).resolve().parent


def test_builtin_scenarios_live_inside_the_package() -> None:
    scenarios = registry.builtin_scenarios()
    assert {"prisoners_dilemma", "commons", "llm_prisoners_dilemma"} <= scenarios.keys()
    assert all(path.parent == PACKAGE / "scenarios" for path in scenarios.values())
    tournaments = registry.builtin_tournaments()
    assert {"axelrod_classic", "llm_personas"} <= tournaments.keys()
    assert all(path.parent == PACKAGE / "scenarios" / "tournaments" for path in tournaments.values())


def test_repository_scenarios_path_still_works() -> None:
    # README, tests and benchmarks name scenarios/...; it is a link to the packaged folder
    link = ROOT / "scenarios"
    assert link.is_symlink() and link.resolve() == (ROOT / "mas" / "scenarios").resolve()
    assert (link / "prisoners_dilemma.yaml").is_file()


def test_builtin_tournament_loads_by_name() -> None:
    tournament = load_tournament("axelrod_classic")
    assert tournament.spec.name == "axelrod_classic"
    assert tournament.base.game.payoffs["D,C"] == [5, 0]  # its relative ../prisoners_dilemma.yaml resolved


def _isolation() -> list[str]:
    """Build with the installed setuptools when it makes wheels by itself (>= 70.1): 3 s
    instead of 9 s for a fresh isolated build environment."""
    try:
        major, minor = (int(x) for x in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return []
    return ["--no-build-isolation"] if (major, minor) >= (70, 1) else []


def test_wheel_holds_scenarios_tournaments_py_typed_and_licence(tmp_path: Path) -> None:
    # build from a copy: an in-tree build/ directory may hold stale files
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "mas", src / "mas", ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *_isolation(), "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("mas_sim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = {f"mas/scenarios/{p.name}" for p in (ROOT / "mas" / "scenarios").glob("*.yaml")}
    expected |= {f"mas/scenarios/tournaments/{p.name}" for p in (ROOT / "mas" / "scenarios" / "tournaments").glob("*.yaml")}
    assert len(expected) > 20
    assert expected <= names, sorted(expected - names)
    assert "mas/py.typed" in names
    assert "mas/analysis/templates/report.html.j2" in names
    assert any(n.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in n for n in names), sorted(n for n in names if "dist-info" in n)
    assert not any(n.startswith("tests/") for n in names)
