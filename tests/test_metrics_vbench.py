"""VBench dimensions: transforms, checkpoint formats (DINO hub .pth, OpenAI TorchScript CLIP) and the
new motion / aesthetic dimensions with tiny random weights through their real loaders."""

from __future__ import annotations

import numpy as np
import pytest

from bench.api.errors import VidEditBenchError
from bench.api.types import EvalItem, Sample, Video

SAMPLE = Sample("t", "v", "e", "inputs")


def _item(frames: np.ndarray, fps: float = 8.0) -> EvalItem:
    v = Video(np.asarray(frames), fps=fps)
    return EvalItem(SAMPLE, source=v, edited=v, prompt=None)


def test_vbench_pixels_resize_float_not_uint8():
    """VBench resizes the float [0,255] tensor: bicubic overshoot is kept, nothing is rounded."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    from metrics._embed import CLIP_MEAN, CLIP_STD, vbench_pixels

    frame = np.zeros((1, 48, 48, 3), np.uint8)
    frame[:, :, 24:] = 255  # a hard edge: bicubic overshoots above 255 and below 0
    got = vbench_pixels(frame, 32, "clip")
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    raw = got * std + mean  # back to [0, 1] units
    assert float(raw.max()) > 1.0 + 1e-3 and float(raw.min()) < -1e-3
    ref = TF.resize(torch.from_numpy(frame).permute(0, 3, 1, 2).float(), [32],
                    interpolation=InterpolationMode.BICUBIC, antialias=False) / 255.0
    torch.testing.assert_close(raw, ref, atol=1e-5, rtol=0)
    odd = np.random.default_rng(0).integers(0, 256, (1, 30, 30, 3), dtype=np.uint8)
    d = vbench_pixels(odd, 16, "dino")
    back = d * torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) + torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    assert not torch.allclose(back * 255, torch.round(back * 255), atol=1e-3)  # not quantised to uint8 levels


def _hub_state_dict_from_vit(model) -> dict:
    """Write a transformers ViTModel back in the original DINO repository's names (the inverse map)."""
    import torch

    sd = model.state_dict()
    new = "layers.0.attention.q_proj.weight" in sd
    out = {"cls_token": sd["embeddings.cls_token"], "pos_embed": sd["embeddings.position_embeddings"],
           "patch_embed.proj.weight": sd["embeddings.patch_embeddings.projection.weight"],
           "patch_embed.proj.bias": sd["embeddings.patch_embeddings.projection.bias"],
           "norm.weight": sd["layernorm.weight"], "norm.bias": sd["layernorm.bias"]}
    n = model.config.num_hidden_layers
    for i in range(n):
        q = f"layers.{i}." if new else f"encoder.layer.{i}."
        names = (("attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.o_proj", "mlp.fc1", "mlp.fc2")
                 if new else ("attention.attention.query", "attention.attention.key", "attention.attention.value",
                              "attention.output.dense", "intermediate.dense", "output.dense"))
        for s in ("weight", "bias"):
            out[f"blocks.{i}.attn.qkv.{s}"] = torch.cat([sd[f"{q}{names[j]}.{s}"] for j in range(3)])
            out[f"blocks.{i}.attn.proj.{s}"] = sd[f"{q}{names[3]}.{s}"]
            out[f"blocks.{i}.mlp.fc1.{s}"] = sd[f"{q}{names[4]}.{s}"]
            out[f"blocks.{i}.mlp.fc2.{s}"] = sd[f"{q}{names[5]}.{s}"]
            out[f"blocks.{i}.norm1.{s}"] = sd[f"{q}layernorm_before.{s}"]
            out[f"blocks.{i}.norm2.{s}"] = sd[f"{q}layernorm_after.{s}"]
    return out


def test_dino_hub_checkpoint_loads_strictly(tmp_path, monkeypatch):
    """An original-format DINO .pth (64-d heads, as ViT-S/B) gives the same features as the ViT it came from."""
    import torch
    from transformers import ViTConfig, ViTModel

    from metrics._embed import dino_cls_features, load_dino_model
    from tiny_models import spread_weights

    cfg = ViTConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
                    image_size=32, patch_size=16, layer_norm_eps=1e-6)
    ref = spread_weights(ViTModel(cfg, add_pooling_layer=False).eval(), seed=3)
    path = tmp_path / "dino_vitbase16_pretrain.pth"
    torch.save(_hub_state_dict_from_vit(ref), path)
    model = load_dino_model(path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dino_cls_features(model, x), dino_cls_features(ref, x), atol=1e-5, rtol=1e-5)
    # the registry name of VBench's own file resolves through the usual override, into the same loader
    from metrics.vbench import SubjectConsistency

    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_DINO_VITB16_ORIGINAL", str(path))
    sc = SubjectConsistency(weights="dino-vitb16-original", size=32)
    assert sc.required_weights() == ["dino-vitb16-original"]
    frames = np.random.default_rng(5).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert 0.0 <= sc.compute(_item(frames))["subject_consistency"] < 0.999
    bad = _hub_state_dict_from_vit(ref)
    bad["blocks.0.extra.weight"] = torch.zeros(3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(VidEditBenchError, match="blocks.0.extra.weight"):
        load_dino_model(tmp_path / "bad.pth")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(VidEditBenchError, match="not an original DINO"):
        load_dino_model(tmp_path / "other.pth")


# ---- motion_smoothness (AMT-S) ---------------------------------------------------------------------------
def _save_amt(path, fill: str = "zero", seed: int = 0):
    """An AMT-S checkpoint in the official format {'state_dict': sd}: all-zero weights (a plain 50/50 blend
    of the two frames: zero flows, masks sigmoid(0) = 0.5, no residual, no combination term) or random."""
    import torch

    from metrics.amt.model import AMTS
    from tiny_models import spread_weights

    model = AMTS()
    with torch.no_grad():
        if fill == "zero":
            for p in model.parameters():
                p.zero_()
        else:
            spread_weights(model, seed)
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def test_motion_smoothness_arithmetic():
    import torch

    from metrics.vbench_motion import smoothness_from_diff, to_uint8_truncated, vfi_mean_abs_diff

    frames = np.zeros((5, 4, 4, 3), np.uint8)
    frames[1], frames[3] = 100, 200
    preds = [np.full((4, 4, 3), 110, np.uint8), np.full((4, 4, 3), 196, np.uint8)]  # |10| and |4|
    assert vfi_mean_abs_diff(frames, preds) == pytest.approx(7.0)
    assert smoothness_from_diff(7.0) == pytest.approx(248.0 / 255.0)
    # VBench's tensor2img truncates: 100.99/255 -> 100, not 101; values clip to 0..255
    x = torch.tensor([100.99, 254.5, 300.0, -3.0]).view(1, 1, 1, 4).repeat(1, 3, 1, 1) / 255.0
    assert to_uint8_truncated(x)[0, :, 0].tolist() == [100, 254, 255, 0]


def test_motion_smoothness_known_answers(tmp_path):
    """A blend-only AMT-S (zero weights, loaded through the real loader): a linear brightness ramp is
    interpolated exactly (score 1); a static noise clip loses at most one level per value, always
    downwards, to the uint8 truncation VBench applies (its RECIPE note)."""
    from metrics.vbench_motion import MotionSmoothness, interpolate_middle_frames
    from metrics.amt import load_amt_s

    ckpt = _save_amt(tmp_path / "amt-s.pth")
    m = MotionSmoothness(weights=str(tmp_path))  # a folder holding one checkpoint works too
    ramp = np.stack([np.full((128, 128, 3), 10 + 20 * t, np.uint8) for t in range(6)])
    assert m.compute(_item(ramp))["motion_smoothness"] == 1.0
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    static = np.stack([noise] * 5)
    pred = interpolate_middle_frames(load_amt_s(ckpt), static)
    delta = np.concatenate([p.astype(np.int16) - noise for p in pred])
    assert set(np.unique(delta)) <= {-1, 0}
    score = m.compute(_item(static))["motion_smoothness"]
    assert 1 - 1 / 255 <= score <= 1.0
    # a clip whose odd frames are not the average of their neighbours scores lower
    jumpy = ramp.copy()
    jumpy[1::2] = 255
    assert m.compute(_item(jumpy))["motion_smoothness"] < 0.9


def test_motion_smoothness_random_weights_and_loader(tmp_path):
    import torch

    from metrics.vbench_motion import MotionSmoothness, amt_scale

    ckpt = _save_amt(tmp_path / "amt-s.pth", fill="random")
    m = MotionSmoothness(weights=str(ckpt))
    assert m.required_weights() == [] and MotionSmoothness().required_weights() == ["amt-s"]
    frames = np.random.default_rng(1).integers(0, 256, (5, 128, 144, 3), dtype=np.uint8)  # 144: padded to 160
    v = m.compute(_item(frames))["motion_smoothness"]
    assert 0.0 <= v < 0.99
    with pytest.raises(Exception, match="at least 128"):
        m.compute(_item(frames[:, :64, :64]))
    # VBench's GPU downscale: 2048x2048 on an 8 GB card works at half resolution; big cards / CPU at 1
    assert amt_scale(2048, 2048, 8 * 1024**3) == 0.5
    assert amt_scale(512, 512, 80 * 1024**3) == 1.0 and amt_scale(512, 512, None) == 1.0
    tiny_card = 2501 / 1024  # GB: 1 MB above VBench's fixed overhead, so the 128x144 clip is shrunk
    assert amt_scale(128, 144, tiny_card * 1024**3) == pytest.approx(16 / 18)
    down = MotionSmoothness(weights=str(ckpt), downscale=True, vram_gb=tiny_card)
    assert "vram_gb" in down.variant() and "vram_gb" not in m.variant() and down.variant_id() != m.variant_id()
    assert 0.0 <= down.compute(_item(frames))["motion_smoothness"] <= 1.0
    # strict loading: another architecture's checkpoint is refused in one line
    sd = torch.load(ckpt, weights_only=True)["state_dict"]
    sd.pop("comb_block.2.bias")
    torch.save({"state_dict": sd}, tmp_path / "bad.pth")
    with pytest.raises(VidEditBenchError, match="missing \\['comb_block.2.bias'\\]"):
        MotionSmoothness(weights=str(tmp_path / "bad.pth")).setup()
    with pytest.raises(VidEditBenchError, match="exactly one AMT-S checkpoint"):  # a folder with two files
        MotionSmoothness(weights=str(tmp_path)).setup()


# ---- dynamic_degree (RAFT) ---------------------------------------------------------------------------------
def test_dynamic_degree_sampling_and_thresholds():
    from metrics.vbench_motion import dynamic_params, is_dynamic, keep_interval, kept_indices, top_magnitude_mean

    assert [keep_interval(f) for f in (4, 8, 11.9, 12, 20, 24, 30, 60)] == [1, 1, 1, 2, 2, 3, 4, 8]  # Python round
    assert kept_indices(8, 8.0) == list(range(8)) and kept_indices(8, 24.0) == [0, 3, 6]
    assert dynamic_params(512, 512, 8) == (12.0, 2)
    assert dynamic_params(320, 512, 8) == (7.5, 2)
    assert dynamic_params(512, 512, 3)[1] == 1 and dynamic_params(512, 512, 10)[1] == 2 and dynamic_params(64, 64, 16)[1] == 4
    flow = np.zeros((20, 20, 2), np.float32)  # 400 px -> the top 20 magnitudes
    flow.reshape(-1, 2)[:20] = (3.0, 4.0)     # 20 vectors of length 5
    flow.reshape(-1, 2)[20:30] = (0.0, 100.0)  # 10 of length 100
    assert top_magnitude_mean(flow) == pytest.approx((10 * 100 + 10 * 5) / 20)
    assert is_dynamic([13.0, 1.0, 12.5], 12.0, 2) and not is_dynamic([13.0, 1.0, 12.0], 12.0, 2)
    assert is_dynamic([0.0], 12.0, 0) and not is_dynamic([], 12.0, 0)  # VBench's early exit; no pairs: static


def test_dynamic_degree_exact_flow_known_answers():
    """With the suite's exact flow (weight-free path): a static clip is 0, a fast-moving one is 1."""
    from metrics.vbench_motion import DynamicDegree

    m = DynamicDegree(flow="gt")
    assert m.required_weights() == [] and "weights" not in m.variant()
    frames = np.zeros((8, 128, 128, 3), np.uint8)
    still = _item(frames)
    still.flow_gt = np.zeros((7, 128, 128, 2), np.float32)
    assert m.compute(still)["dynamic_degree"] == 0.0
    moving = _item(frames)
    moving.flow_gt = np.zeros((7, 128, 128, 2), np.float32)
    moving.flow_gt[..., 0] = 10.0  # 10 px/frame; threshold 6*128/256 = 3 px
    assert m.compute(moving)["dynamic_degree"] == 1.0
    slow = _item(frames)
    slow.flow_gt = np.full((7, 128, 128, 2), 2.0, np.float32)  # |(2, 2)| = 2.83 px < 3 px
    assert m.compute(slow)["dynamic_degree"] == 0.0
    assert "flow_gt" in (m.applicable({"source"}) or "")


def _save_raft_things(path, seed: int = 0):
    """A random RAFT (ptlflow's architecture = the original's key names) saved as the original
    raft-things.pth: a bare state dict whose keys carry DataParallel's 'module.' prefix."""
    import ptlflow
    import torch

    from tiny_models import spread_weights

    model = spread_weights(ptlflow.get_model("raft"), seed)
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, path)
    return path


def test_dynamic_degree_raft_random_weights(tmp_path):
    import torch

    from metrics.vbench_motion import DynamicDegree

    ckpt = _save_raft_things(tmp_path / "raft-things.pth")
    m = DynamicDegree(weights=str(ckpt), iters=2)
    assert DynamicDegree().required_weights() == ["raft-things"]
    assert m.variant_id() != DynamicDegree(weights=str(ckpt)).variant_id()  # iterations change the flow
    frames = np.random.default_rng(2).integers(0, 256, (7, 128, 132, 3), dtype=np.uint8)  # 132: padded to 136
    rads, thres, count_num = m.pair_magnitudes(_item(frames, fps=24.0))  # 24 fps keeps frames 0, 3, 6
    assert len(rads) == 2 and (thres, count_num) == (3.0, 1) and all(np.isfinite(rads))
    assert m.compute(_item(frames, fps=24.0))["dynamic_degree"] == (1.0 if max(rads) > 3.0 else 0.0)
    with pytest.raises(Exception, match="at least 2"):
        m.compute(_item(frames[:3], fps=24.0))
    sd = torch.load(ckpt, weights_only=True)
    sd["module.extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(VidEditBenchError, match="extra.weight"):
        DynamicDegree(weights=str(tmp_path / "bad.pth")).setup()


def test_weights_download_extracts_zip_member(tmp_path, monkeypatch):
    """raft-things comes inside RAFT's models.zip: `weights download` keeps just that member."""
    import io
    import urllib.request
    import zipfile

    from bench import weights

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("models/raft-things.pth", b"raft-things-bytes")
        z.writestr("models/raft-small.pth", b"other")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=60: io.BytesIO(buf.getvalue()))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    path = weights.download("raft-things", offline=False)
    assert path.name == "raft-things.pth" and path.read_bytes() == b"raft-things-bytes"
    assert weights.resolve("raft-things") == path


# ---- aesthetic_quality (CLIP ViT-L/14 OpenAI format + LAION v1 head) ---------------------------------------
@pytest.fixture(scope="module")
def tiny_openai_clip(tmp_path_factory):
    """A tiny CLIP written as OpenAI ships CLIP (a TorchScript archive of the model), embed dim 32."""
    import open_clip
    import torch

    from tiny_models import CLIP_VOCAB_SIZE, spread_weights
    from vbench_golden_models import save_openai_torchscript

    torch.manual_seed(0)
    model = open_clip.CLIP(embed_dim=32, quick_gelu=True,
                           vision_cfg={"image_size": 56, "layers": 1, "width": 64, "patch_size": 14, "head_width": 64},
                           text_cfg={"context_length": 77, "vocab_size": CLIP_VOCAB_SIZE, "width": 64, "heads": 1, "layers": 1})
    spread_weights(model, 0)
    path = tmp_path_factory.mktemp("openai_clip") / "ViT-L-14.pt"
    save_openai_torchscript(model.state_dict(), path)
    return path


def _head(path, dim: int, weight=None, bias: float = 0.0):
    import torch

    w = torch.zeros(1, dim) if weight is None else torch.as_tensor(weight, dtype=torch.float32).view(1, dim)
    torch.save({"weight": w, "bias": torch.tensor([bias])}, path)
    return path


def test_aesthetic_quality_tiny_openai_clip(tiny_openai_clip, tmp_path):
    from metrics.vbench_quality import AestheticQuality

    frames = np.random.default_rng(3).integers(0, 256, (3, 60, 80, 3), dtype=np.uint8)
    assert AestheticQuality().required_weights() == ["clip-vit-l-14-openai", "laion-aesthetic-v1-l14"]
    # known answer: a head with zero weights scores its bias / 10 on every frame
    const = AestheticQuality(weights=str(tiny_openai_clip), head_weights=str(_head(tmp_path / "c.pth", 32, bias=6.5)))
    assert const.compute(_item(frames))["aesthetic_quality"] == pytest.approx(0.65, abs=1e-7)
    # a unit-vector head reads one coordinate of the L2-normalised embedding: |value| <= 1/10
    e0 = np.zeros(32)
    e0[0] = 1.0
    m = AestheticQuality(weights=str(tiny_openai_clip), head_weights=str(_head(tmp_path / "e.pth", 32, e0)))
    v = m.compute(_item(frames))["aesthetic_quality"]
    assert 0 < abs(v) <= 0.1
    assert m.compute(_item(frames[::-1].copy()))["aesthetic_quality"] == pytest.approx(v, abs=1e-6)  # a mean over frames
    assert m.compute(_item(frames[:1]))["aesthetic_quality"] != pytest.approx(v, abs=1e-6)


def test_aesthetic_quality_rejects_wrong_heads(tiny_openai_clip, tmp_path):
    import torch

    from metrics.vbench_quality import AestheticQuality

    with pytest.raises(VidEditBenchError, match="768-d CLIP embeddings"):
        AestheticQuality(weights=str(tiny_openai_clip), head_weights=str(_head(tmp_path / "w.pth", 768))).setup()
    torch.save({"layers.0.weight": torch.zeros(1024, 32)}, tmp_path / "v2.pth")
    with pytest.raises(VidEditBenchError, match="v2 MLP head belongs to the `aesthetic` metric"):
        AestheticQuality(weights=str(tiny_openai_clip), head_weights=str(tmp_path / "v2.pth")).setup()


# ---- registry, metadata, missing weights -------------------------------------------------------------------
@pytest.mark.parametrize("name,weights", [("motion_smoothness", ["amt-s"]), ("dynamic_degree", ["raft-things"]),
                                          ("aesthetic_quality", ["clip-vit-l-14-openai", "laion-aesthetic-v1-l14"])])
def test_registered_with_weights_and_fix_command(name, weights):
    from bench.api.catalog import METRICS
    from bench.api.errors import WeightsMissing
    from bench.api.metric import Metric
    from bench.weights import get_spec

    cls = METRICS.get(name)
    assert issubclass(cls, Metric) and cls.name == name and cls.higher_is_better and cls.value_range == (0.0, 1.0)
    m = cls()
    assert m.required_weights() == weights
    for w in weights:
        spec = get_spec(w)
        assert name in spec.used_by and spec.licence != "unknown" and spec.size_mb
    with pytest.raises(WeightsMissing) as ei:
        m.setup()
    assert ei.value.fix == f"videditbench weights download {weights[0]}"
