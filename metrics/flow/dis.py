"""OpenCV DIS optical flow (Kroeger et al. 2016): weight-free, CPU, for offline use."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.errors import VidEditBenchError
from metrics.flow.base import FlowModel, check_pairs

PRESETS = ("ultrafast", "fast", "medium")


class DISEstimator(FlowModel):
    """Dense Inverse Search on the grayscale frames (cv2.DISOpticalFlow, preset `medium` by default)."""

    name = "dis"
    weights = None

    def __init__(self, device: str = "cpu", batch_size: int = 4, preset: str = "medium"):
        if preset not in PRESETS:
            raise VidEditBenchError(f"unknown DIS preset '{preset}'; valid: {', '.join(PRESETS)}")
        self.preset = preset

    def _create(self):
        import cv2

        code = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[self.preset]
        return cv2.DISOpticalFlow_create(code)

    def estimate(self, frames_a: np.ndarray, frames_b: np.ndarray) -> np.ndarray:
        import cv2

        a, b = check_pairs(frames_a, frames_b)
        dis = self._create()
        out = np.empty((*a.shape[:3], 2), np.float32)
        for i in range(a.shape[0]):
            g0 = cv2.cvtColor(a[i], cv2.COLOR_RGB2GRAY)
            g1 = cv2.cvtColor(b[i], cv2.COLOR_RGB2GRAY)
            out[i] = dis.calc(g0, g1, None)
        return out

    def variant(self) -> dict[str, Any]:
        return {**super().variant(), "dis_preset": self.preset}
