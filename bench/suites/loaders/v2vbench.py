"""V2VBench layout (also the Hugging Face dataset ``Wenhao-Sun/V2VBench``)::

    root/config.yaml          data: [{video_id, edit: [{prompt}, …]}, …]
    root/frames/<video_id>/00.png … 23.png

Per video the optional keys ``prompt`` / ``source_prompt`` (source prompt) and ``category`` are
used; per edit ``type`` / ``edit_type`` when it is one of bench.api.types.EDIT_TYPES (otherwise the
edit is labelled ``composite``, a free-form edit). Edit ids are the edit's index, as in V2VBench's
own ``<edit_dir>/<video_id>/<edit_idx>`` output layout. Other keys are ignored. A video may also be
``videos/<video_id>.mp4`` instead of a frame folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.api.errors import ManifestError
from bench.api.types import EDIT_TYPES
from bench.media.video_io import VIDEO_EXTS

HF_REPO = "Wenhao-Sun/V2VBench"


def hf_snapshot(repo_id: str = HF_REPO) -> str:
    """The local snapshot of the dataset in the Hugging Face cache; never downloads."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, repo_type="dataset", local_files_only=True)
    except Exception as e:  # noqa: BLE001 — LocalEntryNotFoundError, offline errors, bad ids
        raise ManifestError(
            f"hf:{repo_id}", None, None, f"dataset not in the local Hugging Face cache ({type(e).__name__})",
            f"huggingface-cli download --repo-type dataset {repo_id}  (or pass the folder path)",
        ) from None


def _source(root: Path, vid: str) -> str | None:
    cands = [root / "frames" / vid] + [root / "videos" / f"{vid}{ext}" for ext in VIDEO_EXTS]
    cands += [root / f"{vid}{ext}" for ext in VIDEO_EXTS]
    return next((str(c.resolve()) for c in cands if c.exists()), None)


def to_manifest(root: Path, name: str | None = None, **_: Any) -> tuple[dict, str, Path]:
    if _:
        raise ManifestError(str(root), "load_suite overrides", next(iter(_)), "unknown option for a V2VBench suite",
                            "valid: name, num_frames, size, max_stride, resample")
    root = Path(root)
    cfg = root / "config.yaml"
    from bench.suites.manifest import read_manifest_file

    data = read_manifest_file(cfg)
    items = data.get("data")
    if not isinstance(items, list) or not items:
        raise ManifestError(str(cfg), None, "data", "missing or empty list", "data: [{video_id: ..., edit: [{prompt: ...}]}]")
    videos = []
    for i, item in enumerate(items):
        label = f"data[{i}]"
        if not isinstance(item, dict):
            raise ManifestError(str(cfg), label, None, f"expected a mapping, got {type(item).__name__}")
        vid = item.get("video_id")
        if vid is None:
            raise ManifestError(str(cfg), label, "video_id", "missing required field")
        vid = str(vid)
        label = f"data[{i}] (video_id={vid})"
        src = _source(root, vid)
        if src is None:
            raise ManifestError(str(cfg), label, "video_id", f"no frames/{vid}/ (or videos/{vid}.mp4) under {root}",
                                "download the frames too, not only config.yaml")
        edits_in = item.get("edit")
        if not isinstance(edits_in, list) or not edits_in:
            raise ManifestError(str(cfg), label, "edit", "missing or empty list", "edit: [{prompt: ...}]")
        edits = []
        for j, e in enumerate(edits_in):
            if not isinstance(e, dict) or not isinstance(e.get("prompt"), str) or not e["prompt"].strip():
                raise ManifestError(str(cfg), f"{label} edit[{j}]", "prompt", "missing or not a string",
                                    "each edit needs 'prompt: <target prompt>'")
            et = e.get("edit_type", e.get("type"))
            edits.append({"id": str(j), "edit_type": et if et in EDIT_TYPES else "composite",
                          "target_prompt": e["prompt"].strip()})
        v: dict[str, Any] = {"id": vid, "source": src,
                             "source_prompt": str(item.get("source_prompt", item.get("prompt", "")) or ""),
                             "edits": edits}
        if isinstance(item.get("category"), str):
            v["category"] = item["category"]
        videos.append(v)
    out = {"name": name or "v2vbench", "description": f"V2VBench layout at {root}",
           "preprocess": {"num_frames": 24, "size": 512}, "videos": videos}
    return out, str(cfg), root
