"""Frame-wise SDEdit (Meng et al., ICLR 2022) with Stable Diffusion 1.5 image-to-image.

Every frame is noised to `strength` of the diffusion trajectory and denoised towards the target
prompt, independently, with the SAME seed for every frame (each frame gets its own generator seeded
identically, so frames share their noise; this is the usual "frame-wise" baseline of video-editing
benchmarks, without any temporal module).

Defaults: strength 0.6 (SDEdit's recommended t0 range is 0.3-0.6; 0.6 is the upper end that still
keeps the layout), 50 DDIM steps (eta 0), classifier-free guidance 7.5, shorter side 512 px (SD 1.5
training resolution, as V2VBench's 512x512 frames), no negative prompt.

Official mode: baseline only.

Differences from the official code that change output frames:
* algorithm: frame-wise SDEdit through Stable Diffusion 1.5 image-to-image; the official SDEdit code runs pixel-space SDE models, so this is our baseline
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench.api.types import Video
from methods.diffusion_common import (
    DiffusersMethod,
    batches,
    frames_to_pil,
    load_pipeline,
    own_pipeline,
    same_seed_generators,
)


class FramewiseSDEdit(DiffusersMethod):
    name: ClassVar[str] = "framewise-sdedit"
    description: ClassVar[str] = "SDEdit on every frame independently (SD 1.5 img2img, same seed per frame)"
    tasks: ClassVar[frozenset[str]] = frozenset({"text"})
    needs: ClassVar[frozenset[str]] = frozenset({"text"})
    weights: ClassVar[tuple[str, ...]] = ("stable-diffusion-v1-5",)
    min_gpu_memory_gb: ClassVar[float] = 4.0
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or local pipeline folder; None = stable-diffusion-v1-5
        "resolution": 512,  # shorter side while editing (sides snapped to multiples of 8); None = source size
        "strength": 0.6,
        "num_inference_steps": 50,
        "guidance_scale": 7.5,
        "negative_prompt": "",
        "scheduler": "ddim",  # 'default' keeps the checkpoint's (PNDM for SD 1.5)
        "batch_size": 4,  # frames per pipeline call (memory only)
    }

    def _load(self) -> Any:
        base = load_pipeline("StableDiffusionImg2ImgPipeline", self.weight_source(), self.device)
        return own_pipeline(base, self.cfg["scheduler"])

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
        images = frames_to_pil(video.frames, self._size_for(video))
        negative = self.cfg["negative_prompt"] or None
        out = []
        with torch.inference_mode():
            for idx in batches(len(images), self.cfg["batch_size"]):
                n = len(idx)
                result = self.pipe(
                    prompt=[text] * n,
                    image=[images[i] for i in idx],
                    strength=float(self.cfg["strength"]),
                    num_inference_steps=int(self.cfg["num_inference_steps"]),
                    guidance_scale=float(self.cfg["guidance_scale"]),
                    negative_prompt=[negative] * n if negative else None,
                    generator=same_seed_generators(self.seed, n),
                    output_type="np",
                )
                out.append(result.images)
        return self._finish(np.concatenate(out), video)
