#!/usr/bin/env python
"""Benchmark (not a test): every metric on the mini suite with tiny random weights, per frame and
per sample, and the speed-up of the per-run source-feature cache against recomputing source
features for every edit (V2VBench's behaviour), measured in the same run.

Tiny weights are built in a temp dir and reached through the same `VIDEDITBENCH_WEIGHT_<NAME>`
overrides a user would set, so every metric loads through its real loader.
It ends with the whole scoring phase through the runner, decode-once against the old
decode-per-metric path (scripts/_bench_speed.py), on --ab-metrics, and cross-sample batching of
model metrics against one model batch per video (VIDEDITBENCH_CROSS_BATCH=0), on --cross-metrics.
Usage: python scripts/bench_metrics.py [--size 128] [--num-frames 8] [--repeats 3] [--metrics a,b]
[--ab-metrics a,b | --no-ab] [--cross-metrics a,b | --no-cross] [--only-ab]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

# open_clip's OpenAI loader (aesthetic_quality) calls torch.jit.load, deprecated in torch 2.9+: noise in the figures
warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=FutureWarning)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

METRICS = ("clip_text", "clip_consistency", "dino_consistency", "clip_image", "dino_image", "aesthetic",
           "pick_score", "dover", "motion_alignment", "motion_alignment@flow=dis", "warp_error",
           "warp_error@flow=dis", "warp_error@flow=gt", "fid", "temporal_flickering", "bg_psnr", "bg_ssim",
           "generation_time")
# ViCLIP (tiny: head_dim 16; stride 1 keeps the 8 frames), LPIPS / bg_mse outside the mask, motion control
METRICS += ("viclip@stride=1,head_dim=16", "lpips", "lpips@net=vgg", "bg_mse", "box_miou", "centroid_distance")
#: VBench dimensions (issue 12); background_consistency reuses the tiny 64 px CLIP folder
VBENCH_METRICS = ("subject_consistency", "background_consistency@size=64", "motion_smoothness", "dynamic_degree",
                  "dynamic_degree@flow=gt", "aesthetic_quality")


#: the decode-once run: the small-model metrics of the V2VBench comparison plus weight-free ones
AB_METRICS = ("clip_text", "clip_consistency", "dino_consistency", "aesthetic", "temporal_flickering", "bg_psnr",
              "warp_error@flow=dis")
#: the cross-sample batching run: metrics whose frames go through a FrameEncoder (Metric.prefetch)
CROSS_METRICS = ("clip_consistency", "dino_consistency", "clip_image", "dino_image", "subject_consistency",
                 "aesthetic_quality")


def build_tiny_weights(root: Path) -> None:
    import ptlflow
    import torch
    import tiny_models as tm
    from test_metrics_dover import tiny_state_dict

    from metrics.fid import build_fid_inception_v3

    clip = tm.build_tiny_clip(root / "clip")
    env = {
        "CLIP_VIT_LARGE_PATCH14": clip, "PICKSCORE_V1": clip, "CLIP_VIT_H_14_LAION_PROCESSOR": clip,
        "DINOV2_BASE": tm.build_tiny_dinov2(root / "dinov2"),
        "LAION_AESTHETIC_V2": tm.build_tiny_aesthetic_head(root / "aesthetic.pth", in_dim=32),
    }
    torch.manual_seed(0)
    torch.save({"state_dict": ptlflow.get_model("gmflow").state_dict()}, root / "gmflow.ckpt")
    env["GMFLOW_SINTEL"] = root / "gmflow.ckpt"
    net = build_fid_inception_v3()
    torch.save(net.state_dict(), root / "fid.pth")
    env["FID_INCEPTION"] = root / "fid.pth"
    torch.save(tiny_state_dict(), root / "dover.pth")
    env["DOVER"] = root / "dover.pth"
    env.update(_tiny_viclip_lpips_detector(root))
    env.update(build_vbench_weights(root / "vbench", clip))
    for name, path in env.items():
        os.environ[f"VIDEDITBENCH_WEIGHT_{name}"] = str(path)


def _tiny_viclip_lpips_detector(root: Path) -> dict[str, Path]:
    import torch
    from test_metrics_lpips import _features_state_dict
    from test_metrics_motion_control import build_tiny_grounding_dino
    from test_metrics_viclip import _save_tiny_viclip

    env = {"VICLIP_INTERNVID_10M_FLT": _save_tiny_viclip(root / "viclip" / "ViClip-InternVid-10M-FLT.pth")}
    for net, name in (("alex", "ALEXNET_IMAGENET"), ("vgg", "VGG16_IMAGENET")):
        torch.save(_features_state_dict(net), root / f"{net}.pth")
        env[name] = root / f"{net}.pth"
    env["GROUNDING_DINO_BASE"] = build_tiny_grounding_dino(root / "grounding-dino")
    return env
def build_vbench_weights(root: Path, clip: Path) -> dict[str, Path]:
    """Random weights in the official formats of the VBench dimensions' checkpoints."""
    import open_clip
    import ptlflow
    import torch
    import tiny_models as tm
    from vbench_golden_models import save_openai_torchscript

    from metrics.amt.model import AMTS

    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save({"state_dict": tm.spread_weights(AMTS(), 0).state_dict()}, root / "amt-s.pth")
    raft = tm.spread_weights(ptlflow.get_model("raft"), 0)
    torch.save({"module." + k: v for k, v in raft.state_dict().items()}, root / "raft-things.pth")
    small = open_clip.CLIP(embed_dim=32, quick_gelu=True,
                           vision_cfg={"image_size": 224, "layers": 2, "width": 64, "patch_size": 14, "head_width": 64},
                           text_cfg={"context_length": 77, "vocab_size": tm.CLIP_VOCAB_SIZE, "width": 64, "heads": 1,
                                     "layers": 1})
    save_openai_torchscript(tm.spread_weights(small, 0).state_dict(), root / "ViT-L-14.pt")
    torch.save({"weight": torch.randn(1, 32) / 32**0.5, "bias": torch.tensor([0.5])}, root / "sa_linear.pth")
    return {"AMT_S": root / "amt-s.pth", "RAFT_THINGS": root / "raft-things.pth",
            "CLIP_VIT_L_14_OPENAI": root / "ViT-L-14.pt", "LAION_AESTHETIC_V1_L14": root / "sa_linear.pth",
            "DINO_VITB16": tm.build_tiny_dino_vit(root / "dino"), "CLIP_VIT_BASE_PATCH32": clip}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--metrics", default="")
    ap.add_argument("--ab-metrics", default=",".join(AB_METRICS),
                    help="metrics of the decode-once before/after run (through the runner)")
    ap.add_argument("--no-ab", action="store_true", help="skip the decode-once before/after run")
    ap.add_argument("--cross-metrics", default=",".join(CROSS_METRICS),
                    help="metrics of the cross-sample batching before/after run (through the runner)")
    ap.add_argument("--no-cross", action="store_true", help="skip the cross-sample batching before/after run")
    ap.add_argument("--only-ab", action="store_true", help="only the before/after runs (no per-metric table)")
    args = ap.parse_args()

    from bench.store.feature_cache import FeatureCache
    from bench.api.catalog import METRICS as REG
    from bench.weights.models import clear_model_cache
    from bench.running.runner import RunConfig, Runner, parse_metric_spec

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        build_tiny_weights(Path(d) / "w")
        print(f"tiny weights built in {time.perf_counter() - t:.1f}s")
        cfg = RunConfig(suite="mini", methods=["source", "color-transfer", "flow-propagate"], metrics=[],
                        results_dir=d, run_name="bench", device="cpu",
                        suite_overrides={"num_frames": args.num_frames, "size": args.size})
        runner = Runner(cfg)
        runner.run(do_metrics=False)
        rows = runner._selected_edits()
        by_uid = {s.uid: s for s in runner.samples}
        items = [runner._eval_item(r, by_uid[r["sample_uid"]]) for r in rows]
        items.sort(key=lambda it: it.source_key)
        n_frames = sum(it.edited.num_frames for it in items)
        n_sources = len({it.source_key for it in items})
        print(f"{len(items)} edits of {n_sources} source videos, {args.num_frames} frames at {args.size}px; "
              f"medians of {args.repeats} repeats; setup (model load) excluded\n")
        print(f"{'metric':28s} {'ms/sample':>10s} {'ms/frame':>9s} {'no-cache ms/sample':>19s} {'cache speed-up':>15s}")
        from bench.cli.common import _split  # keeps name@k=v,k2=v2 together

        for spec in [] if args.only_ab else _split([args.metrics]) or METRICS + VBENCH_METRICS:
            name, opts = parse_metric_spec(spec)
            metric = REG.get(name)(device="cpu", batch_size=16, **opts)
            has = [it for it in items if not metric.applicable(runner._has(it.sample, {"generate_s": 1.0} if
                                                                           it.efficiency.generate_s is not None else {}))]
            if not has:
                print(f"{spec:28s} not applicable to these samples")
                continue
            try:
                metric.setup()
            except Exception as e:  # noqa: BLE001
                print(f"{spec:28s} unavailable: {type(e).__name__}: {e}")
                continue

            def run_all(cache_enabled: bool) -> float:
                cache = FeatureCache(enabled=cache_enabled, max_entries=64)
                for it in has:
                    it.cache = cache
                t0 = time.perf_counter()
                if metric.level == "set":
                    metric.compute_set(has)
                else:
                    for it in has:
                        metric.compute(it)
                return time.perf_counter() - t0

            run_all(False)  # warm-up: lazy initialisation is not the cache's doing
            times: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
                for enabled in (True, False):
                    times[enabled].append(run_all(enabled))
            cached, fresh = statistics.median(times[True]), statistics.median(times[False])
            frames = sum(it.edited.num_frames for it in has)
            per = cached / len(has) * 1e3
            print(f"{spec:28s} {per:10.1f} {cached / frames * 1e3:9.2f} {fresh / len(has) * 1e3:19.1f} "
                  f"{fresh / cached:14.2f}x")
            metric.teardown()
        clear_model_cache()
        print(f"\n(total {n_frames} edited frames) speed-up = time with source features recomputed for every edit / "
              "time with the per-run source cache; metrics that never look at the source show ~1x.")
        if not args.no_ab:
            from _bench_speed import decode_once_ab

            ab = RunConfig(suite="mini", methods=cfg.methods, metrics=_split([args.ab_metrics]), results_dir=d,
                           run_name="ab", device="cpu", suite_overrides=dict(cfg.suite_overrides))
            decode_once_ab(ab, args.repeats)
        if not args.no_cross:
            from _bench_speed import cross_batch_ab

            cross = RunConfig(suite="mini", methods=cfg.methods, metrics=_split([args.cross_metrics]), results_dir=d,
                              run_name="cross", device="cpu", suite_overrides=dict(cfg.suite_overrides))
            cross_batch_ab(cross, args.repeats)


if __name__ == "__main__":
    main()
