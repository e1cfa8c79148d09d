"""Browser-playable clips for the rater page.

Stored edits are lossless PNG frame folders, which a browser cannot play as a video. Each shown clip
is encoded once, at study creation, as VP9 in WebM (PyAV/libvpx): an open codec that every Chromium
build plays, also those built without proprietary codecs (Debian's chromium 156 plays VP8, VP9, H.264
and AV1; the browser test checks that the clips decode and advance). Clips are for looking at only,
never for scoring.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

FPS = 8.0


def encode_webm(frames: np.ndarray, path: str | os.PathLike, fps: float = FPS) -> Path:
    """Write frames (T,H,W,3) uint8 as VP9 WebM, atomically (temp file renamed into place)."""
    from bench.media.video_io import encode_video

    return encode_video(path, frames, fps, codec="libvpx-vp9", pix_fmt="yuv420p", container="webm",
                        options={"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"})


def broken_copy(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """An unmistakably bad 'edit' for attention checks: colours inverted, blocks shuffled per frame,
    and heavy flickering noise, so any attentive rater prefers the source on every question."""
    rng = np.random.default_rng(seed)
    x = 255 - np.asarray(frames, dtype=np.uint8)
    t, h, w, _ = x.shape
    bh, bw = max(1, h // 4), max(1, w // 4)
    out = x.copy()
    for i in range(t):
        blocks = [(r, c) for r in range(0, h - bh + 1, bh) for c in range(0, w - bw + 1, bw)]
        perm = rng.permutation(len(blocks))
        for (r, c), j in zip(blocks, perm):
            r2, c2 = blocks[j]
            out[i, r:r + bh, c:c + bw] = x[i, r2:r2 + bh, c2:c2 + bw]
        noise = rng.integers(-90, 90, size=(h, w, 1))
        out[i] = np.clip(out[i].astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return out


def encode_folder(frames_dir: str | os.PathLike, dest: str | os.PathLike, *, broken: bool = False) -> Path:
    """Encode a stored frame folder (or its broken copy) unless `dest` already exists."""
    dest = Path(dest)
    if dest.is_file() and dest.stat().st_size > 0:
        return dest
    if "decord" in sys.modules:
        # decord's wheel bundles its own FFmpeg/libvpx; once it has decoded a video in this process,
        # PyAV's libvpx encoders fail to open (EINVAL). Encode in a clean worker process instead.
        return Path(_clean_worker().submit(_encode_folder, str(frames_dir), str(dest), broken).result())
    return _encode_folder(frames_dir, dest, broken)


def _encode_folder(frames_dir: str | os.PathLike, dest: str | os.PathLike, broken: bool) -> Path:
    from bench.media.safe_files import refuse_links
    from bench.media.video_io import read_video

    refuse_links(frames_dir, "frames")
    frames, _ = read_video(frames_dir)
    return encode_webm(broken_copy(frames) if broken else frames, dest)


_WORKER = None


def _clean_worker():
    """One spawned process (not forked: a fork would inherit decord's libraries) for the encodes."""
    global _WORKER
    if _WORKER is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        import atexit

        _WORKER = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        atexit.register(_WORKER.shutdown)  # before interpreter teardown, which would log an ignored error
    return _WORKER


def copy_image(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """A reference image as PNG (browsers show it whatever format it came in)."""
    from bench.media.video_io import read_image, write_image

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.is_file():
        write_image(dest, read_image(src))
    return dest
