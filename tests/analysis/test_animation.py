"""The report's animated episode: one GIF frame per stored step of a grid run's first episode."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image

import mas
from mas.analysis.animation import gif_bytes
from mas.analysis.load import load_run
from mas.analysis.report import build_report
from mas.runner import run

GIF = re.compile(r'src="data:image/gif;base64,([A-Za-z0-9+/=]+)"')


def test_the_report_of_a_harvest_run_animates_its_first_episode_one_frame_per_step(tmp_path: Path) -> None:
    scenario = mas.load_scenario("grid_harvest").model_copy(update={"rounds": 12})
    run(scenario, episodes=2, seed=3, out_dir=tmp_path / "run")
    stored = load_run(tmp_path / "run")
    html = build_report(stored)
    (payload,) = GIF.findall(html)
    gif = Image.open(io.BytesIO(base64.b64decode(payload)))
    steps = int((stored.states["episode"] == 0).sum())
    assert steps == 12 and gif.is_animated and gif.n_frames == steps
    gif.seek(0)
    first = np.asarray(gif.convert("RGB"))
    assert first.shape == (2 * (8 * 8 + 3), 2 * 20 * 8, 3)  # the 8 x 20 map, 8 px cells and a bar, doubled
    assert "all 12 steps" in html
    assert "_apple_bits" not in html  # the picture's bitmasks are not transcript text


def test_identical_steps_keep_their_own_frames_and_games_without_a_picture_get_none(pd_talk_run: Path) -> None:
    still = np.zeros((8, 8, 3), dtype=np.uint8)
    assert Image.open(io.BytesIO(gif_bytes([still] * 5))).n_frames == 5  # the progress bar tells them apart
    assert GIF.findall(build_report(load_run(pd_talk_run))) == []
