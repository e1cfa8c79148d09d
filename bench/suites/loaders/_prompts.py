"""Prompts files shared by the folder and DAVIS loaders (YAML, JSON or CSV).

YAML / JSON: a mapping ``{<video>: entry}`` or a list of entries with a ``video`` key, where an
entry is::

    source_prompt: a man rides a bike
    category: sports                   # optional
    target_prompts:                    # a list of prompts, or {edit_type: prompt}
      style: a man rides a bike, watercolor painting
      background: a man rides a bike on the moon
    edits: [...]                       # or full manifest edits (edit_type, target_prompt, reference, ...)

or, shorter, ``clip.mp4: [<target prompt>, ...]`` (no source prompt).
    # optional, as in a manifest video: masks, mask_object, box, stride, max_stride, start

CSV: one row per edit with columns ``video, source_prompt, target_prompt`` and optionally
``edit_type, category, edit_id, reference, mask_type``.

Prompts given without an edit type are labelled ``composite`` (a free-form edit). Paths
(reference, masks) are relative to the prompts file.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from bench.api.errors import ManifestError
from bench.api.types import EDIT_TYPES

PROMPT_FILES = ("prompts.yaml", "prompts.yml", "prompts.json", "prompts.csv")
VIDEO_PASSTHROUGH = ("masks", "mask_object", "box", "stride", "max_stride", "start", "fps")
ENTRY_KEYS = ("video", "id", "source_prompt", "category", "target_prompts", "edits") + VIDEO_PASSTHROUGH
DEFAULT_EDIT_TYPE = "composite"


def safe_id(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.\-]+", "_", text).strip("_.-")
    return s or "video"


def find_prompts(root: Path, given: str | Path | None) -> Path:
    if given is not None:
        p = Path(given).expanduser()
        if not p.is_absolute() and not p.exists():
            p = root / p
        if not p.is_file():
            raise ManifestError(str(p), None, None, "prompts file not found", "check the prompts= path")
        return p.resolve()
    for n in PROMPT_FILES:
        if (root / n).is_file():
            return (root / n).resolve()
    raise ManifestError(str(root), None, "prompts", "no prompts file found",
                        f"add one of {', '.join(PROMPT_FILES)} (video -> source_prompt, target prompts) or pass prompts=<file>")


def _abs(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value:
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base / p))
    return value


def read_prompts(path: Path) -> list[dict[str, Any]]:
    """Normalised entries: {video, source_prompt, category?, edits: [manifest edit dicts], …}."""
    base = path.parent
    if path.suffix.lower() == ".csv":
        return _read_csv(path, base)
    from bench.suites.manifest import read_manifest_file

    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        try:
            data = read_manifest_file(path)
        except ManifestError as e:
            if "mapping at the top level" not in e.problem:
                raise
            data = _read_list(path)
    else:
        raise ManifestError(str(path), None, None, "unsupported prompts file type", "use .yaml, .json or .csv")
    if isinstance(data, dict):
        # shorthand: `clip.mp4: <prompt>` or `clip.mp4: [<prompt>, ...]` lists target prompts only
        data = {k: {"target_prompts": v} if isinstance(v, (str, list)) else v for k, v in data.items()}
        items = [(f"[{k!r}]", {"video": str(k), **(v if isinstance(v, dict) else {"_bad": v})}) for k, v in data.items()]
    else:
        items = [(f"[{i}]", v if isinstance(v, dict) else {"_bad": v}) for i, v in enumerate(data)]
    out = []
    for label, entry in items:
        if "_bad" in entry:
            raise ManifestError(str(path), label, None, f"expected a mapping, got {type(entry['_bad']).__name__}",
                                "write source_prompt: ... and target_prompts: ...")
        for k in entry:
            if k not in ENTRY_KEYS:
                raise ManifestError(str(path), label, str(k), "unknown key", f"valid keys: {', '.join(ENTRY_KEYS)}")
        if "video" not in entry:
            raise ManifestError(str(path), label, "video", "missing required field", "add 'video: <file or folder>'")
        edits: list[dict[str, Any]] = []
        tp = entry.get("target_prompts")
        if isinstance(tp, str):
            tp = [tp]
        if isinstance(tp, list):
            for p in tp:
                if not isinstance(p, str):
                    raise ManifestError(str(path), label, "target_prompts", f"expected strings, got {p!r}")
                edits.append({"edit_type": DEFAULT_EDIT_TYPE, "target_prompt": p})
        elif isinstance(tp, dict):
            for et, p in tp.items():
                if et not in EDIT_TYPES:
                    raise ManifestError(str(path), label, "target_prompts", f"unknown edit type {et!r}",
                                        f"valid: {', '.join(EDIT_TYPES)}")
                edits.append({"id": et, "edit_type": et, "target_prompt": p})
        elif tp is not None:
            raise ManifestError(str(path), label, "target_prompts", f"expected a list or mapping, got {tp!r}")
        for e in entry.get("edits") or []:
            if isinstance(e, dict):
                e = dict(e)
                for k in ("reference", "masks"):
                    if k in e:
                        e[k] = _abs(e[k], base)
            edits.append(e)
        if not edits:
            raise ManifestError(str(path), label, "target_prompts", "no edits for this video",
                                "add target_prompts: [...] or edits: [...]")
        norm = {k: v for k, v in entry.items() if k in VIDEO_PASSTHROUGH}
        if "masks" in norm:
            norm["masks"] = _abs(norm["masks"], base)
        norm.update(video=str(entry["video"]), source_prompt=entry.get("source_prompt", ""), edits=edits)
        if entry.get("id") is not None:
            norm["id"] = str(entry["id"])
        if entry.get("category") is not None:
            norm["category"] = entry["category"]
        norm["_label"] = f"{path.name}{label}"
        out.append(norm)
    return out


def _read_list(path: Path) -> list:
    import json

    import yaml

    from bench.api import safe_yaml

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else safe_yaml.load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise ManifestError(str(path), None, None, f"cannot parse the list ({str(e).splitlines()[0]})") from None
    if not isinstance(data, list):
        raise ManifestError(str(path), None, None, "expected a mapping or a list of entries")
    return data


def _read_csv(path: Path, base: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        for need in ("video", "target_prompt"):
            if need not in cols:
                raise ManifestError(str(path), "header", need, "missing column",
                                    "columns: video, source_prompt, target_prompt[, edit_type, category, edit_id, reference, mask_type]")
        rows = list(reader)
    by_video: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(rows, start=2):  # line numbers as a spreadsheet shows them
        v = (row.get("video") or "").strip()
        if not v:
            raise ManifestError(str(path), f"row {i}", "video", "empty")
        entry = by_video.setdefault(v, {"video": v, "source_prompt": (row.get("source_prompt") or "").strip(),
                                        "edits": [], "_label": f"{path.name} row {i}"})
        if row.get("category"):
            entry["category"] = row["category"].strip()
        edit: dict[str, Any] = {"edit_type": (row.get("edit_type") or "").strip() or DEFAULT_EDIT_TYPE}
        if (row.get("target_prompt") or "").strip():
            edit["target_prompt"] = row["target_prompt"].strip()
        if (row.get("edit_id") or "").strip():
            edit["id"] = row["edit_id"].strip()
        if (row.get("reference") or "").strip():
            edit["reference"] = _abs(row["reference"].strip(), base)
        if (row.get("mask_type") or "").strip():
            edit["mask_type"] = row["mask_type"].strip()
        entry["edits"].append(edit)
    return list(by_video.values())


def to_video_entries(entries: list[dict[str, Any]], resolve_source) -> list[dict[str, Any]]:
    """Manifest `videos` from normalised prompt entries; `resolve_source(entry) -> path`."""
    videos = []
    used: set[str] = set()
    for e in entries:
        vid = e.get("id") or safe_id(Path(e["video"]).stem if "." in Path(e["video"]).name else e["video"])
        base_id, n = vid, 1
        while vid in used:
            n += 1
            vid = f"{base_id}-{n}"
        used.add(vid)
        v = {k: val for k, val in e.items() if not k.startswith("_") and k != "video"}
        v.update(id=vid, source=resolve_source(e), edits=e["edits"])
        videos.append(v)
    return videos
