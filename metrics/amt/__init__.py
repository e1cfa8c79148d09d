"""AMT-S frame interpolation (our implementation; loads the official amt-s.pth strictly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import VidEditBenchError


def load_amt_s(path: Path, device: str = "cpu") -> Any:
    """AMT-S with the weights of `path` (`{'state_dict': sd}` as the official amt-s.pth, or a bare state
    dict), strict key and shape matching, eval mode, float32."""
    import torch

    from metrics.amt.model import AMTS

    from metrics._checkpoint import load_state_strict
    from metrics._embed import single_file

    p = single_file(path, ("*.pth", "*.pt", "*.ckpt"), "AMT-S checkpoint")
    try:
        ckpt = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - one clear line for any unreadable file
        raise VidEditBenchError(f"cannot read AMT-S checkpoint {p}: {e}") from e
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict):
        raise VidEditBenchError(f"{p}: expected {{'state_dict': ...}} (the official amt-s.pth), got {type(ckpt).__name__}")
    model = load_state_strict(AMTS(), sd, p, "an AMT-S checkpoint", "AMT-S",
                              " (AMT-L/G checkpoints do not fit AMT-S)")
    return model.to(device)


__all__ = ["load_amt_s"]
