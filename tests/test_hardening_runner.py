"""Issue 7: no stale or mixed results, no silent wrong numbers, robust user code (runner level)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.api.catalog import METHODS, METRICS
from bench.api.method import Method
from bench.api.metric import Metric, OutputInfo
from bench.running.runner import RunConfig, run_benchmark
from bench.store.results import ResultStore
from bench.media.video_io import write_frames


class _Writes(Method):
    """Writes into its input frames (a classic adapter bug)."""

    name = "hard-writes-input"
    tasks = frozenset({"text", "image"})

    def edit(self, video, **kw):
        video.frames[:] = 255
        return video.frames


class _TorchWrites(Method):
    """Bypasses the read-only flag (np.frombuffer on the memory) and writes anyway."""

    name = "hard-bypass-write"
    tasks = frozenset({"text", "image"})

    def edit(self, video, **kw):
        import ctypes

        f = video.frames
        buf = (ctypes.c_uint8 * f.nbytes).from_address(f.ctypes.data)
        np.frombuffer(buf, dtype=np.uint8)[:] = 7
        return np.zeros_like(f)


class _Sleeps(Method):
    name = "hard-sleeps"
    tasks = frozenset({"text", "image"})

    def edit(self, video, **kw):
        time.sleep(60)
        return video.frames


class _Exits(Method):
    name = "hard-exits"
    tasks = frozenset({"text", "image"})

    def edit(self, video, **kw):
        sys.exit(3)


class _Counter(Method):
    """Returns the source frames, counting its calls (to see what is regenerated)."""

    name = "hard-counter"
    tasks = frozenset({"text", "image"})
    calls = 0

    def edit(self, video, **kw):
        type(self).calls += 1
        return video.frames.copy()


class _BadMetric(Metric):
    """Returns out-of-range, None and non-numeric values, chosen by option."""

    name = "hard-bad-metric"
    value_range = (0.0, 1.0)
    extra_outputs = (OutputInfo("hard-bad-metric_b", True, (0.0, 1.0)),)
    defaults = {"mode": "range"}

    def compute(self, item):
        mode = self.options["mode"]
        if mode == "range":
            return {self.name: 42.0, "hard-bad-metric_b": 0.5}
        if mode == "none":
            return {self.name: None, "hard-bad-metric_b": 0.5}
        if mode == "missing":
            return {"hard-bad-metric_b": 0.5}
        if mode == "unknown":
            return {self.name: 0.5, "hard-bad-metric_b": 0.5, "typo": 0.1}
        if mode == "text":
            return {self.name: "high", "hard-bad-metric_b": 0.5}
        return None


class _SleepMetric(Metric):
    name = "hard-sleep-metric"
    value_range = (0.0, 1.0)

    def compute(self, item):
        time.sleep(60)
        return {self.name: 0.5}


for cls in (_Writes, _TorchWrites, _Sleeps, _Exits, _Counter):
    METHODS.register(cls.name, cls)
for cls in (_BadMetric, _SleepMetric):
    METRICS.register(cls.name, cls)

TINY = {"num_frames": 4, "size": 32}


def _cfg(tmp_path, methods, metrics=("temporal_flickering",), run_name="t", **kw) -> RunConfig:
    kw.setdefault("suite_overrides", dict(TINY))
    kw.setdefault("suite", "mini")
    return RunConfig(methods=list(methods), metrics=list(metrics), results_dir=str(tmp_path), run_name=run_name,
                     device="cpu", **kw)


def _edits(cfg):
    with ResultStore(cfg.run_dir) as st:
        return list(st.iter_edits())


def _scores(cfg):
    with ResultStore(cfg.run_dir) as st:
        return st.scores_frame()


def _frames(t: int, seed: int, hw=(24, 24)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(*hw, 3))
    return np.stack([np.roll(base, k, axis=1) for k in range(t)]).astype(np.uint8)


def _suite(tmp_path: Path, seed: int = 0, t: int = 8) -> Path:
    """A one-video manifest over a frame folder that a test can replace in place."""
    write_frames(tmp_path / "clip", _frames(t, seed))
    m = tmp_path / "suite.yaml"
    m.write_text("name: tiny\npreprocess: {num_frames: 4, size: 16}\nvideos:\n"
                 "  - id: clip\n    source: clip\n    source_prompt: a thing\n"
                 "    edits:\n      - {id: e1, edit_type: style, target_prompt: a thing in oil}\n")
    return m


# --- read-only inputs -------------------------------------------------------------------------------
def test_a_method_writing_into_its_input_is_an_error_row_and_the_cache_stays_intact(tmp_path):
    clean = _cfg(tmp_path, ["source"], run_name="clean", limit=3)
    run_benchmark(clean)
    dirty = _cfg(tmp_path, ["hard-writes-input", "hard-bypass-write", "source"], run_name="dirty", limit=3)
    run_benchmark(dirty)
    rows = _edits(dirty)
    writes = [r for r in rows if r["method"] == "hard-writes-input" and r["status"] != "not_applicable"]
    assert writes and all(r["status"] == "error" and "read-only" in r["message"] for r in writes)
    bypass = [r for r in rows if r["method"] == "hard-bypass-write" and r["status"] != "not_applicable"]
    assert bypass and all(r["status"] == "error" and "in place" in r["message"] for r in bypass)
    # the source rows after the writers score exactly as in a clean run
    a, b = _scores(clean), _scores(dirty)
    key = lambda df: df[(df.method == "source") & (df.status == "ok")].set_index("sample_uid")["value"].sort_index()  # noqa: E731
    assert len(key(a)) == 3
    np.testing.assert_array_equal(key(a).values, key(b).values)


# --- timeouts, SystemExit ----------------------------------------------------------------------------
def test_a_hanging_method_and_metric_become_timeout_error_rows(tmp_path):
    cfg = _cfg(tmp_path, ["hard-sleeps", "source"], metrics=["hard-sleep-metric"], limit=1, timeout_s=0.5)
    t0 = time.perf_counter()
    summary = run_benchmark(cfg)
    assert time.perf_counter() - t0 < 30
    rows = {r["method"]: r for r in _edits(cfg)}
    assert rows["hard-sleeps"]["status"] == "error" and "timed out after 0.5 s" in rows["hard-sleeps"]["message"]
    assert rows["source"]["status"] == "ok"
    sc = _scores(cfg)
    assert list(sc.status) == ["error"] and "timed out" in sc.iloc[0].message
    assert summary.edits["source"]["ok"] == 1


def test_sys_exit_inside_an_adapter_is_an_error_row_not_the_end_of_the_run(tmp_path):
    cfg = _cfg(tmp_path, ["hard-exits", "source"], limit=2)
    run_benchmark(cfg)
    rows = _edits(cfg)
    exits = [r for r in rows if r["method"] == "hard-exits"]
    assert len(exits) == 2 and all(r["status"] == "error" and "sys.exit(3)" in r["message"] for r in exits)
    assert {r["status"] for r in rows if r["method"] == "source"} == {"ok"}


# --- metric outputs validated ------------------------------------------------------------------------
@pytest.mark.parametrize("mode, expect", [
    ("range", "outside its declared range"), ("none", "no value (None)"), ("missing", "no value (None)"),
    ("unknown", "unknown output(s) ['typo']"), ("text", "not a number"), ("notdict", "not a mapping"),
])
def test_bad_metric_values_are_error_rows_never_stored_as_ok(tmp_path, mode, expect):
    cfg = _cfg(tmp_path, ["source"], metrics=[f"hard-bad-metric@mode={mode}"], limit=1)
    run_benchmark(cfg)
    sc = _scores(cfg).set_index("metric")
    assert set(sc.index) == {"hard-bad-metric", "hard-bad-metric_b"}  # a row for every output
    assert sc.loc["hard-bad-metric", "status"] == "error" and expect in sc.loc["hard-bad-metric", "message"]
    assert np.isnan(sc.loc["hard-bad-metric", "value"])
    if mode in ("range", "none", "missing", "text"):  # the good output of the same call is kept
        assert sc.loc["hard-bad-metric_b", "status"] == "ok" and sc.loc["hard-bad-metric_b", "value"] == 0.5


# --- content keys ----------------------------------------------------------------------------------------
def test_replacing_a_source_video_at_the_same_path_gives_new_edits_and_scores(tmp_path):
    m = _suite(tmp_path, seed=0)
    cfg = _cfg(tmp_path, ["hard-counter"], suite=str(m), suite_overrides={})
    _Counter.calls = 0
    run_benchmark(cfg)
    first = _edits(cfg)
    run_benchmark(cfg)
    assert _Counter.calls == 1  # same content: resumed
    write_frames(tmp_path / "clip", _frames(8, seed=1))  # same path, new content
    run_benchmark(cfg)
    assert _Counter.calls == 2
    rows = _edits(cfg)
    assert len(rows) == 2 and len({r["edit_key"] for r in rows}) == 2
    assert len({r["output_dir"] for r in rows}) == 2  # the old edit's frames are not overwritten
    sc = _scores(cfg)
    assert len(sc) == 2 and sc.value.nunique() == 2
    assert first[0]["edit_key"] in set(sc.edit_key)


def test_changing_num_frames_in_the_same_run_folder_never_mixes_frame_counts(tmp_path):
    m = _suite(tmp_path, t=16)
    a = _cfg(tmp_path, ["hard-counter"], suite=str(m), suite_overrides={"num_frames": 4})
    b = _cfg(tmp_path, ["hard-counter"], suite=str(m), suite_overrides={"num_frames": 8})
    run_benchmark(a)
    run_benchmark(b)
    rows = _edits(b)
    assert len(rows) == 2 and len({r["output_dir"] for r in rows}) == 2
    counts = sorted(len(list(Path(r["output_dir"]).glob("*.png"))) for r in rows)
    assert counts == [4, 8]  # both kept, each under its own key and folder


def test_a_regenerated_edit_drops_its_old_scores(tmp_path):
    cfg = _cfg(tmp_path, ["source"], limit=1)
    run_benchmark(cfg)
    with ResultStore(cfg.run_dir) as st:
        (row,) = st.iter_edits()
        assert st.counts()["scores"] == 1
    import shutil

    shutil.rmtree(row["output_dir"])  # frames gone: the edit is redone on resume ...
    s = run_benchmark(cfg)
    assert s.edits_done == 1 and s.scores_done == 1  # ... and re-scored, not paired with the old score
    with ResultStore(cfg.run_dir) as st:
        assert st.counts() == {"edits": 1, "scores": 1}


def test_edit_folders_are_per_sample_key_and_inside_the_run(tmp_path):
    cfg = _cfg(tmp_path, ["source"], limit=2)
    run_benchmark(cfg)
    with ResultStore(cfg.run_dir) as st:
        stored = [r[0] for r in st.conn.execute("SELECT output_dir FROM edits")]
        rows = list(st.iter_edits())
    assert all(not Path(p).is_absolute() and p.startswith("edits/") for p in stored)  # run-relative
    for r in rows:
        assert r["sample_key"][:10] in Path(r["output_dir"]).name
        assert Path(r["output_dir"]).resolve().is_relative_to(cfg.run_dir.resolve())


# --- stale temp folders, lock ------------------------------------------------------------------------------
def test_stale_temp_folders_of_killed_writes_are_removed_on_start(tmp_path):
    cfg = _cfg(tmp_path, ["source"], limit=1)
    run_benchmark(cfg)
    junk = [cfg.run_dir / "edits" / ".e1.abc123", cfg.run_dir / "sources" / ".comp-x1", cfg.run_dir / "leaderboard.md.tmp"]
    for j in junk[:2]:
        j.mkdir(parents=True)
        (j / "00000.png").write_bytes(b"partial")
    junk[2].write_text("partial")
    run_benchmark(cfg)
    assert not any(j.exists() for j in junk)
    assert list(ResultStore(cfg.run_dir).iter_edits("ok"))


def test_a_second_process_on_the_same_run_folder_is_refused(tmp_path):
    from bench.api.errors import VidEditBenchError
    from bench.running.locking import RunLock

    cfg = _cfg(tmp_path, ["source"], limit=1)
    with RunLock(cfg.run_dir):
        with pytest.raises(VidEditBenchError, match="in use by another videditbench process"):
            run_benchmark(cfg)
    run_benchmark(cfg)  # released: runs


# --- inputs: boxes, 16-bit PNG, --resize ---------------------------------------------------------------------
def test_a_box_entirely_outside_the_frame_is_refused_naming_the_field(tmp_path):
    from bench.api.errors import ManifestError
    from bench.suites import load_suite

    write_frames(tmp_path / "clip", _frames(4, 0))
    m = tmp_path / "suite.yaml"
    m.write_text("name: tiny\npreprocess: {num_frames: 4, size: 16}\nvideos:\n"
                 "  - id: clip\n    source: clip\n    source_prompt: a thing\n    box: [100, 100, 140, 150]\n"
                 "    edits:\n      - {id: e1, edit_type: object_modification, target_prompt: x, reference: r.png}\n")
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "r.png")
    suite = load_suite(str(m))
    with pytest.raises(ManifestError, match=r"field 'box'.*outside the 24x24 source frame"):
        suite.load(suite.samples[0])
    cfg = _cfg(tmp_path, ["source"], suite=str(m), suite_overrides={})
    run_benchmark(cfg)  # in a run: an error row naming the box
    (row,) = _edits(cfg)
    assert row["status"] == "error" and "box" in row["message"]


def test_16_bit_png_frames_are_scaled_not_clipped(tmp_path):
    from PIL import Image

    from bench.media.video_io import read_image, read_video

    ramp = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    d = tmp_path / "frames16"
    d.mkdir()
    for i in range(3):
        Image.fromarray(ramp).save(d / f"{i:02d}.png")
    assert Image.open(d / "00.png").mode.startswith("I")
    img = read_image(d / "00.png")
    np.testing.assert_array_equal(img[..., 0], np.rint(ramp / 257.0).astype(np.uint8))
    assert (img == 255).mean() < 0.01  # the old path clipped ~98 % of pixels to white
    frames, _ = read_video(d)
    assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.uint8


def test_resize_never_repeats_frames_of_a_short_edit():
    from bench.api.errors import MethodOutputError
    from methods.precomputed import fit_to_source

    one = np.full((1, 8, 8, 3), 9, np.uint8)
    with pytest.raises(MethodOutputError, match="fake temporal consistency"):
        fit_to_source(one, 8, (8, 8))
    assert fit_to_source(np.zeros((10, 8, 8, 3), np.uint8), 4, (4, 4)).shape == (4, 4, 4, 3)


def test_time_limit_keeps_an_outer_alarm():
    import signal

    from bench.api.errors import VidEditBenchError
    from bench.running.guard import time_limit

    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 50.0)
        with pytest.raises(VidEditBenchError, match="timed out after 0.2 s"):
            with time_limit(0.2, "x"):
                time.sleep(5)
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 40 < remaining <= 50 and not fired  # the outer alarm is still pending
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
