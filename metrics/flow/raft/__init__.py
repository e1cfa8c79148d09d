"""RAFT in plain torch (our implementation, `model.py`); loads the official checkpoints strictly.

Accepted files: the original repository's bare state dicts (`raft-things.pth`, `raft-sintel.pth`, keys prefixed
`module.` by DataParallel), ptlflow's Lightning `{'state_dict': sd, ...}` (the registry's `raft-sintel` .ckpt:
the same keys unprefixed) or `{'model': sd}`. Importing this package imports nothing heavy; torch comes with
the loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_raft(path: Path, device: str = "cpu", precision: str = "fp32", iters: int = 32) -> Any:
    """Our RAFT with the weights of `path` (a file, or a folder holding exactly one checkpoint) running `iters`
    refinement steps: strict key and shape matching, eval mode, no gradients, on `device` in `precision`."""
    import torch

    from metrics._checkpoint import load_state_strict
    from metrics._embed import single_file
    from metrics._precision import cast_model
    from metrics.flow.ptlflow_models import flow_state_dict  # imports no ptlflow
    from metrics.flow.raft.model import RAFT

    p = single_file(path, ("*.ckpt", "*.pth", "*.pt"), "RAFT checkpoint")
    sd = flow_state_dict(p)
    model = load_state_strict(RAFT(iters=iters), sd, p, "a RAFT checkpoint (the standard model: "
                              "fnet/cnet/update_block, 256-d features, 4 levels, radius 4)", "RAFT")
    return cast_model(model, precision).to(torch.device(device))


__all__ = ["load_raft"]
