"""PrecomputedMethod: edits already on disk in the V2VBench layout <dir>/<video_id>/<edit_idx>."""

from __future__ import annotations

import numpy as np
import pytest

from bench.api.catalog import METHODS
from bench.api.errors import MethodOutputError, VidEditBenchError
from bench.api.types import Sample, Video
from bench.media.video_io import write_frames, write_gif, write_mp4


def _sample(video_id: str, edit_id: str, **meta) -> Sample:
    return Sample(suite="v2v", video_id=video_id, edit_id=edit_id, source=f"{video_id}.mp4", meta=tuple(meta.items()))


@pytest.fixture
def layout(tmp_path, rng):
    """Three stored edits: a PNG frames folder, a lossless .mp4 and a .gif (flat colours, GIF-exact)."""
    root = tmp_path / "outputs" / "my_method"
    edits = {
        "frames": rng.integers(0, 256, size=(4, 16, 24, 3), dtype=np.uint8),
        "mp4": rng.integers(0, 256, size=(4, 16, 24, 3), dtype=np.uint8),
        "gif": np.stack([np.full((16, 24, 3), (40 * i, 200 - 30 * i, 90), np.uint8) for i in range(4)]),
    }
    write_frames(root / "blackswan" / "0", edits["frames"])
    write_mp4(root / "blackswan" / "1.mp4", edits["mp4"], fps=8)
    write_gif(root / "car-turn" / "0.gif", edits["gif"], fps=8)
    return root, edits


@pytest.fixture
def source():
    return Video(np.zeros((4, 16, 24, 3), np.uint8))


def test_reads_frames_mp4_and_gif(layout, source):
    root, edits = layout
    m = METHODS.get("precomputed")(dir=str(root))
    assert m.receives_sample and m.applicable("image", False, True, True) is None
    np.testing.assert_array_equal(m.edit(source, sample=_sample("blackswan", "0")), edits["frames"])
    np.testing.assert_array_equal(m.edit(source, sample=_sample("blackswan", "1")), edits["mp4"])
    np.testing.assert_array_equal(m.edit(source, sample=_sample("car-turn", "0")), edits["gif"])


def test_edit_name_resolution(layout, source):
    root, edits = layout
    m = METHODS.get("precomputed")(dir=str(root))
    # explicit V2VBench edit index in the sample's meta wins over edit_id
    np.testing.assert_array_equal(m.edit(source, sample=_sample("blackswan", "style", edit_idx=1)), edits["mp4"])
    # trailing integer of edit_id ("edit_01" -> "1")
    np.testing.assert_array_equal(m.edit(source, sample=_sample("blackswan", "edit_01")), edits["mp4"])
    # named edits: <dir>/<video_id>/<edit_id>
    write_frames(root / "blackswan" / "watercolor", edits["frames"])
    np.testing.assert_array_equal(m.edit(source, sample=_sample("blackswan", "watercolor")), edits["frames"])


def test_missing_edit_names_expected_paths(layout, source):
    root, _ = layout
    m = METHODS.get("precomputed")(dir=str(root))
    with pytest.raises(MethodOutputError) as e:
        m.edit(source, sample=_sample("car-turn", "3"))
    msg = str(e.value)
    assert str(root / "car-turn" / "3") + "/" in msg and str(root / "car-turn" / "3.mp4") in msg
    assert str(root / "car-turn" / "3.gif") in msg and "v2v/car-turn/3" in msg
    with pytest.raises(VidEditBenchError, match="sample="):
        m.edit(source)


def test_size_mismatch_errors_unless_resize(layout):
    root, edits = layout
    big = Video(np.zeros((2, 32, 48, 3), np.uint8))
    with pytest.raises(MethodOutputError, match=r"4 frames of 16x24.*2 frames of 32x48.*resize: true"):
        METHODS.get("precomputed")(dir=str(root)).edit(big, sample=_sample("blackswan", "0"))
    out = METHODS.get("precomputed")(dir=str(root), resize=True).edit(big, sample=_sample("blackswan", "0"))
    assert out.shape == (2, 32, 48, 3) and out.dtype == np.uint8
    # evenly spaced frames 0 and 3, bicubic upscaling keeps the mean close
    assert abs(out[1].mean() - edits["frames"][3].mean()) < 3
    assert abs(out[0].mean() - edits["frames"][0].mean()) < 3


def test_config_errors(tmp_path):
    cls = METHODS.get("precomputed")
    with pytest.raises(VidEditBenchError, match="needs option dir"):
        cls()
    with pytest.raises(VidEditBenchError, match="does not exist"):
        cls(dir=str(tmp_path / "missing"))
