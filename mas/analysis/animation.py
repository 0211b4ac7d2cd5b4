"""An episode as an animated GIF, drawn from the game states stored with a run.

A game with a picture rebuilds it from a stored state summary (`Game.summary_rgb`; the
grid world stores its apple and beam layers as bitmasks for this), so the animation needs
no replay: one frame per stored step, in step order, each scaled up and with a thin
progress bar below the map (so no two frames are identical and none is merged away).
The GIF is kept small for the self-contained report: at most `MAX_FRAMES` frames and
`MAX_BYTES` bytes, else it is left out (None).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

#: the most frames (steps) animated; a longer episode shows its first MAX_FRAMES steps
MAX_FRAMES = 400
#: the largest GIF embedded in a report
MAX_BYTES = 3_000_000
#: milliseconds per frame
FRAME_MS = 120
#: rows of pixels of the progress bar under the map
BAR_PX = 3


def episode_frames(game: Any, states: pd.DataFrame, episode: int) -> list[np.ndarray]:
    """The pictures of `episode`'s stored states (uint8 [H, W, 3] each, step order); []
    when the game draws none."""
    rows = states[states["episode"] == episode].sort_values("step").head(MAX_FRAMES)
    summary_columns = [c for c in rows.columns if c not in {"episode", "step", "round"}]
    frames = []
    for record in rows[summary_columns].to_dict("records"):
        summary = {k: v for k, v in record.items() if not _missing(v)}
        image = game.summary_rgb(summary)
        if image is None:
            return []
        frames.append(image)
    return frames


def gif_bytes(frames: list[np.ndarray], scale: int = 2) -> bytes | None:
    """`frames` as a looping animated GIF, one frame each, with a progress bar; None when
    there are no frames or the file would exceed `MAX_BYTES`."""
    from PIL import Image

    if not frames:
        return None
    images = []
    for i, frame in enumerate(frames):
        height, width = frame.shape[:2]
        canvas = np.zeros((height + BAR_PX, width, 3), dtype=np.uint8)
        canvas[:height] = frame
        canvas[height:, : max(1, round(width * (i + 1) / len(frames)))] = (86, 180, 233)
        canvas = np.repeat(np.repeat(canvas, scale, axis=0), scale, axis=1)
        images.append(Image.fromarray(canvas).convert("P", palette=Image.Palette.ADAPTIVE, colors=64))
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=FRAME_MS, loop=0, optimize=False)
    data = buffer.getvalue()
    return data if len(data) <= MAX_BYTES else None


def episode_gif(game: Any, states: pd.DataFrame, episode: int) -> bytes | None:
    """The animated GIF of one stored episode, or None (no picture, or too large)."""
    if game is None or not len(states) or "episode" not in states.columns:
        return None
    return gif_bytes(episode_frames(game, states, episode))


def _missing(value: Any) -> bool:
    if isinstance(value, float):
        return value != value  # NaN: a key this row's summary did not have
    return value is None
