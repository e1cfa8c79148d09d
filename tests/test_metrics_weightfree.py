"""Known-answer tests for the weight-free metrics (efficiency, temporal flickering, background PSNR/SSIM)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.api.catalog import METRICS
from bench.api.errors import NotApplicable, VidEditBenchError
from bench.api.types import Efficiency, EvalItem, Sample, Video


def _item(edited: np.ndarray, source: np.ndarray | None = None, mask=None, eff: Efficiency | None = None) -> EvalItem:
    sample = Sample(suite="t", video_id="v", edit_id="0", source="v.mp4")
    src = Video(source if source is not None else edited)
    return EvalItem(sample=sample, source=src, edited=Video(edited), mask=mask, efficiency=eff or Efficiency())


# --- efficiency -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,field,value",
    [("generation_time", "generate_s", 12.5), ("preprocess_time", "preprocess_s", 3.25), ("peak_memory", "peak_memory_mb", 2048.0)],
)
def test_efficiency_reads_harness_measurement(name, field, value):
    cls = METRICS.get(name)
    assert cls.higher_is_better is False and "efficiency" in cls.needs
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    out = cls().compute(_item(frames, eff=Efficiency(**{field: value})))
    assert out == {name: value}
    with pytest.raises(NotApplicable, match=field):
        cls().compute(_item(frames, eff=Efficiency()))


# --- temporal flickering ------------------------------------------------------------------------------
def test_flickering_known_answer():
    frames = np.stack([np.full((16, 16, 3), v, np.uint8) for v in (0, 10, 30)])
    # pair MAEs 10 and 20 -> mean 15 -> (255 - 15) / 255
    out = METRICS.get("temporal_flickering")().compute(_item(frames))
    assert out["temporal_flickering"] == pytest.approx(240 / 255)


def test_flickering_matches_opencv_absdiff_definition(rng):
    import cv2

    frames = rng.integers(0, 256, size=(5, 24, 20, 3), dtype=np.uint8)
    expected_mae = np.mean([np.mean(cv2.absdiff(frames[i], frames[i + 1])) for i in range(4)])
    out = METRICS.get("temporal_flickering")().compute(_item(frames))
    assert out["temporal_flickering"] == pytest.approx((255 - expected_mae) / 255, abs=1e-12)
    # a static clip is perfectly stable; uint8 wrap-around must not happen (0 -> 255 is a 255 difference)
    static = np.repeat(frames[:1], 4, axis=0)
    assert METRICS.get("temporal_flickering")().compute(_item(static))["temporal_flickering"] == 1.0
    extreme = np.stack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)])
    assert METRICS.get("temporal_flickering")().compute(_item(extreme))["temporal_flickering"] == 0.0


def test_flickering_needs_two_frames():
    with pytest.raises(NotApplicable, match="2 frames"):
        METRICS.get("temporal_flickering")().compute(_item(np.zeros((1, 8, 8, 3), np.uint8)))


# --- background preservation ----------------------------------------------------------------------------
@pytest.fixture
def bg_case(rng):
    """Source noise clip; the edit rewrites a square inside the mask and shifts the background by +5."""
    src = rng.integers(20, 230, size=(3, 32, 40, 3), dtype=np.uint8)
    mask = np.zeros((3, 32, 40), bool)
    mask[:, 8:20, 10:26] = True
    edited = src.copy()
    edited[mask] = rng.integers(0, 256, size=(int(mask.sum()), 3), dtype=np.uint8)
    return src, mask, edited


def test_bg_psnr_known_answer(bg_case):
    src, mask, edited = bg_case
    shifted = edited.copy()
    shifted[~mask] = shifted[~mask] + 5  # values in 20..229, no overflow
    out = METRICS.get("bg_psnr")().compute(_item(shifted, src, mask))
    assert out["bg_psnr"] == pytest.approx(10 * math.log10(255**2 / 25))
    # the masked region is ignored entirely: identical background -> capped at 100 dB
    assert METRICS.get("bg_psnr")().compute(_item(edited, src, mask))["bg_psnr"] == 100.0


def test_bg_psnr_per_frame_mean(bg_case):
    src, mask, _ = bg_case
    edited = src.copy()
    edited[0][~mask[0]] += 1  # frame 0: MSE 1; frames 1, 2 identical (100 dB each)
    out = METRICS.get("bg_psnr")().compute(_item(edited, src, mask))
    assert out["bg_psnr"] == pytest.approx((10 * math.log10(255**2) + 200) / 3)


def test_bg_ssim_identical_and_region(bg_case):
    src, mask, edited = bg_case
    ssim = METRICS.get("bg_ssim")
    assert ssim().compute(_item(src, src, mask))["bg_ssim"] == pytest.approx(1.0)
    near = ssim().compute(_item(edited, src, mask))["bg_ssim"]
    assert 0.5 < near < 1.0  # 7x7 windows next to the mask see the rewritten pixels
    # excluding a 3 px band (the window radius) leaves only windows that never see the edit
    assert ssim(dilate=3).compute(_item(edited, src, mask))["bg_ssim"] == pytest.approx(1.0)
    assert ssim(dilate=3).variant_id() != ssim().variant_id()


def test_bg_ssim_equals_full_map_mean_when_mask_empty(rng):
    from skimage.metrics import structural_similarity

    src = rng.integers(0, 256, size=(2, 24, 24, 3), dtype=np.uint8)
    edited = np.clip(src.astype(int) + rng.integers(-40, 40, size=src.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(src.shape[:3], bool)
    expected = np.mean(
        [structural_similarity(src[t], edited[t], data_range=255, channel_axis=-1, full=True)[1].mean() for t in range(2)]
    )
    out = METRICS.get("bg_ssim")().compute(_item(edited, src, mask))
    assert out["bg_ssim"] == pytest.approx(expected, rel=1e-9)
    assert out["bg_ssim"] < 0.99
    inverted = METRICS.get("bg_ssim")().compute(_item(255 - src, src, mask))["bg_ssim"]
    assert inverted < 0


def test_bg_metrics_errors(bg_case):
    src, mask, edited = bg_case
    for name in ("bg_psnr", "bg_ssim"):
        cls = METRICS.get(name)
        assert cls.needs == {"source", "mask"}
        with pytest.raises(NotApplicable, match="every pixel"):
            cls().compute(_item(edited, src, np.ones_like(mask)))
        with pytest.raises(VidEditBenchError, match="mask shape"):
            cls().compute(_item(edited, src, mask[:, :16]))
        with pytest.raises(NotApplicable, match="needs a mask"):
            cls().compute(_item(edited, src, None))
    with pytest.raises(VidEditBenchError, match="unknown option"):
        METRICS.get("bg_psnr")(radius=2)
