"""The cheap export / ingestion paths (issue 11): GIF previews with one palette per clip (exact for
<= 256 colours, within a bound of PIL's per-frame median cut otherwise, same bytes every time),
previews that decode only the frames they show, `eval` storing the user's plain PNG files as they
are (and re-encoding anything else), and no measurement overhead for a method that is never timed."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.api.errors import VidEditBenchError, VideoReadError
from bench.media.video_io import (
    is_plain_rgb8_png,
    read_frames_folder,
    read_video,
    spread_indices,
    write_frames,
    write_gif,
)


def _gif_frames(path: Path) -> np.ndarray:
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])


def _natural_clip(t: int = 8, side: int = 96) -> np.ndarray:
    """A smooth, textured, moving clip with thousands of colours (sky gradient, a lit disc, grain)."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:side, 0:side].astype(np.float64) / side
    frames = []
    for i in range(t):
        cx, cy = 0.3 + 0.05 * i, 0.55 - 0.02 * i
        disc = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.02)
        r = 60 + 120 * y + 60 * disc
        g = 90 + 100 * x * (1 - y) + 40 * disc
        b = 200 - 90 * y + 20 * np.sin(12 * x + i)
        img = np.stack([r, g, b], -1) + rng.normal(0, 4, (side, side, 3))
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return np.stack(frames)


def test_a_clip_of_at_most_256_colours_round_trips_exactly(tmp_path, rng):
    # 256 colours, half of them 1 level apart (PIL's own palette mapping merges such neighbours)
    base = rng.integers(0, 255, (128, 3), dtype=np.uint8)
    palette = np.concatenate([base, base + np.array([1, 0, 0], np.uint8)])
    assert len({tuple(c) for c in palette}) == 256
    frames = palette[rng.integers(0, 256, (5, 20, 30))]
    write_gif(tmp_path / "a.gif", frames, max_side=64)
    np.testing.assert_array_equal(_gif_frames(tmp_path / "a.gif"), frames)
    flat = np.stack([np.full((8, 8, 3), (40 * i, 200 - 30 * i, 90), np.uint8) for i in range(4)])
    write_gif(tmp_path / "flat.gif", flat)
    np.testing.assert_array_equal(read_video(tmp_path / "flat.gif")[0], flat)


def test_palette_error_on_a_natural_clip_is_bounded_and_close_to_pils_median_cut(tmp_path):
    from PIL import Image

    frames = _natural_clip()
    assert len(np.unique(frames.reshape(-1, 3), axis=0)) > 5000
    write_gif(tmp_path / "p.gif", frames)
    err = np.abs(_gif_frames(tmp_path / "p.gif").astype(int) - frames).mean()
    # the reference: PIL's default GIF path (a median-cut palette per frame)
    imgs = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=125, loop=0)
    ref = np.abs(_gif_frames(io.BytesIO(buf.getvalue())).astype(int) - frames).mean()
    assert err < 4.0 and err < ref + 1.5, (err, ref)


def test_gif_bytes_are_deterministic_and_keep_size_frames_and_comment(tmp_path):
    frames = _natural_clip(t=6, side=120)
    a = write_gif(tmp_path / "a.gif", frames, fps=4, max_side=60, comment="key-1")
    b = write_gif(tmp_path / "b" / "b.gif", frames.copy(), fps=4, max_side=60, comment="key-1")
    assert a.read_bytes() == b.read_bytes()
    from bench.report.incremental import stored_key

    out = _gif_frames(a)
    assert out.shape == (6, 60, 60, 3) and stored_key(a) == "key-1"
    assert not list(tmp_path.rglob("*.tmp.gif"))


def test_a_preview_decodes_only_the_frames_it_shows(tmp_path, rng):
    frames = rng.integers(0, 256, (10, 12, 14, 3), dtype=np.uint8)
    folder = write_frames(tmp_path / "clip", frames)
    assert list(spread_indices(10, 4)) == [0, 3, 6, 9] and list(spread_indices(3, 16)) == [0, 1, 2]
    (folder / "00001.png").write_bytes(b"not a png")  # never read for a 4-frame preview
    got, fps = read_video(folder, max_frames=4)
    np.testing.assert_array_equal(got, frames[[0, 3, 6, 9]])
    assert fps == 8.0
    for max_frames in (None, 10, 20):  # all frames: the broken one is read, and named
        with pytest.raises(VideoReadError, match=r"00001.png: not a readable image \(cannot identify image file '/") as e:
            read_video(folder, max_frames=max_frames)
        assert "BytesIO" not in str(e.value)


def test_plain_rgb8_pngs_are_stored_as_they_are_and_anything_else_is_reencoded(tmp_path, rng):
    from PIL import Image

    src = tmp_path / "user"
    src.mkdir()
    frames = rng.integers(0, 256, (4, 10, 12, 3), dtype=np.uint8)
    Image.fromarray(frames[0]).save(src / "0.png")  # plain 8-bit RGB
    Image.fromarray(frames[1]).save(src / "1.png", compress_level=9)  # plain, other compression
    Image.fromarray(np.dstack([frames[2], np.full((10, 12), 255, np.uint8)])).save(src / "2.png")  # RGBA
    Image.fromarray(frames[3]).save(src / "3.jpg", quality=95)
    got, png = read_frames_folder(src)
    np.testing.assert_array_equal(got[:3], frames[:3])
    assert [p is not None for p in png] == [True, True, False, False]
    assert not is_plain_rgb8_png(png[0], (10, 13, 3)) and not is_plain_rgb8_png(b"\x89PNG", (10, 12, 3))
    stored = write_frames(tmp_path / "store", got, png=png)
    files = sorted(stored.iterdir())
    assert [f.name for f in files] == ["00000.png", "00001.png", "00002.png", "00003.png"]
    assert files[0].read_bytes() == (src / "0.png").read_bytes()
    assert files[1].read_bytes() == (src / "1.png").read_bytes()
    assert files[2].read_bytes() != (src / "2.png").read_bytes()
    np.testing.assert_array_equal(read_video(stored)[0], got)
    assert all(is_plain_rgb8_png(f.read_bytes(), got[0].shape) for f in files)


def test_an_untimed_method_skips_the_measurement(monkeypatch):
    import gc

    from bench.running.efficiency import measure_if

    result, m = measure_if(True, lambda: 7)
    assert result == 7 and m.memory_device == "cpu" and m.seconds >= 0

    def no_gc(*a):
        raise AssertionError("an untimed call must not collect garbage")

    monkeypatch.setattr(gc, "collect", no_gc)
    result, m = measure_if(False, lambda: 8)
    assert result == 8 and m.memory_device == "cpu" and np.isnan(m.seconds) and np.isnan(m.peak_memory_mb)


def test_eval_stores_the_users_png_frames_byte_for_byte_and_scores_them_like_the_originals(tmp_path):
    from PIL import Image

    from bench.running.runner import RunConfig, run_benchmark
    from bench.store.results import ResultStore

    tiny = {"num_frames": 4, "size": 32}
    common = dict(suite="mini", metrics=["temporal_flickering"], device="cpu", suite_overrides=tiny, limit=2,
                  results_dir=str(tmp_path / "results"))
    first = RunConfig(methods=["source"], run_name="src", **common)
    run_benchmark(first)
    with ResultStore(first.run_dir) as store:
        src_edits = [r for r in store.iter_edits("ok")]
        src_scores = {(r["sample_uid"], r["metric"]): r["value"] for r in store.scores_frame().to_dict("records")}
    assert len(src_edits) == 2
    user = tmp_path / "user_outputs"
    for i, r in enumerate(src_edits):  # the V2VBench layout <dir>/<video_id>/<edit_id>
        _, video_id, edit_id = r["sample_uid"].split("/")
        dest = user / video_id / edit_id
        shutil.copytree(first.run_dir / r["output_dir"], dest)
        if i == 1:  # one user frame with an alpha channel: stored re-encoded, as RGB
            f = sorted(dest.glob("*.png"))[0]
            rgb = np.asarray(Image.open(f).convert("RGB"))
            Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(f)
    second = RunConfig(methods=["precomputed"], run_name="ev", method_options={"precomputed": {"dir": str(user)}},
                       **common)
    run_benchmark(second)
    with ResultStore(second.run_dir) as store:
        edits = {r["sample_uid"]: r for r in store.iter_edits("ok")}
        scores = {(r["sample_uid"], r["metric"]): r["value"] for r in store.scores_frame().to_dict("records")}
    assert sorted(edits) == sorted(r["sample_uid"] for r in src_edits)
    copied = reencoded = 0
    for uid, r in edits.items():
        _, video_id, edit_id = uid.split("/")
        ours = sorted((second.run_dir / r["output_dir"]).glob("*.png"))
        theirs = sorted((user / video_id / edit_id).glob("*.png"))
        assert len(ours) == len(theirs) == 4
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(read_video(a.parent)[0][ours.index(a)],
                                          np.asarray(Image.open(b).convert("RGB")))
            same = a.read_bytes() == b.read_bytes()
            copied += same
            reencoded += not same
            assert is_plain_rgb8_png(a.read_bytes(), (32, 32, 3))
    assert (copied, reencoded) == (7, 1)
    # the same frames: the same numbers as the originals scored by the source method
    assert scores and scores == {k: v for k, v in src_scores.items() if k in scores}


def test_precomputed_hands_over_png_bytes_only_for_frames_returned_as_they_are(tmp_path, rng):
    from bench.api.catalog import METHODS
    from bench.api.types import Sample, Video

    frames = rng.integers(0, 256, (4, 16, 24, 3), dtype=np.uint8)
    folder = write_frames(tmp_path / "out" / "blackswan" / "0", frames)
    sample = Sample(suite="v2v", video_id="blackswan", edit_id="0", source="blackswan.mp4")
    m = METHODS.get("precomputed")(dir=str(tmp_path / "out"), resize=True)
    got = m.edit(Video(np.zeros((4, 16, 24, 3), np.uint8)), sample=sample)
    np.testing.assert_array_equal(got, frames)
    assert m.last_output_png == [f.read_bytes() for f in sorted(folder.iterdir())]
    resized = m.edit(Video(np.zeros((2, 8, 12, 3), np.uint8)), sample=sample)  # sampled and resized
    assert resized.shape == (2, 8, 12, 3) and m.last_output_png is None
    m.edit(Video(np.zeros((4, 16, 24, 3), np.uint8)), sample=sample)
    assert m.last_output_png is not None
    with pytest.raises(VidEditBenchError):
        m.edit(Video(np.zeros((4, 16, 24, 3), np.uint8)), sample=None)
    assert m.last_output_png is None  # never left over from an earlier edit
