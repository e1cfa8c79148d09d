"""Frame-wise Paint-by-Example (Yang et al., CVPR 2023): exemplar-guided inpainting of every frame.

Each frame's masked region is repainted to contain the reference image's object (the image-guided
"object swap" task of IVE-Benchmark), with the same seed for every frame.

The diffusers pipeline regenerates the WHOLE frame (its output is the VAE decoding of the final
latent, the unmasked region included; nothing is pasted back). With `paste_back` (default) the
adapter keeps the source pixels outside the mask at the source resolution, as inpainting
benchmarks expect; `paste_back: false` returns the raw pipeline output.

Defaults: 50 PNDM steps (the checkpoint's scheduler), guidance 5.0 (the paper's / pipeline's
default), resolution 512.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench.errors import NotApplicable
from bench.types import Video
from methods.diffusion_common import (
    DiffusersMethod,
    batches,
    frames_to_pil,
    image_to_pil,
    load_paint_by_example,
    masks_to_pil,
    own_pipeline,
    resize_frames,
    same_seed_generators,
    to_uint8,
)


class FramewisePaintByExample(DiffusersMethod):
    name: ClassVar[str] = "framewise-paint-by-example"
    description: ClassVar[str] = "Paint-by-Example inpainting of the masked region of every frame with the reference"
    tasks: ClassVar[frozenset[str]] = frozenset({"image"})
    needs: ClassVar[frozenset[str]] = frozenset({"reference", "mask"})
    weights: ClassVar[tuple[str, ...]] = ("paint-by-example",)
    min_gpu_memory_gb: ClassVar[float] = 4.0
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or local pipeline folder; None = paint-by-example
        "resolution": 512,
        "num_inference_steps": 50,
        "guidance_scale": 5.0,
        "scheduler": "default",
        "batch_size": 4,
        "paste_back": True,  # keep source pixels outside the mask
    }

    def _load(self) -> Any:
        return own_pipeline(load_paint_by_example(self.weight_source(), self.device), self.cfg["scheduler"])

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

        if reference is None or mask is None:
            raise NotApplicable(f"{self.name} needs a reference image and per-frame masks")
        mask = np.asarray(mask).astype(bool)
        if mask.shape != (video.num_frames, video.height, video.width):
            raise NotApplicable(
                f"{self.name}: mask shape {mask.shape} does not match the video (T, H, W) = "
                f"{(video.num_frames, video.height, video.width)}"
            )
        self.setup()
        size = self._size_for(video)
        images = frames_to_pil(video.frames, size)
        masks = masks_to_pil(mask, size)
        example = image_to_pil(reference)
        out = []
        with torch.inference_mode():
            for idx in batches(len(images), self.cfg["batch_size"]):
                n = len(idx)
                result = self.pipe(
                    example_image=[example] * n,
                    image=[images[i] for i in idx],
                    mask_image=[masks[i] for i in idx],
                    num_inference_steps=int(self.cfg["num_inference_steps"]),
                    guidance_scale=float(self.cfg["guidance_scale"]),
                    generator=same_seed_generators(self.seed, n),
                    output_type="np",
                )
                out.append(to_uint8(result.images))
        edited = self._finish(np.concatenate(out), video)
        if self.cfg["paste_back"]:
            edited = np.where(mask[..., None], edited, video.frames)
        return np.ascontiguousarray(edited, dtype=np.uint8)
