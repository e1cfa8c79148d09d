"""V2VBench "Motion Alignment": how well the edited video keeps the source video's motion.

Flows between consecutive frames are estimated for the source and for the edited video (GMFlow
with Sintel weights by default, V2VBench's configuration: 1 scale, attention splits 2, global
matching); the value is minus the mean end-point error between the two flow fields, over all
pairs and pixels, in pixels: -mean_{t,y,x} ||F_edit - F_src||_2. Higher (closer to 0) is better.
Source flows are computed once per run (shared with warp_error through the FeatureCache).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.errors import NotApplicable, VidEditBenchError
from bench.metric import Metric
from bench.types import EvalItem
from metrics._precision import DEFAULT_PRECISION, PRECISIONS, PrecisionOption
from metrics.flow import BACKENDS, FlowModel, create_flow_model, flow_weight_names
from metrics.warp import source_forward_flows


def motion_alignment_score(flow_edit: np.ndarray, flow_src: np.ndarray) -> float:
    """-mean over pairs and pixels of the L2 norm of (flow_edit - flow_src); flows (N, H, W, 2)."""
    fe = np.asarray(flow_edit, np.float64)
    fs = np.asarray(flow_src, np.float64)
    if fe.shape != fs.shape:
        raise VidEditBenchError(f"motion alignment: edit flows {fe.shape} and source flows {fs.shape} differ")
    return -float(np.sqrt(((fe - fs) ** 2).sum(-1)).mean())


def per_pair_epe(flow_edit: np.ndarray, flow_src: np.ndarray) -> list[float]:
    """Mean end-point error of each pair (for diagnostics)."""
    d = np.asarray(flow_edit, np.float64) - np.asarray(flow_src, np.float64)
    return [float(x) for x in np.sqrt((d ** 2).sum(-1)).reshape(d.shape[0], -1).mean(1)]


class MotionAlignment(PrecisionOption, Metric):
    name = "motion_alignment"
    description = "V2VBench motion alignment: -mean EPE between edited-video and source-video optical flow (px)"
    higher_is_better = True
    value_range = (float("-inf"), 0.0)
    unit = "px"
    needs = frozenset({"source"})
    defaults = {"flow": "gmflow", "precision": DEFAULT_PRECISION}
    choices = {"flow": tuple(BACKENDS), "precision": PRECISIONS}

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        super().__init__(device=device, batch_size=batch_size, **options)
        self._flow: FlowModel | None = None
        if self.precision != DEFAULT_PRECISION and not flow_weight_names(self.options["flow"]):
            raise VidEditBenchError(f"metric '{self.name}': precision={self.precision} applies to network flows "
                                    f"(gmflow, gmflow-ptlflow, raft, raft-ptlflow), not flow={self.options['flow']}; drop the precision option")

    def required_weights(self) -> list[str]:
        return flow_weight_names(self.options["flow"])

    def variant(self) -> dict[str, Any]:
        v = super().variant()
        v["flow_weights"] = ",".join(self.required_weights()) or "none"
        return v

    def setup(self) -> None:
        if self._flow is None:
            extra = {} if self.precision == DEFAULT_PRECISION else {"precision": self.precision}
            self._flow = create_flow_model(self.options["flow"], device=self.device, batch_size=self.batch_size,
                                           **extra)

    def compute(self, item: EvalItem) -> dict[str, float]:
        src, edited = item.source.frames, item.edited.frames
        if src.shape != edited.shape:
            raise VidEditBenchError(f"{self.name}: edited video {edited.shape} and source {src.shape} differ in size")
        if src.shape[0] < 2:
            raise NotApplicable(f"{self.name} needs at least 2 frames, {item.sample.uid} has {src.shape[0]}")
        self.setup()
        assert self._flow is not None
        flow_src = source_forward_flows(item, self._flow)
        flow_edit = self._flow.consecutive(edited)
        return {self.name: motion_alignment_score(flow_edit, flow_src)}

    def teardown(self) -> None:
        self._flow = None
