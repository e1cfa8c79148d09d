"""The common interface of optical-flow estimators used by the flow-based metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from bench.errors import VidEditBenchError


def check_pairs(frames_a: np.ndarray, frames_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate two aligned batches of uint8 RGB frames, each (N, H, W, 3); return them as arrays."""
    a = np.asarray(frames_a)
    b = np.asarray(frames_b)
    if a.ndim == 3:
        a = a[None]
    if b.ndim == 3:
        b = b[None]
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
        raise VidEditBenchError(
            f"flow estimation needs two aligned batches of RGB frames (N,H,W,3); got {a.shape} and {b.shape}"
        )
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise VidEditBenchError(f"flow estimation needs uint8 frames, got {a.dtype} and {b.dtype}")
    return a, b


class FlowModel(ABC):
    """`estimate(frames_a, frames_b)` -> (N, H, W, 2) float32 flow from a to b in pixels.

    Channel 0 is u (along x, columns), channel 1 is v (along y, rows): pixel (y, x) of frame a
    moves to (y + v, x + u) in frame b.
    """

    name: ClassVar[str] = ""
    #: weights registry name (None for weight-free estimators)
    weights: str | None = None

    @abstractmethod
    def estimate(self, frames_a: np.ndarray, frames_b: np.ndarray) -> np.ndarray:
        """Flow from each frame of `frames_a` to the frame at the same index of `frames_b`."""

    def consecutive(self, frames: np.ndarray) -> np.ndarray:
        """Forward flows t -> t+1 of a clip (T, H, W, 3): (T-1, H, W, 2)."""
        frames = np.asarray(frames)
        if frames.shape[0] < 2:
            raise VidEditBenchError(f"flow between consecutive frames needs at least 2 frames, got {frames.shape[0]}")
        return self.estimate(frames[:-1], frames[1:])

    def variant(self) -> dict[str, Any]:
        """Facts that change the flow values (stored with every metric value that uses them)."""
        return {"flow": self.name, "flow_weights": self.weights or "none"}

    def cache_tag(self) -> str:
        """A key for per-run caches: flows of the same video under the same tag are interchangeable."""
        import json

        return json.dumps(self.variant(), sort_keys=True, default=str)
