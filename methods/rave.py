"""RAVE: randomized noise shuffling for zero-shot video editing (Kara et al., CVPR 2024).

Our implementation on diffusers primitives (UNet2DConditionModel, ControlNetModel, DDIMScheduler,
AutoencoderKL, CLIP text encoder), following the paper and the settings of the official code:

* frames are resized so that one frame ("cell") has an area of about `resolution`² pixels (sides
  multiples of 8) and arranged `grid_size` x `grid_size` into grid images, which the text-to-image
  model denoises as ordinary (large) images, so the frames of one grid share self-attention;
* `prepare`: depth maps (DPT, the structure condition) and DDIM inversion of every frame's VAE
  latent (posterior mean) with the inversion prompt (empty by default), conditioned on the frame's
  depth through the ControlNet, without classifier-free guidance;
* `edit`: at every denoising step the frame order is randomly permuted (seeded) before the frames
  are grouped into grids, so that over the steps every frame interacts with many others; the
  grid latents are denoised jointly with the grid-shaped depth control (ControlNet) and classifier-
  free guidance, then put back into frame order. The final latents are decoded as grids.

When the frame count is not a multiple of grid_size², the last grid is filled with extra copies of
randomly chosen frames (copies of the last frame without shuffling); each frame's result is read from
its first cell, the copies are dropped. The official code instead truncates the video.

Defaults (official `configs/*.yaml`): 3x3 grids, 50 DDIM steps, 50 inversion steps, guidance 7.5,
ControlNet conditioning scale 1.0, ControlNet also during inversion, cell area 512².
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from bench.method import Method
from bench.types import Video


# ------------------------------------------------------------------------------------------------
# grid arrangement (pure functions, unit-tested)
# ------------------------------------------------------------------------------------------------
def grid_order(num_frames: int, grid_size: int, rng: np.random.Generator | None = None,
               shuffle: bool = True) -> np.ndarray:
    """Which frame goes into each grid cell: int array, length a multiple of grid_size².

    Cells are filled grid by grid, row-major inside a grid. Every frame appears at least once;
    padding cells (to complete the last grid) repeat frames. With `shuffle` the order is a fresh
    random permutation drawn from `rng`.
    """
    if num_frames < 1 or grid_size < 1:
        raise ValueError(f"need num_frames >= 1 and grid_size >= 1, got {num_frames}, {grid_size}")
    cells = grid_size * grid_size
    pad = math.ceil(num_frames / cells) * cells - num_frames
    if not shuffle:
        return np.concatenate([np.arange(num_frames), np.full(pad, num_frames - 1)]).astype(np.int64)
    if rng is None:
        raise ValueError("grid_order(shuffle=True) needs a numpy Generator")
    extra = rng.choice(num_frames, size=pad, replace=pad > num_frames)
    return rng.permutation(np.concatenate([np.arange(num_frames), extra])).astype(np.int64)


def first_cells(order: np.ndarray, num_frames: int) -> np.ndarray:
    """For each frame 0..num_frames-1, the index of the first cell holding it (the inverse permutation)."""
    order = np.asarray(order)
    frames, first = np.unique(order, return_index=True)
    if len(frames) != num_frames or frames[0] != 0 or frames[-1] != num_frames - 1:
        raise ValueError(f"grid order does not cover frames 0..{num_frames - 1}: {order.tolist()}")
    return first


def frames_to_grids(frames: Any, order: np.ndarray, grid_size: int) -> Any:
    """(N, C, h, w) tensor -> (G, C, g·h, g·w) grids; cell k of the sequence holds frame order[k]."""
    import torch

    g = grid_size
    order = np.asarray(order)
    if len(order) % (g * g):
        raise ValueError(f"grid order length {len(order)} is not a multiple of {g * g}")
    n, c, h, w = frames.shape
    cells = frames[torch.as_tensor(order, device=frames.device)]
    grids = cells.reshape(len(order) // (g * g), g, g, c, h, w)  # (G, row, col, C, h, w)
    return grids.permute(0, 3, 1, 4, 2, 5).reshape(-1, c, g * h, g * w)


def grids_to_cells(grids: Any, grid_size: int) -> Any:
    """(G, C, g·h, g·w) -> (G·g², C, h, w) in cell order (the inverse reshape of frames_to_grids)."""
    g = grid_size
    n, c, hh, ww = grids.shape
    if hh % g or ww % g:
        raise ValueError(f"grid of size {hh}x{ww} does not split into {g}x{g} cells")
    h, w = hh // g, ww // g
    return grids.reshape(n, c, g, h, g, w).permute(0, 2, 4, 1, 3, 5).reshape(n * g * g, c, h, w)


def grids_to_frames(grids: Any, order: np.ndarray, num_frames: int, grid_size: int) -> Any:
    """Undo `frames_to_grids`: (G, C, g·h, g·w) -> (N, C, h, w) in frame order (first copy of each frame)."""
    import torch

    cells = grids_to_cells(grids, grid_size)
    idx = torch.as_tensor(first_cells(order, num_frames), device=cells.device)
    return cells[idx]


def cell_size(height: int, width: int, resolution: int, multiple: int = 8) -> tuple[int, int]:
    """The official RAVE frame size: keep the aspect ratio, area ~ resolution², sides multiples of 8."""
    scale = math.sqrt(resolution * resolution / float(height * width))
    h = max(multiple, int(height * scale) // multiple * multiple)
    w = max(multiple, int(width * scale) // multiple * multiple)
    return h, w
