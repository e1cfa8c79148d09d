#!/usr/bin/env python
"""Benchmark (not a test): the local executor vs `--executor ray` with N workers, and a simulated large run.

Part 1 runs the mini suite (weight-free methods and metrics) locally and on a local Ray cluster
(127.0.0.1 only) with 1..N workers; prints wall time, units/s, parallel efficiency T1 / (N · TN)
(T1: the local run) and Ray's overhead per unit ((T_ray,1 − T_local) / units).

Part 2 simulates a large run through the executor's own queue (`RayExecutor._drive`): units whose
durations are sleeps drawn from the per-method edit times measured in part 1 (scaled by --scale),
on --sim-workers actors; prints queue length / running / done over time, efficiency against the
ideal sum(durations) / workers, and the same run with workers killed (kill -9) at 30% and 60%.

Usage: python scripts/bench_scale.py [--workers 2] [--limit 8] [--sim-units 1000] [--sim-workers 8]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METHODS = ["source", "flow-propagate", "color-transfer"]
METRICS = ["temporal_flickering", "bg_psnr", "bg_ssim", "warp_error@flow=dis", "motion_alignment@flow=dis"]


def _units(summary) -> int:
    return (summary.edits_done + summary.scores_done
            + sum(c.get("error", 0) + c.get("not_applicable", 0) for c in summary.edits.values()))


def part1(workers: int, limit: int | None, tmp: Path) -> dict[str, list[float]]:
    from bench.running.ray_executor import run_on_ray
    from bench.running.runner import RunConfig, run_benchmark
    from bench.store.results import ResultStore

    def cfg(name: str) -> RunConfig:
        return RunConfig(suite="mini", methods=METHODS, metrics=METRICS, run_name=name, results_dir=str(tmp),
                         device="cpu", limit=limit, suite_overrides={"num_frames": 8, "size": 64})

    t = time.perf_counter()
    s = run_benchmark(cfg("local"))
    t_local = time.perf_counter() - t
    n_units = s.edits_done + s.scores_done
    print(f"{'executor':<16}{'workers':>8}{'wall s':>10}{'units':>8}{'units/s':>10}{'efficiency':>12}")
    print(f"{'local':<16}{1:>8}{t_local:>10.2f}{n_units:>8}{n_units / t_local:>10.2f}{1.0:>12.2f}")
    rows = []
    for n in range(1, workers + 1):
        t = time.perf_counter()
        s = run_on_ray(cfg(f"ray{n}"), workers=n)  # on the Ray started in main()
        wall = time.perf_counter() - t
        rows.append((n, wall, s.edits_done + s.scores_done))
        print(f"{'ray':<16}{n:>8}{wall:>10.2f}{rows[-1][2]:>8}{rows[-1][2] / wall:>10.2f}"
              f"{t_local / (n * wall):>12.2f}")
    if rows:
        print(f"Ray overhead per unit (1 worker vs local; actor start-up per phase included, Ray's own start not): "
              f"{(rows[0][1] - t_local) / max(rows[0][2], 1) * 1000:.0f} ms")
    with ResultStore(tmp / "local") as st:
        per_method: dict[str, list[float]] = {}
        for r in st.iter_edits("ok"):
            if r["generate_s"] is not None:
                per_method.setdefault(r["method"], []).append(float(r["generate_s"]) + float(r["preprocess_s"] or 0))
    return per_method


# --- part 2: simulation through the executor's queue ---------------------------------------------------
@dataclass(frozen=True)
class SimUnit:
    idx: int
    method: str
    source: str
    seconds: float


class SimActor:
    def setup(self):
        return os.getpid(), "sim", None

    def work(self, unit: SimUnit):
        time.sleep(unit.seconds)
        return unit.idx

    def close(self):
        return None


class _Stub:
    """The driver-side runner the queue reports to (no store: the simulation writes nothing)."""

    def __init__(self):
        self.lines: list[tuple[float, str]] = []
        self.progress = lambda label, done, total: None

    def log(self, msg: str) -> None:
        self.lines.append((time.perf_counter(), msg))

    def put_edit_record(self, row, unit=None) -> None:
        pass


def simulate(per_method: dict[str, list[float]], n_units: int, workers: int, scale: float, kill_at: list[float],
             seed: int = 0) -> dict:
    import ray

    from bench.running.ray_executor import RayExecutor

    rng = random.Random(seed)
    methods = sorted(per_method) or ["fake"]
    units = []
    for i in range(n_units):
        m = methods[i % len(methods)]
        base = rng.choice(per_method.get(m) or [0.02])
        units.append(SimUnit(i, m, f"video{i // 4}", max(0.001, base * scale * rng.uniform(0.5, 1.5))))
    groups: dict[str, list] = {}
    for u in units:
        groups.setdefault(u.source, []).append(u)
    ex = RayExecutor.__new__(RayExecutor)
    ex.runner, ex.workers, ex.max_retries, ex.poll_s = _Stub(), workers, 2, 0.02
    ex.pids, ex.on_unit = [], None
    done: list[int] = []
    timeline: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    to_kill = sorted(kill_at)

    def on_unit(label, pid, out):
        done.append(out)
        timeline.append((time.perf_counter() - t0, len(done)))
        if to_kill and len(done) >= to_kill[0] * n_units:
            to_kill.pop(0)
            os.kill(pid, signal.SIGKILL)

    ex.on_unit = on_unit

    def persist(u, out, retries):
        return True

    ex._drive("sim", list(groups.values()), lambda: ray.remote(num_cpus=1)(SimActor).remote(),
              lambda a, u: a.work.remote(u), persist, lambda u, st, msg: None, expect_key="sim")
    t_end = time.perf_counter()
    ready = [t for t, line in ex.runner.lines if "ready" in line]
    t_ready = ready[min(workers, len(ready)) - 1] if ready else t0  # the initial pool is up
    wall = t_end - t_ready
    ideal = sum(u.seconds for u in units) / workers
    return {"wall": wall, "startup": t_ready - t0, "ideal": ideal, "efficiency": ideal / wall, "done": len(done),
            "unique": len(set(done)), "retried": sum("died" in line for _, line in ex.runner.lines),
            "timeline": [(t - (t_ready - t0), n) for t, n in timeline], "units": n_units}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--sim-units", type=int, default=1000)
    ap.add_argument("--sim-workers", type=int, default=8)
    ap.add_argument("--scale", type=float, default=20.0,
                    help="multiply the measured per-method times in the simulation (weight-free edits take ms)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray

    from bench.running.ray_executor import start_ray

    t = time.perf_counter()
    start_ray(num_cpus=max(args.workers, args.sim_workers))  # logical CPUs: one per actor
    print(f"Ray start (local, 127.0.0.1): {time.perf_counter() - t:.1f} s")
    try:
        with tempfile.TemporaryDirectory() as d:
            print("== part 1: mini suite, local vs Ray ==")
            per_method = part1(args.workers, args.limit, Path(d))
        print({m: f"{sum(v) / len(v) * 1000:.1f} ms" for m, v in per_method.items()}, "(mean measured edit time)")
        print(f"\n== part 2: simulated {args.sim_units} units on {args.sim_workers} workers ==")
        for kill in ([], [0.3, 0.6]):
            r = simulate(per_method, args.sim_units, args.sim_workers, args.scale, kill)
            marks = [f"{t:.1f}s:{n}" for t, n in r["timeline"][:: max(1, len(r["timeline"]) // 8)]]
            print(f"kills at {kill or 'none'}: pool start {r['startup']:.1f} s, then wall {r['wall']:.2f} s, ideal {r['ideal']:.2f} s, efficiency "
                  f"{r['efficiency']:.2f}, units done {r['done']} (unique {r['unique']} of {r['units']}), "
                  f"workers died {r['retried']}, {r['done'] / r['wall']:.1f} units/s")
            print("   progress (time:done):", " ".join(marks))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
