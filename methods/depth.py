"""Monocular depth for structure conditioning (the `prepare` step of the depth-guided methods).

A transformers DPT depth model (default weights `dpt-hybrid-midas`, the MiDaS v3 DPT-Hybrid that
ControlNet v1.1 depth and V2VBench use) is loaded through `bench.models.create_model`, so a registry
name or a local folder (`config.json` + weights + `preprocessor_config.json`) both work. Frames go
through the model's own image processor; the predicted (relative, inverse) depth is resized back to
the frame size with bicubic interpolation and min-max normalised per frame to [0, 1], then repeated
to three channels — the control image of the diffusers ControlNet depth examples.

The result is a plain float32 numpy array, so the harness can cache it per source video.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEPTH_WEIGHTS = "dpt-hybrid-midas"


@dataclass
class DepthModel:
    model: Any  # transformers *ForDepthEstimation
    processor: Any  # its image processor


def load_depth_model(path: Path, device: str) -> DepthModel:
    """Loader for `create_model`: a DPT (or any AutoModelForDepthEstimation) folder in the hub layout."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    from bench.errors import VidEditBenchError

    path = Path(path)
    if not (path / "config.json").is_file():
        raise VidEditBenchError(f"{path}: not a depth-model folder (no config.json); point the depth_model option "
                                f"at a transformers depth model saved with save_pretrained, or run: "
                                f"videditbench weights download {DEPTH_WEIGHTS}")
    if not (path / "preprocessor_config.json").is_file():
        raise VidEditBenchError(f"{path}: preprocessor_config.json is missing (the DPT image processor); "
                                f"re-download with: videditbench weights download {DEPTH_WEIGHTS}")
    processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True)
    # float32 everywhere: the maps are computed once per video and fp16 would change them per device
    model = model.to(device=device, dtype=torch.float32).eval()
    return DepthModel(model=model, processor=processor)


def normalize_depth(depth: np.ndarray) -> np.ndarray:
    """Per-frame min-max to [0, 1]; (T, H, W) float -> (T, H, W, 3) float32. A flat map becomes zeros."""
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim != 3:
        raise ValueError(f"depth must have shape (T, H, W), got {d.shape}")
    lo = d.min(axis=(1, 2), keepdims=True)
    span = d.max(axis=(1, 2), keepdims=True) - lo
    out = np.where(span > 0, (d - lo) / np.where(span > 0, span, 1.0), 0.0)
    return np.repeat(np.clip(out, 0.0, 1.0).astype(np.float32)[..., None], 3, axis=-1)


class DepthEstimator:
    """`DepthEstimator(weights, device)(frames)` -> (T, H, W, 3) float32 depth control images in [0, 1]."""

    def __init__(self, weights: str | os.PathLike = DEPTH_WEIGHTS, device: str = "cpu", batch_size: int = 8):
        self.weights = weights
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self._bundle: DepthModel | None = None

    def load(self) -> DepthModel:
        if self._bundle is None:
            from bench.models import create_model

            self._bundle = create_model(self.weights, load_depth_model, self.device)
        return self._bundle

    def raw(self, frames: np.ndarray) -> np.ndarray:
        """Un-normalised predicted depth resized to the frame size: (T, H, W) float32."""
        import torch
        import torch.nn.functional as F

        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        bundle = self.load()
        h, w = frames.shape[1:3]
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                chunk = [f for f in frames[start:start + self.batch_size]]
                inputs = bundle.processor(images=chunk, return_tensors="pt")
                pixel_values = inputs["pixel_values"].to(device=self.device, dtype=torch.float32)
                pred = bundle.model(pixel_values=pixel_values).predicted_depth  # (B, h', w')
                pred = F.interpolate(pred.unsqueeze(1).float(), size=(h, w), mode="bicubic", align_corners=False)
                out.append(pred[:, 0].cpu().numpy().astype(np.float32))
        return np.concatenate(out, axis=0)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return normalize_depth(self.raw(frames))


def estimate_depth(frames: np.ndarray, weights: str | os.PathLike = DEPTH_WEIGHTS, device: str = "cpu",
                   batch_size: int = 8) -> np.ndarray:
    """Depth control images (T, H, W, 3) float32 in [0, 1] for uint8 frames (T, H, W, 3)."""
    return DepthEstimator(weights, device, batch_size)(frames)


def resize_controls(controls: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, H, W, C) float control images -> (T, height, width, C), bilinear (no-op at the same size)."""
    import torch
    import torch.nn.functional as F

    controls = np.asarray(controls, dtype=np.float32)
    if controls.shape[1:3] == (height, width):
        return controls
    t = torch.from_numpy(np.ascontiguousarray(controls)).permute(0, 3, 1, 2)
    t = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return t.permute(0, 2, 3, 1).clamp(0, 1).numpy()
