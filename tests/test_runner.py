"""The benchmark loop end to end on the embedded suite (tiny frames): resume, error rows, skips."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.api.catalog import METHODS
from bench.api.method import Method
from bench.running.runner import RunConfig, run_benchmark
from bench.store.results import ResultStore

REPO = Path(__file__).resolve().parents[1]
TINY = {"num_frames": 4, "size": 32}


class _Brighten(Method):
    name = "test-brighten"
    tasks = frozenset({"text", "image"})

    def edit(self, video, **kw):
        return np.clip(video.frames.astype(np.int16) + 40, 0, 255).astype(np.uint8)


class _Raises(Method):
    name = "test-raises"
    tasks = frozenset({"text", "image"})

    def edit(self, video, **kw):
        raise RuntimeError("boom inside the method")


class _NaNs(Method):
    name = "test-nans"
    tasks = frozenset({"text"})

    def edit(self, video, **kw):
        return np.full(video.frames.shape, np.nan, np.float32)


class _WrongShape(Method):
    name = "test-wrong-shape"
    tasks = frozenset({"text"})

    def edit(self, video, **kw):
        return video.frames[:-1]


class _FailsOnBikes(Method):
    name = "test-fails-on-one"
    tasks = frozenset({"text"})

    def edit(self, video, *, prompt=None, **kw):
        if "bicycle" in (kw.get("source_prompt") or ""):
            raise ValueError("cannot edit bicycles")
        return video.frames[:, ::-1].copy()


class _NeedsWeights(Method):
    name = "test-needs-weights"
    tasks = frozenset({"text"})
    weights = ("instruct-pix2pix",)

    def edit(self, video, **kw):  # pragma: no cover - never reached without weights
        return video.frames


for cls in (_Brighten, _Raises, _NaNs, _WrongShape, _FailsOnBikes, _NeedsWeights):
    METHODS.register(cls.name, cls)


def _cfg(tmp_path, methods, metrics=("temporal_flickering", "bg_psnr", "generation_time"), run_name="t",
         **kw) -> RunConfig:
    return RunConfig(suite="mini", methods=list(methods), metrics=list(metrics), results_dir=str(tmp_path),
                     run_name=run_name, device="cpu", suite_overrides=dict(TINY), **kw)


def _statuses(store: ResultStore, method: str) -> dict[str, str]:
    return {r["sample_uid"]: r["status"] for r in store.iter_edits() if r["method"] == method}


def test_run_writes_edits_scores_and_skips_done_work(tmp_path):
    cfg = _cfg(tmp_path, ["source", "test-brighten"], limit=4)
    s1 = run_benchmark(cfg)
    assert s1.edits_done == 8
    store = ResultStore(cfg.run_dir)
    ok = list(store.iter_edits("ok"))
    assert len(ok) == 8
    frames = sorted(Path(ok[0]["output_dir"]).glob("*.png"))
    assert len(frames) == 4
    scores = store.scores_frame()
    flick = scores[(scores.metric == "temporal_flickering") & (scores.status == "ok")]
    assert len(flick) == 8
    # the brightened edit of the source has the same structure; source vs itself preserves background
    psnr = scores[(scores.metric == "bg_psnr") & (scores.method == "source") & (scores.status == "ok")]
    assert (psnr.value >= 99).all()
    n_scores = store.counts()["scores"]
    store.close()
    s2 = run_benchmark(cfg)
    assert s2.edits_done == 0 and s2.scores_done == 0 and s2.edits_skipped_existing == 8
    store = ResultStore(cfg.run_dir)
    assert store.counts()["scores"] == n_scores and store.counts()["edits"] == 8


def test_failures_become_error_rows_and_the_run_goes_on(tmp_path):
    cfg = _cfg(tmp_path, ["test-raises", "test-nans", "test-wrong-shape", "test-fails-on-one", "source"])
    summary = run_benchmark(cfg)
    store = ResultStore(cfg.run_dir)
    edits = store.edits_frame()
    raises = edits[edits.method == "test-raises"]
    assert set(raises.status) == {"error"}
    assert "boom inside the method" in raises.iloc[0].message and "RuntimeError" in raises.iloc[0].message
    nans = edits[(edits.method == "test-nans") & (edits.status != "not_applicable")]
    assert set(nans.status) == {"error"} and "NaN" in nans.iloc[0].message
    wrong = edits[(edits.method == "test-wrong-shape") & (edits.status != "not_applicable")]
    assert set(wrong.status) == {"error"} and "frames; the source has" in wrong.iloc[0].message
    one = edits[(edits.method == "test-fails-on-one") & (edits.status != "not_applicable")]
    assert {"ok", "error"} <= set(one.status)
    assert set(edits[edits.method == "source"].status) == {"ok"}
    assert any(p[2] == "error" for p in summary.problems)


def test_missing_weights_are_skipped_with_the_fix(tmp_path):
    cfg = _cfg(tmp_path, ["test-needs-weights", "source"], limit=3)
    run_benchmark(cfg)
    edits = ResultStore(cfg.run_dir).edits_frame()
    skipped = edits[edits.method == "test-needs-weights"]
    assert set(skipped.status) <= {"skipped", "not_applicable"} and "skipped" in set(skipped.status)
    assert "videditbench weights download instruct-pix2pix" in skipped[skipped.status == "skipped"].iloc[0].message
    assert set(edits[edits.method == "source"].status) == {"ok"}


def test_model_metric_without_weights_is_skipped_and_weight_free_ones_reported(tmp_path):
    cfg = _cfg(tmp_path, ["source"], metrics=["clip_text", "dover", "temporal_flickering"], limit=2)
    summary = run_benchmark(cfg)
    scores = ResultStore(cfg.run_dir).scores_frame()
    for m in ("clip_text", "dover"):
        rows = scores[scores.metric_family == m]
        assert len(rows) and set(rows.status) == {"skipped"}, rows
        assert "videditbench weights download" in rows.iloc[0].message
    assert set(scores[scores.metric == "temporal_flickering"].status) == {"ok"}
    assert any(p[1] in ("clip_text", "dover") and p[2] == "skipped" for p in summary.problems)


def test_image_guided_methods_only_get_image_samples(tmp_path):
    cfg = _cfg(tmp_path, ["flow-propagate"])
    run_benchmark(cfg)
    edits = ResultStore(cfg.run_dir).edits_frame()
    assert set(edits[edits.task == "text"].status) == {"not_applicable"}
    assert set(edits[edits.task == "image"].status) == {"ok"}


def _leaderboard_csv(run_dir: Path) -> str:
    from bench.report.table import build_leaderboard

    with ResultStore(run_dir) as store:
        lb = build_leaderboard(store.scores_frame(), store.edits_frame())
    return lb.main.to_csv()


SLOW_METHOD = '''
import time, numpy as np
from bench.api.method import Method
class Slow(Method):
    name = "slow-test"
    tasks = frozenset({"text", "image"})
    def edit(self, video, **kw):
        time.sleep(0.4)
        return video.frames[:, :, ::-1].copy()
'''


def _cli_env(tmp_path: Path) -> dict[str, str]:
    plugin = tmp_path / "plugin"
    plugin.mkdir(exist_ok=True)
    (plugin / "slow_plugin.py").write_text(SLOW_METHOD)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(plugin), str(REPO), env.get("PYTHONPATH", "")])
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _cli(tmp_path: Path, name: str) -> list[str]:
    # registers the plug-in at runtime, then runs the real CLI
    code = ("import sys; from bench.api.catalog import METHODS; METHODS.register('slow-test', 'slow_plugin:Slow'); "
            "from bench.cli import main; sys.argv = ['videditbench'] + sys.argv[1:]; main()")
    return [sys.executable, "-c", code, "run", "--methods", "slow-test,source", "--metrics",
            "temporal_flickering,bg_psnr,bg_ssim", "--num-frames", "4", "--size", "32", "--device", "cpu",
            "--results-dir", str(tmp_path / "results"), "--name", name, "--limit", "8", "--no-export"]


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path):
    env = _cli_env(tmp_path)
    full = subprocess.run(_cli(tmp_path, "full"), env=env, capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]

    proc = subprocess.Popen(_cli(tmp_path, "killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = tmp_path / "results" / "killed" / "results.sqlite"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill once some but not all edits are stored
        time.sleep(0.2)
        if db.exists():
            try:
                n = ResultStore(db).counts()["edits"]
            except Exception:  # noqa: BLE001 (database being created)
                n = 0
            if n >= 2:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = ResultStore(db).counts()
    assert 0 < partial["edits"] < 16, partial

    resumed = subprocess.run(_cli(tmp_path, "killed") + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = ResultStore(tmp_path / "results" / "full"), ResultStore(db)
    assert a.counts() == b.counts()
    dup = b.conn.execute("SELECT COUNT(*) - COUNT(DISTINCT method || sample_uid) FROM edits").fetchone()[0]
    assert dup == 0
    assert _leaderboard_csv(tmp_path / "results" / "full") == _leaderboard_csv(db.parent)


def test_cli_bad_arguments_are_one_line_errors(tmp_path):
    env = _cli_env(tmp_path)
    for args, expect in (
        (["run", "--methods", "nope"], "unknown method 'nope'; valid choices:"),
        (["run", "--metrics", "nope"], "unknown metric 'nope'; valid choices:"),
        (["run", "--device", "tpu"], "bad device 'tpu'"),
        (["run", "--suite", str(tmp_path / "missing.yaml")], "missing.yaml"),
        (["leaderboard", str(tmp_path / "nowhere")], "has no results.sqlite"),
        (["eval", str(tmp_path / "nowhere")], "is not a folder"),
    ):
        out = subprocess.run([sys.executable, str(REPO / "run_bench.py"), *args], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert expect in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_shards_merge_into_the_same_results_as_one_run(tmp_path):
    full = _cfg(tmp_path, ["source", "test-brighten"], run_name="full", limit=None)
    run_benchmark(full)
    parts = []
    for i in range(2):
        cfg = _cfg(tmp_path, ["source", "test-brighten"], run_name=f"shard{i}", shard=(i, 2))
        run_benchmark(cfg)
        parts.append(cfg.run_dir)
    merged = ResultStore(tmp_path / "merged")
    for p in parts:
        merged.merge_from(p)
    a = ResultStore(full.run_dir)
    assert merged.counts() == a.counts()
    keys = lambda st: {r["edit_key"] for r in st.iter_edits()}  # noqa: E731
    assert keys(merged) == keys(a)


def test_export_writes_overall_and_per_task_leaderboards_and_report(tmp_path):
    from bench.cli.run import _export

    cfg = _cfg(tmp_path, ["source", "flow-propagate"], metrics=["temporal_flickering", "bg_psnr", "clip_text"])
    run_benchmark(cfg)
    paths = _export(cfg.run_dir)
    out = cfg.run_dir / "leaderboard"
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.json", "report.html"):
        assert (out / name).is_file()
    assert (out / "task-text" / "leaderboard.md").is_file() and (out / "task-image" / "leaderboard.md").is_file()
    md = (out / "leaderboard.md").read_text()
    assert "videditbench weights download clip-vit-large-patch14" in md  # skipped metric shows its fix
    image_md = (out / "task-image" / "leaderboard.md").read_text()
    assert "flow-propagate" in image_md and paths["report"].is_file()


def test_corrupt_video_inside_a_run_is_an_error_row_and_others_finish(tmp_path):
    from bench.media.video_io import write_mp4

    y, x = np.mgrid[0:48, 0:48]
    frames = np.stack([np.stack([(x * 5 + t * 3) % 256, (y * 4) % 256, (x + y + t) % 256], -1) for t in range(8)])
    write_mp4(tmp_path / "good.mp4", frames.astype(np.uint8), fps=8)
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    manifest = tmp_path / "suite.yaml"
    manifest.write_text(
        "name: tiny\n"
        "preprocess: {num_frames: 4, size: 32}\n"
        "videos:\n"
        "  - id: good\n    source: good.mp4\n    category: objects\n    source_prompt: stripes\n"
        "    edits:\n      - {id: e1, edit_type: style, target_prompt: stripes in watercolor}\n"
        "  - id: broken\n    source: broken.mp4\n    category: objects\n    source_prompt: nothing\n"
        "    edits:\n      - {id: e1, edit_type: style, target_prompt: nothing in watercolor}\n"
    )
    cfg = RunConfig(suite=str(manifest), methods=["source"], metrics=["temporal_flickering"], results_dir=str(tmp_path),
                    run_name="r", device="cpu")
    summary = run_benchmark(cfg)
    edits = ResultStore(cfg.run_dir).edits_frame().set_index("video_id")
    assert edits.loc["good", "status"] == "ok"
    assert edits.loc["broken", "status"] == "error"
    assert "broken.mp4" in edits.loc["broken", "message"] and "decode" in edits.loc["broken", "message"]
    assert any("broken" in what for _, what, status, _ in summary.problems if status == "error")
