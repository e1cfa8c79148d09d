"""Score edits that already exist on disk (no method is run): the V2VBench output layout.

Layout: `<dir>/<video_id>/<edit>` where `<edit>` is a folder of frame images, `<edit>.mp4` (or
another video container) or `<edit>.gif`. `<edit>` is tried as, in order: the sample's
`edit_idx` meta value (V2VBench numbers the edits of a video 0, 1, …), the sample's `edit_id`, and
the trailing integer of `edit_id` ("edit_03" -> "3", then "03"). Config:

* `dir` (required): the root folder;
* `resize` (default false): if the stored edit's frame size or count differs from the
  preprocessed source, the default is a clear error (a silent resize would change the metrics);
  with `resize: true` frames are resized to the source size (area interpolation when shrinking,
  bicubic when enlarging) and `num_frames` frames are picked at evenly spaced indices.

The harness passes `sample=` to `edit` (`receives_sample`), which is how the files are found.
Timing and memory rows for precomputed edits measure only the file read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import MethodOutputError, VidEditBenchError
from bench.media.video_io import VIDEO_EXTS, evenly_spaced, list_frame_files, read_frames_folder, read_video
from bench.method import Method
from bench.types import Sample, Video


def fit_to_source(frames: np.ndarray, num_frames: int, size: tuple[int, int]) -> np.ndarray:
    """Pick `num_frames` evenly spaced frames and resize each to `size` (H, W).

    Frames are only ever dropped, never repeated: an edit with fewer frames than the source would
    become a partly frozen video that temporal-consistency metrics rate as perfectly stable."""
    import cv2

    t = frames.shape[0]
    if t < num_frames:
        raise MethodOutputError(
            f"the edit has {t} frame(s) and the source {num_frames}; resizing only drops frames (repeating "
            f"frames would fake temporal consistency): produce at least {num_frames} frames, or lower --num-frames"
        )
    if t != num_frames:
        idx = np.asarray(evenly_spaced(t, num_frames))
        frames = frames[idx]
    h, w = size
    if frames.shape[1:3] != (h, w):
        shrink = frames.shape[1] * frames.shape[2] > h * w
        interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
        frames = np.stack([cv2.resize(f, (w, h), interpolation=interp) for f in frames])
    return np.ascontiguousarray(frames, dtype=np.uint8)


def edit_name_candidates(sample: Sample) -> list[str]:
    names: list[str] = []
    meta = sample.meta_dict()
    if meta.get("edit_idx") is not None:
        names.append(str(meta["edit_idx"]))
    names.append(str(sample.edit_id))
    m = re.search(r"(\d+)$", str(sample.edit_id))
    if m:
        names += [str(int(m.group(1))), m.group(1)]
    return list(dict.fromkeys(names))


LAYOUT = "<dir>/<video_id>/<edit_id> (or <dir>/<suite>/<video_id>/<edit_id>, or flat <dir>/<video_id>__<edit_id>)"


def find_edit(root: Path, sample: Sample) -> tuple[Path | None, list[Path]]:
    """(the stored edit or None, every path that was tried), in the layouts of `LAYOUT`: nested by
    video id (V2VBench's `<video_id>/<edit_idx>`; the edit's id or its index), by the whole sample uid,
    or flat `<video_id>__<edit_id>`; each as a frames folder or a video file."""
    tried: list[Path] = []
    names = edit_name_candidates(sample)
    candidates = [root / sample.video_id / n for n in names]
    candidates += [root / sample.suite / sample.video_id / n for n in names]
    candidates += [root / f"{sample.video_id}__{n}" for n in names]
    for stem in candidates:
        tried.append(stem)
        if stem.is_dir() and list_frame_files(stem):
            return stem, tried
        for ext in VIDEO_EXTS:
            f = stem.with_name(stem.name + ext)
            tried.append(f)
            if f.is_file():
                return f, tried
    return None, tried


class PrecomputedMethod(Method):
    name = "precomputed"
    description = "Reads already generated edits from <dir>/<video_id>/<edit_id> (frames folder, .mp4 or .gif)"
    tasks = frozenset({"text", "image"})
    needs = frozenset()
    receives_sample = True
    measures_efficiency = False
    defaults = {"dir": None, "resize": False}

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        super().__init__(device=device, seed=seed, **config)
        #: per frame of the last edit() result, the user's PNG bytes it was decoded from (None where
        #: the store must encode the frame itself); the harness stores those bytes as they are
        self.last_output_png: list[bytes | None] | None = None
        if not self.cfg.get("dir"):
            raise VidEditBenchError(
                "method 'precomputed' needs option dir: the folder holding <video_id>/<edit_id> outputs "
                "(e.g. --method-opt precomputed.dir=outputs/my_method, or use `videditbench eval outputs/my_method`)"
            )
        self.root = Path(str(self.cfg["dir"])).expanduser()
        if not self.root.is_dir():
            raise VidEditBenchError(f"precomputed: dir '{self.root}' does not exist or is not a folder")

    def edit(
        self,
        video: Video,
        *,
        prompt: str | None = None,
        reference: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        prepared: Any = None,
        source_prompt: str | None = None,
        sample: Sample | None = None,
    ) -> np.ndarray:
        self.last_output_png = None
        if sample is None:
            raise VidEditBenchError("precomputed: edit() needs sample= to know which video_id / edit to read")
        path, tried = find_edit(self.root, sample)
        if path is None:
            shown = ", ".join(str(p) + ("/" if p.suffix == "" else "") for p in tried if p.suffix in ("", ".mp4", ".gif"))
            raise MethodOutputError(
                f"precomputed: no stored edit for {sample.uid}; looked for {shown} (and other video extensions); "
                f"expected layout {LAYOUT} as a frames folder, .mp4 or .gif"
            )
        png = None
        if path.is_dir():  # the files' bytes are kept only when they can be the stored frames as they are
            frames, png = read_frames_folder(path, keep_png=len(list_frame_files(path)) == video.num_frames)
        else:
            frames, _ = read_video(path)
        want_t, want_hw = video.num_frames, video.size
        if frames.shape[0] == want_t and frames.shape[1:3] == want_hw:
            self.last_output_png = png  # the frames are these files as they are: the store copies their bytes
            return frames
        if not self.cfg["resize"]:
            raise MethodOutputError(
                f"precomputed: {path} has {frames.shape[0]} frames of {frames.shape[1]}x{frames.shape[2]} (HxW) but the "
                f"preprocessed source has {want_t} frames of {want_hw[0]}x{want_hw[1]}; regenerate it at the suite's "
                f"preprocessing, or set option resize: true to resize and sample frames evenly"
            )
        return fit_to_source(frames, want_t, want_hw)
