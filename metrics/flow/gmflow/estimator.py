"""`gmflow`: V2VBench's GMFlow run by our own network (`metrics.flow.gmflow.model`), not ptlflow's.

Same weights (`gmflow-sintel`, or V2VBench's original `.pth` through $VIDEDITBENCH_WEIGHT_GMFLOW_SINTEL), same
input convention as `gmflow` (original normalisation, replicate padding to a multiple of 32 split between both
sides, frames under 32 px edge-padded bottom/right first), so the flows are the same; the process imports
neither ptlflow nor lightning/torchmetrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metrics.flow.ptlflow_models import GMFlowEstimator


class GMFlowNativeEstimator(GMFlowEstimator):
    """The `gmflow` backend. Its variant is the one `gmflow` had when ptlflow ran the network: the
    weights, inputs and flows are the same (tests/test_gmflow_native.py), so stored scores stay valid."""

    name = "gmflow"

    def _load_model(self) -> Any:
        from bench.models import create_model
        from metrics.flow.gmflow import load_gmflow

        return create_model(self.weights, load_gmflow, self.device, precision=self.precision)

    def _batch_flows(self, a: np.ndarray, b: np.ndarray) -> Any:
        dtype = next(self.model.parameters()).dtype
        return self.model(self._normalised_rgb(a).to(dtype), self._normalised_rgb(b).to(dtype))

