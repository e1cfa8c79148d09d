"""Procedurally generated clips with EXACT per-frame masks and EXACT forward optical flow.

Every pixel is rendered analytically (never by warping an image): the background is a smooth
colour texture ``B`` (a sum of sinusoids, defined on the whole plane) seen through a camera whose
motion per frame is one affine map ``M`` about the frame centre (translation + zoom + rotation),
so frame ``t`` shows ``B(M^{-t} p)`` and the background's forward flow is ``M p - p`` at every
pixel, for every frame. Objects (a disk, a square) carry their own smooth texture in object
coordinates and move with a constant velocity ``v``, so their flow is ``v``. Objects are composited
in list order (later on top) with hard edges: a pixel belongs to the topmost shape whose
boundary contains the pixel centre, which is exactly what the mask says.

Coordinates: pixel ``(row i, col j)`` sits at ``x = j, y = i`` (the convention optical-flow code
uses for warping); flow is ``(u, v) = (dx, dy)`` in pixels, ``flow[t]`` maps frame ``t`` to ``t+1``.

Geometry is given in units of the frame size and motion per whole clip, so a clip rendered at
64 px or 512 px, with 8 or 24 frames, shows the same scene over the same time span.
Clips are cached as PNG frames plus ``flow.npy`` / ``labels.npy`` under
``$VIDEDITBENCH_CACHE/synthetic/<name>-<hash>/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.api.hashing import hash_obj


@dataclass(frozen=True)
class SyntheticObject:
    shape: str  # "disk" | "square"
    start: tuple[float, float]  # centre (x, y) at the first frame, in frame-size units
    end: tuple[float, float]  # centre at the last frame
    radius: float  # disk radius / half side of the square, frame-size units
    colors: tuple[tuple[int, int, int], tuple[int, int, int]]  # the two colours of its texture
    pattern: float = 2.0  # texture cycles across the object's width
    name: str = "object"


@dataclass(frozen=True)
class SyntheticSpec:
    name: str
    seed: int = 0
    description: str = ""
    #: background camera motion over the whole clip: translation (frame-size units), zoom factor, degrees
    bg_shift: tuple[float, float] = (0.2, 0.05)
    bg_zoom: float = 1.0
    bg_rotate_deg: float = 0.0
    bg_waves: int = 6
    bg_max_cycles: float = 5.0  # highest texture frequency, cycles per frame width
    objects: tuple[SyntheticObject, ...] = ()
    target: int = 0  # index of the object the suite's masks follow

    def key(self, num_frames: int, size: int) -> str:
        return hash_obj({"spec": dataclasses.asdict(self), "T": num_frames, "size": size, "v": 1}, 12)


@dataclass
class SyntheticClip:
    frames: np.ndarray  # (T,H,W,3) uint8
    flow: np.ndarray  # (T-1,H,W,2) float32, forward flow t -> t+1 in pixels
    labels: np.ndarray  # (T,H,W) uint8: 0 = background, k = object k-1 (visible surface)
    spec: SyntheticSpec = field(repr=False, default=None)  # type: ignore[assignment]

    def object_mask(self, index: int | None = None) -> np.ndarray:
        """(T,H,W) bool: where object `index` (default: the spec's target) is visible."""
        k = self.spec.target if index is None else index
        return self.labels == (k + 1)

    def object_velocity(self, index: int | None = None) -> np.ndarray:
        """(u, v) pixels per frame of object `index` (constant over the clip)."""
        k = self.spec.target if index is None else index
        num_frames, size = self.frames.shape[0], self.frames.shape[1]
        return _object_velocity(self.spec.objects[k], num_frames, size)


PRESETS: dict[str, SyntheticSpec] = {
    "ball_pan": SyntheticSpec(
        name="ball_pan",
        seed=11,
        description="a striped orange ball rolls right over a colourful wavy pattern while the camera pans",
        bg_shift=(0.22, 0.06),
        objects=(
            SyntheticObject(
                "disk", start=(0.27, 0.58), end=(0.70, 0.42), radius=0.15,
                colors=((235, 120, 30), (250, 220, 90)), pattern=2.0, name="ball",
            ),
        ),
        target=0,
    ),
    "cube_zoom": SyntheticSpec(
        name="cube_zoom",
        seed=23,
        description="a blue-and-yellow tiled square slides down-right, a small green ball passes in front of it, "
        "the camera zooms in and turns slightly",
        bg_shift=(-0.08, 0.05),
        bg_zoom=1.18,
        bg_rotate_deg=6.0,
        objects=(
            SyntheticObject(
                "square", start=(0.32, 0.34), end=(0.62, 0.60), radius=0.14,
                colors=((40, 70, 200), (245, 215, 60)), pattern=1.5, name="tile",
            ),
            SyntheticObject(
                "disk", start=(0.86, 0.30), end=(0.30, 0.76), radius=0.07,
                colors=((30, 160, 60), (170, 240, 150)), pattern=1.0, name="small ball",
            ),
        ),
        target=0,
    ),
}


def get_spec(name: str, **params) -> SyntheticSpec:
    """A preset by name, with top-level fields (e.g. seed) replaced. KeyError / TypeError on bad names."""
    if name not in PRESETS:
        raise KeyError(name)
    spec = PRESETS[name]
    if params:
        valid = {f.name for f in dataclasses.fields(SyntheticSpec)} - {"name", "objects"}
        bad = sorted(set(params) - valid)
        if bad:
            raise TypeError(f"unknown synthetic parameter(s) {bad}; valid: {sorted(valid)}")
        conv = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        spec = dataclasses.replace(spec, **conv)
    return spec


# ---------------------------------------------------------------------------------------- rendering


def _background_waves(spec: SyntheticSpec) -> list[tuple[np.ndarray, float, float, np.ndarray]]:
    rng = np.random.default_rng(spec.seed)
    waves = []
    for _ in range(spec.bg_waves):
        theta = rng.uniform(0, np.pi)
        cycles = rng.uniform(1.0, spec.bg_max_cycles)
        direction = np.array([np.cos(theta), np.sin(theta)]) * cycles  # cycles per frame-size unit
        phase = rng.uniform(0, 2 * np.pi)
        color = rng.uniform(-1.0, 1.0, size=3)
        amp = rng.uniform(18, 38)
        waves.append((direction, phase, amp, color))
    return waves


def _render_background(q: np.ndarray, waves, base: np.ndarray) -> np.ndarray:
    """B at normalised texture coordinates q (...,2) -> (...,3) float."""
    out = np.broadcast_to(base, q.shape[:-1] + (3,)).astype(np.float64).copy()
    for direction, phase, amp, color in waves:
        s = np.sin(2 * np.pi * (q @ direction) + phase)
        out += (amp * s)[..., None] * color
    return out


def _camera_matrix(spec: SyntheticSpec, num_frames: int, size: int) -> np.ndarray:
    """The 3x3 homogeneous per-frame camera map M (pixels): content at p moves to M p."""
    steps = max(1, num_frames - 1)
    zoom = float(spec.bg_zoom) ** (1.0 / steps)
    ang = np.deg2rad(float(spec.bg_rotate_deg) / steps)
    c = np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    rot = zoom * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    shift = np.asarray(spec.bg_shift, dtype=np.float64) * size / steps
    m = np.eye(3)
    m[:2, :2] = rot
    m[:2, 2] = c - rot @ c + shift
    return m


def _object_velocity(obj: SyntheticObject, num_frames: int, size: int) -> np.ndarray:
    steps = max(1, num_frames - 1)
    return (np.asarray(obj.end, dtype=np.float64) - np.asarray(obj.start, dtype=np.float64)) * size / steps


def _object_layer(obj: SyntheticObject, rel: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(inside (H,W) bool, colour (H,W,3) float) for an object, `rel` = pixel - centre in pixels."""
    r = obj.radius * size
    if obj.shape == "disk":
        inside = (rel**2).sum(-1) <= r * r
        u = rel / r  # object coordinates in [-1, 1]
        w = 0.5 + 0.5 * np.sin(np.pi * obj.pattern * (u[..., 0] + 0.6 * u[..., 1]) + 0.3) * np.cos(
            np.pi * 0.5 * obj.pattern * u[..., 1]
        )
    elif obj.shape == "square":
        inside = np.abs(rel).max(-1) <= r
        u = rel / r
        w = 0.5 + 0.5 * np.sin(np.pi * obj.pattern * u[..., 0]) * np.sin(np.pi * obj.pattern * u[..., 1] + 0.4)
    else:
        raise ValueError(f"unknown object shape {obj.shape!r} (disk, square)")
    c0, c1 = (np.asarray(c, dtype=np.float64) for c in obj.colors)
    color = (1 - w)[..., None] * c0 + w[..., None] * c1
    return inside, color


def render(spec: SyntheticSpec, num_frames: int, size: int) -> SyntheticClip:
    """Render the clip analytically at `size` x `size` with `num_frames` frames."""
    if num_frames < 2:
        raise ValueError("a synthetic clip needs at least 2 frames")
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    pix = np.stack([xs, ys], axis=-1)  # (H,W,2) as (x, y)
    hom = np.concatenate([pix, np.ones_like(xs)[..., None]], axis=-1)  # (H,W,3)
    waves = _background_waves(spec)
    base = np.array([128.0, 124.0, 118.0])
    m = _camera_matrix(spec, num_frames, size)
    bg_flow = (hom @ m.T)[..., :2] - pix  # the same at every frame
    m_inv = np.linalg.inv(m)

    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    labels = np.zeros((num_frames, size, size), dtype=np.uint8)
    flow = np.empty((num_frames - 1, size, size, 2), dtype=np.float32)
    inv_t = np.eye(3)  # M^{-t}
    for t in range(num_frames):
        q = (hom @ inv_t.T)[..., :2] / size  # where this pixel's background content was at frame 0
        img = _render_background(q, waves, base)
        lab = np.zeros((size, size), dtype=np.uint8)
        fl = bg_flow.copy()
        for k, obj in enumerate(spec.objects):
            vel = _object_velocity(obj, num_frames, size)
            centre = np.asarray(obj.start, dtype=np.float64) * size + vel * t
            inside, color = _object_layer(obj, pix - centre, size)
            img[inside] = color[inside]
            lab[inside] = k + 1
            fl[inside] = vel
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        labels[t] = lab
        if t < num_frames - 1:
            flow[t] = fl
        inv_t = m_inv @ inv_t
    return SyntheticClip(frames=frames, flow=flow, labels=labels, spec=spec)


# ---------------------------------------------------------------------------------------- caching


def cache_root() -> Path:
    return Path(os.environ.get("VIDEDITBENCH_CACHE", Path.home() / ".cache" / "videditbench")).expanduser() / "synthetic"


def _read_cached(folder: Path, spec: SyntheticSpec, num_frames: int, size: int) -> SyntheticClip | None:
    from PIL import Image

    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("num_frames") != num_frames or meta.get("size") != size:
            return None
        frames = np.stack([np.asarray(Image.open(folder / f"{t:05d}.png").convert("RGB")) for t in range(num_frames)])
        flow = np.load(folder / "flow.npy")
        labels = np.load(folder / "labels.npy")
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if frames.shape != (num_frames, size, size, 3) or flow.shape != (num_frames - 1, size, size, 2):
        return None
    return SyntheticClip(frames=frames, flow=flow.astype(np.float32), labels=labels, spec=spec)


def _write_cache(folder: Path, clip: SyntheticClip) -> None:
    from PIL import Image

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for t, f in enumerate(clip.frames):
            Image.fromarray(f).save(tmp / f"{t:05d}.png", compress_level=1)
        np.save(tmp / "flow.npy", clip.flow)
        np.save(tmp / "labels.npy", clip.labels)
        np.save(tmp / "masks.npy", clip.object_mask())
        meta = {"spec": dataclasses.asdict(clip.spec), "num_frames": int(clip.frames.shape[0]), "size": int(clip.frames.shape[1])}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process won the race: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def generate(spec: SyntheticSpec, num_frames: int, size: int, use_cache: bool = True) -> SyntheticClip:
    """The clip for (spec, num_frames, size): from the disk cache, or rendered and cached."""
    folder = cache_root() / f"{spec.name}-{spec.key(num_frames, size)}"
    if use_cache and folder.is_dir():
        clip = _read_cached(folder, spec, num_frames, size)
        if clip is not None:
            return clip
    clip = render(spec, num_frames, size)
    if use_cache:
        try:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
            _write_cache(folder, clip)
        except OSError:
            pass  # a read-only cache must not stop a run; the clip is deterministic anyway
    return clip
