"""The documentation site builds with warnings as errors (`mkdocs build --strict`), and its
generated pages cover every game and every scenario field."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mas import registry
from mas.scenario import scenario_json_schema

ROOT = Path(__file__).resolve().parents[1]
MISSING = [m for m in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_gen_files")
           if importlib.util.find_spec(m.split(".")[0]) is None]


@pytest.mark.skipif(bool(MISSING), reason=f"the docs extra is not installed (missing {', '.join(MISSING)}): pip install -e '.[docs]'")
def test_docs_build_strict(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    for kind, (config, _) in registry.GAMES.items():  # one generated page per game, with its config fields
        page = (site / "games" / kind / "index.html").read_text(encoding="utf-8")
        assert f"<code>{kind}</code>" in page and "Configuration" in page
    reference = (site / "reference" / "scenario" / "index.html").read_text(encoding="utf-8")
    schema = scenario_json_schema()
    assert all(f'id="{name.lower()}"' in reference for name in schema["$defs"])
    assert all(f"<code>{field}</code>" in reference for field in schema["properties"])
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("scenario.load_scenario", "env.make_env", "runner.run", "analysis.load.load_run", "episode.EpisodeEngine",
                 "records.DecisionRecord", "games.base.Game", "games.base.Capabilities", "games.base.GameInfo", "agents.base.Policy"):
        assert f'id="mas.{name}"' in api, name
    assert "gen_pages.py" not in {p.name for p in site.rglob("*")}
