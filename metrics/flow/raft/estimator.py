"""`raft`: RAFT (raft-sintel, 32 iterations) run by our own network (`metrics.flow.raft.model`), not ptlflow's.

Same weights and the same input convention as ptlflow's RAFT (now `raft-ptlflow`): uint8 RGB as (x/255 - 0.5)·2,
replicate padding to a multiple of 8 split between both sides, frames under 128 px edge-padded bottom/right
first, so the flows are the same; the process imports neither ptlflow nor lightning/torchmetrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metrics.flow.ptlflow_models import RAFTEstimator


def raft_inputs(frames: np.ndarray, device: str, dtype: Any) -> Any:
    """uint8 RGB (N,H,W,3) -> RAFT's [-1, 1] input (N,3,H,W) RGB, computed in ptlflow's order (x/255 in float32,
    cast to the model's dtype, then (x - 0.5)·2), so both backends feed the network the same tensor."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()
    return ((x / 255.0).to(dtype) - 0.5) * 2.0


class RAFTNativeEstimator(RAFTEstimator):
    """The `raft` backend. Its variant is the one `raft` had when ptlflow ran the network: the weights, inputs
    and flows are the same (tests/test_raft_own.py), so stored scores stay valid."""

    name = "raft"

    def _load_model(self) -> Any:
        from bench.models import create_model
        from metrics.flow.raft import load_raft

        return create_model(self.weights, load_raft, self.device, precision=self.precision, iters=32)

    def _batch_flows(self, a: np.ndarray, b: np.ndarray) -> Any:
        dtype = next(self.model.parameters()).dtype
        return self.model(raft_inputs(a, self.device, dtype), raft_inputs(b, self.device, dtype))
