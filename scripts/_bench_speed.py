"""Before/after figures of decode-once scoring and incremental export, measured in one run
(shared by scripts/bench_core.py and scripts/bench_metrics.py; not a test).

The "before" path is the switch that restores it: RunConfig(decode_once=False) (one decode of every
edit per metric) and VIDEDITBENCH_INCREMENTAL_EXPORT=0 (every table, plot and guidance preview
rewritten on every export). Variants are interleaved so machine noise hits both alike; medians of
`repeats` runs, CPU seconds of this process (time.process_time) and wall seconds.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


@contextmanager
def _count_edit_decodes(edits_root: Path) -> Iterator[list[int]]:
    import bench.media.video_io as video_io

    real, n = video_io.read_video, [0]

    def counting(path, *a, **kw):
        if str(Path(path).resolve()).startswith(str(edits_root.resolve())):
            n[0] += 1
        return real(path, *a, **kw)

    video_io.read_video = counting
    try:
        yield n
    finally:
        video_io.read_video = real


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    c, w = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c, time.perf_counter() - w


def _values(run_dir: Path) -> dict[tuple, float]:
    from bench.store.results import ResultStore

    with ResultStore(run_dir) as store:
        sc = store.scores_frame()
    ok = sc[(sc.status == "ok") & ~sc.metric_family.isin(["generation_time", "preprocess_time", "peak_memory"])]
    return {(r.method, r.sample_uid, r.metric, r.variant_id): float(r.value) for r in ok.itertuples()}


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def decode_once_ab(cfg, repeats: int = 3) -> None:
    """Score `cfg.metrics` on the edits of `cfg` (made once here) with decode_once off/on."""
    from bench.running.runner import run_benchmark
    from bench.store.results import ResultStore

    run_benchmark(dataclasses.replace(cfg, metrics=[]))
    with ResultStore(cfg.run_dir) as store:
        n_edits = sum(1 for _ in store.iter_edits("ok"))

    def score(flag: bool) -> tuple[float, float, int, dict]:
        with ResultStore(cfg.run_dir) as store:
            store.conn.execute("DELETE FROM scores")
        with _count_edit_decodes(cfg.run_dir / "edits") as n:
            cpu, wall = _timed(lambda: run_benchmark(dataclasses.replace(cfg, decode_once=flag), do_edits=False))
        return cpu, wall, n[0], _values(cfg.run_dir)

    score(True)  # warm-up: imports and first model loads are nobody's doing
    res: dict[bool, list[tuple]] = {False: [], True: []}
    for _ in range(repeats):
        for flag in (False, True):
            res[flag].append(score(flag))
    same = res[False][-1][3] == res[True][-1][3]
    print(f"\ndecode once: scoring {n_edits} edits with {len(cfg.metrics)} metric(s) "
          f"({', '.join(cfg.metrics)}); medians of {repeats}, interleaved")
    print(f"  {'path':34s} {'CPU s':>8s} {'wall s':>8s} {'edit decodes':>13s}")
    for flag, label in ((False, "before: decode per metric"), (True, "after: decode once (byte LRU)")):
        cpu, wall = _med([r[0] for r in res[flag]]), _med([r[1] for r in res[flag]])
        print(f"  {label:34s} {cpu:8.2f} {wall:8.2f} {res[flag][-1][2]:13d}")
    before, after = _med([r[0] for r in res[False]]), _med([r[0] for r in res[True]])
    print(f"  ratio before/after (CPU): {before / max(after, 1e-9):.2f}x; "
          f"numbers identical: {'yes' if same else 'NO'} ({len(res[True][-1][3])} values)")


@contextmanager
def _incremental(on: bool) -> Iterator[None]:
    old = os.environ.get("VIDEDITBENCH_INCREMENTAL_EXPORT")
    os.environ["VIDEDITBENCH_INCREMENTAL_EXPORT"] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("VIDEDITBENCH_INCREMENTAL_EXPORT", None)
        else:
            os.environ["VIDEDITBENCH_INCREMENTAL_EXPORT"] = old


def incremental_export_ab(cfg, repeats: int = 3) -> None:
    """Export a finished run (scored by `cfg`), then re-export it and re-run it unchanged, old path vs new."""
    from bench.cli.run import _export
    from bench.running.runner import run_benchmark

    run_benchmark(cfg)
    with _incremental(True):
        cold = _timed(lambda: _export(cfg.run_dir))
    files = [p for p in (cfg.run_dir / "leaderboard").rglob("*") if p.is_file()]

    def rerun() -> None:
        run_benchmark(cfg)
        _export(cfg.run_dir)

    res: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for _ in range(repeats):
        for on in (False, True):
            with _incremental(on):
                if on:  # the old path's pass rewrote every file without content keys; the first new export restores them
                    _export(cfg.run_dir)
                res.setdefault(("export", on), []).append(_timed(lambda: _export(cfg.run_dir)))
                res.setdefault(("rerun", on), []).append(_timed(rerun))
    print(f"\nincremental export: {len(files)} files (tables, plots, previews); first export "
          f"{cold[0]:.2f} CPU s / {cold[1]:.2f} s wall; medians of {repeats}, interleaved")
    print(f"  {'unchanged store':40s} {'before CPU s':>12s} {'after CPU s':>12s} {'before wall':>12s} "
          f"{'after wall':>11s} {'ratio CPU':>10s}")
    for what, label in (("export", "re-export"), ("rerun", "run of a finished store + export")):
        b, a = res[(what, False)], res[(what, True)]
        bc, ac, bw, aw = _med([x[0] for x in b]), _med([x[0] for x in a]), _med([x[1] for x in b]), _med([x[1] for x in a])
        print(f"  {label:40s} {bc:12.2f} {ac:12.2f} {bw:12.2f} {aw:11.2f} {bc / max(ac, 1e-9):9.1f}x")


#: the backbones of the FrameEncoder metrics (one forward of one of these = one model batch)
BACKBONES = ("CLIPVisionModel", "CLIPVisionTransformer", "Dinov2Model", "ViTModel", "VisionTransformer")


@contextmanager
def _count_backbone_forwards() -> Iterator[list[int]]:
    """[calls, frames] of the metric backbones' forwards (a global torch forward hook)."""
    import torch

    n = [0, 0]

    def hook(module, args, out):
        if type(module).__name__ in BACKBONES:
            x = out if isinstance(out, torch.Tensor) else getattr(out, "last_hidden_state", None)
            n[0] += 1
            n[1] += int(x.shape[0]) if x is not None else 0

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield n
    finally:
        handle.remove()


def cross_batch_ab(cfg, repeats: int = 3) -> None:
    """Score `cfg.metrics` on the edits of `cfg` (made once here) with cross-sample batching off/on
    (RunConfig.cross_batch, VIDEDITBENCH_CROSS_BATCH=0): CPU and wall seconds, backbone forward calls."""
    from bench.running.runner import Runner, run_benchmark
    from bench.store.results import ResultStore

    run_benchmark(dataclasses.replace(cfg, metrics=[]))
    with ResultStore(cfg.run_dir) as store:
        n_edits = sum(1 for _ in store.iter_edits("ok"))

    def score(flag: bool) -> tuple[float, float, list[int], dict]:
        with ResultStore(cfg.run_dir) as store:
            store.conn.execute("DELETE FROM scores")
        with _count_backbone_forwards() as n:
            cpu, wall = _timed(lambda: run_benchmark(dataclasses.replace(cfg, cross_batch=flag), do_edits=False))
        return cpu, wall, list(n), _values(cfg.run_dir)

    score(True)  # warm-up
    res: dict[bool, list[tuple]] = {False: [], True: []}
    for _ in range(repeats):
        for flag in (False, True):
            res[flag].append(score(flag))
    same = res[False][-1][3] == res[True][-1][3]
    probe = Runner(dataclasses.replace(cfg, metrics=[]))
    probe.store.close()
    print(f"\ncross-sample batching: scoring {n_edits} edits with {len(cfg.metrics)} metric(s) "
          f"({', '.join(cfg.metrics)}), batch size {probe.batch_size} on {probe.device}; medians of {repeats}, interleaved")
    print(f"  {'path':40s} {'CPU s':>8s} {'wall s':>8s} {'forwards':>9s} {'frames/forward':>15s}")
    for flag, label in ((False, "before: one model batch per video"), (True, "after: batches across samples")):
        cpu, wall = _med([r[0] for r in res[flag]]), _med([r[1] for r in res[flag]])
        calls, frames = res[flag][-1][2]
        print(f"  {label:40s} {cpu:8.2f} {wall:8.2f} {calls:9d} {frames / max(calls, 1):15.1f}")
    before, after = _med([r[0] for r in res[False]]), _med([r[0] for r in res[True]])
    print(f"  ratio before/after (CPU): {before / max(after, 1e-9):.2f}x; "
          f"numbers identical: {'yes' if same else 'NO'} ({len(res[True][-1][3])} values)")
