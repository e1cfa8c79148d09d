"""ViCLIP video-text alignment: a tiny random ViCLIP saved in the official checkpoint format and
loaded through the metric's real loader (strict keys), frame selection, and V2VBench's own numbers
(goldens vbench_viclip, RECIPE §4) with the golden's tiny random checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.api.errors import NotApplicable, VidEditBenchError, WeightsMissing
from bench.api.types import EvalItem, Sample, Video

SAMPLE = Sample("t", "v", "e", "src")
PROMPTS = {
    "prompt0": "a red ball rolling across a colorful striped background",
    "prompt1": "A blue sphere drifting over ocean waves, oil painting style!",
}
GOLDEN_TOL = 1e-4  # RECIPE §5 for ViCLIP cosines


def _save_tiny_viclip(path: Path, **overrides) -> Path:
    import torch

    from metrics.viclip.model import ViClip, ViClipConfig

    cfg = ViClipConfig(image_size=28, patch_size=14, num_frames=8, vision_width=32, vision_layers=1, vision_heads=2,
                       embed_dim=16, context_length=32, text_width=32, text_layers=1, text_heads=2, **overrides)
    torch.manual_seed(0)
    model = ViClip(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.5 if p.ndim > 1 else 0.1) + (1.0 if name.endswith("ln_1.weight") else 0.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, path)  # the official file format
    return path


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return _save_tiny_viclip(tmp_path_factory.mktemp("viclip") / "ViClip-InternVid-10M-FLT.pth")


def _metric(ckpt: Path, **opts):
    from metrics.viclip import ViClipTextAlignment

    return ViClipTextAlignment(weights=str(ckpt), head_dim=16, **opts)


def _clip(seed: int, t: int = 8, h: int = 40, w: int = 56) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_tiny_viclip_loads_strictly_and_scores_a_cosine(tiny_ckpt):
    m = _metric(tiny_ckpt, stride=1)
    frames = _clip(1)
    item = EvalItem(SAMPLE, source=Video(frames), edited=Video(frames), prompt=PROMPTS["prompt0"])
    value = m.compute(item)["viclip"]
    assert -1.0 <= value <= 1.0 and value != 0.0
    other_prompt = m.score(frames, PROMPTS["prompt1"])
    other_video = m.score(_clip(2), PROMPTS["prompt0"])
    assert other_prompt != pytest.approx(value, abs=1e-6) and other_video != pytest.approx(value, abs=1e-6)
    # the temporal embedding is applied: the same frames in reverse order give another embedding
    assert m.score(frames[::-1].copy(), PROMPTS["prompt0"]) != pytest.approx(value, abs=1e-6)


def test_stride_3_on_24_frames_equals_the_8_frames_it_keeps(tiny_ckpt):
    frames8 = _clip(3)
    frames24 = np.repeat(frames8, 3, axis=0)  # frame j of 24 = frame j // 3 of 8; stride 3 keeps 0, 3, ..., 21
    default = _metric(tiny_ckpt)  # V2VBench's stride 3
    s24 = default.score(frames24, PROMPTS["prompt1"])
    s8 = _metric(tiny_ckpt, stride=1).score(frames8, PROMPTS["prompt1"])
    assert s24 == pytest.approx(s8, abs=1e-6)
    # uniform sampling of 8 frames from 8 frames is all of them
    assert _metric(tiny_ckpt, sampling="uniform").score(frames8, PROMPTS["prompt1"]) == pytest.approx(s8, abs=1e-6)


def test_stride_3_on_an_8_frame_clip_is_not_applicable_with_the_fix(tiny_ckpt):
    # V2VBench itself crashes here (3 frames against a temporal embedding of 8): RECIPE §4 trap
    with pytest.raises(NotApplicable, match=r"stride 3 on 8 frames gives 3.*stride=1"):
        _metric(tiny_ckpt).score(_clip(4), "a cat")
    with pytest.raises(NotApplicable, match="only 5"):
        _metric(tiny_ckpt, sampling="uniform").score(_clip(4, t=5), "a cat")


def test_checkpoint_keys_must_match_exactly(tiny_ckpt, tmp_path):
    import torch

    from metrics.viclip.model import load_viclip

    sd = torch.load(tiny_ckpt, weights_only=True)["model"]
    missing = dict(sd)
    missing.pop("vision_encoder.temporal_positional_embedding")
    torch.save({"model": missing}, tmp_path / "missing.pth")
    with pytest.raises(VidEditBenchError, match="temporal_positional_embedding"):
        load_viclip(tmp_path / "missing.pth", head_dim=16)
    extra = {**sd, "vision_encoder.extra.weight": torch.zeros(2)}
    torch.save({"model": extra}, tmp_path / "extra.pth")
    with pytest.raises(VidEditBenchError, match="unexpected.*vision_encoder.extra.weight"):
        load_viclip(tmp_path / "extra.pth", head_dim=16)
    torch.save({"state": 1}, tmp_path / "other.pth")
    with pytest.raises(VidEditBenchError, match="not a ViCLIP checkpoint"):
        load_viclip(tmp_path / "other.pth")


def test_missing_official_weights_name_the_download_command():
    from metrics.viclip import ViClipTextAlignment

    m = ViClipTextAlignment()
    assert m.required_weights() == ["viclip-internvid-10m-flt"]
    with pytest.raises(WeightsMissing, match="videditbench weights download viclip-internvid-10m-flt"):
        m.setup()


# ---- goldens: V2VBench's ViclipTextAlignment on the shared clips (RECIPE §4) --------------------
@pytest.fixture(scope="module")
def viclip_goldens() -> Path:
    from conftest import require_goldens

    return require_goldens("vbench_viclip")


def test_viclip_reproduces_v2vbench_golden_scores(viclip_goldens):
    from bench.media.video_io import read_image
    from metrics.viclip import ViClipTextAlignment

    golden = json.loads((viclip_goldens / "expected.json").read_text())["v2vbench_viclip_text_alignment"]
    assert golden["stride"] == 1
    frames_root = viclip_goldens.parent / "inputs"  # the shared 8-frame PNG clips
    # the golden tiny model: width 64, 2 heads -> head_dim 32 (the released ViT-L/14 has 64)
    metric = ViClipTextAlignment(weights=str(viclip_goldens / "models" / "viclip_tiny_random.pth"),
                                 stride=golden["stride"], head_dim=32)
    got = {}
    for key, expected in golden["scores"].items():
        video, prompt = key.split("|")
        frames = np.stack([read_image(p) for p in sorted((frames_root / video).glob("*.png"))])
        got[key] = metric.score(frames, PROMPTS[prompt])
        # V2VBench at stride 3 on a 24-frame clip of every frame three times is the same number
        if key == "edit_a|prompt1":
            metric24 = ViClipTextAlignment(weights=str(viclip_goldens / "models" / "viclip_tiny_random.pth"),
                                           head_dim=32)
            assert metric24.score(np.repeat(frames, 3, axis=0), PROMPTS[prompt]) == pytest.approx(expected, abs=GOLDEN_TOL)
    for key, expected in golden["scores"].items():
        assert got[key] == pytest.approx(expected, abs=GOLDEN_TOL), key
