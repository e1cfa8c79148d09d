"""Frame folders are read in natural order (frame_2 before frame_10) by every reader; ambiguous names warn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from bench.media.video_io import FrameOrderWarning, list_frame_files, read_frames_folder, read_mask_frames, read_video


def _write(folder, names, size=(6, 8)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((*size, 3), 10 * i, np.uint8)).save(folder / name)


def test_unpadded_frame_names_are_read_in_numeric_order(tmp_path):
    names = [f"frame_{i}.png" for i in range(16)]  # 0, 1, ..., 15 (lexically 0, 1, 10, ..., 15, 2, ...)
    _write(tmp_path / "clip", names)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameOrderWarning)  # one clear pattern: no warning
        assert [p.name for p in list_frame_files(tmp_path / "clip")] == names
        frames, _ = read_video(tmp_path / "clip")
        folder_frames, _ = read_frames_folder(tmp_path / "clip")
    assert [int(f[0, 0, 0]) for f in frames] == [10 * i for i in range(16)]
    assert np.array_equal(frames, folder_frames)
    mask_names = [f"m{i}.png" for i in range(12)]
    (tmp_path / "masks").mkdir()
    for i, name in enumerate(mask_names):
        m = np.zeros((6, 8), np.uint8)
        m[0, i % 8] = 255 if i < 8 else 0
        Image.fromarray(m).save(tmp_path / "masks" / name)
    masks = read_mask_frames(tmp_path / "masks")
    assert [int(np.argmax(m[0])) if m.any() else -1 for m in masks] == [*range(8), -1, -1, -1, -1]


def test_ambiguous_frame_names_warn_with_the_folder(tmp_path):
    _write(tmp_path / "dup", ["1.png", "01.png", "2.png"])
    with pytest.warns(FrameOrderWarning, match=r"dup: frame order is ambiguous: .*same frame number"):
        list_frame_files(tmp_path / "dup")
    _write(tmp_path / "mixed", ["a_1.png", "b_1.png", "a_2.png"])
    with pytest.warns(FrameOrderWarning, match=r"mixed: frame order is ambiguous: names follow 2 patterns"):
        list_frame_files(tmp_path / "mixed")


def test_scoring_an_unpadded_edit_folder_uses_the_natural_order(tmp_path):
    """`eval` reads a user's edits through the precomputed adapter: the same order rule."""
    from bench.api.catalog import METHODS
    from bench.api.types import Sample, Video

    _write(tmp_path / "edits" / "vid" / "e0", [f"frame_{i}.png" for i in range(12)])
    sample = Sample(suite="s", video_id="vid", edit_id="e0", source="x", target_prompt="b")
    src = Video(np.zeros((12, 6, 8, 3), np.uint8), fps=8.0)
    out = METHODS.get("precomputed")(dir=str(tmp_path / "edits")).edit(src, prompt="b", sample=sample)
    assert [int(f[0, 0, 0]) for f in out] == [10 * i for i in range(12)]
