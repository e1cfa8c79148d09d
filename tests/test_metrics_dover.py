"""DOVER plumbing with a tiny model: sampler semantics, checkpoint formats, the metric end to end.

The tiny model has the official module tree with small widths; it is saved as a checkpoint and
loaded back through the same loader the real DOVER.pth uses (architecture inferred from shapes).
"""

from __future__ import annotations

import math

import numpy as np
import pytest


def tiny_config():
    from metrics.dover.convnext3d import ConvNeXtConfig
    from metrics.dover.model import DoverConfig
    from metrics.dover.swin3d import SwinConfig

    return DoverConfig(
        technical=SwinConfig(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2), window_size=(4, 7, 7),
                             frag_biases=(True, True, True, False)),
        aesthetic=ConvNeXtConfig(dims=(8, 16, 32, 64), depths=(1, 1, 3, 1)),
        head_hidden=4,
    )


def tiny_state_dict(seed: int = 0) -> dict:
    """Random weights large enough that the scores move with the input."""
    import torch

    from metrics.dover.model import DoverModel

    torch.manual_seed(seed)
    model = DoverModel(tiny_config())
    sd = model.state_dict()
    for key, value in sd.items():
        if value.is_floating_point():
            std = 0.1 if key.endswith("bias") else 0.3 if value.dim() >= 2 else 0.2
            base = 1.0 if (key.endswith("weight") and value.dim() == 1) else 0.0
            sd[key] = base + std * torch.randn_like(value)
    return sd


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Saved the way training scripts wrap checkpoints: {'state_dict': {'module.<key>': tensor}}."""
    import torch

    path = tmp_path_factory.mktemp("dover_tiny") / "DOVER.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tiny_state_dict().items()}, "epoch": 3}, path)
    return path


def textured(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for i in range(t):
        f = 128 + 60 * np.sin((x - 3 * i) / 7.0)[..., None] * np.array([1.0, -0.5, 0.3]) + 40 * np.cos(y / 11.0)[..., None]
        f = f + rng.normal(0, 12, f.shape)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return np.stack(frames)


# --- fusion ----------------------------------------------------------------------------------------


def test_fuse_formula():
    from metrics.dover import fuse
    from metrics.dover.score import fused_logit

    assert fuse(0.1107, -0.08285) == pytest.approx(0.5, abs=1e-12)
    t, a = 0.2, 0.01
    x = (t - 0.1107) / 0.07355 * 0.6104 + (a + 0.08285) / 0.03774 * 0.3896
    assert fused_logit(t, a) == pytest.approx(x, abs=1e-12)
    assert fuse(t, a) == pytest.approx(1 / (1 + math.exp(-x)), abs=1e-12)
    assert fuse(0.3, 0.0) > fuse(0.2, 0.0) and fuse(0.2, 0.05) > fuse(0.2, 0.0)


def test_fuse_reproduces_golden_arithmetic(golden_expected):
    from metrics.dover import fuse
    from metrics.dover.score import fused_logit

    for run in golden_expected["dover"]["runs"].values():
        assert fused_logit(run["technical_raw"], run["aesthetic_raw"]) == pytest.approx(run["fused_logit"], abs=1e-9)
        assert fuse(run["technical_raw"], run["aesthetic_raw"]) == pytest.approx(run["fused_score"], abs=1e-9)


# --- temporal sampling -----------------------------------------------------------------------------


def test_temporal_indices_short_clip_official():
    from metrics.dover.sampling import sample_views

    v = sample_views(textured(24, 64, 64), 0)
    expected = (2 * np.arange(32)[None, :] + np.array([0, 8, 16])[:, None]).reshape(-1) % 24
    assert v.technical_indices.tolist() == expected.tolist()
    assert v.aesthetic_indices.tolist() == [0] * 32  # 24 // 32 == 0: every aesthetic frame is frame 0


def test_temporal_indices_short_clip_stretch():
    from metrics.dover.sampling import stretch_frames

    assert stretch_frames(8, 32).tolist() == [j // 4 for j in range(32)]
    s = stretch_frames(24, 32)
    assert s[0] == 0 and s[-1] == 23 and np.all(np.diff(s) >= 0) and len(set(s.tolist())) == 24


def test_temporal_indices_long_video_are_seeded():
    from metrics.dover.sampling import temporal_indices

    a = temporal_indices(300, 32, 3, 2, 1, np.random.RandomState(0))
    b = temporal_indices(300, 32, 3, 2, 1, np.random.RandomState(0))
    c = temporal_indices(300, 32, 3, 2, 1, np.random.RandomState(1))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    segs = a.reshape(3, 32)
    starts = segs[:, 0] - np.array([0, 100, 200])
    assert np.all((starts >= 0) & (starts < 100 - 64))  # random start within each 100-frame segment
    assert np.all(np.diff(segs, axis=1) == 2)
    # same stream as the reference's global np.random after np.random.seed(seed)
    np.random.seed(0)
    rnd = np.random.randint(0, 100 - 64, size=3)
    assert starts.tolist() == rnd.tolist()


# --- spatial views ---------------------------------------------------------------------------------


def test_fragments_are_crops_at_grid_plus_offset():
    import torch

    from metrics.dover.sampling import TechnicalSpec, technical_fragments

    rng = np.random.default_rng(1)
    video = torch.from_numpy(rng.integers(0, 256, (3, 64, 300, 260), dtype=np.uint8))
    gen = torch.Generator().manual_seed(5)
    out, rh, rw = technical_fragments(video, TechnicalSpec(), gen)
    assert out.shape == (3, 64, 224, 224) and out.dtype == torch.float32
    assert rh.shape == (7, 7, 2) and int(rh.max()) < 300 // 7 - 32 and int(rw.max()) < 260 // 7 - 32
    # the generator draws exactly like the global RNG after torch.manual_seed
    torch.manual_seed(5)
    assert torch.equal(rh, torch.randint(300 // 7 - 32, (7, 7, 2)))
    for i, j, t in [(0, 0, 0), (3, 5, 1), (6, 6, 1)]:
        h0 = min(300 // 7 * i, 300 - 32) + int(rh[i, j, t])
        w0 = min(260 // 7 * j, 260 - 32) + int(rw[i, j, t])
        crop = video[:, 32 * t : 32 * (t + 1), h0 : h0 + 32, w0 : w0 + 32].float()
        assert torch.equal(out[:, 32 * t : 32 * (t + 1), 32 * i : 32 * (i + 1), 32 * j : 32 * (j + 1)], crop)


def test_small_frames_are_upscaled_and_grid_follows_official_or_rescaled():
    import torch

    from metrics.dover.sampling import TechnicalSpec, technical_fragments

    video = torch.from_numpy(textured(32, 64, 64)).permute(3, 0, 1, 2)
    official, rh, _ = technical_fragments(video, TechnicalSpec(), torch.Generator().manual_seed(0))
    rescaled, _, _ = technical_fragments(video, TechnicalSpec(), torch.Generator().manual_seed(0),
                                         lowres_grid="rescaled")
    assert int(rh.abs().sum()) == 0  # 64 // 7 = 9 < 32: no random offsets
    up = (torch.nn.functional.interpolate(video / 255.0, scale_factor=224 / 64, mode="bilinear") * 255.0).to(torch.uint8)
    # official: grid starts from the pre-upscale size, min(9*i, 32), so fragments come from the top-left
    assert torch.equal(official[:, :, 32:64, 0:32], up[:, :, 9:41, 0:32].float())
    # rescaled: grid starts from the upscaled size, min(32*i, 192): the mosaic is the whole upscaled frame
    assert torch.equal(rescaled, up.float())


def test_aesthetic_view_and_normalisation():
    import torch

    from metrics.dover.sampling import MEAN, STD, sample_views, to_clips

    v = sample_views(textured(40, 90, 120), 3)
    assert v.aesthetic.shape == (3, 32, 224, 224) and v.aesthetic.dtype == torch.uint8
    v_no_aa = sample_views(textured(40, 90, 120), 3, antialias=False)
    assert torch.equal(v.technical, v_no_aa.technical) and not torch.equal(v.aesthetic, v_no_aa.aesthetic)
    clips = to_clips(v.technical, 3)
    assert clips.shape == (3, 3, 32, 224, 224)
    assert torch.allclose(clips[1, 2, 5], (v.technical[2, 32 + 5] - MEAN[2]) / STD[2])
    a = to_clips(v.aesthetic, 1)
    assert a.shape == (1, 3, 32, 224, 224) and a.dtype == torch.float32


def test_bad_frames_and_options_rejected():
    from metrics.dover.sampling import sample_views

    with pytest.raises(ValueError, match="uint8"):
        sample_views(np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="short_clip"):
        sample_views(np.zeros((4, 8, 8, 3), np.uint8), short_clip="loop")


# --- model, checkpoint formats ---------------------------------------------------------------------


def test_window_shift_helpers():
    from metrics.dover.swin3d import _fragment_gate_cpu, _shift_mask_cpu, effective_window

    assert effective_window((16, 7, 7), (8, 7, 7), (4, 3, 3)) == ((8, 7, 7), (4, 0, 0))
    assert effective_window((4, 56, 56), (8, 7, 7), (4, 3, 3)) == ((4, 7, 7), (0, 3, 3))
    gate = _fragment_gate_cpu((16, 56, 56), (8, 7, 7), (0, 0, 0))
    assert gate.shape == (128, 1, 392, 392)
    # first window (tokens 0..6): all in fragment (0, 0) -> gate 0 everywhere
    assert int(gate[0].abs().sum()) == 0
    # second window along w covers token columns 7..13: column 7 is fragment 0, columns 8..13 fragment 1
    g = gate[1, 0].view(8, 7, 7, 8, 7, 7)
    assert int(g[0, 0, 0, 0, 0, 1]) == 1 and int(g[0, 0, 1, 0, 0, 2]) == 0
    mask = _shift_mask_cpu((16, 56, 56), (8, 7, 7), (4, 3, 3))
    assert mask.shape == (128, 392, 392) and not mask[0].any() and mask[-1].any()


def test_infer_config_and_checkpoint_wrappers():
    import torch

    from metrics.dover.model import extract_state_dict, infer_config

    sd = tiny_state_dict()
    assert infer_config(sd) == tiny_config()
    wrapped = {"model": {f"module.{k}": v for k, v in sd.items()}, "optimizer": {}}
    assert list(extract_state_dict(wrapped)) == list(sd)
    assert extract_state_dict(sd) is not sd and set(extract_state_dict(sd)) == set(sd)
    assert torch.equal(extract_state_dict({"state_dict": sd})["technical_head.fc_last.bias"], sd["technical_head.fc_last.bias"])


def test_loader_errors_name_the_file(tmp_path):
    import torch

    from bench.api.errors import VidEditBenchError
    from metrics.dover.model import load_dover

    sd = tiny_state_dict()
    sd.pop("aesthetic_head.fc_hid.bias")
    bad = tmp_path / "DOVER.pth"
    torch.save(sd, bad)
    with pytest.raises(VidEditBenchError, match=r"DOVER\.pth.*aesthetic_head\.fc_hid\.bias"):
        load_dover(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(VidEditBenchError, match="junk.pth"):
        load_dover(junk)
    torch.save({"weights": {"a": 1}}, tmp_path / "other.pth")
    with pytest.raises(VidEditBenchError, match="not a DOVER checkpoint"):
        load_dover(tmp_path / "other.pth")


# --- the metric ------------------------------------------------------------------------------------


def test_registry_and_metadata():
    from bench.api.catalog import METRICS
    from metrics.dover import DoverScore

    assert METRICS.get("dover") is DoverScore
    names = [o.name for o in DoverScore.outputs()]
    assert names == ["dover", "dover_technical", "dover_aesthetic"]
    assert DoverScore.higher_is_better and DoverScore.value_range == (0.0, 1.0)
    assert DoverScore().variant()["seed"] == 0
    assert DoverScore(seed=1).variant_id() != DoverScore().variant_id()


def test_missing_weights_is_reported(monkeypatch):
    from bench.api.errors import VidEditBenchError, WeightsMissing
    from metrics.dover import DoverScore

    metric = DoverScore()
    assert metric.required_weights() == ["dover"]
    with pytest.raises(WeightsMissing, match="videditbench weights download dover"):
        metric.setup()
    with pytest.raises(VidEditBenchError, match="short_clip"):
        DoverScore(short_clip="loop")


def test_metric_end_to_end_tiny(tiny_weights, monkeypatch):
    from bench.api.types import EvalItem, Sample, Video
    from metrics.dover import DoverScore, fuse

    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_DOVER", str(tiny_weights))
    frames = textured(10, 256, 256)
    video = Video(frames)
    item = EvalItem(Sample("t", "v", "0", "v"), source=video, edited=video)
    metric = DoverScore()
    assert metric.required_weights() == ["dover"]
    metric.setup()
    out = metric.compute(item)
    assert set(out) == {"dover", "dover_technical", "dover_aesthetic"}
    assert all(math.isfinite(v) for v in out.values())
    assert 0.0 < out["dover"] < 1.0
    assert out["dover"] == pytest.approx(fuse(out["dover_technical"], out["dover_aesthetic"]), abs=1e-12)
    assert metric.compute(item) == out  # seeded: reproducible

    # 256 // 7 = 36 > 32, so fragment offsets are random: the seed moves only the technical score
    other = DoverScore(seed=1)
    other.setup()
    out1 = other.compute(item)
    assert out1["dover_technical"] != out["dover_technical"]
    assert out1["dover_aesthetic"] == out["dover_aesthetic"]

    # short clips: "stretch" lets every frame reach the aesthetic branch (official: frame 0 only)
    stretched = DoverScore(short_clip="stretch")
    stretched.setup()
    assert stretched.compute(item)["dover_aesthetic"] != out["dover_aesthetic"]
    first = Video(np.repeat(frames[:1], 10, axis=0))
    only_first = metric.compute(EvalItem(item.sample, source=first, edited=first))
    assert only_first["dover_aesthetic"] == pytest.approx(out["dover_aesthetic"], abs=1e-6)


def test_metric_with_local_weights_path(tiny_weights):
    from bench.api.types import EvalItem, Sample, Video
    from metrics.dover import DoverScore

    metric = DoverScore(weights=str(tiny_weights))
    assert metric.required_weights() == []
    metric.setup()
    video = Video(textured(6, 64, 96))
    out = metric.compute(EvalItem(Sample("t", "v", "0", "v"), source=video, edited=video))
    assert 0.0 < out["dover"] < 1.0
