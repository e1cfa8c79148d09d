"""Optical-flow estimators behind one interface, for the flow-based metrics.

`create_flow_model(name, device, batch_size)` returns a `FlowModel` whose
`estimate(frames_a, frames_b)` maps two aligned uint8 RGB batches (N, H, W, 3) to the flow from a
to b, (N, H, W, 2) float32 in pixels, channel 0 = u (x), channel 1 = v (y).

Backends:
* ``gmflow`` - GMFlow with V2VBench's configuration and input convention, weights ``gmflow-sintel``
  (V2VBench's motion-alignment model), run by our own plain-torch network (`metrics/flow/gmflow/`),
  which imports neither ptlflow nor lightning;
* ``gmflow-ptlflow`` - the same GMFlow, weights and inputs run by ptlflow's module (the same flows;
  kept for cross-checks);
* ``raft``   - RAFT (``raft-sintel``, 32 iterations) run by our own plain-torch network (`metrics/flow/raft/`);
* ``raft-ptlflow`` - the same RAFT, weights and inputs run by ptlflow's module (the same flows);
* ``dis``    - OpenCV DIS, weight-free.
Nothing heavy is imported until a backend is created.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.errors import UnknownNameError
from metrics.flow.base import FlowModel, check_pairs

BACKENDS: dict[str, str] = {
    "gmflow": "metrics.flow.gmflow.estimator:GMFlowNativeEstimator",
    "gmflow-ptlflow": "metrics.flow.ptlflow_models:GMFlowEstimator",
    "raft": "metrics.flow.raft.estimator:RAFTNativeEstimator",
    "raft-ptlflow": "metrics.flow.ptlflow_models:RAFTEstimator",
    "dis": "metrics.flow.dis:DISEstimator",
}
#: weights registry name of each backend (None: weight-free)
BACKEND_WEIGHTS: dict[str, str | None] = {"gmflow": "gmflow-sintel", "gmflow-ptlflow": "gmflow-sintel",
                                          "raft": "raft-sintel", "raft-ptlflow": "raft-sintel", "dis": None}


def flow_weight_names(name: str) -> list[str]:
    """Weights registry names a backend needs (empty for weight-free ones)."""
    if name not in BACKEND_WEIGHTS:
        raise UnknownNameError("flow model", name, list(BACKENDS))
    w = BACKEND_WEIGHTS[name]
    return [w] if w else []


def flow_model_class(name: str) -> type[FlowModel]:
    if name not in BACKENDS:
        raise UnknownNameError("flow model", name, list(BACKENDS))
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def create_flow_model(name: str, device: str = "cpu", batch_size: int = 4, **options: Any) -> FlowModel:
    """Instantiate backend `name` (loading its weights; raises WeightsMissing when absent)."""
    return flow_model_class(name)(device=device, batch_size=batch_size, **options)


__all__ = ["BACKENDS", "BACKEND_WEIGHTS", "FlowModel", "check_pairs", "create_flow_model", "flow_model_class",
           "flow_weight_names"]
