"""Export rebuilds only what changed: files are written only when their bytes differ, and plots and
previews carry a content key of their inputs (an SVG or GIF comment) so an unchanged one is
neither drawn nor encoded again. VIDEDITBENCH_INCREMENTAL_EXPORT=0 restores the old path (every
table, plot and guidance preview rewritten on every export) for benchmarks.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

KEY_FIELD = "videditbench-inputs"


def enabled() -> bool:
    return os.environ.get("VIDEDITBENCH_INCREMENTAL_EXPORT") != "0"


def _feed(h: Any, obj: Any) -> None:
    import numpy as np
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        h.update(b"df")
        h.update(repr((list(obj.columns), list(map(str, obj.dtypes)), obj.index.names)).encode())
        h.update(obj.to_csv().encode())  # exact: floats are written with repr precision
    elif isinstance(obj, pd.Series):
        _feed(h, obj.to_frame())
    elif isinstance(obj, np.ndarray):
        h.update(repr((obj.shape, str(obj.dtype))).encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (list, tuple)):
        h.update(f"seq{len(obj)}".encode())
        for x in obj:
            _feed(h, x)
    elif isinstance(obj, dict):
        h.update(f"map{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
    elif isinstance(obj, (set, frozenset)):
        _feed(h, sorted(obj, key=repr))
    else:
        h.update(repr(obj).encode())
    h.update(b"\x00")


def digest(*parts: Any) -> str:
    """A content key of data frames, arrays and plain values (order-sensitive except for sets/dicts)."""
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        _feed(h, p)
    return h.hexdigest()


def files_digest(path: str | os.PathLike) -> str:
    """A content key of a file, or of a folder's files (names and bytes), without decoding anything."""
    p = Path(path)
    h = hashlib.blake2b(digest_size=16)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(f.name.encode() + b"\x00")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def stored_key(path: str | os.PathLike) -> str | None:
    """The input key a plot (SVG comment), PNG (text chunk) or GIF (comment) was written with, or None."""
    p = Path(path)
    if not p.is_file():
        return None
    if p.suffix.lower() == ".svg":
        with open(p, "rb") as fh:
            m = re.search(rb"<!-- " + KEY_FIELD.encode() + rb": ([0-9a-f]+) -->", fh.read(512))
        return m.group(1).decode() if m else None
    try:
        from PIL import Image

        with Image.open(p) as im:
            value = im.info.get(KEY_FIELD) if p.suffix.lower() == ".png" else im.info.get("comment")
    except Exception:  # noqa: BLE001  (a broken file is simply rebuilt)
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value or None


def up_to_date(path: str | os.PathLike, key: str) -> bool:
    return enabled() and stored_key(path) == key


def write_if_changed(path: str | os.PathLike, data: str | bytes) -> bool:
    """Atomically write data unless the file already holds exactly these bytes; True if written."""
    p = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if enabled() and p.is_file() and p.stat().st_size == len(raw) and p.read_bytes() == raw:
        return False
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(raw)
    tmp.replace(p)
    return True
