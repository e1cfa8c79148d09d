#!/usr/bin/env python
"""Benchmark (not a test): start-up latency, decode, preprocessing and result-store throughput.

Prints medians of several repeats and ratios against a baseline measured in the same run:
decord vs PyAV decode, cold vs cached sample loading, store writes one-row-per-transaction vs
batched, (scripts/_bench_speed.py) decode-once scoring and incremental export against the old
paths they replace, and start-up of fresh processes (`videditbench --help`, `import bench.running.runner`,
the first clip_text / dino_consistency / motion_alignment score with tiny random models, and
motion_alignment with ptlflow's GMFlow module, and with the whole ptlflow package imported first: the
old paths) in wall and CPU seconds.
Usage: python scripts/bench_core.py [--repeats 5] [--size 256] [--num-frames 24] [--startup-repeats 5]
       [--only-startup | --no-startup] [--ab-size 128 --ab-frames 8 --ab-repeats 3 | --no-ab]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


FIRST_SCORE = """
import numpy as np
{pre}
from bench.api.catalog import METRICS
from bench.api.types import EvalItem, Sample, Video
v = Video(np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8))
item = EvalItem(Sample("t", "v", "e", "s"), source=v, edited=v, prompt="a red car")
print(METRICS.get("{metric}")(device="cpu", **{opts!r}).compute(item))
"""


def timed_process(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s = user + sys) of one fresh process."""
    import os
    import subprocess

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr.read().decode()[-1500:]}")
    return wall, ru.ru_utime + ru.ru_stime


def startup_latency(repeats: int) -> None:
    """Start-up and first-score latency of fresh processes, interleaved, medians."""
    import os

    sys.path.insert(0, str(ROOT / "tests"))
    import torch
    import tiny_models as tm

    from metrics.flow.ptlflow_models import ptlflow_model_class

    with tempfile.TemporaryDirectory() as d:
        clip, dino = tm.build_tiny_clip(Path(d) / "clip"), tm.build_tiny_dinov2(Path(d) / "dino")
        torch.manual_seed(0)
        torch.save({"model": ptlflow_model_class("gmflow")().state_dict()}, Path(d) / "gmflow.pth")
        torch.save({"model": ptlflow_model_class("raft")().state_dict()}, Path(d) / "raft.pth")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}
        py = sys.executable
        first = {"clip_text": ("", {"weights": str(clip)}), "dino_consistency": ("", {"weights": str(dino)})}
        env["VIDEDITBENCH_WEIGHT_GMFLOW_SINTEL"] = str(Path(d) / "gmflow.pth")
        env["VIDEDITBENCH_WEIGHT_RAFT_SINTEL"] = str(Path(d) / "raft.pth")
        cases = {
            "videditbench --help": [py, "-m", "bench.cli", "--help"],
            "import bench.running.runner": [py, "-c", "import bench.running.runner"],
            **{f"first {m} score": [py, "-c", FIRST_SCORE.format(pre=pre, metric=m, opts=o)]
               for m, (pre, o) in first.items()},
            "first motion_alignment score (our GMFlow)":
                [py, "-c", FIRST_SCORE.format(pre="", metric="motion_alignment", opts={})],
            "  same, ptlflow's GMFlow module (flow=gmflow-ptlflow)":
                [py, "-c", FIRST_SCORE.format(pre="", metric="motion_alignment", opts={"flow": "gmflow-ptlflow"})],
            "  same, ptlflow package imported first (the path before that)":
                [py, "-c", FIRST_SCORE.format(pre="import ptlflow", metric="motion_alignment", opts={"flow": "gmflow-ptlflow"})],
            "first motion_alignment score, flow=raft (our RAFT)":
                [py, "-c", FIRST_SCORE.format(pre="", metric="motion_alignment", opts={"flow": "raft"})],
            "  same, ptlflow's RAFT module (flow=raft-ptlflow)":
                [py, "-c", FIRST_SCORE.format(pre="", metric="motion_alignment", opts={"flow": "raft-ptlflow"})],
        }
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
        for _ in range(repeats):  # interleaved, so machine noise hits every case alike
            for name, cmd in cases.items():
                times[name].append(timed_process(cmd, env))
    print(f"start-up (fresh processes, medians of {repeats}, OMP_NUM_THREADS=1):")
    print(f"  {'':52s} {'wall s':>7s} {'CPU s':>7s}")
    for name, ts in times.items():
        print(f"  {name:52s} {statistics.median(t[0] for t in ts):7.2f} {statistics.median(t[1] for t in ts):7.2f}")
    print()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--num-frames", type=int, default=24)
    ap.add_argument("--ab-size", type=int, default=128, help="frame size of the decode-once / export runs")
    ap.add_argument("--ab-frames", type=int, default=8)
    ap.add_argument("--ab-repeats", type=int, default=3)
    ap.add_argument("--no-ab", action="store_true", help="skip the decode-once / incremental-export comparison")
    ap.add_argument("--startup-repeats", type=int, default=5)
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up latency section")
    ap.add_argument("--only-startup", action="store_true", help="only the start-up latency section")
    args = ap.parse_args()
    if not args.no_startup:
        startup_latency(args.startup_repeats)
    if args.only_startup:
        return

    from bench.store.results import EditRow, ResultStore, ScoreRow
    from bench.suites import load_suite
    from bench.media.video_io import read_video

    suite = load_suite("mini", num_frames=args.num_frames, size=args.size)
    sources = sorted({s.source for s in suite.samples})
    files = [p for p in (suite.resolve_source(s) if hasattr(suite, "resolve_source") else s for s in sources)
             if str(p).endswith(".mp4") and Path(p).exists()]
    print(f"mini suite: {len(suite.samples)} samples, {len(sources)} source videos; {args.repeats} repeats, medians\n")

    print("decode (whole file):")
    for f in files:
        frames, _ = read_video(f, backend="pyav")
        t_av = median_time(lambda: read_video(f, backend="pyav"), args.repeats)
        try:
            t_dec = median_time(lambda: read_video(f, backend="decord"), args.repeats)
            ratio = f"decord {t_dec * 1e3:7.1f} ms  ({t_av / t_dec:4.2f}x PyAV speed)"
        except Exception as e:  # noqa: BLE001
            ratio = f"decord unavailable ({type(e).__name__})"
        print(f"  {Path(f).name:24s} {frames.shape[0]:4d} frames {frames.shape[2]}x{frames.shape[1]}  "
              f"PyAV {t_av * 1e3:7.1f} ms  {ratio}")

    print("\nsample loading (decode + stride + resize/centre-crop + masks/reference/flow):")
    cold, warm = [], []
    for _ in range(args.repeats):
        s2 = load_suite("mini", num_frames=args.num_frames, size=args.size)
        t = time.perf_counter()
        for sample in s2.samples:
            s2.load(sample)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        for sample in s2.samples:
            s2.load(sample)
        warm.append(time.perf_counter() - t)
    c, w = statistics.median(cold), statistics.median(warm)
    n = len(suite.samples)
    print(f"  all {n} samples cold {c:6.2f} s ({c / n * 1e3:6.1f} ms/sample); in-memory cache {w * 1e3:6.1f} ms "
          f"({c / max(w, 1e-9):.0f}x)")

    print("\nresult store (SQLite, WAL):")
    n_rows = 2000

    def rows(prefix: str):
        return [ScoreRow(f"{prefix}{i}", f"e{i % 50}", "m", "mk", f"u{i % 50}", f"metric{i % 40}", "fam", "v", "l",
                         float(i), "ok", None, True, 0.0, 1.0, "sample") for i in range(n_rows)]

    with tempfile.TemporaryDirectory() as d:
        def one_by_one():
            st = ResultStore(Path(d) / f"a{time.perf_counter_ns()}")
            for r in rows("a"):
                st.put_scores([r])
            st.close()

        def batched():
            st = ResultStore(Path(d) / f"b{time.perf_counter_ns()}")
            st.put_scores(rows("b"))
            st.close()

        def edits():
            st = ResultStore(Path(d) / f"c{time.perf_counter_ns()}")
            for i in range(200):
                st.put_edit(EditRow(f"k{i}", "m", "mk", "{}", f"u{i}", "sk", "mini", "v", "e", "style", "c", "text",
                                    "p", "ok"))
            st.close()

        t1, t2, t3 = (median_time(f, args.repeats) for f in (one_by_one, batched, edits))
        st = ResultStore(Path(d) / "read")
        st.put_scores(rows("r"))
        t4 = median_time(st.scores_frame, args.repeats)
        print(f"  {n_rows} scores one per transaction {t1 * 1e3:7.1f} ms ({t1 / n_rows * 1e6:5.1f} µs/row)")
        print(f"  {n_rows} scores in one transaction  {t2 * 1e3:7.1f} ms ({t1 / t2:4.1f}x faster)")
        print(f"  200 edit rows (one transaction each) {t3 * 1e3:7.1f} ms")
        print(f"  read {n_rows} scores into pandas     {t4 * 1e3:7.1f} ms")

    if not args.no_ab:
        speed_ab(args.ab_size, args.ab_frames, args.ab_repeats)


#: weight-free metrics that all read the edited frames
AB_METRICS = ["temporal_flickering", "bg_psnr", "bg_ssim", "warp_error@flow=dis", "warp_error@flow=gt",
              "motion_alignment@flow=dis", "generation_time"]


def speed_ab(size: int, num_frames: int, repeats: int) -> None:
    from _bench_speed import decode_once_ab, incremental_export_ab

    from bench.running.runner import RunConfig

    with tempfile.TemporaryDirectory() as d:
        cfg = RunConfig(suite="mini", methods=["source", "color-transfer", "flow-propagate"], metrics=AB_METRICS,
                        results_dir=d, run_name="ab", device="cpu",
                        suite_overrides={"num_frames": num_frames, "size": size})
        print(f"\nmini suite at {num_frames} frames x {size}px, methods {', '.join(cfg.methods)}:")
        decode_once_ab(cfg, repeats)
        incremental_export_ab(cfg, repeats)


if __name__ == "__main__":
    main()
