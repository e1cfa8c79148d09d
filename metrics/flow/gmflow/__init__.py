"""GMFlow in plain torch (our implementation, `model.py`); loads the official checkpoints strictly.

Accepted files: the original repository's `{'model': sd}` (V2VBench's `gmflow_sintel-0c07dcb3.pth`),
ptlflow's Lightning `{'state_dict': sd, ...}` (the registry's `gmflow-sintel` .ckpt: the same keys) or a
bare state dict. Importing this package imports nothing heavy; torch comes with the loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_gmflow(path: Path, device: str = "cpu", precision: str = "fp32") -> Any:
    """Our GMFlow with the weights of `path` (a file, or a folder holding exactly one checkpoint): strict key
    and shape matching, eval mode, no gradients, on `device` in `precision`."""
    import torch

    from metrics._checkpoint import load_state_strict
    from metrics._embed import single_file
    from metrics._precision import cast_model
    from metrics.flow.gmflow.model import GMFlow
    from metrics.flow.ptlflow_models import flow_state_dict  # imports no ptlflow

    p = single_file(path, ("*.ckpt", "*.pth", "*.pt"), "GMFlow checkpoint")
    sd = flow_state_dict(p)
    model = load_state_strict(GMFlow(), sd, p, "a GMFlow checkpoint of V2VBench's configuration "
                              "(1 scale, 6 blocks, 128 channels)", "GMFlow")
    return cast_model(model, precision).to(torch.device(device))


__all__ = ["load_gmflow"]
