"""Cross-sample frame batching in model metrics (Metric.prefetch): the runner hands a chunk of edits
to the metric, whose FrameEncoders run their frames in full batches across samples into the run's
FeatureCache; compute() then reads them. Tiny random-weight models (tests/tiny_models.py) are
loaded through the real loaders; forward calls are counted with a global forward hook on the real
vision transformer.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import bench.running.runner
from bench.store.feature_cache import FeatureCache
from bench.running.runner import RunConfig, Runner, run_benchmark
from bench.store.results import ResultStore
from bench.api.types import EvalItem, Sample, Video

FRAMES = 8
TINY = {"num_frames": FRAMES, "size": 32}
#: the CLIP vision tower's class (transformers 5 names it CLIPVisionModel, 4.x CLIPVisionTransformer)
CLIP_VISION = ("CLIPVisionModel", "CLIPVisionTransformer")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    import tiny_models as tm

    root = tmp_path_factory.mktemp("tiny_batching")
    return {
        "clip": tm.build_tiny_clip(root / "clip"),
        "dinov2": tm.build_tiny_dinov2(root / "dinov2"),
        "vit": tm.build_tiny_dino_vit(root / "vit", image_size=64, patch_size=16),
        "open_clip": tm.build_tiny_open_clip(root / "open_clip", image_size=64, patch_size=16),
        "head": tm.build_tiny_aesthetic_head(root / "aes" / "sac+logos+ava1-l14-linearMSE.pth", in_dim=32),
        **_tiny_openai_clip_and_v1_head(root),
    }


def _tiny_openai_clip_and_v1_head(root: Path) -> dict:
    """An OpenAI-format CLIP state dict (.pt, what open_clip's OpenAI loader reads; heads = width // 64)
    and a LAION v1 linear head, for VBench's aesthetic_quality."""
    import open_clip
    import torch

    import tiny_models as tm

    cfg = {"embed_dim": 32, "quick_gelu": True,
           "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": tm.CLIP_VOCAB_SIZE, "width": 64, "heads": 1, "layers": 2}}
    torch.manual_seed(0)
    (root / "openai").mkdir()
    torch.save(open_clip.CLIP(**cfg).state_dict(), root / "openai" / "ViT-tiny.pt")
    (root / "v1head").mkdir()
    torch.save(torch.nn.Linear(32, 1).state_dict(), root / "v1head" / "sa_0_4_tiny_linear.pth")
    return {"openai_clip": root / "openai", "v1_head": root / "v1head"}


class ForwardCounter:
    """Batch sizes of every forward of modules of the given class names (a global torch forward hook,
    read from the output: the models are called with keyword inputs)."""

    def __init__(self, *class_names: str):
        self.names = set(class_names)
        self.batches: list[int] = []

    def __enter__(self) -> "ForwardCounter":
        import torch

        def hook(module, args, out):
            if type(module).__name__ in self.names:
                x = out if isinstance(out, torch.Tensor) else out.last_hidden_state
                self.batches.append(int(x.shape[0]))

        self._handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()


def _cfg(tmp_path: Path, name: str, metrics: list[str], opts: dict, **kw) -> RunConfig:
    # color-transfer edits the suite's 6 image-guided samples (a different reference each)
    return RunConfig(suite="mini", methods=["color-transfer"], metrics=metrics,
                     results_dir=str(tmp_path), run_name=name, device="cpu", suite_overrides=dict(TINY),
                     metric_options=opts, **kw)


def _values(cfg: RunConfig) -> dict[tuple[str, str, str], tuple[str, float | None]]:
    store = ResultStore(cfg.run_dir)
    try:
        df = store.scores_frame()
        return {(r.metric, r.method, r.sample_uid): (r.status, r.value) for r in df.itertuples()}
    finally:
        store.close()


def assert_same_numbers(got: dict, want: dict) -> None:
    """Same keys, statuses and values. On this box batching gives bit-identical values; a BLAS may pick
    another kernel for another batch height on other CPUs, so values may differ by float rounding
    (relative 1e-6), never more."""
    assert got.keys() == want.keys()
    for k in want:
        g, w = got[k], want[k]
        if isinstance(w, dict):  # compute() results
            assert g.keys() == w.keys(), k
            assert all(g[m] == pytest.approx(w[m], rel=1e-6, abs=1e-9) for m in w), (k, g, w)
        else:  # (status, value) rows
            assert g[0] == w[0], (k, g, w)
            assert (g[1] is None) == (w[1] is None) and (w[1] is None or g[1] == pytest.approx(w[1], rel=1e-6, abs=1e-9)), (k, g, w)


def _distinct_edits(cfg: RunConfig) -> int:
    from bench.api.hashing import hash_array
    from bench.media.video_io import read_video

    store = ResultStore(cfg.run_dir)
    try:
        return len({hash_array(read_video(r["output_dir"])[0]) for r in store.iter_edits("ok")})
    finally:
        store.close()


def _noise_video(seed: int, t: int = FRAMES, h: int = 40, w: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def _items(n: int, cache: FeatureCache, reference: bool = False) -> list[EvalItem]:
    out = []
    for i in range(n):
        v = Video(_noise_video(100 + i))
        ref = np.random.default_rng(500 + i).integers(0, 256, (36, 36, 3), dtype=np.uint8) if reference else None
        out.append(EvalItem(Sample("t", f"v{i}", "e", "src", target_prompt="a red car"), source=v, edited=v,
                            prompt="a red car", reference=ref, cache=cache))
    return out


# ---- (a) forward calls across samples; (b) the same numbers --------------------------------------
def test_runner_batches_clip_frames_across_samples_with_the_same_numbers(tiny, tmp_path):
    opts = {"clip_consistency": {"weights": str(tiny["clip"])}}
    with ForwardCounter(*CLIP_VISION) as per_item:
        off = _cfg(tmp_path, "off", ["clip_consistency"], opts, batch_size=16, cross_batch=False)
        run_benchmark(off)
    with ForwardCounter(*CLIP_VISION) as batched:
        on = _cfg(tmp_path, "on", ["clip_consistency"], opts, batch_size=16, cross_batch=True)
        run_benchmark(on)
    videos = _distinct_edits(on)
    assert videos >= 4 and videos * FRAMES <= 64  # one chunk (CHUNK_BATCHES full batches of 16)
    assert per_item.batches == [FRAMES] * videos  # one forward per video, never fuller than its 8 frames
    assert len(batched.batches) == math.ceil(videos * FRAMES / 16)
    assert batched.batches[:-1] == [16] * (len(batched.batches) - 1) and sum(batched.batches) == videos * FRAMES
    a, b = _values(off), _values(on)
    assert a.keys() == b.keys() and len(a) == 6
    assert all(st == "ok" for st, _ in a.values())
    assert_same_numbers(a, b)


def test_switch_env_restores_the_per_item_path(monkeypatch):
    monkeypatch.setenv("VIDEDITBENCH_CROSS_BATCH", "0")
    assert RunConfig().cross_batch is False
    monkeypatch.delenv("VIDEDITBENCH_CROSS_BATCH")
    assert RunConfig().cross_batch is True


@pytest.mark.parametrize("make", ["clip_text", "clip_consistency", "clip_image", "clip_image_region", "dino_consistency",
                                  "dino_image", "aesthetic", "pick_score", "subject_consistency",
                                  "background_consistency", "aesthetic_quality"])
def test_prefetch_then_compute_equals_compute_alone(tiny, make):
    """Every FrameEncoder metric: prefetch(items) does all model work (compute then runs no forward of
    the backbone) and the values are bit-identical to computing each item alone on a fresh cache."""
    from metrics.aesthetic import LaionAesthetic
    from metrics.clip import ClipConsistency, ClipImageSimilarity, ClipTextAlignment
    from metrics.dino import DinoConsistency, DinoImageSimilarity
    from metrics.pick_score import PickScore
    from metrics.vbench import BackgroundConsistency, SubjectConsistency
    from metrics.vbench_quality import AestheticQuality

    clip, dino = str(tiny["clip"]), str(tiny["dinov2"])
    factories = {
        "clip_text": (lambda: ClipTextAlignment(weights=clip, batch_size=16), CLIP_VISION),
        "clip_consistency": (lambda: ClipConsistency(weights=clip, batch_size=16), CLIP_VISION),
        "clip_image": (lambda: ClipImageSimilarity(weights=clip, batch_size=16), CLIP_VISION),
        "clip_image_region": (lambda: ClipImageSimilarity(weights=clip, batch_size=16, region=True), CLIP_VISION),
        "dino_consistency": (lambda: DinoConsistency(weights=dino, batch_size=16), "Dinov2Model"),
        "dino_image": (lambda: DinoImageSimilarity(weights=dino, batch_size=16), "Dinov2Model"),
        "aesthetic": (lambda: LaionAesthetic(weights=clip, head_weights=str(tiny["head"]), batch_size=16),
                      CLIP_VISION),
        "pick_score": (lambda: PickScore(weights=clip, processor_weights=clip, batch_size=16), CLIP_VISION),
        "subject_consistency": (lambda: SubjectConsistency(weights=str(tiny["vit"]), size=64, batch_size=16), "ViTModel"),
        "background_consistency": (lambda: BackgroundConsistency(weights=str(tiny["open_clip"]), size=64, batch_size=16),
                                   "VisionTransformer"),
        "aesthetic_quality": (lambda: AestheticQuality(weights=str(tiny["openai_clip"]), head_weights=str(tiny["v1_head"]),
                                                       batch_size=16), "VisionTransformer"),
    }
    factory, modules = factories[make]
    modules = (modules,) if isinstance(modules, str) else modules
    n = 5
    region = make == "clip_image_region"
    ref = make in ("clip_image", "clip_image_region", "dino_image")
    alone = []
    for it in _items(n, FeatureCache(), reference=ref):
        if region:
            it.mask = np.pad(np.ones((FRAMES, 20, 20), bool), ((0, 0), (10, 10), (8, 20)))
        alone.append(factory().compute(dataclasses.replace(it, cache=FeatureCache())))
    metric = factory()
    cache = FeatureCache()
    items = _items(n, cache, reference=ref)
    if region:
        for it in items:
            it.mask = np.pad(np.ones((FRAMES, 20, 20), bool), ((0, 0), (10, 10), (8, 20)))
    metric.setup()
    with ForwardCounter(*modules) as pre:
        metric.prefetch(items)
    with ForwardCounter(*modules) as post:
        batched = [metric.compute(it) for it in items]
    assert post.batches == [] and pre.batches and max(pre.batches) <= 16
    frames = n * FRAMES + (n if ref else 0)
    assert sum(pre.batches) == frames and len(pre.batches) == math.ceil(frames / 16)
    assert_same_numbers(dict(enumerate(batched)), dict(enumerate(alone)))
    assert cache.hits == 0 and cache.misses == len(items) * (2 if ref else 1)  # counted as without prefetch


def test_prefetch_skips_cached_and_repeated_videos(tiny):
    from metrics.clip import ClipConsistency

    metric = ClipConsistency(weights=str(tiny["clip"]), batch_size=16)
    cache = FeatureCache()
    items = _items(3, cache)
    metric.compute(items[0])  # already cached: not encoded again
    with ForwardCounter(*CLIP_VISION) as c:
        metric.prefetch(items + items)
    assert c.batches == [16]
    with ForwardCounter(*CLIP_VISION) as c:
        metric.prefetch(_items(3, None))  # no cache to keep features in: nothing to do
    assert c.batches == []


# ---- (c) a failing prefetch loses no rows ------------------------------------------------------------
def test_failing_prefetch_falls_back_per_item_and_loses_no_rows(tiny, tmp_path, monkeypatch):
    from metrics._embed import FrameEncoder

    opts = {"clip_consistency": {"weights": str(tiny["clip"])}, "dino_consistency": {"weights": str(tiny["dinov2"])}}
    metrics = ["clip_consistency", "dino_consistency"]
    ref = _cfg(tmp_path, "ref", metrics, opts, cross_batch=False)
    run_benchmark(ref)

    def broken(self, videos, cache, keys=None):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(FrameEncoder, "encode_many", broken)
    monkeypatch.setattr(bench.running.runner, "CHUNK_MAX_ITEMS", 2)  # three chunks per metric
    logs: list[str] = []
    cfg = _cfg(tmp_path, "broken", metrics, opts, cross_batch=True)
    # one edit's frames vanish after the edits phase: its item cannot be built (an error row, like today)
    runner = Runner(cfg, log=logs.append)
    try:
        runner.run(do_metrics=False)
        victim = next(runner.store.iter_edits("ok"))
        for png in Path(victim["output_dir"]).glob("*.png"):
            png.unlink()
        runner._frames.clear()
        runner.run(do_edits=False)
    finally:
        runner.store.close()
    got, want = _values(cfg), _values(ref)
    assert got.keys() == want.keys() and len(got) == 12  # every (metric, edit) has its row
    bad = {k: v for k, v in got.items() if k[1:] == (victim["method"], victim["sample_uid"])}
    assert len(bad) == 2 and all(st == "error" for st, _ in bad.values())
    assert_same_numbers({k: v for k, v in got.items() if k not in bad}, {k: v for k, v in want.items() if k not in bad})
    failed = [m for m in logs if "cross-sample batching failed" in m]
    assert len(failed) == 2 and all("out of memory" in m for m in failed)  # once per metric, not per chunk


# ---- (d) batch size: per-device default, overrides, not a variant ---------------------------------------
def test_batch_size_default_per_device_and_overrides():
    from bench.api.device import resolve_batch_size
    from bench.api.errors import VidEditBenchError

    assert resolve_batch_size(None, "cpu") == 16
    assert resolve_batch_size(None, "cuda") == 64 and resolve_batch_size(None, "cuda:1") == 64
    assert resolve_batch_size(None, "mps") == 16
    assert resolve_batch_size(8, "cuda") == 8
    for bad in (0, -1, 2.5, True, "x"):
        with pytest.raises(VidEditBenchError, match="batch size"):
            resolve_batch_size(bad, "cpu")


def test_batch_size_is_not_part_of_the_variant(tiny):
    from metrics.clip import ClipConsistency
    from metrics.motion import MotionAlignment

    base = ClipConsistency(weights=str(tiny["clip"]))
    opt = ClipConsistency(weights=str(tiny["clip"]), batch_size=4)  # as --metric-opt clip_consistency.batch_size=4
    arg = ClipConsistency(weights=str(tiny["clip"]), device="cuda", batch_size=None)
    assert (base.batch_size, opt.batch_size, arg.batch_size) == (16, 4, 64)
    assert base.variant_id() == opt.variant_id() == arg.variant_id() and "batch_size" not in opt.options
    assert MotionAlignment(flow="dis").batch_size == 16


def _batch_size(cfg: RunConfig) -> int:
    runner = Runner(cfg)
    runner.store.close()
    return runner.batch_size


def test_cli_batch_size_default_override_and_record(tiny, tmp_path):
    from bench.cli.run import _build_config
    from bench.running.merge import numbers_config

    def build(batch_size, metric_opt=None):
        return _build_config("mini", None, ["clip_consistency"], "r", tmp_path, "cpu", 0, 2, None, True, False,
                             None, metric_opt, None, 4, 32, batch_size, None, False)

    default = build(None)
    assert default.batch_size is None and _batch_size(default) == 16
    assert _batch_size(build(8)) == 8
    per_metric = build(None, ["clip_consistency.batch_size=4", f"clip_consistency.weights={tiny['clip']}"])
    runner = Runner(per_metric)
    try:
        _, metric = runner.build_metric("clip_consistency")
        assert metric.batch_size == 4 and runner._config_record()["resolved_batch_size"] == 16
    finally:
        runner.store.close()
    plain = build(None, [f"clip_consistency.weights={tiny['clip']}"])
    assert numbers_config(vars(per_metric)) == numbers_config(vars(plain))  # shards with other batch sizes merge
