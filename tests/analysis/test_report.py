"""The HTML report: content, escaping of agents' text, LLM records, and a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from markupsafe import escape

from mas.analysis.load import load_result, load_run
from mas.analysis.report import build_report, write_report
from tests.analysis.conftest import HOSTILE

#: where the browser test keeps its screenshots for a person to look at (gitignored)
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "test-output"


def test_report_of_a_talk_run_has_every_section(pd_talk_run: Path) -> None:
    page = build_report(load_run(pd_talk_run))
    for section in ("summary", "figures", "tables", "transcript", "scenario"):
        assert f'<section id="{section}">' in page
    assert page.count('<img class="figure"') == 5 and page.count("data:image/png;base64,") == 5
    assert "promise keeping" in page and "tit_for_tat" in page
    assert page.count('<details class="episode"') == 3
    assert "Round 1: I will play C." in page and "Cross me once and I defect forever." in page
    # nothing is fetched from anywhere: no external URLs in src/href, and a CSP forbids them
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "default-src 'none'" in page


def test_agent_text_is_escaped_and_llm_records_are_shown(llm_like_run: Path) -> None:
    page = build_report(load_run(llm_like_run))
    assert HOSTILE not in page and str(escape(HOSTILE)) in page
    assert page.count("<script>") == 1  # only the report's own image check
    # every key of the decision records is rendered: chat prompt, raw reply, status, distribution
    assert "You play the prisoner&#39;s dilemma." in page and "Round 3. Answer C or D." in page
    assert "banana" in page and "fallback" in page and "&#34;C&#34;: 0.7" in page
    assert "fallback action rate" in page  # 1 of 10 action decisions


def test_transcript_is_limited_to_the_first_episodes(pd_talk_run: Path) -> None:
    page = build_report(load_run(pd_talk_run), max_episodes=1)
    assert page.count('<details class="episode"') == 1 and "Showing the first 1 of 3 episodes." in page


def test_tournament_and_training_reports(tournament_dir: Path, tmp_path: Path) -> None:
    page = build_report(load_result(tournament_dir))
    assert "mini: tournament report" in page and page.count('<img class="figure"') == 4
    assert "tit_for_tat" in page and "24.75 [" in page  # rank 1 with its interval
    # matches in the transcript viewer, round by round: tit-for-tat opens with C, always-defect plays D
    assert "Match 0 — scores: tit_for_tat [alice] 30, tit_for_tat [bob] 30" in page
    assert page.count('<details class="episode"') == 12 and "always_defect [bob]</td><td>D" in page  # 6 pairings x 2
    curves = tmp_path / "train"
    curves.mkdir()
    (curves / "curves.csv").write_text("step,seed,return/a\n100,1,1.5\n200,1,2.5\n")
    page = build_report(load_result(curves))
    assert "final training return" in page and page.count('<img class="figure"') == 1


def test_report_cannot_be_written_is_a_one_line_error(pd_talk_run: Path, tmp_path: Path) -> None:
    from mas.errors import StoreError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot write the report"):
        write_report(load_run(pd_talk_run), blocker / "report.html")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
@pytest.mark.parametrize("which", ["pd_talk_run", "llm_like_run"])
def test_report_renders_in_headless_chromium(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Chromium loads the report from disk with no network: every embedded figure decodes
    (the page's own script counts them) and the transcript is in the DOM. A screenshot is
    kept in test-output/ for a person to look at."""
    run_dir = request.getfixturevalue(which)
    report = write_report(load_run(run_dir), tmp_path / "report.html")
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    screenshot = SCREENSHOT_DIR / f"report-{which.removesuffix('_run')}.png"
    screenshot.unlink(missing_ok=True)
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,4000", f"--screenshot={screenshot}",
        "--dump-dom", report.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    dom = done.stdout
    print(f"report screenshot: {screenshot}")
    assert done.returncode == 0, done.stderr[-2000:]
    total = re.search(r'data-figures-total="(\d+)"', dom)
    decoded = re.search(r'data-figures-decoded="(\d+)"', dom)
    assert total and decoded, "the report's load script did not run"
    assert int(total.group(1)) >= 4 and decoded.group(1) == total.group(1)
    assert dom.count('class="episode"') >= 2 and 'class="round"' in dom and 'class="actions"' in dom
    if which == "llm_like_run":
        assert dom.count("<img") == int(total.group(1))  # the hostile <img> stayed text
        assert "<title>pwned" not in dom and 'class="record"' in dom
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000
