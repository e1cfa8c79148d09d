"""Background preservation outside the edit mask (PSNR / SSIM / MSE between source and edited frames).

For mask-based edits the pixels outside the mask should be left alone. Per frame, both metrics
compare the source and edited frame over the UNMASKED pixels only, then average over frames.

* bg_psnr: MSE over unmasked pixels and all three channels of uint8 values, PSNR = 10·log10(255²/MSE).
  An identical background (MSE = 0) would be +inf; it is capped at 100 dB (`PSNR_CAP_DB`) per
  frame so means stay finite and comparable (uint8 PSNR never exceeds ~96 dB with any error).
* bg_ssim: skimage `structural_similarity(..., data_range=255, channel_axis=-1, full=True)`; the
  per-pixel SSIM map is averaged over channels and then over the unmasked pixels (SSIM windows near
  the mask boundary still see masked pixels; use `dilate` to exclude a band around the mask).

* bg_mse: the mean squared difference of the unmasked pixels on the 0–1 scale (values / 255), all
  three channels (FiVE-Bench / PIE-Bench report it ×10⁴); `average="frame"` divides by every pixel
  of the frame instead, counting the masked region (set equal in both) as zero difference.
* LPIPS outside the mask is `metrics.perceptual` (it needs a backbone network).

Frames whose mask covers everything are skipped; if every frame is fully masked the metric is
not applicable. Option `dilate` (pixels) grows the mask by a (2·dilate+1)² square before taking
its complement; dilate=3 keeps every 7×7 SSIM window of the background clear of the edited region.
"""

from __future__ import annotations

import numpy as np

from bench.errors import NotApplicable, VidEditBenchError
from bench.metric import Metric
from bench.types import EvalItem

PSNR_CAP_DB = 100.0


def _check_and_background(item: EvalItem, name: str, dilate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source frames, edited frames, background (T,H,W) bool) after shape validation."""
    if item.mask is None:
        raise NotApplicable(f"{name} needs a mask; {item.sample.uid} has none")
    src, edt = item.source.frames, item.edited.frames
    if src.shape != edt.shape:
        raise VidEditBenchError(
            f"{name}: source {src.shape} and edited {edt.shape} frames differ in shape for {item.sample.uid}"
        )
    mask = np.asarray(item.mask).astype(bool)
    if mask.ndim == 2:
        mask = np.broadcast_to(mask, src.shape[:3])
    if mask.shape != src.shape[:3]:
        raise VidEditBenchError(
            f"{name}: mask shape {mask.shape} does not match the frames {src.shape[:3]} (T,H,W) for {item.sample.uid}"
        )
    if dilate > 0:
        import cv2

        k = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)  # square: matches SSIM's square window
        mask = np.stack([cv2.dilate(m.astype(np.uint8), k) > 0 for m in mask])
    background = ~mask
    if not background.any():
        raise NotApplicable(f"{name}: the mask covers every pixel of every frame of {item.sample.uid}")
    return src, edt, background


def masked_psnr(a: np.ndarray, b: np.ndarray, region: np.ndarray, cap: float = PSNR_CAP_DB) -> float:
    """PSNR (max 255) of two uint8 (H,W,3) images over the pixels where `region` (H,W) is True."""
    diff = a[region].astype(np.float64) - b[region].astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return cap
    return min(cap, 10.0 * np.log10(255.0**2 / mse))


def masked_mse(a: np.ndarray, b: np.ndarray, region: np.ndarray, average: str = "background") -> float:
    """MSE on the 0–1 scale of two uint8 (H,W,3) images over `region` (H,W); "frame" averages over all pixels."""
    diff = (a[region].astype(np.float64) - b[region].astype(np.float64)) / 255.0
    total = float(np.sum(diff * diff))
    count = diff.size if average == "background" else a.size
    return total / count


def masked_ssim(a: np.ndarray, b: np.ndarray, region: np.ndarray, gaussian_weights: bool = False) -> float:
    """Mean of skimage's full SSIM map (channel-averaged) over the pixels where `region` is True."""
    from skimage.metrics import structural_similarity

    kwargs = {"data_range": 255, "channel_axis": -1, "full": True}
    if gaussian_weights:  # Wang et al. 2004 settings
        kwargs.update(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    min_side = min(a.shape[:2])
    if min_side < 7:
        kwargs["win_size"] = max(3, min_side - (1 - min_side % 2))
    _, smap = structural_similarity(a, b, **kwargs)
    return float(smap.mean(axis=-1)[region].mean())


class BackgroundPSNR(Metric):
    name = "bg_psnr"
    description = "PSNR (dB) between source and edited frames outside the mask, mean over frames (capped at 100)"
    higher_is_better = True
    value_range = (0.0, PSNR_CAP_DB)
    unit = "dB"
    needs = frozenset({"source", "mask"})
    defaults = {"dilate": 0}

    def compute(self, item: EvalItem) -> dict[str, float]:
        src, edt, bg = _check_and_background(item, self.name, int(self.options["dilate"]))
        vals = [masked_psnr(src[t], edt[t], bg[t]) for t in range(src.shape[0]) if bg[t].any()]
        return {self.name: float(np.mean(vals))}


class BackgroundSSIM(Metric):
    name = "bg_ssim"
    description = "SSIM between source and edited frames averaged over pixels outside the mask, mean over frames"
    higher_is_better = True
    value_range = (-1.0, 1.0)
    needs = frozenset({"source", "mask"})
    defaults = {"dilate": 0, "gaussian_weights": False}
    choices = {"gaussian_weights": (False, True)}

    def compute(self, item: EvalItem) -> dict[str, float]:
        src, edt, bg = _check_and_background(item, self.name, int(self.options["dilate"]))
        gw = bool(self.options["gaussian_weights"])
        vals = [masked_ssim(src[t], edt[t], bg[t], gw) for t in range(src.shape[0]) if bg[t].any()]
        return {self.name: float(np.mean(vals))}


class BackgroundMSE(Metric):
    name = "bg_mse"
    description = "MSE (0-1 scale) between source and edited frames outside the mask, mean over frames"
    higher_is_better = False
    value_range = (0.0, 1.0)
    needs = frozenset({"source", "mask"})
    defaults = {"dilate": 0, "average": "background"}
    choices = {"average": ("background", "frame")}

    def compute(self, item: EvalItem) -> dict[str, float]:
        src, edt, bg = _check_and_background(item, self.name, int(self.options["dilate"]))
        avg = self.options["average"]
        vals = [masked_mse(src[t], edt[t], bg[t], avg) for t in range(src.shape[0]) if bg[t].any()]
        return {self.name: float(np.mean(vals))}
