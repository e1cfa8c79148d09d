"""Reinhard-style colour transfer from the reference image (weight-free image-guided baseline).

Reinhard et al. 2001 match per-channel means and standard deviations in a decorrelated colour
space; here CIELAB (OpenCV, float RGB in [0, 1]). The source statistics are pooled over the masked
pixels of ALL frames, so one affine transform per channel is applied to every frame: the result is
temporally stable by construction (no per-frame flicker). The transformed frame is composited
back through the mask (optionally feathered); with no mask the whole frame is recoloured.

Task choice: it needs a reference image, so it is registered for image-guided samples only
(tasks {"image"}, needs {"reference"}); a mask is optional.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.errors import NotApplicable, VidEditBenchError
from bench.method import Method
from bench.types import Video


def rgb_to_lab(rgb_uint8: np.ndarray) -> np.ndarray:
    import cv2

    shape = rgb_uint8.shape
    flat = rgb_uint8.reshape(-1, 1, 3).astype(np.float32) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).reshape(shape)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    import cv2

    shape = lab.shape
    rgb = cv2.cvtColor(lab.reshape(-1, 1, 3).astype(np.float32), cv2.COLOR_LAB2RGB).reshape(shape)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def align_mask(mask: np.ndarray | None, video: Video, who: str) -> np.ndarray | None:
    """A (T,H,W) bool mask matching the video (a single (H,W) or (1,H,W) mask is broadcast)."""
    if mask is None:
        return None
    m = np.asarray(mask).astype(bool)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1:] != (video.height, video.width):
        raise VidEditBenchError(f"{who}: mask shape {m.shape} does not match the video's {video.size} (H, W)")
    if m.shape[0] == 1 and video.num_frames > 1:
        m = np.broadcast_to(m, (video.num_frames, *m.shape[1:]))
    if m.shape[0] != video.num_frames:
        raise VidEditBenchError(f"{who}: mask has {m.shape[0]} frames, the video has {video.num_frames}")
    return m


def feather_alpha(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Float alpha in [0, 1] from a (H,W) bool mask, Gaussian-blurred by `sigma` px (0 = hard edge)."""
    a = mask.astype(np.float32)
    if sigma > 0:
        import cv2

        a = cv2.GaussianBlur(a, (0, 0), sigmaX=float(sigma))
    return a


class ReferenceColorTransfer(Method):
    name = "color-transfer"
    description = "Reinhard colour-statistics transfer (CIELAB) from the reference into the masked region, one transform for all frames"
    tasks = frozenset({"image"})
    needs = frozenset({"reference"})
    defaults = {"strength": 1.0, "feather": 0.0, "transfer_luminance": True}

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        super().__init__(device=device, seed=seed, **config)
        if not 0.0 <= float(self.cfg["strength"]) <= 1.0:
            raise VidEditBenchError(f"color-transfer: strength must be in [0, 1], got {self.cfg['strength']}")
        if float(self.cfg["feather"]) < 0:
            raise VidEditBenchError(f"color-transfer: feather must be >= 0 (pixels), got {self.cfg['feather']}")

    def edit(
        self,
        video: Video,
        *,
        prompt: str | None = None,
        reference: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        prepared: Any = None,
        source_prompt: str | None = None,
    ) -> np.ndarray:
        if reference is None:
            raise NotApplicable("color-transfer needs a reference image")
        ref = np.asarray(reference)
        if ref.ndim != 3 or ref.shape[-1] != 3 or ref.dtype != np.uint8:
            raise VidEditBenchError(f"color-transfer: reference must be (h, w, 3) uint8, got {ref.shape} {ref.dtype}")
        m = align_mask(mask, video, self.name)
        if m is not None and not m.any():
            raise NotApplicable("color-transfer: the mask is empty in every frame")

        frames_lab = rgb_to_lab(video.frames)
        ref_lab = rgb_to_lab(ref).reshape(-1, 3).astype(np.float64)
        region = frames_lab[m] if m is not None else frames_lab.reshape(-1, 3)
        region = region.astype(np.float64)
        mu_s, sd_s = region.mean(axis=0), region.std(axis=0)
        mu_r, sd_r = ref_lab.mean(axis=0), ref_lab.std(axis=0)
        scale = np.where(sd_s > 1e-6, sd_r / np.maximum(sd_s, 1e-6), 1.0)
        if not self.cfg["transfer_luminance"]:  # keep the source's lightness, move only a*, b*
            scale[0], mu_r = 1.0, np.array([mu_s[0], mu_r[1], mu_r[2]])
        out_lab = (frames_lab - mu_s.astype(np.float32)) * scale.astype(np.float32) + mu_r.astype(np.float32)
        recoloured = lab_to_rgb(out_lab)

        strength = float(self.cfg["strength"])
        sigma = float(self.cfg["feather"])
        src = video.frames.astype(np.float32)
        out = np.empty_like(video.frames)
        for t in range(video.num_frames):
            alpha = feather_alpha(m[t], sigma) if m is not None else np.ones(video.size, np.float32)
            alpha = (alpha * strength)[..., None]
            out[t] = np.clip(np.rint(alpha * recoloured[t] + (1 - alpha) * src[t]), 0, 255).astype(np.uint8)
        return out
