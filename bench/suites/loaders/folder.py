"""A plain folder of videos (files or frame folders) with a prompts file.

Layout::

    root/
      prompts.yaml | prompts.json | prompts.csv    (or pass prompts=<file>)
      clip1.mp4   clip2.gif   clip3/00.png …

The prompts file maps each video (its file name, with or without extension, or a path relative to
the root) to a source prompt and target prompts; see `bench.suites.loaders._prompts`. Videos that
the prompts file does not mention are not part of the suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.api.errors import ManifestError
from bench.suites.loaders._prompts import find_prompts, read_prompts, to_video_entries
from bench.media.video_io import VIDEO_EXTS


def _find_video(root: Path, key: str, prompts: Path, label: str) -> str:
    p = Path(key).expanduser()
    cands = [p] if p.is_absolute() else [root / p, prompts.parent / p]
    if not p.suffix:
        cands += [c.with_name(c.name + ext) for c in list(cands) for ext in VIDEO_EXTS]
    for c in cands:
        if c.exists():
            return str(c.resolve())
    raise ManifestError(str(prompts), label, "video", f"no video {key!r} in {root}",
                        f"name a file ({', '.join(VIDEO_EXTS)}) or frame folder that exists")


def to_manifest(root: Path, prompts: str | Path | None = None, name: str | None = None,
                **_: Any) -> tuple[dict, str, Path]:
    if _:
        raise ManifestError(str(root), "load_suite overrides", next(iter(_)), "unknown option for a folder suite",
                            "valid: prompts, name, num_frames, size, max_stride, resample")
    pf = find_prompts(root, prompts)
    entries = read_prompts(pf)
    videos = to_video_entries(entries, lambda e: _find_video(root, e["video"], pf, e["_label"]))
    data = {"name": name or _suite_name(root), "description": f"videos in {root} with prompts from {pf.name}",
            "videos": videos}
    return data, str(pf), root


def _suite_name(root: Path) -> str:
    from bench.suites.loaders._prompts import safe_id

    return safe_id(root.name)
