"""Automatic, overridable device selection (`--device auto|cpu|cuda|cuda:N|mps`)."""

from __future__ import annotations

import os

from bench.api.errors import VidEditBenchError

VALID_DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def resolve_device(name: str | None = None) -> str:
    """Return a concrete torch device string. `auto` (default, or $VIDEDITBENCH_DEVICE) picks CUDA if present."""
    name = (name or os.environ.get("VIDEDITBENCH_DEVICE") or "auto").strip().lower()
    if name == "cpu":
        return "cpu"
    if name not in ("auto", "mps") and not (name == "cuda" or name.startswith("cuda:")):
        raise VidEditBenchError(f"bad device '{name}'; valid choices: {', '.join(VALID_DEVICES)}")
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise VidEditBenchError("device 'mps' requested but not available; use --device cpu or auto")
        return "mps"
    if not torch.cuda.is_available():
        raise VidEditBenchError(f"device '{name}' requested but CUDA is not available; use --device cpu or auto")
    if ":" in name:
        idx = name.split(":", 1)[1]
        if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
            raise VidEditBenchError(f"device '{name}' does not exist; {torch.cuda.device_count()} CUDA device(s) present")
    return name


#: frames per model batch in metrics when --batch-size is not given: a GPU takes far larger batches
#: than a CPU gains from (on CPU, batching past ~16 frames only costs memory)
DEFAULT_BATCH_SIZES = {"cpu": 16, "cuda": 64, "mps": 16}


def resolve_batch_size(batch_size: int | None, device: str) -> int:
    """`batch_size` when given, else the default of the device's kind (cuda:N counts as cuda)."""
    if batch_size is not None:
        try:
            n = int(batch_size)
        except (TypeError, ValueError):
            n = 0
        if n < 1 or isinstance(batch_size, bool) or n != batch_size:
            raise VidEditBenchError(f"bad batch size {batch_size!r}; expected a whole number >= 1")
        return n
    kind = str(device or "cpu").split(":", 1)[0].lower()
    return DEFAULT_BATCH_SIZES.get(kind, DEFAULT_BATCH_SIZES["cpu"])
