"""Flow backends, motion alignment, warp error and FID: known answers at small resolution.

Weighted models are random (GMFlow / RAFT built by ptlflow, the FID Inception built from
pytorch-fid's blocks), saved to a temp dir and loaded through the weights registry
(`VIDEDITBENCH_WEIGHT_<NAME>`), i.e. the same loader path as the real checkpoints.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.store.feature_cache import FeatureCache
from bench.api.errors import WeightsMissing
from bench.api.types import EvalItem, Sample, Video

H = W = 48
T = 6
SHIFT = (2, 1)  # (u, v) pixels per frame: content moves right and down


def translating_clip(flicker: int = 0, t: int = T) -> tuple[np.ndarray, np.ndarray]:
    """A clip whose content translates by exactly SHIFT per frame, and its forward flow.

    The canvas is flat near the right/bottom edges (wider than the total motion), so even the
    pixels that leave the frame are predicted exactly by the border-replicating warp: with the
    true flow the warp error is exactly 0. `flicker` adds +k / -k grey levels on alternate frames.
    """
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    frames = []
    for i in range(t):
        xc, yc = x - SHIFT[0] * i, y - SHIFT[1] * i  # canvas coordinates
        tex = np.stack([128 + 60 * np.sin(2 * np.pi * xc / 13 + 0.5) * np.cos(2 * np.pi * yc / 17),
                        128 + 60 * np.sin(2 * np.pi * (xc + yc) / 19),
                        128 + 50 * np.cos(2 * np.pi * (xc - 2 * yc) / 23)], -1)
        flat = (xc >= W - SHIFT[0] * t - 2) | (yc >= H - SHIFT[1] * t - 2)
        tex[flat] = (120.0, 130.0, 140.0)
        frames.append(np.round(tex) + (flicker if i % 2 == 0 else -flicker))
    flow = np.zeros((t - 1, H, W, 2), np.float32)
    flow[..., 0], flow[..., 1] = SHIFT
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8), flow


def make_item(source: np.ndarray, edited: np.ndarray, cache: FeatureCache | None = None, flow_gt=None,
              key: str = "src") -> EvalItem:
    sample = Sample(suite="t", video_id=key, edit_id="0", source=key)
    return EvalItem(sample=sample, source=Video(source), edited=Video(edited), flow_gt=flow_gt, source_key=key,
                    method="m", cache=cache)


@pytest.fixture(scope="module")
def random_ptlflow_weights(tmp_path_factory):
    """Random GMFlow and RAFT state dicts in ptlflow's {'state_dict'} format and GMFlow's original {'model'} one."""
    import ptlflow
    import torch

    root = tmp_path_factory.mktemp("flow_weights")
    torch.manual_seed(0)
    gm = ptlflow.get_model("gmflow").state_dict()
    torch.save({"state_dict": gm}, root / "gmflow-ptlflow.ckpt")
    torch.save({"model": gm}, root / "gmflow-original.pth")
    torch.manual_seed(1)
    torch.save({"state_dict": ptlflow.get_model("raft").state_dict()}, root / "raft.ckpt")
    return root


# ---------------------------------------------------------------------------------------------
# registry facts
# ---------------------------------------------------------------------------------------------
def test_required_weights_follow_the_flow_option():
    from bench.api.catalog import METRICS
    from bench.weights import get_spec

    motion, warp, fid = (METRICS.get(n) for n in ("motion_alignment", "warp_error", "fid"))
    assert motion(flow="gmflow").required_weights() == ["gmflow-sintel"]
    assert motion(flow="raft").required_weights() == ["raft-sintel"]
    assert motion(flow="dis").required_weights() == []
    assert warp(flow="dis").required_weights() == [] and warp(flow="gt").required_weights() == []
    assert warp().required_weights() == ["gmflow-sintel"]
    assert fid().required_weights() == ["fid-inception"]
    for name in ("gmflow-sintel", "raft-sintel", "fid-inception"):
        spec = get_spec(name)
        assert spec.kind == "url" and spec.source.startswith("https://") and spec.filename
    # every option that changes the number changes the variant id
    assert len({motion(flow=f).variant_id() for f in ("gmflow", "raft", "dis")}) == 3
    assert warp(flow="gt").variant()["occlusion"] == "lai(inverted-gt)+collisions+leaves-frame"


def test_missing_flow_weights_raise_with_the_fix():
    from metrics.motion import MotionAlignment

    with pytest.raises(WeightsMissing, match="videditbench weights download gmflow-sintel"):
        MotionAlignment(flow="gmflow").setup()


def test_bad_checkpoint_format_is_explained(tmp_path, monkeypatch):
    import torch

    from bench.api.errors import VidEditBenchError
    from metrics.flow import create_flow_model

    torch.save({"weights": {}}, tmp_path / "bad.pth")
    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_RAFT_SINTEL", str(tmp_path / "bad.pth"))
    with pytest.raises(VidEditBenchError, match="neither 'state_dict'"):
        create_flow_model("raft")


# ---------------------------------------------------------------------------------------------
# GMFlow / RAFT through ptlflow
# ---------------------------------------------------------------------------------------------
def test_gmflow_loads_both_checkpoint_formats_identically(random_ptlflow_weights):
    from metrics.flow.ptlflow_models import GMFlowEstimator

    clip, _ = translating_clip(t=3)
    a = GMFlowEstimator(weights=str(random_ptlflow_weights / "gmflow-ptlflow.ckpt")).consecutive(clip)
    b = GMFlowEstimator(weights=str(random_ptlflow_weights / "gmflow-original.pth")).consecutive(clip)
    assert a.shape == (2, H, W, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, b)
    assert np.abs(a).max() > 0.1  # a random GMFlow still matches features: not an all-zero field


def test_gmflow_sees_v2vbench_normalisation_exactly(random_ptlflow_weights):
    """The backbone input equals the original GMFlow's (rgb/255 - mean)/std in RGB order, bit for bit."""
    import torch

    from metrics.flow.ptlflow_models import IMAGENET_MEAN, IMAGENET_STD, GMFlowEstimator

    clip, _ = translating_clip(t=2)
    est = GMFlowEstimator(weights=str(random_ptlflow_weights / "gmflow-original.pth"))
    seen = []
    handle = est.model.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    try:
        est.estimate(clip[:1], clip[1:])
    finally:
        handle.remove()
    x = torch.from_numpy(clip).permute(0, 3, 1, 2).float()
    ref = (x / 255.0 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    pad = (64 - H) // 2  # ptlflow pads 48 -> 64 (multiple of 32), replicate, both sides
    got = seen[0][:, :, pad:pad + H, pad:pad + W]
    assert torch.equal(got, ref)  # img0 and img1 are concatenated along the batch
    # ptlflow's own convention (BGR in [0,1], (x - mean) * (1/std)) differs only by rounding
    bgr = torch.flip(x / 255.0, [1])
    ptl = torch.flip((bgr - torch.tensor(IMAGENET_MEAN[::-1]).view(1, 3, 1, 1))
                     * (1 / torch.tensor(IMAGENET_STD[::-1]).view(1, 3, 1, 1)), [1])
    assert 0 < (ptl - ref).abs().max() < 1e-5


def test_raft_backend_runs(random_ptlflow_weights, monkeypatch):
    from metrics.flow import create_flow_model

    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_RAFT_SINTEL", str(random_ptlflow_weights / "raft.ckpt"))
    clip, _ = translating_clip(t=3)
    flow = create_flow_model("raft", batch_size=1).consecutive(clip)
    assert flow.shape == (2, H, W, 2) and np.isfinite(flow).all()


def test_motion_alignment_gmflow_identity_is_zero_and_source_cached(random_ptlflow_weights, monkeypatch):
    from metrics.motion import MotionAlignment

    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_GMFLOW_SINTEL", str(random_ptlflow_weights / "gmflow-ptlflow.ckpt"))
    clip, _ = translating_clip(t=4)
    other = np.ascontiguousarray(clip[:, ::-1])  # same frames, flipped: different motion
    cache = FeatureCache()
    metric = MotionAlignment(flow="gmflow", batch_size=2)
    metric.setup()
    assert metric.compute(make_item(clip, clip.copy(), cache))["motion_alignment"] == 0.0
    value = metric.compute(make_item(clip, other, cache))["motion_alignment"]
    assert value < 0
    assert cache.misses == 1 and cache.hits == 1


# ---------------------------------------------------------------------------------------------
# DIS (weight-free)
# ---------------------------------------------------------------------------------------------
def test_dis_recovers_translation_and_scores_motion():
    from metrics.flow import create_flow_model
    from metrics.motion import MotionAlignment

    clip, flow = translating_clip()
    est = create_flow_model("dis")
    got = est.consecutive(clip)
    assert got.shape == flow.shape and got.dtype == np.float32
    textured = slice(4, 28)  # well inside the textured part of every frame
    np.testing.assert_allclose(np.median(got[:, textured, textured].reshape(-1, 2), 0), SHIFT, atol=0.25)

    metric = MotionAlignment(flow="dis")
    assert metric.required_weights() == []
    metric.setup()
    assert metric.compute(make_item(clip, clip.copy()))["motion_alignment"] == 0.0
    static = np.repeat(clip[:1], T, 0)  # edit that loses all the motion
    assert metric.compute(make_item(clip, static))["motion_alignment"] < -0.5


# ---------------------------------------------------------------------------------------------
# warp error known answers
# ---------------------------------------------------------------------------------------------
def test_warp_error_is_zero_with_exact_flow_and_grows_with_flicker():
    from metrics.warp import WarpError

    metric = WarpError(flow="gt")
    assert metric.required_weights() == []
    metric.setup()
    clean, flow = translating_clip()
    assert metric.compute(make_item(clean, clean, flow_gt=flow))["warp_error"] < 1e-12
    values = []
    for k in (2, 5, 10):
        flickered, _ = translating_clip(flicker=k)
        value = metric.compute(make_item(clean, flickered, flow_gt=flow))["warp_error"]
        # no pixel is occluded under a translation, every pair differs by 2k grey levels
        assert value == pytest.approx((2 * k / 255.0) ** 2, rel=1e-4)
        values.append(value)
    assert values == sorted(values)


def test_warp_error_gt_flags_covered_background():
    """A square moving 3 px/frame over a static texture: with the exact flow the only pixels that
    cannot be warped are the background the square covers; gt occlusion finds them (error 0)."""
    from metrics.warp import WarpError, gt_occlusion_mask, invert_flow, occlusion_mask, video_warp_error

    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    bg = np.stack([128 + 70 * np.sin(x / 3.1) * np.cos(y / 4.3), 128 + 60 * np.cos((x + y) / 5.0),
                   128 + 50 * np.sin((x - y) / 3.7)], -1)
    frames, flow = [], np.zeros((T - 1, H, W, 2), np.float32)
    for t in range(T):
        f = bg.copy()
        f[14:30, 6 + 3 * t:22 + 3 * t] = (230, 30, 30) + 10 * np.sin(x[14:30, 6:22])[..., None]
        frames.append(f)
        if t < T - 1:
            flow[t, 14:30, 6 + 3 * t:22 + 3 * t] = (3, 0)
    clip = np.round(np.stack(frames)).astype(np.uint8)
    lai_only = np.stack([occlusion_mask(f, invert_flow(f)) for f in flow])
    assert video_warp_error(clip, flow, lai_only)[0] > 1e-3  # the inverted flow hides the covered pixels
    occ = np.stack([gt_occlusion_mask(f) for f in flow])
    assert occ[0, 14:30, 22:25].all()  # background covered by the square's leading edge
    assert WarpError(flow="gt").compute(make_item(clip, clip, flow_gt=flow))["warp_error"] < 1e-12


def test_warp_error_flow_gt_without_gt_is_not_applicable():
    from metrics.warp import WarpError

    assert "flow_gt" in WarpError(flow="gt").applicable({"source"})
    assert WarpError(flow="dis").applicable({"source"}) is None


def test_warp_error_dis_runs_without_weights_and_reuses_motion_flows():
    from metrics.motion import MotionAlignment
    from metrics.warp import WarpError

    cache = FeatureCache()
    clean, _ = translating_clip()
    motion = MotionAlignment(flow="dis")
    warp = WarpError(flow="dis")
    motion.compute(make_item(clean, clean, cache))
    base = warp.compute(make_item(clean, clean, cache))["warp_error"]
    assert cache.hits == 1  # the source's forward flows came from motion alignment
    flickered, _ = translating_clip(flicker=8)
    worse = warp.compute(make_item(clean, flickered, cache))["warp_error"]
    assert base < 2e-3 and worse > base + 0.5 * (16 / 255.0) ** 2


def test_invert_flow_and_occlusion_of_smooth_flow():
    from metrics.warp import invert_flow, occlusion_mask, resample2d

    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    # smooth enough for Lai's motion-boundary test (|grad fw|^2 > 0.01 |fw|^2 + 0.002) to stay quiet
    fw = np.stack([1.5 + 0.3 * np.sin(2 * np.pi * y / 64), -0.7 + 0.2 * np.cos(2 * np.pi * x / 60)], -1).astype(np.float32)
    bw = invert_flow(fw)
    inner = (slice(4, H - 4), slice(4, W - 4))
    # bw(x + fw(x)) = -fw(x), up to the bilinear interpolation of bw between grid points
    assert np.abs(resample2d(bw, fw) + fw)[inner].max() < 1e-2
    assert not occlusion_mask(fw, bw).any()
    assert occlusion_mask(fw, -bw).all()  # an inconsistent backward flow is caught
    np.testing.assert_array_equal(invert_flow(np.full((8, 8, 2), 3.0, np.float32)), np.full((8, 8, 2), -3.0, np.float32))


# ---------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def random_fid_weights(tmp_path_factory):
    """The real FID Inception architecture with random (He-initialised) convolutions."""
    import torch

    from metrics.fid import build_fid_inception_v3

    torch.manual_seed(0)
    net = build_fid_inception_v3()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    path = tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    return path


def test_fid_missing_weights():
    from metrics.fid import FrechetInceptionDistance

    with pytest.raises(WeightsMissing, match="videditbench weights download fid-inception"):
        FrechetInceptionDistance().setup()


def test_fid_self_zero_and_positive_for_other_set(random_fid_weights, monkeypatch):
    from metrics.fid import FrechetInceptionDistance

    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_FID_INCEPTION", str(random_fid_weights))
    rng = np.random.default_rng(0)
    src = [rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8) for _ in range(2)]
    other = [np.clip(s.astype(int) // 3 + 150, 0, 255).astype(np.uint8) for s in src]
    # 4 frames vs 2048 dims: the exact low-rank variant (the default pytorch-fid formula's sqrtm of a
    # singular 2048x2048 product is slow and only approximately 0 here; it is checked on small d below)
    metric = FrechetInceptionDistance(batch_size=4, formula="exact-lowrank")
    metric.setup()
    assert metric.level == "set"
    cache = FeatureCache()
    same = metric.compute_set(make_item(s, s.copy(), cache, key=f"s{i}") for i, s in enumerate(src))["fid"]
    diff = metric.compute_set(make_item(s, o, cache, key=f"s{i}") for i, (s, o) in enumerate(zip(src, other)))["fid"]
    feats = metric.features(np.concatenate(src))
    scale = float(np.trace(np.cov(feats, rowvar=False)))
    assert abs(same) < 1e-9 * scale
    assert diff > 0.05 * scale
    assert cache.hits == 2 and cache.misses == 2  # source features computed once per source video


def _trace_sqrt_eigh(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr((S1 S2)^(1/2)) through the symmetric form S1^(1/2) S2 S1^(1/2) (eigh, an independent route)."""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum())


def test_frechet_distance_lowrank_identity_matches_sqrtm():
    from pytorch_fid.fid_score import calculate_frechet_distance

    from metrics.fid import feature_statistics, fid_from_features, frechet_distance

    rng = np.random.default_rng(1)
    for n1, n2, d in ((200, 150, 16), (9, 12, 24)):  # full rank (sqrtm path) and rank-deficient
        a = rng.normal(size=(n1, d)) * np.linspace(0.5, 3, d)
        b = rng.normal(size=(n2, d)) + 0.3
        (m1, s1), (m2, s2) = feature_statistics(a), feature_statistics(b)
        # the default is pytorch-fid's own formula on the same features, whatever the sample count
        pfid = float(calculate_frechet_distance(m1, s1, m2, s2))
        assert fid_from_features(a, b) == pytest.approx(pfid, rel=1e-9)
        assert frechet_distance(m1, s1, m2, s2) == pytest.approx(pfid, rel=1e-9)
        # the exact low-rank variant against an independent eigh computation of the same trace
        exact = float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_eigh(s1, s2))
        assert fid_from_features(a, b, "exact-lowrank") == pytest.approx(exact, rel=1e-6)
        assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6 * np.trace(np.cov(a, rowvar=False)))
        assert fid_from_features(a, a, "exact-lowrank") == pytest.approx(
            0.0, abs=1e-9 * np.trace(np.cov(a, rowvar=False)))
