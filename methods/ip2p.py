"""Frame-wise InstructPix2Pix (Brooks et al., CVPR 2023).

Every frame is edited independently by the instruction-following model, with the SAME seed for
every frame. The sample's target prompt is turned into the instruction with `instruction_template`
("{prompt}" by default; e.g. "turn it into {prompt}" for description-style prompts).

Defaults follow the paper / official `edit_cli.py`: 100 Euler-ancestral steps (the checkpoint's
scheduler), text guidance 7.5, image guidance 1.5, resolution 512.

Official mode: declared differences.

Differences from the official code that change output frames:
* resize: shorter side scaled to 512, multiples of 8 (official `edit_cli.py`: longer side 512, crop-fit to multiples of 64)
* step schedule: diffusers' Euler-ancestral scheduler (official: k-diffusion `sample_euler_ancestral` on the model's discrete sigmas)
* random draws: one CPU generator per frame seeded with the run's seed (official: the global RNG, one image at a time)
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


class FramewiseInstructPix2Pix(DiffusersMethod):
    name: ClassVar[str] = "framewise-ip2p"
    description: ClassVar[str] = "InstructPix2Pix on every frame independently (same seed per frame)"
    tasks: ClassVar[frozenset[str]] = frozenset({"text"})
    needs: ClassVar[frozenset[str]] = frozenset({"text"})
    weights: ClassVar[tuple[str, ...]] = ("instruct-pix2pix",)
    min_gpu_memory_gb: ClassVar[float] = 4.0
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or local pipeline folder; None = instruct-pix2pix
        "resolution": 512,
        "num_inference_steps": 100,
        "guidance_scale": 7.5,
        "image_guidance_scale": 1.5,
        "negative_prompt": "",
        "instruction_template": "{prompt}",
        "scheduler": "default",  # the checkpoint's Euler ancestral sampler
        "batch_size": 4,
    }

    def _load(self) -> Any:
        base = load_pipeline("StableDiffusionInstructPix2PixPipeline", self.weight_source(), self.device)
        return own_pipeline(base, self.cfg["scheduler"])

    def instruction(self, prompt: str | None) -> str:
        return str(self.cfg["instruction_template"]).format(prompt=self._require_prompt(prompt))

    def _run(self, images: list[Any], text: str, generator: Any = None) -> np.ndarray:
        """One pipeline call on a batch of frames; by default every frame with the same seed
        (`generator`: one generator for the whole batch instead)."""
        n = len(images)
        negative = self.cfg["negative_prompt"] or None
        result = self.pipe(
            prompt=[text] * n,
            image=images,
            num_inference_steps=int(self.cfg["num_inference_steps"]),
            guidance_scale=float(self.cfg["guidance_scale"]),
            image_guidance_scale=float(self.cfg["image_guidance_scale"]),
            negative_prompt=[negative] * n if negative else None,
            generator=generator if generator is not None else same_seed_generators(self.seed, n),
            output_type="np",
        )
        return result.images

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

        text = self.instruction(prompt)
        self.setup()
        images = frames_to_pil(video.frames, self._size_for(video))
        with torch.inference_mode():
            out = [self._run([images[i] for i in idx], text) for idx in batches(len(images), self.cfg["batch_size"])]
        return self._finish(np.concatenate(out), video)
