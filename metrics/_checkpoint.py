"""Loading a state dict into one of our own networks (AMT-S, GMFlow) strictly, with one clear line
naming the file when its keys or tensor shapes do not fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import VidEditBenchError


def _few(keys: list[str]) -> str:
    return f"{keys[:4]}{'…' if len(keys) > 4 else ''}"


def load_state_strict(model: Any, sd: dict[str, Any], path: Path, what: str, label: str, hint: str = "") -> Any:
    """`model` with the float32 tensors of `sd` (every key present, none extra, every shape equal),
    in eval mode without gradients. `what` names the checkpoint kind in the error ("a GMFlow
    checkpoint"), `label` the network ("GMFlow"), `hint` is appended to the key error."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    if missing or unexpected:
        raise VidEditBenchError(f"{path}: not {what}: missing {_few(missing)}, unexpected {_few(unexpected)}{hint}")
    bad = [k for k in own if tuple(own[k].shape) != tuple(sd[k].shape)]
    if bad:
        raise VidEditBenchError(f"{path}: tensor shapes differ from {label} at {bad[:4]} "
                                f"(e.g. {bad[0]}: {tuple(sd[bad[0]].shape)} vs {tuple(own[bad[0]].shape)})")
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    model.eval()
    for q in model.parameters():
        q.requires_grad_(False)
    return model
