"""Records passed between suites, methods, metrics, the runner and the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

EDIT_TYPES = (
    "foreground",
    "background",
    "style",
    "composite",
    "texture_transfer",
    "object_modification",
    "subject",
    "reconstruction",
)
IMAGE_GUIDED_TYPES = ("texture_transfer", "object_modification", "subject")


@dataclass
class Video:
    """A clip as RGB frames: `frames` is uint8 with shape (T, H, W, 3)."""

    frames: np.ndarray
    fps: float = 8.0
    path: str | None = None

    def __post_init__(self) -> None:
        f = np.asarray(self.frames)
        if f.ndim != 4 or f.shape[-1] != 3:
            raise ValueError(f"Video frames must have shape (T, H, W, 3), got {f.shape}")
        if f.dtype != np.uint8:
            raise ValueError(f"Video frames must be uint8, got {f.dtype}")
        self.frames = f

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.height, self.width


@dataclass(frozen=True)
class Sample:
    """One edit task: a source video plus a target prompt and/or reference image and mask.

    Paths are as resolved by the suite loader; `task` is "text" (text-guided) or "image"
    (image-guided, IVE-Benchmark style).
    """

    suite: str
    video_id: str
    edit_id: str
    source: str
    source_prompt: str = ""
    target_prompt: str | None = None
    reference: str | None = None
    mask: str | None = None
    edit_type: str = "style"
    category: str = "other"
    task: str = "text"
    meta: tuple[tuple[str, Any], ...] = ()

    @property
    def uid(self) -> str:
        return f"{self.suite}/{self.video_id}/{self.edit_id}"

    def meta_dict(self) -> dict[str, Any]:
        return dict(self.meta)


@dataclass
class LoadedSample:
    """A sample with its preprocessed source video and aligned mask / reference / ground-truth flow."""

    sample: Sample
    video: Video
    mask: np.ndarray | None = None  # (T, H, W) bool, aligned with video frames
    reference: np.ndarray | None = None  # (h, w, 3) uint8
    flow_gt: np.ndarray | None = None  # (T-1, H, W, 2) float32, forward flow t -> t+1 in pixels (u, v)
    source_key: str = ""  # content hash of the preprocessed source frames
    boxes: np.ndarray | None = None  # (T, 4) float target boxes [x0, y0, x1, y1] in frame pixels (manifest `boxes`)


@dataclass
class Efficiency:
    """Measured by the harness around `prepare` and `edit` (not reported by the method)."""

    preprocess_s: float | None = None
    generate_s: float | None = None
    peak_memory_mb: float | None = None
    memory_device: str = "cpu"


@dataclass
class EvalItem:
    """Everything a metric may look at for one (method, sample)."""

    sample: Sample
    source: Video
    edited: Video
    prompt: str | None = None
    reference: np.ndarray | None = None
    mask: np.ndarray | None = None
    flow_gt: np.ndarray | None = None
    efficiency: Efficiency = field(default_factory=Efficiency)
    source_key: str = ""
    method: str = ""
    cache: Any = None  # bench.store.feature_cache.FeatureCache shared by all metrics of a run
    boxes: np.ndarray | None = None  # (T, 4) target boxes in frame pixels, see LoadedSample.boxes
