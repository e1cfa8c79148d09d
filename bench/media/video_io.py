"""Reading and writing videos, frame folders, images and masks (decord first, PyAV as fallback)."""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from bench.api.errors import VideoReadError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".gif")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that reads digit runs as numbers: `frame_2` before `frame_10` (and `frame_02`)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower()) for part in re.split(r"(\d+)", name) if part)


def frame_order_problem(names: list[str]) -> str | None:
    """Why a set of frame file names has no single obvious order, or None when it has one.

    Ambiguous: two names that are the same number written differently (`1.png` and `01.png`), or
    names that follow more than one pattern (`a_1.png` beside `b_1.png`)."""
    keys: dict[tuple, str] = {}
    for n in names:
        k = natural_key(Path(n).stem)
        if k in keys:
            return f"{keys[k]!r} and {n!r} are the same frame number"
        keys[k] = n
    patterns = {re.sub(r"\d+", "#", Path(n).stem.lower()) for n in names}
    if len(patterns) > 1:
        shown = ", ".join(sorted(patterns)[:3])
        return f"names follow {len(patterns)} patterns ({shown}{', ...' if len(patterns) > 3 else ''})"
    return None


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder in natural order (`frame_2` before `frame_10`), the one rule
    every reader of frame folders uses. Warns once per folder when the names have no single order."""
    files = sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTS), key=lambda p: natural_key(p.name))
    problem = frame_order_problem([p.name for p in files])
    if problem:
        warnings.warn(f"{folder}: frame order is ambiguous: {problem}; name frames with one zero-padded "
                      f"counter (00000.png, 00001.png, ...)", FrameOrderWarning, stacklevel=2)
    return files


class FrameOrderWarning(UserWarning):
    """Frame files whose names do not give one obvious order."""


#: 16-bit (and 32-bit integer) grayscale modes that `Image.convert` would clip to white instead of scaling
_WIDE_GRAY = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _to_8bit(a: np.ndarray) -> np.ndarray:
    """16-bit values (0..65535) to 8-bit by the exact range map (x / 257, rounded)."""
    return np.clip(np.rint(a.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def read_image(path: str | os.PathLike, mode: str = "RGB", data: bytes | None = None) -> np.ndarray:
    """An image as uint8 (H, W, 3) for RGB / (H, W) for L; 16-bit PNGs are scaled, not clipped.
    `data`: the file's bytes, already read (errors still name `path`)."""
    import io

    from PIL import Image, UnidentifiedImageError

    buf = None if data is None else io.BytesIO(data)
    try:
        with Image.open(path if buf is None else buf) as im:
            if im.mode in _WIDE_GRAY:
                return np.asarray(Image.fromarray(_to_8bit(np.asarray(im)), "L").convert(mode)).copy()
            if im.mode == "F":
                raise VideoReadError(str(path), "floating-point image; frames must be 8- or 16-bit",
                                     "re-export it as an 8-bit PNG")
            return np.asarray(im.convert(mode)).copy()
    except FileNotFoundError:
        raise VideoReadError(str(path), "file not found", "check the path in the manifest") from None
    except VideoReadError:
        raise
    except Image.DecompressionBombError as e:
        raise VideoReadError(str(path), f"refused: {e}", "resize the image (at most ~179 megapixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        why = str(e) if buf is None else str(e).replace(repr(buf), repr(str(path)))  # name the file, not the buffer
        raise VideoReadError(str(path), f"not a readable image ({why})", "re-export it as PNG") from None


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.asarray(image)).save(path)


def import_decord():
    """decord, loaded after OpenCV: decord's wheel bundles its own zlib, and when it is loaded before
    OpenCV every later cv2.imread of a PNG fails ("libpng error: bad parameters to zlib") for the rest
    of the process. Every use of decord goes through here."""
    import cv2  # noqa: F401

    import decord  # type: ignore

    return decord


def _read_with_decord(path: Path) -> tuple[np.ndarray, float]:
    decord = import_decord()
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
    n = len(vr)
    if n == 0:
        raise ValueError("no frames")
    frames = vr.get_batch(list(range(n))).asnumpy()
    return frames, float(vr.get_avg_fps() or 8.0)


def _read_with_pyav(path: Path) -> tuple[np.ndarray, float]:
    import av  # type: ignore

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else 8.0
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    if not frames:
        raise ValueError("no frames")
    return np.stack(frames), fps


def _read_gif(path: Path) -> tuple[np.ndarray, float]:
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        frames = [np.asarray(f.convert("RGB")).copy() for f in ImageSequence.Iterator(im)]
        duration = im.info.get("duration", 125) or 125
    return np.stack(frames), 1000.0 / float(duration)


def evenly_spaced(n_frames: int, k: int) -> list[int]:
    """k indices spread evenly over n_frames, ends included: rounded `linspace(0, n_frames - 1, k)`
    (half to even, as numpy rounds); [0] for k == 1. Repeats indices when k > n_frames."""
    if n_frames < 1 or k < 1:
        raise ValueError(f"need at least one frame and one index, got {n_frames} frames, k={k}")
    if k == 1:
        return [0]
    return [int(i) for i in np.rint(np.linspace(0, n_frames - 1, k))]


def spread_indices(n: int, k: int) -> np.ndarray:
    """k evenly spaced indices of n frames, first and last included (all n when n <= k): the suites'
    `evenly_spaced` without its repeats."""
    return np.arange(n) if n <= k else np.asarray(evenly_spaced(n, k))


def read_video(path: str | os.PathLike, backend: str = "auto",
               max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """(frames uint8 (T,H,W,3) RGB, fps) from a video file, a .gif, or a folder of frame images.
    With `max_frames`, only that many evenly spaced frames (spread_indices); a folder then decodes
    only those files."""
    if max_frames is not None:
        p = Path(path)
        if p.is_dir():
            files = list_frame_files(p)
            if files:
                return read_video_files([files[i] for i in spread_indices(len(files), max_frames)], p)
        frames, fps = read_video(path, backend)
        return frames[spread_indices(len(frames), max_frames)], fps
    p = Path(path)
    if not p.exists():
        raise VideoReadError(str(p), "does not exist", "check the path")
    if p.is_dir():
        files = list_frame_files(p)
        if not files:
            raise VideoReadError(str(p), "folder has no frame images (.png/.jpg)", "put 00.png, 01.png, … in it")
        return read_video_files(files, p)
    if p.suffix.lower() == ".gif":
        try:
            return _read_gif(p)
        except Exception as e:  # noqa: BLE001
            raise VideoReadError(str(p), f"not a readable GIF ({e})", "re-export the video") from None
    errors = []
    readers = {"decord": [_read_with_decord], "pyav": [_read_with_pyav], "auto": [_read_with_decord, _read_with_pyav]}
    for reader in readers.get(backend, readers["auto"]):
        try:
            frames, fps = reader(p)
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise ValueError(f"unexpected frame shape {frames.shape}")
            return np.ascontiguousarray(frames.astype(np.uint8, copy=False)), fps
        except ImportError as e:
            errors.append(f"{reader.__name__}: {e}")
        except Exception as e:  # noqa: BLE001  (decoders raise many types)
            errors.append(f"{reader.__name__.replace('_read_with_', '')}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    raise VideoReadError(str(p), "cannot decode video (" + "; ".join(errors) + ")", "check the file is a valid video, or re-encode it")


def read_video_files(files: list[Path], folder: Path) -> tuple[np.ndarray, float]:
    """Frame image files of one folder as a clip (folders carry no frame rate: 8 fps)."""
    return _read_files(files, folder, keep_png=False)[0], 8.0


def read_frames_folder(folder: str | os.PathLike, keep_png: bool = True) -> tuple[np.ndarray, list[bytes | None]]:
    """A folder of frame images, each file read once: (frames (T,H,W,3) uint8, per frame the file's
    bytes where it is a plain 8-bit RGB PNG, else None; all None without `keep_png`). Such bytes
    decode to exactly that frame, so write_frames(png=) can store them as they are."""
    p = Path(folder)
    files = list_frame_files(p)
    if not files:
        raise VideoReadError(str(p), "folder has no frame images (.png/.jpg)", "put 00.png, 01.png, … in it")
    return _read_files(files, p, keep_png=keep_png)


def _read_files(files: list[Path], folder: Path, keep_png: bool) -> tuple[np.ndarray, list[bytes | None]]:
    frames, png = [], []
    for f in files:
        try:
            data = f.read_bytes()
        except FileNotFoundError:
            raise VideoReadError(str(f), "file not found", "check the path in the manifest") from None
        frame = read_image(f, data=data)
        frames.append(frame)
        png.append(data if keep_png and is_plain_rgb8_png(data, frame.shape) else None)
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoReadError(str(folder), f"frames have different sizes {sorted(shapes)}", "resize them to one size")
    return np.stack(frames), png


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_plain_rgb8_png(data: bytes, shape: tuple[int, ...]) -> bool:
    """Whether `data` is a PNG of colour type 2 (RGB, no alpha, no palette) at 8 bits per channel and
    of frame size `shape` (H, W, 3): every decoder reads it as exactly the RGB values PIL reads (a
    16-bit, grey, palette or alpha PNG is converted on reading, so its bytes are not the frame)."""
    if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(shape) != 3:
        return False
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return (height, width, 3) == tuple(shape) and data[24] == 8 and data[25] == 2


def read_mask_frames(path: str | os.PathLike) -> np.ndarray:
    """Per-frame masks as bool (T,H,W) from a folder of mask images or a video; nonzero = inside."""
    p = Path(path)
    if p.is_dir():
        files = list_frame_files(p)
        if not files:
            raise VideoReadError(str(p), "mask folder has no images", "put one mask image per frame in it")
        return np.stack([read_image(f, "L") > 127 for f in files])
    if p.suffix.lower() in IMAGE_EXTS:
        return (read_image(p, "L") > 127)[None]
    frames, _ = read_video(p)
    return frames.max(axis=-1) > 127


def write_frames(folder: str | os.PathLike, frames: np.ndarray, png: list[bytes | None] | None = None) -> Path:
    """Write frames losslessly as PNGs (00000.png, …) atomically: a temp folder renamed into place.

    `png[i]`, where given, is a plain 8-bit RGB PNG that decodes to frames[i] (read_frames_folder:
    the user's own file, read once): its bytes are stored as they are instead of re-encoding them."""
    from PIL import Image

    dest = Path(folder)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    for i, f in enumerate(frames):
        data = png[i] if png is not None and i < len(png) else None
        if data is not None and is_plain_rgb8_png(data, np.shape(f)):
            (tmp / f"{i:05d}.png").write_bytes(data)
            continue
        Image.fromarray(np.asarray(f, dtype=np.uint8)).save(tmp / f"{i:05d}.png", compress_level=1)
    if dest.exists():
        import shutil

        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


#: how write_gif builds its palette; preview content keys include it, so a change re-encodes old previews
GIF_ENCODING = "clip-palette:exact-or-fastoctree:no-dither:v1"


def _paletted(imgs: list) -> list:
    """The frames as P images sharing one palette built from all of them at once: the exact colours
    when the clip has at most 256 (flat-colour frames round-trip losslessly), otherwise a fast octree.
    PIL's default (a median cut per frame, ~20 ms each) cost ~30x more for about one grey level less
    mean error on natural video."""
    from PIL import Image

    arr = np.stack([np.asarray(im) for im in imgs])
    mosaic = Image.fromarray(arr.reshape(-1, arr.shape[2], 3))
    colors = mosaic.getcolors(256)  # None when there are more
    if colors is None:
        pal = mosaic.quantize(256, method=Image.Quantize.FASTOCTREE)
        return [im.quantize(palette=pal, dither=Image.Dither.NONE) for im in imgs]
    # exact: indices by lookup (PIL's own palette mapping is approximate, through a coarse colour cache)
    table = np.array(sorted((r << 16) | (g << 8) | b for _, (r, g, b) in colors), dtype=np.uint32)
    packed = (arr[..., 0].astype(np.uint32) << 16) | (arr[..., 1].astype(np.uint32) << 8) | arr[..., 2]
    idx = np.searchsorted(table, packed).astype(np.uint8)
    palette = [int(k >> s) & 255 for k in table for s in (16, 8, 0)]
    out = []
    for frame in idx:
        im = Image.fromarray(frame)
        im.putpalette(palette)
        out.append(im)
    return out


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0, max_side: int = 256,
              comment: str | None = None) -> Path:
    """An animated preview (lossy palette; for reports only, never for scoring); `comment` is stored
    in the GIF (the report keeps the preview's content key there). One palette per clip, no
    dithering (no frame-to-frame dither flicker); identical frames give identical bytes."""
    from PIL import Image

    imgs = [Image.fromarray(np.asarray(f, dtype=np.uint8)).convert("RGB") for f in frames]
    if imgs and max(imgs[0].size) > max_side:
        scale = max_side / max(imgs[0].size)
        size = (max(1, round(imgs[0].width * scale)), max(1, round(imgs[0].height * scale)))
        imgs = [im.resize(size, Image.BILINEAR) for im in imgs]
    paletted = _paletted(imgs)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp.gif")
    extra = {"comment": comment.encode()} if comment else {}
    paletted[0].save(tmp, format="GIF", save_all=True, append_images=paletted[1:],
                     duration=int(1000 / max(fps, 1e-3)), loop=0, **extra)
    os.replace(tmp, p)
    return p


def encode_video(path: str | os.PathLike, frames: np.ndarray, fps: float, *, codec: str, pix_fmt: str,
                 options: dict[str, str] | None = None, container: str | None = None) -> Path:
    """Encode (T,H,W,3) uint8 RGB frames with PyAV, atomically (a temp file renamed into place).

    Chroma-subsampled formats (yuv420p) need even sides: the last row / column is replicated."""
    import av  # type: ignore

    frames = np.ascontiguousarray(np.asarray(frames, dtype=np.uint8))
    if pix_fmt.startswith("yuv420"):
        _, h, w, _ = frames.shape
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.stem + ".tmp" + p.suffix)
    _, h, w, _ = frames.shape
    with av.open(str(tmp), mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=max(1, int(round(fps))))
        stream.pix_fmt = pix_fmt
        stream.width, stream.height = w, h
        if options:
            stream.options = dict(options)
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    os.replace(tmp, p)
    return p


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0, lossless: bool = True) -> Path:
    """H.264 via PyAV; `lossless=True` uses libx264rgb with qp 0 (bit-exact RGB)."""
    if lossless:
        return encode_video(path, frames, fps, codec="libx264rgb", pix_fmt="rgb24",
                            options={"qp": "0", "preset": "veryfast"})
    return encode_video(path, frames, fps, codec="libx264", pix_fmt="yuv420p")
