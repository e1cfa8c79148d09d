"""VBench's motion dimensions: motion smoothness (AMT-S frame interpolation) and dynamic degree (RAFT).

motion_smoothness (VBench 0.1.5, `motion_smoothness.py`): keep frames 0, 2, 4, …; AMT-S interpolates the
frame between each consecutive kept pair at t = 0.5 (RGB uint8 / 255 in, replicate-padded to a
multiple of 16); each prediction becomes uint8 by `(x * 255).clip(0, 255)` and **truncation** (as
VBench's `tensor2img`, not rounding); it is compared with the real odd frame 1, 3, 5, … by the mean
absolute difference over all pixels and channels (0–255; a trailing odd frame with no right neighbour
is not used); score = (255 − mean over the pairs) / 255. VBench shrinks the frames inside AMT on GPUs
by a factor derived from the card's memory; that is the variant `downscale=True` (off by default, as
VBench on CPU), with `vram_gb` standing in for the card size (0 = the current CUDA device's).

dynamic_degree (VBench 0.1.5, `dynamic_degree.py`): frames are kept every max(1, round(fps / 8)); RAFT
(raft-things, 20 iterations, test mode) between consecutive kept frames, on float RGB in [0, 255]
replicate-padded to a multiple of 8 (RAFT's "sintel" padding); per pair, the mean of the
int(0.05·H·W) largest flow magnitudes (over the padded flow, as VBench); the video is dynamic when at
least round(4·N/16) pairs exceed 6·min(H, W)/256 px, N being the number of kept frames. The per-sample
value is 1.0 (dynamic) or 0.0, so the leaderboard's mean is VBench's fraction of dynamic videos.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from bench.errors import NotApplicable
from bench.metric import Metric
from bench.types import EvalItem
from metrics._embed import registry_weight_names, weights_path

# ---- motion smoothness -----------------------------------------------------------------------------------
#: VBench's memory model for AMT on CUDA (anchor resolution, memory per anchor, fixed overhead)
AMT_ANCHOR_RESOLUTION = 1024 * 512
AMT_ANCHOR_MEMORY = 1500 * 1024**2
AMT_ANCHOR_MEMORY_BIAS = 2500 * 1024**2
#: below this the 1/64-scale correlation level is one pixel wide and AMT's lookup divides by zero
AMT_MIN_SIDE = 128


def amt_scale(h: int, w: int, vram_bytes: float | None) -> float:
    """VBench's AMT working scale: 1.0 without a memory limit (its CPU branch), else the GPU formula
    scale = 1 / floor(16 / sqrt(min(1, anchor / (h·w) · sqrt((vram − bias) / memory)))) · 16."""
    if vram_bytes is None:
        return 1.0
    s = AMT_ANCHOR_RESOLUTION / (h * w) * math.sqrt(max(vram_bytes - AMT_ANCHOR_MEMORY_BIAS, 0.0) / AMT_ANCHOR_MEMORY)
    s = min(1.0, s)
    if s <= 0:
        raise NotApplicable(f"vram {vram_bytes / 1024**3:.1f} GB leaves no memory for AMT (VBench needs > 2.4 GB)")
    return 1.0 / math.floor(1.0 / math.sqrt(s) * 16) * 16


def pad_amounts(h: int, w: int, divisor: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) replicate padding to the next multiple of `divisor`, split in halves."""
    ph = (((h // divisor) + 1) * divisor - h) % divisor
    pw = (((w // divisor) + 1) * divisor - w) % divisor
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def to_uint8_truncated(x: "Any") -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8 as VBench's tensor2img: x·255, clip, truncate."""
    return (x * 255.0).detach().squeeze(0).permute(1, 2, 0).cpu().numpy().clip(0, 255).astype(np.uint8)


def vfi_mean_abs_diff(frames: np.ndarray, predicted: Sequence[np.ndarray]) -> float:
    """Mean over the predictions of mean |prediction − real odd frame| (uint8 values, 0..255)."""
    odd = np.asarray(frames)[1::2]
    diffs = [float(np.mean(np.abs(p.astype(np.int16) - o.astype(np.int16)))) for p, o in zip(predicted, odd)]
    return float(np.mean(diffs))


def smoothness_from_diff(mean_abs_diff: float) -> float:
    return (255.0 - mean_abs_diff) / 255.0


def interpolate_middle_frames(model: Any, frames: np.ndarray, device: str = "cpu", scale: float = 1.0) -> list[np.ndarray]:
    """AMT-S at t = 0.5 between frames (0, 2), (2, 4), …: the predicted frames 1, 3, … as uint8."""
    import torch
    import torch.nn.functional as F

    kept = np.asarray(frames)[0::2]
    if len(kept) < 2:
        raise NotApplicable(f"motion_smoothness needs at least 3 frames, got {len(frames)}")
    h, w = kept.shape[1:3]
    left, right, top, bottom = pad_amounts(h, w, int(16 / scale))
    embt = torch.tensor(0.5).float().view(1, 1, 1, 1).to(device)

    def tensor(frame: np.ndarray) -> "torch.Tensor":
        x = torch.tensor(frame).permute(2, 0, 1).unsqueeze(0) / 255.0
        return F.pad(x, [left, right, top, bottom], mode="replicate").to(device)

    out = []
    with torch.inference_mode():
        prev = tensor(kept[0])
        for frame in kept[1:]:
            nxt = tensor(frame)
            pred = model(prev, nxt, embt, scale_factor=scale)
            out.append(to_uint8_truncated(pred[..., top:pred.shape[-2] - bottom, left:pred.shape[-1] - right]))
            prev = nxt
    return out


def load_amt(path: Path, device: str = "cpu") -> Any:
    from metrics.amt import load_amt_s

    return load_amt_s(path, device)


class MotionSmoothness(Metric):
    name = "motion_smoothness"
    description = ("VBench motion smoothness: AMT-S interpolates every odd frame from its even neighbours; "
                   "(255 - mean |interpolated - real|) / 255")
    higher_is_better = True
    value_range = (0.0, 1.0)
    defaults: ClassVar[dict[str, Any]] = {"weights": "amt-s", "downscale": False, "vram_gb": 0.0}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"downscale": (False, True)}

    _model: Any = None

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"])

    def variant(self) -> dict[str, Any]:
        v = super().variant()
        if not v["downscale"]:
            v.pop("vram_gb")  # only used by the downscale variant
        return v

    def setup(self) -> None:
        from bench.models import create_model

        self._model = create_model(weights_path(self.options["weights"]), load_amt, self.device)

    def _vram_bytes(self) -> float | None:
        if not self.options["downscale"]:
            return None
        gb = float(self.options["vram_gb"] or 0.0)
        if gb > 0:
            return gb * 1024**3
        import torch

        if str(self.device).startswith("cuda") and torch.cuda.is_available():
            return float(torch.cuda.get_device_properties(torch.device(self.device)).total_memory)
        return None  # VBench does not shrink frames on CPU

    def compute(self, item: EvalItem) -> dict[str, float]:
        if self._model is None:
            self.setup()
        frames = item.edited.frames
        if frames.shape[0] < 3:
            raise NotApplicable(f"{self.name} needs at least 3 frames, {item.sample.uid} has {frames.shape[0]}")
        if min(frames.shape[1:3]) < AMT_MIN_SIDE:
            raise NotApplicable(f"{self.name}: AMT-S needs frames of at least {AMT_MIN_SIDE} px per side "
                                f"(its coarsest correlation level is 1/64 scale), got {frames.shape[2]}x{frames.shape[1]}")
        scale = amt_scale(frames.shape[1], frames.shape[2], self._vram_bytes())
        predicted = interpolate_middle_frames(self._model, frames, self.device, scale)
        return {self.name: smoothness_from_diff(vfi_mean_abs_diff(frames, predicted))}

    def teardown(self) -> None:
        self._model = None


__all__ = ["MotionSmoothness", "amt_scale", "interpolate_middle_frames", "smoothness_from_diff", "vfi_mean_abs_diff"]
