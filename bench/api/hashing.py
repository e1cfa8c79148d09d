"""Content-hash keys: the same (sample, method config) or (edit, metric variant) always gives the same key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def stable_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def hash_obj(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(stable_json(obj).encode()).hexdigest()[:n]


def hash_array(a: np.ndarray | None, n: int = 16) -> str:
    if a is None:
        return ""
    h = hashlib.sha256()
    arr = np.ascontiguousarray(a)
    h.update(str(arr.shape).encode() + str(arr.dtype).encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:n]
