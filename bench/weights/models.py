"""One place that creates models: resolves a weight name (or a local path) and loads it once per process.

`create_model(weights_name, loader, device)` is the timm-style entry point: `weights_name` is a
name in the weights registry (resolved with the env override / project cache / HF cache) or an
existing local path; `loader(path, device)` builds the model through its real library loader.
The same (weights, loader, device, options) loads once and is reused by every metric or method.

The cache is scoped: `release()` drops every cached model (the runner calls it after each method
and before the metrics, so one method's weights never sit on the GPU while the next one runs or
count towards its peak memory); `model_scope()` is the same as a context manager.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

_CACHE: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def resolve_path(weights: str | os.PathLike) -> Path:
    """A local path as-is, else resolve a registry name (raising WeightsMissing with the fix)."""
    p = Path(weights).expanduser()
    if p.exists():
        return p
    from bench.weights.files import resolve

    return resolve(str(weights))


def create_model(weights: str | os.PathLike, loader: Callable[..., Any], device: str = "cpu", **options: Any) -> Any:
    path = resolve_path(weights)
    key = (str(path), f"{getattr(loader, '__module__', '')}.{getattr(loader, '__qualname__', repr(loader))}", device,
           tuple(sorted(options.items())))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = loader(path, device, **options)
        return _CACHE[key]


def cached_models() -> int:
    """How many models the cache holds now."""
    with _LOCK:
        return len(_CACHE)


def release() -> int:
    """Drop every cached model, collect garbage and return freed CUDA blocks to the driver.

    Returns how many models were dropped. Models still referenced elsewhere (a live method object)
    are freed when that reference goes."""
    import gc
    import sys

    with _LOCK:
        n = len(_CACHE)
        _CACHE.clear()
    gc.collect()
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return n


@contextmanager
def model_scope() -> Iterator[None]:
    """Models created inside the block are released when it ends (even on error)."""
    try:
        yield
    finally:
        release()


def clear_model_cache() -> None:
    release()
