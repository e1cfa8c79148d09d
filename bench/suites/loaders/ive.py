"""IVE-Benchmark-style image-guided triplets: (video, per-frame masks, reference image, application).

Layout: an index ``triplets.yaml`` / ``triplets.json`` / ``triplets.csv`` in the root, one entry
(row) per triplet::

    - video: videos/bear            # frame folder or video file, relative to the index
      masks: masks/bear/bear_body   # per-frame masks (fine, e.g. from SAM2), one image per frame
      reference: refs/leopard.png
      application: texture_transfer # texture_transfer | object_modification
      mask_type: fine               # fine | box (default: fine for texture_transfer, box for
                                    # object_modification — the per-frame bounding box of the fine masks)
      category: animals             # optional
      source_prompt: a bear walks   # optional
      target_prompt: ...            # optional
      id: bear-leopard              # optional edit id
      mask_object: 1                # optional, for label masks

Triplets of the same video become edits of one suite video.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from bench.api.errors import ManifestError
from bench.suites.loaders._prompts import safe_id

INDEX_NAMES = ("triplets.yaml", "triplets.yml", "triplets.json", "triplets.csv")
KEYS = ("video", "masks", "reference", "application", "mask_type", "category", "source_prompt", "target_prompt",
        "id", "mask_object", "box")
APPLICATIONS = {"texture_transfer": "texture_transfer", "texture transfer": "texture_transfer",
                "object_modification": "object_modification", "object modification": "object_modification"}


def _read_index(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = [{k: v for k, v in r.items() if v not in (None, "")} for r in csv.DictReader(f)]
        for r in rows:
            if "mask_object" in r:
                try:
                    r["mask_object"] = int(r["mask_object"])
                except ValueError:
                    pass  # validated as a manifest field below, with the entry named
        return rows
    import json

    import yaml

    from bench.api import safe_yaml

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else safe_yaml.load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise ManifestError(str(path), None, None, f"cannot parse the index ({str(e).splitlines()[0]})") from None
    if isinstance(data, dict) and isinstance(data.get("triplets"), list):
        data = data["triplets"]
    if not isinstance(data, list):
        raise ManifestError(str(path), None, "triplets", "expected a list of triplets")
    return data


def to_manifest(root: Path, name: str | None = None, index: str | Path | None = None,
                **_: Any) -> tuple[dict, str, Path]:
    if _:
        raise ManifestError(str(root), "load_suite overrides", next(iter(_)), "unknown option for an IVE suite",
                            "valid: index, name, num_frames, size, max_stride, resample")
    if index is not None:
        ip = Path(index) if Path(index).is_absolute() else root / index
    else:
        ip = next((root / n for n in INDEX_NAMES if (root / n).is_file()), root / INDEX_NAMES[0])
    if not ip.is_file():
        raise ManifestError(str(ip), None, None, "IVE index not found", f"add one of {', '.join(INDEX_NAMES)}")
    rows = _read_index(ip)
    videos: dict[str, dict[str, Any]] = {}
    for i, r in enumerate(rows):
        label = f"triplets[{i}]"
        if not isinstance(r, dict):
            raise ManifestError(str(ip), label, None, f"expected a mapping, got {type(r).__name__}")
        for k in r:
            if k not in KEYS:
                raise ManifestError(str(ip), label, str(k), "unknown key", f"valid keys: {', '.join(KEYS)}")
        for need in ("video", "reference", "application"):
            if not r.get(need):
                raise ManifestError(str(ip), label, need, "missing required field")
        app = APPLICATIONS.get(str(r["application"]).strip().lower())
        if app is None:
            raise ManifestError(str(ip), label, "application", f"unknown application {r['application']!r}",
                                "texture_transfer or object_modification")
        if not r.get("masks") and not r.get("box"):
            raise ManifestError(str(ip), label, "masks", "missing required field",
                                "IVE triplets need per-frame masks (a folder with one mask per frame)")
        vkey = str(r["video"])
        v = videos.setdefault(vkey, {"id": safe_id(Path(vkey).stem), "source": vkey,
                                     "source_prompt": r.get("source_prompt", ""), "edits": []})
        if r.get("category") and "category" not in v:
            v["category"] = r["category"]
        edit: dict[str, Any] = {"id": str(r.get("id") or len(v["edits"])), "edit_type": app,
                                "reference": r["reference"]}
        for k in ("masks", "mask_type", "mask_object", "box", "target_prompt"):
            if r.get(k) is not None:
                edit[k] = r[k]
        v["edits"].append(edit)
    ids: dict[str, int] = {}
    for v in videos.values():  # two videos with the same stem in different folders
        n = ids.get(v["id"], 0)
        ids[v["id"]] = n + 1
        if n:
            v["id"] = f"{v['id']}-{n + 1}"
    data = {"name": name or "ive", "description": f"image-guided triplets from {ip}", "videos": list(videos.values())}
    return data, str(ip), ip.parent
