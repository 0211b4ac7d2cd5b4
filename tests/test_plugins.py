"""Plugins: a third-party package registers a game, a policy, a metric and an LLM backend
kind through entry points; a scenario file uses them through `mas`. Broken or clashing
plugins are one-line errors.

The plugin (tests/plugin_pkg) is really installed, with pip, into a temporary folder that
the `mas` subprocesses find on PYTHONPATH, so the test environment itself is untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN_SOURCE = Path(__file__).parent / "plugin_pkg"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed demo plugin (package and dist-info with entry points)."""
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(PLUGIN_SOURCE, work / "src")  # the build writes next to the sources
    site = work / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (site / "mas_demo_plugin-0.1.0.dist-info" / "entry_points.txt").is_file()
    return site


def _mas(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    paths = [str(site), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run([sys.executable, "-m", "mas.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


SCENARIO = """\
name: unanimous
game: {kind: unanimity}
rounds: 4
agents:
  - {id: a, policy: always_yes}
  - {id: b, policy: always_yes}
  - {id: c, policy: {type: fixed_action, action: "no"}}
"""


def test_a_scenario_file_plays_the_plugins_game_and_policy(plugin_site: Path, tmp_path: Path) -> None:
    (tmp_path / "unanimous.yaml").write_text(SCENARIO, encoding="utf-8")
    done = _mas(plugin_site, "run", "unanimous.yaml", "--episodes", "2", "--out", "run", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    returns = {agent["id"]: agent["return"]["mean"] for agent in result["agents"]}
    policies = {agent["id"]: agent["policy"] for agent in result["agents"]}
    # a lone "no" gets 1 a round, the yes-sayers among it 0: the plugin game's rules
    assert returns == {"a": 0.0, "b": 0.0, "c": 4.0} and policies["a"] == "always_yes"
    compared = _mas(plugin_site, "compare", "run", "--json", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    metrics = json.loads(compared.stdout)["runs"][0]["metrics"]
    assert metrics["yes share"] == pytest.approx(2 / 3)  # the plugin's metric


def test_plugins_are_listed_and_a_plugin_backend_kind_validates(plugin_site: Path, tmp_path: Path) -> None:
    listed = _mas(plugin_site, "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    catalogue = json.loads(listed.stdout)
    assert {"name": "unanimity", "description": "Unanimity: everyone gets 2 when all say yes; saying no is a safe 1; a lone yes gets 0."} in catalogue["games"]
    assert "always_yes" in {p["name"] for p in catalogue["policies"]}
    (tmp_path / "echo.yaml").write_text(SCENARIO.replace("{id: b, policy: always_yes}", "{id: b, policy: {type: llm, backend: {kind: echo}}}"), encoding="utf-8")
    assert _mas(plugin_site, "validate", "echo.yaml", cwd=tmp_path).returncode == 0
    (tmp_path / "bad.yaml").write_text(SCENARIO.replace("{kind: echo}", "").replace("always_yes}", "always_yess}", 1), encoding="utf-8")
    bad = _mas(plugin_site, "validate", "bad.yaml", cwd=tmp_path)
    assert bad.returncode != 0 and "always_yes" in bad.stdout + bad.stderr  # the plugin's name is suggested


def _fake_distribution(site: Path, name: str, entry_points: str) -> None:
    """An installed distribution as importlib.metadata sees one: a dist-info folder."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


@pytest.mark.parametrize(("entry_points", "message"), [
    ("[mas.policies]\ntit_for_tat = elsewhere:TitForTat\n",
     "mas: error: plugin policy 'tit_for_tat' (mas.policies entry point of bad_plugin) clashes with the built-in policy of that name; rename it"),
    ("[mas.games]\nbroken = no_such_module:Game\n",
     "mas: error: plugin game 'broken' (mas.games entry point of bad_plugin) does not load (no_such_module:Game.config_model): "
     "ModuleNotFoundError: No module named 'no_such_module'"),
])
def test_a_broken_or_clashing_plugin_is_a_one_line_error(tmp_path: Path, entry_points: str, message: str) -> None:
    _fake_distribution(tmp_path / "site", "bad_plugin", entry_points)
    done = _mas(tmp_path / "site", "validate", "prisoners_dilemma", cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip() == message, done.stderr
