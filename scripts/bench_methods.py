#!/usr/bin/env python
"""Benchmark (not a test): per adapter, pre-processing time, generation time and peak memory with
tiny random-weight components, measured by the harness exactly as in a run — so the harness's own
overhead per edit is visible next to the adapters' work.

Every method runs through `bench.running.runner.Runner` on the mini suite at a small size; the runner
stores medians-worthy rows; this script repeats each method `--repeats` times in fresh run folders
and prints medians. The `source` method (a copy) is the baseline: its time is the harness's cost.
Usage: python scripts/bench_methods.py [--repeats 3] [--samples 2] [--size 64] [--num-frames 4]

`--goldens` instead times each adapter's `official` preset on its method golden
(../shared/goldens/methods/<name>: the golden's tiny models, frames and settings): CPU seconds per
edit (inversion included, model loading not), beside the official code's time the RECIPE gives.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
for _k in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
    os.environ.setdefault(_k, "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def tiny_components(root: Path) -> dict[str, dict]:
    import tiny_diffusers as td
    from tiny_control import build_tiny_controlnet, build_tiny_dpt

    sd = td.build_sd15_dir(root / "sd15")
    ip2p = td.build_ip2p_dir(root / "ip2p")
    pbe = td.build_paint_by_example_dir(root / "pbe")
    adapter = td.build_motion_adapter_dir(root / "motion")
    cn = build_tiny_controlnet(root / "controlnet")
    dpt = build_tiny_dpt(root / "dpt")
    steps = {"num_inference_steps": 2, "resolution": None}
    return {
        "source": {},
        "color-transfer": {},
        "flow-propagate": {},
        "framewise-sdedit": {"weights": str(sd), **steps},
        "framewise-ip2p": {"weights": str(ip2p), **steps},
        "text2video-zero": {"weights": str(ip2p), **steps},
        "animatediff-v2v": {"weights": str(sd), "motion_adapter": str(adapter), **steps},
        "controlnet-depth": {"weights": str(sd), "controlnet": str(cn), "depth_model": str(dpt), **steps},
        "rave": {"weights": str(sd), "controlnet": str(cn), "depth_model": str(dpt), **steps},
        "framewise-paint-by-example": {"weights": str(pbe), **steps},
        "tokenflow": {"weights": str(sd), "num_inversion_steps": 2, "batch_size": 2, **steps},
        "vidtome": {"weights": str(sd), "num_inversion_steps": 2, **steps},
    }


def _golden_frames(folder: Path):
    import numpy as np
    from PIL import Image

    from bench.api.types import Video

    return Video(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]), fps=8.0)


def golden_edit_vidtome(golden: Path) -> tuple[dict, object, dict, float | None]:
    """(method options, video, edit kwargs, the official code's seconds per run from the RECIPE)."""
    import json

    exp = json.loads((golden / "expected.json").read_text())
    cfg = exp["config_resolved"]
    options = {"preset": "official", "weights": str(golden / "models" / "sd15-tiny"), "resolution": cfg["height"],
               "num_inference_steps": cfg["generation"]["n_timesteps"], "num_inversion_steps": cfg["inversion"]["steps"]}
    kwargs = {"prompt": exp["prompts"]["edit_prompt"], "source_prompt": exp["prompts"]["inversion_prompt"]}
    return options, _golden_frames(golden / "inputs" / "bbb"), kwargs, exp.get("run_seconds_golden")


#: method -> its golden edit (the golden folder is ../shared/goldens/methods/<method>)
GOLDEN_EDITS = {"vidtome": golden_edit_vidtome}


def bench_goldens(repeats: int, wanted: list[str]) -> None:
    """Official-preset edits on the method goldens: CPU time per edit (process CPU and wall), medians."""
    import torch

    from bench.api.catalog import METHODS

    root = Path(os.environ.get("VIDEDITBENCH_GOLDENS", ROOT.parent / "shared" / "goldens")) / "methods"
    print(f"official presets on the method goldens ({root}), torch threads {torch.get_num_threads()}, "
          f"{repeats} repeats (medians)\n")
    print(f"{'method':14s} {'frames':>6s} {'CPU s/edit':>11s} {'wall s/edit':>12s} {'official code wall s':>21s}")
    for name in wanted or [*GOLDEN_EDITS, "tokenflow"]:
        if name == "tokenflow":  # its golden helper drives prepare + edit (tests/tokenflow_golden.py)
            golden_timings(repeats)
            continue
        if not (root / name / "expected.json").is_file():
            print(f"{name:14s} no golden at {root / name}")
            continue
        options, video, kwargs, official_s = GOLDEN_EDITS[name](root / name)
        cpu, wall = [], []
        for _ in range(repeats):
            method = METHODS.get(name)(device="cpu", seed=123, **options)
            method.setup()  # loading is not part of an edit
            c, t = time.process_time(), time.perf_counter()
            method.edit(video, **kwargs)
            cpu.append(time.process_time() - c)
            wall.append(time.perf_counter() - t)
        ref = f"{official_s:21.1f}" if official_s else f"{'-':>21s}"
        print(f"{name:14s} {video.num_frames:6d} {statistics.median(cpu):11.1f} {statistics.median(wall):12.1f} {ref}")
    print("\nofficial code wall s: the RECIPE's time of one official run (inversion + editing + decoding, 1 thread, "
          "CPU, float32).")


def golden_timings(repeats: int) -> None:
    """Official-mode adapters on the method goldens: CPU (process) seconds per edit, median of `repeats`."""
    from tokenflow_golden import SUBDIR, Golden

    root = Path(os.environ.get("VIDEDITBENCH_GOLDENS", ROOT.parent / "shared" / "goldens"))
    golden = Golden.load(root / SUBDIR)
    method = golden.official()
    method.setup()
    cpu, wall = [], []
    for _ in range(repeats):
        t, w = time.process_time(), time.perf_counter()
        method.edit(golden.video, prompt=golden.prompt, prepared=method.prepare(golden.video))
        cpu.append(time.process_time() - t)
        wall.append(time.perf_counter() - w)
    import torch

    print(f"{'method (goldens)':28s} {'CPU s/edit':>10s} {'wall s/edit':>11s} {'official s (golden run)':>24s}")
    print(f"{'tokenflow preset=official':28s} {statistics.median(cpu):10.1f} {statistics.median(wall):11.1f} "
          f"{golden.expected.get('edit_seconds', float('nan')):24.1f}")
    print(f"({len(golden.video.frames)} frames at {golden.video.height}x{golden.video.width}, "
          f"{golden.settings['n_timesteps']} editing + {golden.settings['n_inversion_steps']} inversion steps, "
          f"torch threads {torch.get_num_threads()}; the golden's official run used {golden.expected.get('threads')})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=2, help="samples per task (text and image)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--num-frames", type=int, default=4)
    ap.add_argument("--methods", default="", help="comma-separated subset")
    ap.add_argument("--goldens", action="store_true", help="time the official presets on the method goldens")
    args = ap.parse_args()
    if args.goldens:
        bench_goldens(args.repeats, [m for m in args.methods.split(",") if m])
        return

    from bench.running.runner import RunConfig, run_benchmark
    from bench.store.results import ResultStore
    from bench.suites import load_suite

    suite = load_suite("mini", num_frames=args.num_frames, size=args.size)
    text = [s for s in suite.samples if s.task == "text"][: args.samples]
    image = [s for s in suite.samples if s.task == "image"][: args.samples]
    uids = {s.uid for s in text + image}

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        methods = tiny_components(Path(d) / "weights")
        print(f"tiny components built in {time.perf_counter() - t:.1f}s; {len(text)} text + {len(image)} image "
              f"samples, {args.num_frames} frames at {args.size}px, {args.repeats} repeats (medians)\n")
        wanted = [m for m in args.methods.split(",") if m] or list(methods)
        print(f"{'method':28s} {'edits':>5s} {'prepare s':>10s} {'generate s':>11s} {'peak MB':>9s} "
              f"{'wall/edit s':>12s} {'vs source':>9s}")
        base = None
        for name in wanted:
            prep, gen, mem, wall, n_ok = [], [], [], [], 0
            for r in range(args.repeats):
                cfg = RunConfig(suite="mini", methods=[name], metrics=[], results_dir=d, run_name=f"{name}-{r}",
                                device="cpu", suite_overrides={"num_frames": args.num_frames, "size": args.size},
                                method_options={name: methods[name]})
                t = time.perf_counter()
                from bench.running.runner import Runner

                runner = Runner(cfg)
                runner.samples = [s for s in runner.samples if s.uid in uids]
                runner.run(do_metrics=False)
                runner.store.close()
                elapsed = time.perf_counter() - t
                rows = [e for e in ResultStore(cfg.run_dir).iter_edits("ok")]
                n_ok = len(rows)
                if rows:
                    prep.append(statistics.median(e["preprocess_s"] or 0.0 for e in rows))
                    gen.append(statistics.median(e["generate_s"] for e in rows))
                    mem.append(max(e["peak_memory_mb"] for e in rows))
                    wall.append(elapsed / n_ok)
            if not gen:
                errs = {e["message"] for e in ResultStore(cfg.run_dir).iter_edits() if e["status"] != "not_applicable"}
                print(f"{name:28s} no ok edits: {'; '.join(sorted(errs))[:120]}")
                continue
            g = statistics.median(gen)
            w = statistics.median(wall)
            base = base or w
            print(f"{name:28s} {n_ok:5d} {statistics.median(prep):10.3f} {g:11.3f} {statistics.median(mem):9.0f} "
                  f"{w:12.3f} {w / base:8.1f}x")
        print("\nwall/edit = whole runner time per edit (load, prepare, edit, validation, PNG write, store); "
              "generate = the adapter's edit() alone, as stored. Their difference is the harness overhead.")


if __name__ == "__main__":
    main()
