"""One place that creates models: resolves a weight name (or a local path) and loads it once per process.

`create_model(weights_name, loader, device)` is the timm-style entry point: `weights_name` is a
name in the weights registry (resolved with the env override / project cache / HF cache) or an
existing local path; `loader(path, device)` builds the model through its real library loader.
The same (weights, loader, device, options) loads once and is reused by every metric or method.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable

_CACHE: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def resolve_path(weights: str | os.PathLike) -> Path:
    """A local path as-is, else resolve a registry name (raising WeightsMissing with the fix)."""
    p = Path(weights).expanduser()
    if p.exists():
        return p
    from bench.weights import resolve

    return resolve(str(weights))


def create_model(weights: str | os.PathLike, loader: Callable[..., Any], device: str = "cpu", **options: Any) -> Any:
    path = resolve_path(weights)
    key = (str(path), f"{getattr(loader, '__module__', '')}.{getattr(loader, '__qualname__', repr(loader))}", device,
           tuple(sorted(options.items())))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = loader(path, device, **options)
        return _CACHE[key]


def clear_model_cache() -> None:
    with _LOCK:
        _CACHE.clear()
