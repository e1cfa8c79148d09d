"""A small finished run for the study tests: real PNG frame folders in a real result store."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bench.store.results import EditRow, ResultStore, ScoreRow
from bench.media.video_io import write_frames

T, H, W = 8, 48, 64
METHODS = ("alpha", "beta", "gamma")
COLOURS = {"alpha": (220, 40, 40), "beta": (40, 200, 60), "gamma": (40, 80, 230)}
XSS_PROMPT = 'make it snow <script>window.__pwned = 1</script> & "more"'


def moving_square(colour: tuple[int, int, int], seed: int) -> np.ndarray:
    """A square sweeping across a textured background: motion a browser test can see advancing."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(60, 120, (1, H, W, 3)).repeat(T, 0).astype(np.uint8)
    for t in range(T):
        x = 4 + t * 6
        bg[t, 14:34, x:x + 16] = colour
    return bg


def make_study_run(root: Path, samples: int = 3, metric_order: tuple[str, ...] = METHODS) -> Path:
    """`samples` sources × the three methods, all ok, plus one sample-level metric whose values rank
    the methods in `metric_order` (best first). Returns the run folder."""
    run = root / "run"
    with ResultStore(run) as store:
        for i in range(samples):
            uid = f"mini/vid{i}/e{i}"
            src = write_frames(run / "sources" / f"vid{i}", moving_square((200, 200, 200), 100 + i))
            for j, m in enumerate(METHODS):
                out = write_frames(run / "edits" / m / f"vid{i}", moving_square(COLOURS[m], 10 * j + i))
                key = f"ek-{m}-{i}"
                store.put_edit(EditRow(
                    edit_key=key, method=m, method_key=f"mk-{m}", method_config="{}", sample_uid=uid,
                    sample_key=f"sk{i}", suite="mini", video_id=f"vid{i}", edit_id=f"e{i}", edit_type="style",
                    category="", task="text", prompt=XSS_PROMPT if i == 0 else f"paint video {i} in oils",
                    status="ok", output_dir=str(out), source_dir=str(src)))
                value = float(len(METHODS) - metric_order.index(m)) + 0.01 * i
                store.put_scores([ScoreRow(
                    score_key=f"sc-{key}", edit_key=key, method=m, method_key=f"mk-{m}", sample_uid=uid,
                    metric="quality", metric_family="quality", variant_id="v0", variant_label="default", value=value,
                    status="ok", message=None, higher_is_better=True, value_min=-math.inf, value_max=math.inf,
                    level="sample")])
    return run
