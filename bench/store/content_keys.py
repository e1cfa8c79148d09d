"""Content keys of samples: what decides an edit's and a score's numbers, so nothing stale is reused.

A sample's key covers (1) the manifest entry (portable: paths relative to the manifest), (2) the
preprocessing (num_frames, size, max_stride, resample) and (3) the bytes of every file it reads —
the source video or frame folder, the reference image and the mask files. Replacing a video at
the same path, or changing `--num-frames` / `--size` in the same run folder, therefore gives new
edit and score keys (and new edit folders) instead of reusing or mixing old results.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bench.api.hashing import hash_obj

_DIGESTS: dict[tuple, str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, or of a folder's file names and bytes (frame / mask folders).
    Memoised per (path, size, mtime, inode) within a process."""
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    stat = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns, f.stat().st_ino) for f in files)
    if stat in _DIGESTS:
        return _DIGESTS[stat]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(p).as_posix().encode() if p.is_dir() else b"")
        h.update(b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    _DIGESTS[stat] = h.hexdigest()[:24]
    return _DIGESTS[stat]


def sample_content_key(suite, sample) -> str:
    content: dict[str, str] = {}
    for field in ("source", "reference", "mask"):
        value = getattr(sample, field, None)
        if not value or str(value).startswith(("synthetic:", "box:")):
            continue
        try:
            if Path(value).exists():
                content[field] = file_digest(value)
        except OSError:
            pass  # unreadable: loading the sample reports it
    pre = suite.preprocess.as_dict() if hasattr(suite.preprocess, "as_dict") else str(suite.preprocess)
    return hash_obj({"sample": suite.sample_key(sample), "preprocess": pre, "content": content})
