"""LTX-Video video-to-video (HaCohen et al., 2024): SDEdit through LTX's frame conditioning.

diffusers' `LTXConditionPipeline` conditions generation on images or clips placed at frame
indices; a condition of strength s starts its latent tokens at `lerp(noise, clip latents, s)` and
keeps them frozen while the schedule's noise level is above 1 - s, after which they are denoised
like the rest. Conditioning on the whole source clip (frame index 0) with s = 1 - `strength` is
therefore SDEdit at noise level `strength` along the flow-matching path: 1.0 ignores the source,
0.0 returns it. `image_cond_noise_scale` (pipeline default 0.15) adds the pipeline's
timestep-dependent noise to the conditioned tokens.

Frame count: LTX's VAE compresses time by 8, so clips are padded to 8k+1 frames by repeating the
last frame (a 24-frame sample becomes 25 frames) and the padding is dropped afterwards; sides are
multiples of 32 (methods.video_common). Defaults follow diffusers' LTX-Video 0.9.5 condition
example: 40 steps, guidance 3.0, its negative prompt, 768x512-class size (shorter side 512); the
frame-rate conditioning is the clip's own fps (the `official` preset: 25, the pipeline's default);
strength 0.7 is ours (no official SDEdit setting). bf16 on CUDA, `cpu_offload` /
`vae_tiling` options.

Official mode: baseline only.

Differences from the official code that change output frames:
* algorithm: SDEdit through LTX's frame conditioning (condition strength 1 - `strength`); LTX-Video has no official video editing, strength 0.7 is ours
"""

from __future__ import annotations

from typing import Any, ClassVar

from bench.api.errors import VidEditBenchError
from methods.diffusion_common import own_pipeline
from methods.video_common import VIDEO_MODEL_OPTIONS, VideoModelMethod

LTX_NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"


class LTXV2V(VideoModelMethod):
    name: ClassVar[str] = "ltx-v2v"
    description: ClassVar[str] = "LTX-Video (0.9.5) video-to-video: the source clip as a partial-strength condition (SDEdit)"
    tasks: ClassVar[frozenset[str]] = frozenset({"text"})
    needs: ClassVar[frozenset[str]] = frozenset({"text"})
    weights: ClassVar[tuple[str, ...]] = ("ltx-video-0.9.5",)
    min_gpu_memory_gb: ClassVar[float] = 16.0
    pipeline_class: ClassVar[str] = "LTXConditionPipeline"
    frame_multiple: ClassVar[int] = 8
    size_multiple: ClassVar[int] = 32
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or a local diffusers folder; None = ltx-video-0.9.5
        "resolution": 512,
        **VIDEO_MODEL_OPTIONS,
        "strength": 0.7,  # noise level: the source is the condition at strength 1 - strength
        "num_inference_steps": 40,
        "guidance_scale": 3.0,
        "negative_prompt": LTX_NEGATIVE_PROMPT,
        "frame_rate": None,  # the frame rate LTX is conditioned on; None = the clip's own fps
        "image_cond_noise_scale": 0.15,
        "decode_timestep": 0.0,
        "decode_noise_scale": None,
    }

    def _load(self) -> Any:
        return own_pipeline(super()._load(), "default")

    def call_kwargs(self, video: Any, frames: list[Any], plan: Any, size: tuple[int, int], prompt: str) -> dict[str, Any]:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        strength = float(self.cfg["strength"])
        if not 0.0 <= strength <= 1.0:
            raise VidEditBenchError(f"{self.name}: option 'strength' must be in [0, 1], got {strength}")
        return dict(
            conditions=[LTXVideoCondition(video=frames, frame_index=0, strength=1.0 - strength)],
            prompt=prompt,
            negative_prompt=self.cfg["negative_prompt"] or None,
            height=size[0],
            width=size[1],
            num_frames=plan.model_frames,
            frame_rate=int(round(float(self.cfg["frame_rate"] or video.fps or 25))),
            num_inference_steps=int(self.cfg["num_inference_steps"]),
            guidance_scale=float(self.cfg["guidance_scale"]),
            image_cond_noise_scale=float(self.cfg["image_cond_noise_scale"]),
            decode_timestep=float(self.cfg["decode_timestep"]),
            decode_noise_scale=self.cfg["decode_noise_scale"],
        )
