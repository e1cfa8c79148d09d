"""LPIPS outside the mask with random-weight torchvision backbones saved as the official files and
resolved through the weights registry (the `lpips` package's own linear layers), and bg_mse on
exact synthetic differences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.api.errors import VidEditBenchError, WeightsMissing
from bench.api.types import EvalItem, Sample, Video

SAMPLE = Sample("t", "v", "e", "src")


def _features_state_dict(net: str) -> dict:
    """Random ImageNet-architecture conv trunk in torchvision's key layout (`features.<i>.*`)."""
    import torch
    from torchvision.models import alexnet
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = alexnet(weights=None).features if net == "alex" else make_layers(cfgs["D"])
    return {f"features.{k}": v for k, v in features.state_dict().items()}


@pytest.fixture(scope="module")
def backbones(tmp_path_factory) -> dict[str, Path]:
    import torch

    root = tmp_path_factory.mktemp("lpips_backbones")
    out = {}
    for net, name in (("alex", "alexnet-owt-7be5be79.pth"), ("vgg", "vgg16-397923af.pth")):
        out[net] = root / name
        torch.save(_features_state_dict(net), out[net])
    return out


def _clip(seed: int = 0, t: int = 3, h: int = 64, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = (128 + 80 * np.sin(x / 5.0 + y / 9.0))[None, ..., None] + rng.normal(0, 10, (t, h, w, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def _mask(t: int = 3, h: int = 64, w: int = 64) -> np.ndarray:
    m = np.zeros((t, h, w), bool)
    m[:, 16:40, 20:44] = True
    return m


def _item(src: np.ndarray, edt: np.ndarray, mask: np.ndarray | None) -> EvalItem:
    return EvalItem(SAMPLE, source=Video(src), edited=Video(edt), mask=mask)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_is_zero_on_itself_and_positive_on_a_changed_background(net, backbones, monkeypatch):
    from metrics.perceptual import BACKBONE_WEIGHTS, LPIPSBackground

    spec_env = "VIDEDITBENCH_WEIGHT_" + BACKBONE_WEIGHTS[net].upper().replace("-", "_")
    monkeypatch.setenv(spec_env, str(backbones[net]))  # resolved like a downloaded spec
    m = LPIPSBackground(net=net)
    assert m.required_weights() == [BACKBONE_WEIGHTS[net]]
    src, mask = _clip(), _mask()
    assert m.compute(_item(src, src, mask))["lpips"] == 0.0

    inside = src.copy()
    inside[mask] = 255 - inside[mask]  # only the edited region changes: invisible to a background metric
    assert m.compute(_item(src, inside, mask))["lpips"] == 0.0
    assert LPIPSBackground(net=net, fill="source").compute(_item(src, inside, mask))["lpips"] == 0.0

    outside = src.copy()
    outside[~mask] = np.clip(outside[~mask].astype(int) + 40, 0, 255).astype(np.uint8)
    changed = m.compute(_item(src, outside, mask))["lpips"]
    assert changed > 1e-4
    # a bigger background change is further away
    noisy = np.clip(src.astype(int) + np.random.default_rng(1).normal(0, 60, src.shape), 0, 255).astype(np.uint8)
    noisy[mask] = src[mask]
    assert m.compute(_item(src, noisy, mask))["lpips"] > 0.0


def test_lpips_backbone_keys_must_match_and_missing_weights_name_the_fix(backbones, tmp_path):
    from metrics.perceptual import LPIPSBackground, load_lpips

    with pytest.raises(VidEditBenchError, match="not the torchvision backbone"):
        load_lpips(backbones["alex"], net="vgg")
    m = LPIPSBackground()
    assert m.variant()["backbone"] == "alexnet-imagenet"
    with pytest.raises(WeightsMissing, match="videditbench weights download alexnet-imagenet"):
        m.setup()
    assert LPIPSBackground(backbone=str(backbones["alex"])).required_weights() == []


def test_bg_mse_exact_on_synthetic_differences():
    from metrics.background import BackgroundMSE

    src = np.full((2, 10, 10, 3), 100, np.uint8)
    mask = np.zeros((2, 10, 10), bool)
    mask[:, :5] = True  # left half edited: 50 masked, 50 background pixels per frame
    edt = src.copy()
    edt[:, :5] = 0  # anything inside the mask is ignored
    edt[0, 5:, :, 0] = 110  # frame 0: red channel +10 on the whole background
    item = _item(src, edt, mask)
    per_frame0 = (10 / 255) ** 2 / 3  # one channel of three differs by 10 levels
    assert BackgroundMSE().compute(item)["bg_mse"] == pytest.approx((per_frame0 + 0.0) / 2, rel=1e-12)
    # average over the whole frame: the masked half counts as zero difference
    assert BackgroundMSE(average="frame").compute(item)["bg_mse"] == pytest.approx(per_frame0 / 2 / 2, rel=1e-12)
    assert BackgroundMSE().compute(_item(src, src, mask))["bg_mse"] == 0.0
