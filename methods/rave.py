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
its first cell, the copies are dropped.

Defaults (official `configs/*.yaml` and `pipelines/sd_controlnet_rave.py`): 3x3 grids, 50 DDIM steps,
50 inversion steps, guidance 7.5 except at the first step (`cond_step_start` 0.0: the official
comparison leaves the first step unguided, i.e. the negative-prompt prediction alone), ControlNet
conditioning scale 1.0, ControlNet also during inversion, empty inversion and negative prompts,
cell area 512², frames VAE-encoded as grid images (`vae_encode: grid`) and decoded as grids.

Official mode: declared differences (preset `official`).

Differences from the official code that change output frames:
* frame count: the last grid is padded with copies and every frame is returned (official: the clip is truncated to a multiple of grid_size², e.g. 18 of 24 frames at 3x3)
* depth: DPT-Hybrid (V2VBench's MiDaS; official configs: ZoeDepth or the ControlNet annotators), per frame at the cell size
* random draws: grid permutations from numpy's seeded generator (official: `torch.randperm` on the global RNG)
* resize: bicubic antialiased to the cell size (official: its PIL grid preprocessing)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from bench.api.types import Video
from methods.controlnet_depth import DepthConditioned, ddim_from
from methods.depth import resize_controls
from methods.diffusion_common import ddim_invert


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


# ------------------------------------------------------------------------------------------------
# the adapter
# ------------------------------------------------------------------------------------------------


class RAVE(DepthConditioned):
    name: ClassVar[str] = "rave"
    description: ClassVar[str] = ("RAVE: frames denoised jointly in grids, randomly re-shuffled every step, from "
                                  "DDIM-inverted latents with depth ControlNet guidance")
    min_gpu_memory_gb: ClassVar[float] = 16.0
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or local SD 1.5 folder; None = stable-diffusion-v1-5
        "controlnet": None,  # registry name or local ControlNet folder; None = controlnet-depth-sd15
        "depth_model": None,  # registry name or local DPT folder; None = dpt-hybrid-midas
        "resolution": 512,  # one frame ("cell") has about resolution² pixels, sides multiples of 8
        "grid_size": 3,
        "num_inference_steps": 50,
        "num_inversion_steps": 50,
        "guidance_scale": 7.5,
        "controlnet_conditioning_scale": 1.0,
        "control_inversion": True,  # ControlNet guidance during DDIM inversion (official default)
        "inversion_prompt": "",
        "negative_prompt": "",
        "shuffle": True,  # False: the fixed-grid ablation
        # no guidance while step/steps <= this (official `cond_step_start` 0.0: the first step uses the
        # negative-prompt prediction alone); -1 = guidance at every step
        "cond_step_start": 0.0,
        "vae_encode": "grid",  # "grid": VAE-encode the frames as grid images (official); "frame": one by one
        "batch_size": 4,  # grids per UNet call (inversion: batch_size·grid_size² frames per call)
        "vae_batch_size": 1,  # frames per VAE encode / grids per VAE decode (memory only)
        "depth_batch_size": 8,
    }

    # --- pieces ---------------------------------------------------------------------------------
    def _cell(self, video: Video) -> tuple[int, int]:
        res = self.cfg.get("resolution")
        return cell_size(video.height, video.width, int(res)) if res else (
            max(8, video.height // 8 * 8), max(8, video.width // 8 * 8))

    def _embed(self, text: str) -> Any:
        """(1, 77, D) CLIP text embedding (no guidance duplication)."""
        embeds, _ = self.base.encode_prompt(text, self.device, 1, False)
        return embeds

    def _eps(self, latents: Any, t: Any, text: Any, control: Any, scale: float) -> Any:
        """Noise prediction of UNet + ControlNet in the models' dtype; returned as float32."""
        dtype = self.base.unet.dtype
        x = latents.to(dtype)
        residuals: dict[str, Any] = {}
        if control is not None:
            down, mid = self.controlnet(x, t, encoder_hidden_states=text.to(dtype), controlnet_cond=control.to(dtype),
                                        conditioning_scale=scale, return_dict=False)
            residuals = {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
        return self.base.unet(x, t, encoder_hidden_states=text.to(dtype), return_dict=False, **residuals)[0].float()

    def _frames_tensor(self, frames: np.ndarray, size: tuple[int, int]) -> Any:
        """uint8 (T, H, W, 3) -> float32 (T, 3, h, w) in [-1, 1] at the cell size (bicubic, antialiased)."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        return x * 2.0 - 1.0

    def _control_tensor(self, depth: np.ndarray, size: tuple[int, int]) -> Any:
        import torch

        return torch.from_numpy(np.ascontiguousarray(resize_controls(depth, *size))).permute(0, 3, 1, 2)

    # --- prepare: depth + DDIM inversion ----------------------------------------------------------
    def prepare(self, video: Video) -> dict[str, np.ndarray]:
        import torch

        self.setup()
        depth = self.depth_maps(video)
        size = self._cell(video)
        vae = self.base.vae
        frames = self._frames_tensor(video.frames, size)
        control = self._control_tensor(depth, size)
        per_call = max(1, int(self.cfg["batch_size"])) * int(self.cfg["grid_size"]) ** 2
        per_vae = max(1, int(self.cfg["vae_batch_size"]))
        with torch.inference_mode():
            latents = self.encode(frames)
            cond = self._embed(str(self.cfg["inversion_prompt"]))
            inverted = torch.cat([
                self._invert(latents[i:i + per_call], cond, control[i:i + per_call].to(self.device))
                for i in range(0, len(latents), per_call)
            ])
        return {"depth": depth, "latents": inverted.cpu().numpy().astype(np.float32)}

    def encode(self, frames: Any) -> Any:
        """(N, 3, h, w) pixels in [-1, 1] -> (N, 4, h/8, w/8) scaled latents (VAE posterior mean): as
        the grid images of the unshuffled order, split into cells (official), or frame by frame."""
        import torch

        vae = self.base.vae
        per_vae = max(1, int(self.cfg["vae_batch_size"]))
        how = str(self.cfg["vae_encode"])
        if how not in ("grid", "frame"):
            from bench.api.errors import VidEditBenchError

            raise VidEditBenchError(f"rave: option 'vae_encode' is {how!r}; valid: grid, frame")
        g = int(self.cfg["grid_size"])
        order = grid_order(len(frames), g, shuffle=False)
        images = frames_to_grids(frames, order, g) if how == "grid" else frames
        latents = torch.cat([
            vae.encode(images[i:i + per_vae].to(self.device, vae.dtype)).latent_dist.mean.float()
            for i in range(0, len(images), per_vae)
        ]) * float(vae.config.scaling_factor)
        return grids_to_frames(latents, order, len(frames), g) if how == "grid" else latents

    def _invert(self, latents: Any, cond: Any, control: Any) -> Any:
        """Deterministic DDIM inversion x_0 -> x_T of single frames (no guidance), as the official code."""
        text = cond.expand(len(latents), -1, -1)
        ctrl = control if bool(self.cfg["control_inversion"]) else None
        x, _ = ddim_invert(lambda x, t: self._eps(x, t, text, ctrl, 1.0), latents, ddim_from(self.base.scheduler.config),
                           int(self.cfg["num_inversion_steps"]))
        return x

    # --- edit: shuffled-grid denoising --------------------------------------------------------------
    def denoise(self, latents: Any, control: Any, prompt: str) -> tuple[Any, Any, np.ndarray]:
        """DDIM sampling from per-frame latents x_T (N, 4, h, w) with per-frame control (N, 3, 8h, 8w).

        Every step draws a new grid arrangement (seeded), denoises the grids with classifier-free
        guidance (none up to `cond_step_start`) and grid-shaped control, and returns to frame order. Returns (frame latents x_0,
        the grids of the last arrangement, that arrangement).
        """
        import torch

        g = int(self.cfg["grid_size"])
        n = latents.shape[0]
        shuffle = bool(self.cfg["shuffle"])
        guidance = float(self.cfg["guidance_scale"])
        scale = float(self.cfg["controlnet_conditioning_scale"])
        per_call = max(1, int(self.cfg["batch_size"]))
        rng = np.random.default_rng(self.seed)
        sched = ddim_from(self.base.scheduler.config)
        sched.set_timesteps(int(self.cfg["num_inference_steps"]), device=self.device)
        cond = self._embed(prompt)
        uncond = self._embed(str(self.cfg["negative_prompt"]))
        order = grid_order(n, g, shuffle=False)
        grids = frames_to_grids(latents, order, g)  # (what is returned if there are no steps)
        start = float(self.cfg["cond_step_start"])
        for i, t in enumerate(sched.timesteps):
            weight = guidance if start < i / len(sched.timesteps) else 0.0  # official: eps_u alone early on
            order = grid_order(n, g, rng, shuffle=shuffle)
            grids = frames_to_grids(latents, order, g)
            control_grids = frames_to_grids(control, order, g)
            stepped = []
            for i in range(0, len(grids), per_call):
                x, c = grids[i:i + per_call], control_grids[i:i + per_call]
                b = len(x)
                text = torch.cat([uncond.expand(b, -1, -1), cond.expand(b, -1, -1)])
                eps_u, eps_c = self._eps(torch.cat([x, x]), t, text, torch.cat([c, c]), scale).chunk(2)
                stepped.append(sched.step(eps_u + weight * (eps_c - eps_u), t, x).prev_sample)
            grids = torch.cat(stepped)
            latents = grids_to_frames(grids, order, n, g)
        return latents, grids, order

    def edit(
        self,
        video: Video,
        *,
        prompt: str | None = None,
        reference: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        prepared: Any = None,
        source_prompt: str | None = None,
    ) -> np.ndarray:
        import torch

        text = self._require_prompt(prompt)
        self.setup()
        if not (isinstance(prepared, dict) and "latents" in prepared):
            prepared = self.prepare(video)
        size = self._cell(video)
        g = int(self.cfg["grid_size"])
        n = video.num_frames
        latents = torch.from_numpy(np.asarray(prepared["latents"], dtype=np.float32)).to(self.device)
        factor = int(self.base.vae_scale_factor)
        if latents.shape[0] != n or tuple(latents.shape[-2:]) != (size[0] // factor, size[1] // factor):
            from bench.api.errors import VidEditBenchError

            raise VidEditBenchError(f"rave: prepared latents {tuple(latents.shape)} do not match this video "
                                    f"({n} frames, cell {size}) (stale prepare cache?)")
        control = self._control_tensor(self._depth_from(prepared, video), size).to(self.device)
        with torch.inference_mode():
            _, grids, order = self.denoise(latents, control, text)
            # decode the grids of the last arrangement as whole images, as the official code does
            vae = self.base.vae
            per_vae = max(1, int(self.cfg["vae_batch_size"]))
            images = torch.cat([
                vae.decode(grids[i:i + per_vae].to(vae.dtype) / float(vae.config.scaling_factor),
                           return_dict=False)[0].float()
                for i in range(0, len(grids), per_vae)
            ])
            frames = grids_to_frames(images, order, n, g)
        out = ((frames / 2 + 0.5).clamp(0, 1)).permute(0, 2, 3, 1).cpu().numpy()
        return self._finish(out, video)
