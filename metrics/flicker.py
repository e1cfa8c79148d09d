"""VBench "temporal flickering" (weight-free).

VBench: mean absolute difference between consecutive frames, pixel values in [0, 255], averaged
over all pixels and channels of a pair and then over the pairs of the video; score =
(255 - MAE) / 255, so a static video scores 1.0 and higher is better. (VBench additionally
restricts its prompt set to static scenes; here the metric is applied to whatever edit it is
given, so camera or object motion lowers the score as well as flicker does.)
"""

from __future__ import annotations

import numpy as np

from bench.errors import NotApplicable
from bench.metric import Metric
from bench.types import EvalItem


def mean_consecutive_mae(frames: np.ndarray) -> float:
    """Mean over consecutive pairs of the per-pair mean |f[t+1] - f[t]| (uint8 values, 0..255)."""
    frames = np.asarray(frames)
    if frames.shape[0] < 2:
        raise ValueError("need at least two frames")
    maes = [
        float(np.abs(frames[t + 1].astype(np.int16) - frames[t].astype(np.int16)).mean())
        for t in range(frames.shape[0] - 1)
    ]
    return float(np.mean(maes))


def flickering_score(frames: np.ndarray) -> float:
    return (255.0 - mean_consecutive_mae(frames)) / 255.0


class TemporalFlickering(Metric):
    name = "temporal_flickering"
    description = "VBench temporal flickering: (255 - mean |consecutive frame difference|) / 255"
    higher_is_better = True
    value_range = (0.0, 1.0)
    needs = frozenset()

    def compute(self, item: EvalItem) -> dict[str, float]:
        frames = item.edited.frames
        if frames.shape[0] < 2:
            raise NotApplicable(f"{self.name} needs at least 2 frames, {item.sample.uid} has {frames.shape[0]}")
        return {self.name: flickering_score(frames)}
