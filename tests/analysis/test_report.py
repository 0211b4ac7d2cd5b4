"""The HTML report: content, escaping of agents' text, LLM records, and a real browser."""

from __future__ import annotations

import html
import json
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
    (the page's own script counts them and measures their drawn width), the transcript is in
    the DOM, decision records are collapsed and the filter box keeps only the matching ones
    ("#filter=banana" in the address fills it). A screenshot is kept in test-output/ for a
    person to look at."""
    run_dir = request.getfixturevalue(which)
    report = write_report(load_run(run_dir), tmp_path / "report.html")
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    screenshot = SCREENSHOT_DIR / f"report-{which.removesuffix('_run')}.png"
    screenshot.unlink(missing_ok=True)
    address = report.resolve().as_uri() + ("#filter=banana" if which == "llm_like_run" else "")
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,4000", f"--screenshot={screenshot}",
        "--dump-dom", address,
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
    # the heatmap is drawn across the page (it was about 480 px, half the width, and unreadable)
    widths = json.loads(html.unescape(re.search(r'data-figure-widths="([^"]*)"', dom).group(1)))
    assert widths["cooperation_by_pair"] >= 700, widths
    assert all(w >= 400 for w in widths.values()), widths
    if which == "llm_like_run":
        assert dom.count("<img") == int(total.group(1))  # the hostile <img> stayed text
        assert "<title>pwned" not in dom
        records = re.findall(r"<details class=\"record\"[^>]*>", dom)
        assert len(records) == 10 and not any(" open" in r for r in records)  # collapsed, each a click away
        # the filter kept the one record with "banana" in its reply and hid the other nine
        assert re.search(r'data-records-shown="1"', dom) and sum("hidden" in r for r in records) == 9
        assert "1 of 10 records match" in dom
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000


def test_llm_records_are_collapsed_behind_a_filter_box(llm_like_run: Path, pd_talk_run: Path) -> None:
    page = build_report(load_run(llm_like_run))
    assert page.count('<details class="record">') == 10 and '<details class="record" open' not in page
    assert 'id="record-filter"' in page and "filterRecords" in page
    assert 'id="record-filter"' not in build_report(load_run(pd_talk_run))  # scripted agents keep no records


def test_tournament_numbers_are_plain_and_heatmaps_wide(tournament_dir: Path) -> None:
    page = build_report(load_result(tournament_dir))
    payoff = page[page.index("<h3>Payoff matrix</h3>"):page.index("<h3>Matches</h3>")]
    cells = re.findall(r"<td>([^<]*)</td>", payoff)
    assert "24.8" in cells or "30" in cells
    text = re.sub(r"base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r">[^<]*\de[+-]\d", text)  # no "3e+02" anywhere in the page's text
    assert re.search(r'<figure id="figure-payoff_matrix" class="wide">', page)
    assert '<figure id="figure-ranking">' in page  # plots that need no room keep the grid


def test_report_keeps_the_configuration_of_a_training_run_without_a_store(tmp_path: Path) -> None:
    """`mas train` with no final episodes leaves curves.csv and train.json only."""
    import mas

    scenario = mas.load_scenario("pd_iql_vs_tft").to_dict()
    (tmp_path / "train.json").write_text(json.dumps({"algorithm": "iql", "seed": 4, "scenario": scenario}))
    (tmp_path / "curves.csv").write_text("step,seed,return/a\n100,4,1.5\n200,4,2.5\n")
    page = build_report(load_result(tmp_path))
    assert "<th>game</th><td>normal_form</td>" in page and "<th>master seed</th><td>4</td>" in page
    assert "pd_iql_vs_tft: run report" in page


def test_report_of_a_multi_seed_experiment_keeps_its_configuration(pd_talk_run: Path, tmp_path: Path) -> None:
    """An experiment directory (`mas run --seeds`: seed-N/ sub-directories and experiment.json)
    whose merged run has no single store's meta still names its game, agents and seeds."""
    import dataclasses

    import mas

    run = load_run(pd_talk_run)
    scenario = mas.load_scenario("prisoners_dilemma_talk").to_dict()
    (tmp_path / "experiment.json").write_text(json.dumps({"scenario": scenario, "seeds": [0, 1, 2]}))
    merged = dataclasses.replace(run, path=tmp_path, meta={})
    page = build_report(merged)
    assert "<th>game</th><td>normal_form</td>" in page and "<th>seeds</th><td>0, 1, 2</td>" in page
    assert "prisoners_dilemma_talk: run report" in page and "game —" not in page
