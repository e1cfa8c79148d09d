"""What the plan, the units and the runner share: failure text, an edit's output check, missing weights,
seeding and freeing memory. It imports only the interfaces and weights rooms, so the plan and the units
stand on it instead of on the runner that drives them.
"""

from __future__ import annotations

import gc
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench.api.errors import MethodOutputError, VidEditBenchError
from bench.api.types import Video


def missing_weights_message(names: list[str]) -> str | None:
    """None when every registry weight is present, else what is missing and the command that fixes it.

    Local paths and unknown names are left to the method's or metric's setup(), which says precisely."""
    from bench.weights import get_spec, locate

    missing = []
    for w in names:
        try:
            if locate(w) is None:
                missing.append(get_spec(w))
        except VidEditBenchError:
            pass
    if not missing:
        return None
    return "; ".join(f"weights '{m.name}' ({m.source}) missing; run: {m.fix_command}" for m in missing)


def validate_output(out: Any, source: Video, method: str) -> np.ndarray:
    """Check an edit's frames against its source: count, size, dtype, finiteness."""
    frames = out.frames if isinstance(out, Video) else out
    if frames is None:
        raise MethodOutputError(f"method '{method}' returned None instead of frames")
    try:
        frames = np.asarray(frames)
    except Exception as e:  # noqa: BLE001
        raise MethodOutputError(f"method '{method}' returned something that is not an array ({type(out).__name__}): {e}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise MethodOutputError(f"method '{method}' returned frames of shape {frames.shape}; expected (T, H, W, 3)")
    if frames.shape[0] != source.num_frames:
        raise MethodOutputError(
            f"method '{method}' returned {frames.shape[0]} frames; the source has {source.num_frames}"
        )
    if frames.shape[1:3] != source.frames.shape[1:3]:
        raise MethodOutputError(
            f"method '{method}' returned frames of size {frames.shape[2]}x{frames.shape[1]}; "
            f"the source is {source.width}x{source.height}"
        )
    if frames.dtype != np.uint8:
        if not np.issubdtype(frames.dtype, np.number):
            raise MethodOutputError(f"method '{method}' returned frames of dtype {frames.dtype}; expected uint8")
        if not np.all(np.isfinite(frames)):
            raise MethodOutputError(f"method '{method}' returned frames containing NaN or infinite values")
        lo, hi = float(frames.min()), float(frames.max())
        if lo < 0.0 or hi > 1.0:
            raise MethodOutputError(
                f"method '{method}' returned {frames.dtype} frames in [{lo:.3g}, {hi:.3g}]; return uint8 in [0, 255] "
                "or floats in [0, 1]"
            )
        frames = np.round(frames * 255.0).astype(np.uint8)
    return frames


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, MemoryError):
        return True
    return type(e).__name__ in ("OutOfMemoryError",) or "out of memory" in str(e).lower()


def describe_exception(e: BaseException) -> str:
    """One line (or a capped block) for an error row and the console; secrets masked."""
    from bench.api.redaction import clip_text, redact

    return clip_text(redact(_describe(e)))


def _describe(e: BaseException) -> str:
    if _is_oom(e):
        return f"out of memory: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    if isinstance(e, VidEditBenchError):
        return str(e)
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {msg}{where}"


def _free_memory() -> None:
    gc.collect()
    import sys

    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _empty_cuda_cache() -> None:
    import sys

    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _seed_everything(seed: int) -> None:
    import random
    import sys

    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
