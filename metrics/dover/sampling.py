"""DOVER's spatial-temporal view decomposition, with its random draws pinned by a seed.

Follows the official `evaluate_one_video.py` with the `val-l1080p` data options:

* Temporal sampling (`UnifiedFrameSampler` semantics): the video is cut into `fragments_t` equal
  segments starting at `num_frames // fragments_t * i`; each segment gives `fsize_t` frames spaced
  `frame_interval` apart, started at a random offset in [0, seg - fsize_t*interval) only when the
  segment is longer than that span (else offset 0); indices wrap modulo `num_frames`.
  - technical: fsize_t=32, fragments_t=3, interval 2 -> 96 frames = 3 clips of 32;
  - aesthetic: fsize_t=1, fragments_t=32, interval 2 -> 32 frames = 1 clip.
  The offsets come from `numpy.random.RandomState(seed)` (technical first, then aesthetic), the
  same stream as the official code after `np.random.seed(seed)`.
* Technical view: a 7x7 grid of 32x32 fragments (224x224). Grid starts min(res//7*i, res-32);
  per (row, column, 32-frame chunk) a random offset in [0, res//7 - 32) when res//7 > 32, drawn
  `torch.randint` for rows then columns from a `torch.Generator` seeded with `seed` (equal to the
  global RNG after `torch.manual_seed(seed)`). Frames smaller than 224 are first upscaled by
  bilinear interpolation (values truncated back to uint8); the reference then keeps using the
  pre-upscale size for the grid, which `lowres_grid="official"` reproduces and `"rescaled"` fixes.
* Aesthetic view: torchvision `Resize((224, 224))` (bilinear, antialias) on the uint8 frames.
* Normalisation with ImageNet mean/std in 0..255 units, then reshape to (clips, 3, T/clips, H, W).

Short videos: the official sampler works on any frame count, but with fewer than 32 frames the
aesthetic segments have length 0, so all 32 aesthetic frames are frame 0, and the technical clips
wrap around. `short_clip="official"` keeps that behaviour (as V2VBench did on its 24-frame clips);
`short_clip="stretch"` first resamples the clip to 32 frames by nearest-neighbour repetition
(frame j <- frame floor(j*T/32)), so every frame reaches both branches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
SHORT_CLIP_POLICIES = ("official", "stretch")
LOWRES_GRIDS = ("official", "rescaled")


@dataclass(frozen=True)
class TechnicalSpec:
    fragments_h: int = 7
    fragments_w: int = 7
    fsize_h: int = 32
    fsize_w: int = 32
    aligned: int = 32
    clip_len: int = 32
    frame_interval: int = 2
    num_clips: int = 3


@dataclass(frozen=True)
class AestheticSpec:
    size_h: int = 224
    size_w: int = 224
    clip_len: int = 32
    frame_interval: int = 2
    t_frag: int = 32
    num_clips: int = 1


@dataclass
class Views:
    """Un-normalised views (C, T, H, W) plus everything that was drawn to make them."""

    technical: torch.Tensor  # float32, (3, 96, 224, 224)
    aesthetic: torch.Tensor  # uint8, (3, 32, 224, 224)
    technical_indices: np.ndarray
    aesthetic_indices: np.ndarray
    offsets_h: torch.Tensor  # (fragments_h, fragments_w, chunks)
    offsets_w: torch.Tensor


def temporal_indices(num_frames: int, fsize_t: int, fragments_t: int, frame_interval: int, num_clips: int,
                     rng: np.random.RandomState) -> np.ndarray:
    """Frame indices, UnifiedFrameSampler semantics (no frame dropping)."""
    if num_frames < 1:
        raise ValueError("DOVER needs at least one frame")
    seg = num_frames // fragments_t
    starts = np.arange(fragments_t) * seg
    span = fsize_t * frame_interval
    out = []
    for _ in range(num_clips):
        if seg > span:
            rnd = rng.randint(0, seg - span, size=fragments_t)
        else:
            rnd = np.zeros(fragments_t, dtype=np.int64)
        out.append((np.arange(fsize_t)[None, :] * frame_interval + rnd[:, None] + starts[:, None]).reshape(-1))
    return (np.concatenate(out) % num_frames).astype(np.int64)


def stretch_frames(num_frames: int, target: int) -> np.ndarray:
    """Nearest-neighbour temporal resampling of a short clip: frame j <- floor(j * T / target)."""
    return (np.arange(target) * num_frames) // target


def technical_fragments(video: torch.Tensor, spec: TechnicalSpec, generator: torch.Generator | None,
                        random_offsets: bool = True, lowres_grid: str = "official"
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(C, T, H, W) uint8 -> (C, T, 7*32, 7*32) float32 fragment mosaic, row offsets, column offsets."""
    fh, fw, sh, sw = spec.fragments_h, spec.fragments_w, spec.fsize_h, spec.fsize_w
    out_h, out_w = fh * sh, fw * sw
    aligned = 1 if video.shape[1] == 1 else spec.aligned
    dur_t, res_h, res_w = video.shape[-3:]
    ratio = min(res_h / out_h, res_w / out_w)
    if ratio < 1:
        up = F.interpolate(video / 255.0, scale_factor=1 / ratio, mode="bilinear")
        video = (up * 255.0).to(torch.uint8)  # truncation, as the reference's type_as(uint8)
        if lowres_grid == "rescaled":
            res_h, res_w = video.shape[-2:]
    if dur_t % aligned:
        raise ValueError(f"technical view: {dur_t} frames are not a multiple of the {aligned}-frame chunk")
    chunks = dur_t // aligned
    hgrid = [min(res_h // fh * i, res_h - sh) for i in range(fh)]
    wgrid = [min(res_w // fw * j, res_w - sw) for j in range(fw)]
    hlen, wlen = res_h // fh, res_w // fw
    shape = (fh, fw, chunks)
    zeros = torch.zeros(shape, dtype=torch.long)
    rnd_h = torch.randint(hlen - sh, shape, generator=generator) if random_offsets and hlen > sh else zeros
    rnd_w = torch.randint(wlen - sw, shape, generator=generator) if random_offsets and wlen > sw else zeros
    target = torch.zeros(video.shape[:-2] + (out_h, out_w), dtype=torch.float32)
    for i, hs in enumerate(hgrid):
        for j, ws in enumerate(wgrid):
            for t in range(chunks):
                h0, w0 = hs + int(rnd_h[i, j, t]), ws + int(rnd_w[i, j, t])
                target[:, t * aligned : (t + 1) * aligned, i * sh : (i + 1) * sh, j * sw : (j + 1) * sw] = video[
                    :, t * aligned : (t + 1) * aligned, h0 : h0 + sh, w0 : w0 + sw
                ]
    return target, rnd_h, rnd_w


def aesthetic_resize(video: torch.Tensor, spec: AestheticSpec, antialias: bool = True) -> torch.Tensor:
    """(C, T, H, W) uint8 -> (C, T, 224, 224) uint8 with torchvision's bilinear Resize."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    frames = video.permute(1, 0, 2, 3)
    out = resize(frames, [spec.size_h, spec.size_w], interpolation=InterpolationMode.BILINEAR, antialias=antialias)
    return out.permute(1, 0, 2, 3)


def _channels_first(frames: np.ndarray, idx: np.ndarray) -> torch.Tensor:
    """Selected frames as a (C, T, H, W) view of (T, H, W, C) memory, the layout the reference builds
    (stacked HWC frames, permuted). Resize picks its uint8 kernel by memory layout, so this matters."""
    return torch.from_numpy(np.ascontiguousarray(frames[idx])).permute(3, 0, 1, 2)


def sample_views(frames: np.ndarray, seed: int = 0, *, antialias: bool = True, short_clip: str = "official",
                 random_offsets: bool = True, lowres_grid: str = "official",
                 technical: TechnicalSpec = TechnicalSpec(), aesthetic: AestheticSpec = AestheticSpec()) -> Views:
    """(T, H, W, 3) uint8 RGB frames -> the two DOVER views, reproducibly for a given seed."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"DOVER expects (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    if short_clip not in SHORT_CLIP_POLICIES:
        raise ValueError(f"short_clip must be one of {SHORT_CLIP_POLICIES}, got {short_clip!r}")
    if lowres_grid not in LOWRES_GRIDS:
        raise ValueError(f"lowres_grid must be one of {LOWRES_GRIDS}, got {lowres_grid!r}")
    if short_clip == "stretch" and frames.shape[0] < technical.clip_len:
        frames = frames[stretch_frames(frames.shape[0], technical.clip_len)]
    n = frames.shape[0]
    rng = np.random.RandomState(seed)
    t_idx = temporal_indices(n, technical.clip_len, technical.num_clips, technical.frame_interval, 1, rng)
    a_idx = temporal_indices(n, aesthetic.clip_len // aesthetic.t_frag, aesthetic.t_frag, aesthetic.frame_interval,
                             aesthetic.num_clips, rng)
    gen = torch.Generator().manual_seed(int(seed))
    tech, rnd_h, rnd_w = technical_fragments(_channels_first(frames, t_idx), technical, gen,
                                             random_offsets=random_offsets, lowres_grid=lowres_grid)
    aes = aesthetic_resize(_channels_first(frames, a_idx), aesthetic, antialias=antialias)
    return Views(tech, aes, t_idx, a_idx, rnd_h, rnd_w)


def to_clips(view: torch.Tensor, num_clips: int) -> torch.Tensor:
    """(C, T, H, W) view in 0..255 -> normalised (num_clips, C, T/num_clips, H, W) float32."""
    mean = torch.tensor(MEAN, dtype=torch.float32)
    std = torch.tensor(STD, dtype=torch.float32)
    c, t, h, w = view.shape
    v = ((view.permute(1, 2, 3, 0) - mean) / std).permute(3, 0, 1, 2)
    return v.reshape(c, num_clips, t // num_clips, h, w).transpose(0, 1)
