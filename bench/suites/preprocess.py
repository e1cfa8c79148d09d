"""Suite preprocessing as plain functions: temporal sampling, resize + centre crop, masks, flow.

The rules (V2VBench style: a fixed number of frames per clip, a stride chosen per video, a square
centre crop):

* **Stride.** ``stride = clamp(n_frames // num_frames, 1, max_stride)`` unless the manifest pins
  ``stride`` for the video. Long clips are thus spread over more time, but never with more than
  ``max_stride - 1`` frames skipped between two kept frames (``max_stride=None``: no cap).
* **Frame indices.** ``start, start + stride, …`` (``num_frames`` of them). A clip shorter than
  ``start + (num_frames - 1) * stride + 1`` frames is an error, never silently padded.
* **Spatial.** Resize so the SHORTEST side equals ``size`` (both sides scaled by the same factor,
  rounded to whole pixels), then crop the central ``size × size`` square. Frames are resized with
  PIL on uint8 RGB; the default filter is bicubic (PIL's bicubic is antialiased when downscaling:
  its kernel support grows with the scale factor), ``area`` is PIL's box filter.
* **Masks** go through the same indices, the same resize (nearest neighbour, so they stay binary)
  and the same crop.
* **Flow** (u, v in pixels) is resampled like an image and its components are multiplied by the
  horizontal / vertical resize factors, then cropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


RESAMPLE_FILTERS = ("bicubic", "bilinear", "area", "lanczos", "nearest")


@dataclass(frozen=True)
class PreprocessConfig:
    num_frames: int = 24
    size: int = 512
    max_stride: int | None = 4
    resample: str = "bicubic"

    def as_dict(self) -> dict:
        return {"num_frames": self.num_frames, "size": self.size, "max_stride": self.max_stride, "resample": self.resample}


def choose_stride(n_frames: int, num_frames: int, max_stride: int | None = None, start: int = 0) -> int:
    """The per-video stride: as wide as the clip allows (`(n - start) // num_frames`), at least 1,
    at most `max_stride`."""
    available = max(0, n_frames - start)
    stride = max(1, available // max(1, num_frames))
    if max_stride is not None:
        stride = min(stride, max(1, int(max_stride)))
    return stride


def frame_indices(n_frames: int, num_frames: int, stride: int, start: int = 0) -> list[int]:
    """`num_frames` indices `start + i * stride`; ValueError if the clip is too short."""
    idx = [start + i * stride for i in range(num_frames)]
    if start < 0 or not idx or idx[-1] >= n_frames:
        need = start + (num_frames - 1) * stride + 1
        raise ValueError(
            f"clip has {n_frames} frames but {num_frames} frames at stride {stride} from frame {start} need {need}"
        )
    return idx


def resize_geometry(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """(new_h, new_w, top, left): the shortest side scaled to `size`, then a centred `size` square."""
    scale = size / min(height, width)
    new_h = max(size, int(round(height * scale)))
    new_w = max(size, int(round(width * scale)))
    return new_h, new_w, (new_h - size) // 2, (new_w - size) // 2


def _pil_filter(name: str) -> int:
    from PIL import Image

    filters = {
        "bicubic": Image.Resampling.BICUBIC,
        "bilinear": Image.Resampling.BILINEAR,
        "area": Image.Resampling.BOX,
        "lanczos": Image.Resampling.LANCZOS,
        "nearest": Image.Resampling.NEAREST,
    }
    if name not in filters:
        raise ValueError(f"unknown resample filter {name!r}; valid: {', '.join(filters)}")
    return filters[name]


def resize_crop_frames(frames: np.ndarray, size: int, resample: str = "bicubic") -> np.ndarray:
    """(T,H,W,3) uint8 -> (T,size,size,3) uint8: shortest side to `size`, centre crop."""
    from PIL import Image

    t, h, w = frames.shape[:3]
    new_h, new_w, top, left = resize_geometry(h, w, size)
    if (new_h, new_w) == (h, w):
        return np.ascontiguousarray(frames[:, top : top + size, left : left + size])
    filt = _pil_filter(resample)
    out = np.empty((t, size, size, 3), dtype=np.uint8)
    for i in range(t):
        im = Image.fromarray(np.ascontiguousarray(frames[i])).resize((new_w, new_h), filt)
        out[i] = np.asarray(im)[top : top + size, left : left + size]
    return out


def resize_crop_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """(T,H,W) bool -> (T,size,size) bool with nearest-neighbour resizing and the frames' crop."""
    from PIL import Image

    t, h, w = masks.shape
    new_h, new_w, top, left = resize_geometry(h, w, size)
    if (new_h, new_w) == (h, w):
        return np.ascontiguousarray(masks[:, top : top + size, left : left + size]).astype(bool)
    out = np.empty((t, size, size), dtype=bool)
    for i in range(t):
        im = Image.fromarray(masks[i].astype(np.uint8) * 255).resize((new_w, new_h), Image.Resampling.NEAREST)
        out[i] = np.asarray(im)[top : top + size, left : left + size] > 127
    return out


def resize_crop_boxes(boxes: np.ndarray, height: int, width: int, size: int) -> np.ndarray:
    """(T,4) boxes [x0, y0, x1, y1] in pixels of a (height, width) frame -> the same boxes in the
    frames' resize + centre crop (exact scaling, clipped to the crop; a box outside it becomes empty)."""
    new_h, new_w, top, left = resize_geometry(height, width, size)
    b = np.asarray(boxes, dtype=np.float64).copy()
    b[:, [0, 2]] = b[:, [0, 2]] * (new_w / width) - left
    b[:, [1, 3]] = b[:, [1, 3]] * (new_h / height) - top
    return np.clip(b, 0.0, float(size))


def resize_crop_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """(T,H,W,2) float flow in pixels -> (T,size,size,2): resampled bilinearly, (u, v) scaled by the
    horizontal / vertical resize factors, then cropped like the frames."""
    from PIL import Image

    t, h, w = flow.shape[:3]
    new_h, new_w, top, left = resize_geometry(h, w, size)
    sx, sy = new_w / w, new_h / h
    out = np.empty((t, size, size, 2), dtype=np.float32)
    for i in range(t):
        for c, s in ((0, sx), (1, sy)):
            ch = np.ascontiguousarray(flow[i, :, :, c], dtype=np.float32)
            if (new_h, new_w) != (h, w):
                ch = np.asarray(Image.fromarray(ch, mode="F").resize((new_w, new_h), Image.Resampling.BILINEAR))
            out[i, :, :, c] = ch[top : top + size, left : left + size] * s
    return out


def mask_bounding_boxes(masks: np.ndarray) -> np.ndarray:
    """Per frame, the smallest axis-aligned rectangle covering the mask (IVE-Benchmark's coarse
    masks); an empty frame stays empty."""
    out = np.zeros_like(masks, dtype=bool)
    for i, m in enumerate(masks):
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        if rows.size and cols.size:
            out[i, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = True
    return out


def box_mask(height: int, width: int, box: tuple[float, float, float, float], num_frames: int) -> np.ndarray:
    """A static rectangle [x0, y0, x1, y1) in pixel coordinates as a (T,H,W) bool mask."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    m = np.zeros((height, width), dtype=bool)
    m[max(0, y0) : max(0, min(height, y1)), max(0, x0) : max(0, min(width, x1))] = True
    return np.broadcast_to(m, (num_frames, height, width)).copy()
