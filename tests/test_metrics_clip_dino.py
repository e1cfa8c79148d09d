"""CLIP / DINO family metrics with tiny random models (tests/tiny_models.py), loaded through the same
loaders real weights use: known answers, pairing variants, region crops, the aesthetic head format,
PickScore, the VBench dimensions, feature caching, and missing weights / optional dependencies.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.store.feature_cache import FeatureCache
from bench.api.errors import NotApplicable, VidEditBenchError, WeightsMissing
from bench.api.types import EvalItem, Sample, Video

SAMPLE = Sample("t", "v", "e", "src")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    import tiny_models as tm

    root = tmp_path_factory.mktemp("tiny_models")
    return {
        "clip": tm.build_tiny_clip(root / "clip"),
        "dinov2": tm.build_tiny_dinov2(root / "dinov2"),
        "vit": tm.build_tiny_dino_vit(root / "vit", image_size=64, patch_size=16),
        "open_clip": tm.build_tiny_open_clip(root / "open_clip", image_size=64, patch_size=16),
        "head": tm.build_tiny_aesthetic_head(root / "aes" / "sac+logos+ava1-l14-linearMSE.pth", in_dim=32),
    }


def _noise(seed: int, h: int = 48, w: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _item(frames: np.ndarray, **kw) -> EvalItem:
    v = Video(np.ascontiguousarray(frames))
    return EvalItem(SAMPLE, source=v, edited=v, **kw)


def _consistency_metrics(tiny: dict, **opts) -> list:
    from metrics.clip import ClipConsistency
    from metrics.dino import DinoConsistency

    return [ClipConsistency(weights=str(tiny["clip"]), **opts), DinoConsistency(weights=str(tiny["dinov2"]), **opts)]


# ---- plain math -------------------------------------------------------------------------------
def test_pairing_math_on_crafted_features():
    from metrics._embed import consistency_score, pair_similarities

    e1, e2 = np.eye(2)
    f = np.stack([e1, e2, e1])  # cos(0,1)=0, cos(0,2)=1, cos(1,2)=0
    assert consistency_score(f, "consecutive") == pytest.approx(0.0)
    assert consistency_score(f, "all") == pytest.approx(1 / 3)
    assert consistency_score(f, "prev_first") == pytest.approx(0.25)  # t1: (0+0)/2, t2: (0+1)/2
    assert pair_similarities(np.stack([e1, -e1]), "consecutive").tolist() == [0.0]  # negatives clip to 0
    with pytest.raises(NotApplicable):
        consistency_score(f[:1], "consecutive")
    with pytest.raises(VidEditBenchError):
        consistency_score(f, "sideways")


def test_region_crops_follow_the_mask():
    from metrics._embed import mask_bbox, region_crops

    frames = np.arange(3 * 10 * 12 * 3, dtype=np.uint8).reshape(3, 10, 12, 3)
    mask = np.zeros((3, 10, 12), bool)
    mask[0, 2:5, 3:9] = True
    mask[2, 7, 11] = True
    assert mask_bbox(mask[0]) == (2, 3, 5, 9) and mask_bbox(mask[1]) is None
    crops, idx = region_crops(frames, mask)
    assert idx == [0, 2]
    np.testing.assert_array_equal(crops[0], frames[0, 2:5, 3:9])
    assert crops[1].shape == (1, 1, 3)
    with pytest.raises(NotApplicable):
        region_crops(frames, np.zeros((3, 10, 12), bool))


# ---- consistency ------------------------------------------------------------------------------
@pytest.mark.parametrize("pairing", ["consecutive", "all", "prev_first"])
def test_identical_frames_give_consistency_one(tiny, pairing):
    frames = np.stack([_noise(1)] * 5)
    for m in _consistency_metrics(tiny, pairing=pairing):
        assert m.compute(_item(frames))[m.name] == pytest.approx(1.0, abs=1e-5)


def test_pairing_variants_give_documented_values(tiny):
    """Video A,B,A,B with c = max(0, cos(A, B)): consecutive = c, all = (4c+2)/6, prev_first = (5c+1)/6."""
    a, b = _noise(2), _noise(3)
    for cls_metrics in zip(*[_consistency_metrics(tiny, pairing=p) for p in ("consecutive", "all", "prev_first")]):
        cons, allp, pf = cls_metrics
        c = cons.compute(_item(np.stack([a, b])))[cons.name]
        assert 0.0 <= c < 0.99  # the spread random weights make A and B clearly different
        abab = np.stack([a, b, a, b])
        assert cons.compute(_item(abab))[cons.name] == pytest.approx(c, abs=1e-6)
        assert allp.compute(_item(abab))[allp.name] == pytest.approx((4 * c + 2) / 6, abs=1e-6)
        assert pf.compute(_item(abab))[pf.name] == pytest.approx((5 * c + 1) / 6, abs=1e-6)
        assert len({cons.variant_id(), allp.variant_id(), pf.variant_id()}) == 3


def test_consistency_matches_direct_transformers_computation(tiny):
    """Independent path: CLIPVisionModel / Dinov2Model pooler_output on the processors' tensors."""
    import torch
    from transformers import AutoImageProcessor, CLIPVisionModel, Dinov2Model

    frames = np.stack([_noise(10 + i) for i in range(4)])
    clip_m, dino_m = _consistency_metrics(tiny)
    for metric, cls, path in ((clip_m, CLIPVisionModel, tiny["clip"]), (dino_m, Dinov2Model, tiny["dinov2"])):
        proc = AutoImageProcessor.from_pretrained(str(path), backend="pil")
        model = cls.from_pretrained(str(path)).eval()
        with torch.no_grad():
            f = model(pixel_values=proc(images=list(frames), return_tensors="pt").pixel_values).pooler_output
        f = (f / f.norm(dim=-1, keepdim=True)).numpy().astype(np.float64)
        want = np.mean([max(0.0, float(f[i] @ f[i - 1])) for i in range(1, 4)])
        assert metric.compute(_item(frames))[metric.name] == pytest.approx(want, abs=1e-6)


def test_batch_size_does_not_change_values(tiny):
    from metrics.clip import ClipConsistency

    frames = np.stack([_noise(20 + i) for i in range(5)])
    a = ClipConsistency(weights=str(tiny["clip"]), batch_size=2).compute(_item(frames))["clip_consistency"]
    b = ClipConsistency(weights=str(tiny["clip"]), batch_size=16).compute(_item(frames))["clip_consistency"]
    assert a == pytest.approx(b, abs=1e-6)


# ---- text alignment, PickScore ------------------------------------------------------------------
def test_clip_text_matches_get_features_api(tiny):
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    from metrics.clip import ClipTextAlignment

    frames = np.stack([_noise(30 + i) for i in range(3)])
    prompt = "a red ball rolling across a striped background"
    got = ClipTextAlignment(weights=str(tiny["clip"])).compute(_item(frames, prompt=prompt))["clip_text"]

    model = CLIPModel.from_pretrained(str(tiny["clip"])).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny["clip"]))
    proc = AutoImageProcessor.from_pretrained(str(tiny["clip"]), backend="pil")
    with torch.no_grad():
        t = model.get_text_features(**tok([prompt], return_tensors="pt"))
        i = model.get_image_features(pixel_values=proc(images=list(frames), return_tensors="pt").pixel_values)
    t = getattr(t, "pooler_output", t)
    i = getattr(i, "pooler_output", i)
    t, i = t / t.norm(dim=-1, keepdim=True), i / i.norm(dim=-1, keepdim=True)
    want = float((model.logit_scale.detach().exp() * (i @ t.T)).mean())
    assert got == pytest.approx(want, abs=1e-4)
    with pytest.raises(NotApplicable):
        ClipTextAlignment(weights=str(tiny["clip"])).compute(_item(frames, prompt=None))


def test_pick_score_with_tiny_clip(tiny):
    from metrics.clip import ClipTextAlignment
    from metrics.pick_score import PickScore

    frames = np.stack([_noise(40 + i) for i in range(3)])
    m = PickScore(weights=str(tiny["clip"]), processor_weights=str(tiny["clip"]))
    assert m.required_weights() == []
    m.setup()
    got = m.compute(_item(frames, prompt="an oil painting of a fox"))["pick_score"]
    # the PickScore definition computed here independently through transformers' own API:
    # per frame logit_scale.exp() * cos(text, image), mean over frames
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(str(tiny["clip"])).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny["clip"]))
    proc = AutoImageProcessor.from_pretrained(str(tiny["clip"]), backend="pil")
    with torch.no_grad():
        t = model.get_text_features(**tok(["an oil painting of a fox"], return_tensors="pt"))
        i = model.get_image_features(pixel_values=proc(images=list(frames), return_tensors="pt").pixel_values)
    t = getattr(t, "pooler_output", t)
    i = getattr(i, "pooler_output", i)
    t, i = t / t.norm(dim=-1, keepdim=True), i / i.norm(dim=-1, keepdim=True)
    want = float((model.logit_scale.detach().exp() * (i @ t.T)).mean())
    assert got == pytest.approx(want, abs=1e-4)
    same = ClipTextAlignment(weights=str(tiny["clip"])).compute(_item(frames, prompt="an oil painting of a fox"))
    assert got == pytest.approx(same["clip_text"], abs=1e-5)  # same formula, same model
    other = m.compute(_item(frames, prompt="a photo of a car on a road"))["pick_score"]
    assert other != pytest.approx(got, abs=1e-3)


# ---- reference similarity, region variant --------------------------------------------------------
@pytest.fixture(scope="module")
def object_video():
    """6 noisy frames with the same 20x20 object moving; mask = the object; reference = the object."""
    rng = np.random.default_rng(5)
    obj = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    frames, masks = [], []
    for t in range(6):
        f = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        m = np.zeros((48, 48), bool)
        y, x = 4 + 3 * t, 24 - 4 * t
        f[y : y + 20, x : x + 20] = obj
        m[y : y + 20, x : x + 20] = True
        frames.append(f)
        masks.append(m)
    return np.stack(frames), np.stack(masks), obj


@pytest.mark.parametrize("kind", ["clip", "dino"])
@pytest.mark.parametrize("backend", ["pil", "torchvision"])
def test_region_variant_crops_where_the_mask_is(tiny, object_video, kind, backend):
    from metrics.clip import ClipImageSimilarity
    from metrics.dino import DinoImageSimilarity

    frames, mask, ref = object_video
    cls, w = (ClipImageSimilarity, tiny["clip"]) if kind == "clip" else (DinoImageSimilarity, tiny["dinov2"])
    full = cls(weights=str(w), backend=backend)
    region = cls(weights=str(w), backend=backend, region=True)
    item = _item(frames, reference=ref, mask=mask)
    v_full, v_region = full.compute(item)[full.name], region.compute(item)[region.name]
    assert v_region == pytest.approx(1.0, abs=1e-5)  # each crop IS the reference
    assert v_region > v_full + 0.01
    assert region.applicable({"reference"}) is not None and "mask" in region.applicable({"reference"})
    assert full.applicable({"reference"}) is None
    with pytest.raises(NotApplicable):
        region.compute(_item(frames, reference=ref, mask=None))
    with pytest.raises(NotApplicable):
        full.compute(_item(frames))


# ---- aesthetic ------------------------------------------------------------------------------------
def test_aesthetic_head_in_real_pth_format_loads_and_scores(tiny):
    import torch
    from transformers import AutoImageProcessor, CLIPModel

    from metrics.aesthetic import EXPECTED_KEYS, LaionAesthetic

    state = torch.load(str(tiny["head"]), weights_only=True)
    assert set(state) == EXPECTED_KEYS and state["layers.0.weight"].shape == (1024, 32)
    frames = np.stack([_noise(50 + i) for i in range(3)])
    m = LaionAesthetic(weights=str(tiny["clip"]), head_weights=str(tiny["head"]))
    assert m.required_weights() == []
    got = m.compute(_item(frames))["aesthetic"]

    model = CLIPModel.from_pretrained(str(tiny["clip"])).eval()
    proc = AutoImageProcessor.from_pretrained(str(tiny["clip"]), backend="pil")
    with torch.no_grad():
        e = model.get_image_features(pixel_values=proc(images=list(frames), return_tensors="pt").pixel_values)
        e = getattr(e, "pooler_output", e)
        x = e / e.norm(dim=-1, keepdim=True)
        for i in (0, 2, 4, 6, 7):  # no activations between the Linear layers
            x = x @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"]
    assert got == pytest.approx(float(x.mean()), abs=1e-4)


def test_aesthetic_rejects_wrong_checkpoints(tiny, tmp_path):
    import torch

    from metrics.aesthetic import LaionAesthetic
    from tiny_models import build_tiny_aesthetic_head

    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(1, 32)}, str(bad))
    with pytest.raises(VidEditBenchError, match="layers.0.weight"):
        LaionAesthetic(weights=str(tiny["clip"]), head_weights=str(bad)).setup()
    wide = build_tiny_aesthetic_head(tmp_path / "wide.pth", in_dim=768)
    with pytest.raises(VidEditBenchError, match="768"):
        LaionAesthetic(weights=str(tiny["clip"]), head_weights=str(wide)).setup()


# ---- VBench dimensions ------------------------------------------------------------------------------
def test_vbench_subject_and_background_consistency(tiny):
    from metrics.clip import ClipConsistency
    from metrics.vbench import BackgroundConsistency, SubjectConsistency

    a, b = _noise(60, 48, 64), _noise(61, 48, 64)  # non-square: no crop for DINO, pos-emb interpolation
    metrics = [
        SubjectConsistency(weights=str(tiny["vit"]), size=64),
        BackgroundConsistency(weights=str(tiny["clip"]), size=64),
        BackgroundConsistency(weights=str(tiny["open_clip"]), size=64),
    ]
    for m in metrics:
        assert m.options["pairing"] == "prev_first"
        assert m.compute(_item(np.stack([a] * 4)))[m.name] == pytest.approx(1.0, abs=1e-5)
        c = m.compute(_item(np.stack([a, b])))[m.name]
        assert 0.0 <= c < 0.99
        assert m.compute(_item(np.stack([a, b, a, b])))[m.name] == pytest.approx((5 * c + 1) / 6, abs=1e-6)
    # VBench's preprocessing differs from the checkpoint processor, so the value differs from clip_consistency
    ab = np.stack([a, b, a])
    vb = BackgroundConsistency(weights=str(tiny["clip"]), size=64, pairing="consecutive").compute(_item(ab))
    cc = ClipConsistency(weights=str(tiny["clip"])).compute(_item(ab))
    assert vb["background_consistency"] != pytest.approx(cc["clip_consistency"], abs=1e-4)


def test_vbench_transforms():
    from metrics._embed import vbench_pixels

    frames = np.stack([_noise(70, 48, 96), _noise(71, 48, 96)])
    dino = vbench_pixels(frames, 32, "dino")
    clip = vbench_pixels(frames, 32, "clip")
    assert tuple(dino.shape) == (2, 3, 32, 64)  # shorter side to 32, aspect kept, no crop
    assert tuple(clip.shape) == (2, 3, 32, 32)  # centre crop
    # a constant grey frame maps to (v/255 - mean)/std exactly
    grey = np.full((1, 40, 40, 3), 128, np.uint8)
    px = vbench_pixels(grey, 32, "dino")[0, :, 0, 0].numpy()
    np.testing.assert_allclose(px, (128 / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]), atol=1e-5)


def test_imaging_quality_reports_missing_pyiqa(monkeypatch):
    import sys

    from metrics._embed import OptionalDependencyMissing
    from metrics.vbench import ImagingQuality

    monkeypatch.setitem(sys.modules, "pyiqa", None)  # make `import pyiqa...` fail as if not installed
    m = ImagingQuality()
    assert m.required_weights() == ["musiq-koniq"]
    assert ImagingQuality.is_available() is False
    with pytest.raises(ImportError) as ei:
        m.setup()
    assert isinstance(ei.value, OptionalDependencyMissing) and isinstance(ei.value, VidEditBenchError)
    assert "pip install 'videditbench[iqa]'" in str(ei.value)


def test_imaging_quality_with_pyiqa_random_musiq(tmp_path):
    pytest.importorskip("pyiqa")
    import torch
    from pyiqa.archs.musiq_arch import MUSIQ

    from metrics.vbench import ImagingQuality

    torch.manual_seed(0)
    ckpt = tmp_path / "musiq.pth"
    torch.save(MUSIQ(pretrained=False).state_dict(), str(ckpt))
    frames = np.stack([_noise(80, 64, 64), _noise(81, 64, 64)])
    value = ImagingQuality(weights=str(ckpt)).compute(_item(frames))["imaging_quality"]
    model = MUSIQ(pretrained_model_path=str(ckpt)).eval()
    with torch.no_grad():
        direct = [float(model(torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255.0)) for f in frames]
    assert value == pytest.approx(np.mean(direct) / 100.0, rel=1e-5)


def test_musiq_input_resizes_the_longer_side_to_512():
    from metrics.vbench import musiq_input

    x = musiq_input(np.zeros((1, 300, 600, 3), np.uint8), "longer")
    assert tuple(x.shape) == (1, 3, 256, 512) and float(x.max()) <= 1.0
    assert tuple(musiq_input(np.zeros((1, 64, 80, 3), np.uint8), "longer").shape) == (1, 3, 64, 80)


# ---- caching, registry, errors --------------------------------------------------------------------------
def test_clip_metrics_share_one_vision_pass_per_video(tiny):
    from metrics.aesthetic import LaionAesthetic
    from metrics.clip import ClipConsistency, ClipTextAlignment

    cache = FeatureCache()
    frames = np.stack([_noise(90 + i) for i in range(3)])
    item = _item(frames, prompt="a cat", cache=cache)
    for m in (ClipTextAlignment(weights=str(tiny["clip"])), ClipConsistency(weights=str(tiny["clip"])),
              LaionAesthetic(weights=str(tiny["clip"]), head_weights=str(tiny["head"]))):
        m.compute(item)
    assert cache.misses == 1 and cache.hits == 2
    ClipConsistency(weights=str(tiny["clip"]), backend="torchvision").compute(item)  # another backend: new features
    assert cache.misses == 2


def test_registry_targets_resolve():
    from bench.api.catalog import METRICS
    from bench.api.metric import Metric

    names = ["clip_text", "clip_consistency", "dino_consistency", "clip_image", "dino_image", "aesthetic",
             "pick_score", "subject_consistency", "background_consistency", "imaging_quality"]
    for n in names:
        cls = METRICS.get(n)
        assert issubclass(cls, Metric) and cls.name == n


@pytest.mark.parametrize(
    "name,expected",
    [
        ("clip_text", ["clip-vit-large-patch14"]),
        ("clip_consistency", ["clip-vit-large-patch14"]),
        ("clip_image", ["clip-vit-large-patch14"]),
        ("dino_consistency", ["dinov2-base"]),
        ("dino_image", ["dinov2-base"]),
        ("aesthetic", ["clip-vit-large-patch14", "laion-aesthetic-v2"]),
        ("pick_score", ["pickscore-v1", "clip-vit-h-14-laion-processor"]),
        ("subject_consistency", ["dino-vitb16"]),
        ("background_consistency", ["clip-vit-base-patch32"]),
    ],
)
def test_missing_weights_raise_with_fix_command(name, expected):
    from bench.api.catalog import METRICS

    m = METRICS.get(name)()
    assert m.required_weights() == expected
    with pytest.raises(WeightsMissing) as ei:
        m.setup()
    assert ei.value.fix == f"videditbench weights download {expected[0]}"
    assert f"videditbench weights download {expected[0]}" in str(ei.value)


def test_missing_head_weights_name_the_head(tiny):
    from metrics.aesthetic import LaionAesthetic

    with pytest.raises(WeightsMissing) as ei:
        LaionAesthetic(weights=str(tiny["clip"])).setup()
    assert ei.value.fix == "videditbench weights download laion-aesthetic-v2"


def test_options_are_validated_and_recorded(tiny):
    from metrics.clip import ClipConsistency, ClipImageSimilarity

    with pytest.raises(VidEditBenchError, match="pairing"):
        ClipConsistency(pairing="random")
    with pytest.raises(VidEditBenchError, match="backend"):
        ClipConsistency(backend="opencv")
    with pytest.raises(VidEditBenchError, match="unknown option"):
        ClipImageSimilarity(crop=True)
    with pytest.raises(VidEditBenchError, match="neither an existing local path"):
        ClipConsistency(weights="/no/such/clip").required_weights()
    a = ClipConsistency(weights=str(tiny["clip"]))
    b = ClipConsistency()
    assert a.variant()["weights"] == str(tiny["clip"]) and a.variant_id() != b.variant_id()
    assert "backend=pil" in b.variant_label() and "pairing=consecutive" in b.variant_label()


def test_runner_end_to_end_with_tiny_models(tiny, tmp_path):
    """The runner builds EvalItems from the mini suite and stores one row per metric with its variant."""
    from bench.running.runner import RunConfig, run_benchmark
    from bench.store.results import ResultStore

    metrics = ["clip_text", "clip_consistency", "dino_consistency", "clip_image", "dino_image", "aesthetic"]
    opts = {
        "clip_text": {"weights": str(tiny["clip"])},
        "clip_consistency": {"weights": str(tiny["clip"]), "pairing": "all"},
        "dino_consistency": {"weights": str(tiny["dinov2"])},
        "clip_image": {"weights": str(tiny["clip"]), "region": True},
        "dino_image": {"weights": str(tiny["dinov2"])},
        # aesthetic keeps its default head: no weights -> a "skipped" row with the fix command
        "aesthetic": {"weights": str(tiny["clip"])},
    }
    cfg = RunConfig(suite="mini", methods=["source"], metrics=metrics, results_dir=str(tmp_path), run_name="r",
                    device="cpu", limit=6, suite_overrides={"num_frames": 4, "size": 32}, metric_options=opts)
    run_benchmark(cfg)
    store = ResultStore(cfg.run_dir)
    df = store.scores_frame()
    store.close()
    ok = df[df.status == "ok"]
    for name in ("clip_text", "clip_consistency", "dino_consistency"):
        assert (ok.metric == name).any(), (name, df[df.metric == name][["status", "message"]].to_string())
    cons = ok[ok.metric.isin(["clip_consistency", "dino_consistency"])].value
    assert ((cons >= 0) & (cons <= 1 + 1e-6)).all()
    aes = df[df.metric == "aesthetic"]
    assert len(aes) and (aes.status == "skipped").all()
    assert aes.message.str.contains("videditbench weights download laion-aesthetic-v2").all()
    # image-guided samples get clip_image / dino_image; text-only ones are not applicable, never errors
    assert not (df[df.metric.isin(["clip_image", "dino_image"])].status == "error").any()
