#!/usr/bin/env python
"""GPU smoke test (not part of the pytest suite): every diffusion adapter, tiny random components, CUDA,
in float16 and bfloat16.

For each precision ($VIDEDITBENCH_CUDA_DTYPE) and each diffusion adapter registered in
`bench.api.catalog.METHODS` — ours and the video-model adapters (anyv2v, wan-vace, wan-v2v, cogvideox-v2v,
ltx-v2v) when they are registered — the adapter is built with tiny random-weight components saved
in the hub layout (the same loaders real weights use), runs `prepare` + `edit` on a synthetic
4-frame 64x64 clip and must return finite uint8 frames of the source's shape. Prints one line per
(method, precision) with the time and peak CUDA memory; exits 1 if any failed, 0 otherwise.
Without CUDA it prints a message and exits 0.

Tiny components come from `scripts/bench_methods.tiny_components` (one entry per method name) or,
for adapters that bring their own, from a classmethod `smoke_options(root: Path) -> dict` on the
method class (options that point the adapter at tiny components built under `root`). Registered
diffusion adapters with neither are reported as skipped.

Usage: python scripts/gpu_smoke.py [--dtypes float16,bfloat16] [--methods a,b] [--frames 4] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
for _k in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
    os.environ.setdefault(_k, "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests", ROOT / "scripts"):
    sys.path.insert(0, str(_p))

#: diffusion adapters by name (those not registered are skipped); other registered DiffusersMethod
#: subclasses are added automatically
DIFFUSION_METHODS = (
    "framewise-sdedit", "framewise-ip2p", "text2video-zero", "animatediff-v2v", "controlnet-depth", "rave",
    "framewise-paint-by-example", "tokenflow", "vidtome",
    "anyv2v", "wan-vace", "wan-v2v", "cogvideox-v2v", "ltx-v2v",
)


def diffusion_method_names() -> list[str]:
    from bench.api.catalog import METHODS
    from methods.diffusion_common import DiffusersMethod

    names = [n for n in DIFFUSION_METHODS if n in METHODS]
    for n in METHODS.names():
        if n in names:
            continue
        try:
            if issubclass(METHODS.get(n), DiffusersMethod):
                names.append(n)
        except Exception:  # noqa: BLE001  (a plug-in that does not import is not ours to smoke-test)
            continue
    return names


def clip(frames: int, size: int):
    import numpy as np

    from bench.api.types import Video

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    out = []
    for t in range(frames):
        f = 120 + 70 * np.sin((x + 3 * t) / 6.0)[..., None] * np.array([1.0, 0.5, -0.6])
        f[size // 4:size // 2, size // 5 + 2 * t:size // 2 + 2 * t] = (220, 60, 40)
        out.append(np.clip(f + rng.normal(0, 3, f.shape), 0, 255).astype(np.uint8))
    video = Video(np.stack(out), fps=8.0)
    mask = np.zeros((frames, size, size), bool)
    mask[:, size // 4:3 * size // 4, size // 4:3 * size // 4] = True
    reference = np.full((size // 2, size // 2, 3), (30, 190, 90), np.uint8)
    return video, mask, reference


def run_one(name: str, options: dict, dtype: str, frames: int, size: int, device: str = "cuda") -> tuple[str, str]:
    import numpy as np
    import torch

    from bench.api.catalog import METHODS

    cls = METHODS.get(name)
    video, mask, reference = clip(frames, size)
    image_task = "image" in cls.tasks and "text" not in cls.tasks
    kwargs = {"reference": reference, "mask": mask} if image_task else {"prompt": "a watercolor painting",
                                                                        "source_prompt": "a red square"}
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    method = cls(device=device, seed=0, **options)
    method.setup()
    prepared = method.prepare(video)
    out = method.edit(video, prepared=prepared, **kwargs)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    frames_out = out.frames if hasattr(out, "frames") else np.asarray(out)
    unet = getattr(getattr(method, "pipe", None), "unet", None) or getattr(getattr(method, "pipe", None), "transformer", None)
    model_dtype = str(getattr(unet, "dtype", "?")).replace("torch.", "")
    method.teardown()
    problems = []
    if frames_out.shape != video.frames.shape or frames_out.dtype != np.uint8:
        problems.append(f"output {frames_out.dtype} {frames_out.shape}, expected uint8 {video.frames.shape}")
    elif frames_out.std() == 0:
        problems.append("constant output")
    if model_dtype not in ("?", dtype):
        problems.append(f"model ran in {model_dtype}, not {dtype}")
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0
    status = "FAIL" if problems else "ok"
    return status, f"{seconds:6.2f}s  peak {peak:7.1f} MB  model {model_dtype}" + (f"  — {'; '.join(problems)}" if problems else "")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtypes", default="float16,bfloat16")
    ap.add_argument("--methods", default="", help="comma-separated subset (default: every diffusion adapter)")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--allow-cpu", action="store_true",
                    help="without CUDA, run on the CPU in float32 instead of skipping (checks this script itself)")
    args = ap.parse_args()

    import torch

    device = "cuda"
    if not torch.cuda.is_available():
        if not args.allow_cpu:
            print("gpu_smoke: skipped — no CUDA device (torch.cuda.is_available() is False)")
            return 0
        device, args.dtypes = "cpu", "float32"
    from bench.api.catalog import METHODS
    from bench.weights.models import clear_model_cache
    from bench_methods import tiny_components
    from methods.diffusion_common import DTYPE_ENV

    names = [m for m in args.methods.split(",") if m] or diffusion_method_names()
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        t = time.perf_counter()
        builders = tiny_components(root / "weights")
        where = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
        print(f"gpu_smoke on {where}: tiny components built in {time.perf_counter() - t:.1f}s")
        for dtype in [x for x in args.dtypes.split(",") if x]:
            os.environ[DTYPE_ENV] = dtype
            clear_model_cache()
            for name in names:
                label = f"{name:28s} {dtype:9s}"
                if name not in METHODS:
                    print(f"{label} skipped — not registered")
                    continue
                options = builders.get(name)
                cls = METHODS.get(name)
                if options is None and hasattr(cls, "smoke_options"):
                    options = cls.smoke_options(root / "own" / name)
                if options is None:
                    print(f"{label} skipped — no tiny components (add an entry to scripts/bench_methods.tiny_components "
                          "or a smoke_options(root) classmethod)")
                    continue
                try:
                    status, detail = run_one(name, dict(options), dtype, args.frames, args.size, device)
                except Exception as exc:  # noqa: BLE001
                    status, detail = "FAIL", f"{type(exc).__name__}: {exc}"
                    traceback.print_exc(limit=3)
                failures += status != "ok"
                print(f"{label} {status:4s} {detail}", flush=True)
                torch.cuda.empty_cache()
    print(f"gpu_smoke: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
