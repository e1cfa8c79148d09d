"""DAVIS layout: ``JPEGImages/<res>/<seq>/00000.jpg`` and ``Annotations/<res>/<seq>/00000.png``
(palette PNGs; label k = object k), plus a prompts file (see `bench.suites.loaders._prompts`)
that names the sequences to use. The sequence's annotations become its fine masks (all objects,
or `mask_object: k` for one), so edits may use ``mask_type: fine`` or ``box``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.api.errors import ManifestError
from bench.suites.loaders._prompts import find_prompts, read_prompts, to_video_entries


def to_manifest(root: Path, prompts: str | Path | None = None, name: str | None = None,
                resolution: str = "480p", **_: Any) -> tuple[dict, str, Path]:
    if _:
        raise ManifestError(str(root), "load_suite overrides", next(iter(_)), "unknown option for a DAVIS suite",
                            "valid: prompts, name, resolution, num_frames, size, max_stride, resample")
    images = root / "JPEGImages" / resolution
    if not images.is_dir():
        raise ManifestError(str(root), None, None, f"not a DAVIS folder: {images} is missing",
                            "point at the folder that holds JPEGImages/ and Annotations/")
    annotations = root / "Annotations" / resolution
    pf = find_prompts(root, prompts)
    entries = read_prompts(pf)

    def source(e: dict[str, Any]) -> str:
        seq = images / e["video"]
        if not seq.is_dir():
            have = ", ".join(sorted(p.name for p in images.iterdir() if p.is_dir())[:12])
            raise ManifestError(str(pf), e["_label"], "video", f"no DAVIS sequence {e['video']!r} in {images}",
                                f"sequences: {have}")
        return str(seq.resolve())

    for e in entries:
        ann = annotations / e["video"]
        if "masks" not in e and ann.is_dir():
            e["masks"] = str(ann.resolve())
        e.setdefault("id", e["video"])
    videos = to_video_entries(entries, source)
    data = {"name": name or "davis", "description": f"DAVIS {resolution} sequences from {root}", "videos": videos}
    return data, str(pf), root
