"""Wan 2.1 video-to-video (Wan team, 2025): SDEdit with a text-to-video flow-matching model.

The source clip is encoded by the Wan VAE, noised to `strength` along the flow-matching path and
denoised with the target prompt by diffusers' `WanVideoToVideoPipeline` (Wan2.1-T2V-1.3B by
default; `weights: wan2.1-t2v-14b` for the 14B model). All frames are one
latent video; the frame count is mapped to the 4k+1 frames the VAE accepts (pad by repeating the
last frame, drop afterwards: 24 -> 25 -> 24) and the size to multiples of 16 (methods.video_common).

Defaults follow the official Wan 2.1 text-to-video settings (generate.py): 50 sampling steps,
guidance 5.0, the official (Chinese) negative prompt, 480p (shorter side 480); the sampler is the
checkpoint's (UniPC on flow sigmas); `flow_shift` overrides its shift (official t2v: 5.0; diffusers'
video-to-video example: 3.0 at 480p, 5.0 at 720p). `strength` 0.7 is ours (an SDEdit
baseline has no official value; diffusers' example uses 0.7). bf16 on CUDA, `cpu_offload` and
`vae_tiling` for small GPUs; the VAE stays float32 as in diffusers' Wan examples.

Official mode: baseline only.

Differences from the official code that change output frames:
* algorithm: SDEdit on the clip through diffusers' WanVideoToVideoPipeline; Wan 2.1 has no official video-to-video editing, strength 0.7 is diffusers' example
"""

from __future__ import annotations

from typing import Any, ClassVar

from methods.diffusion_common import own_pipeline
from methods.video_common import VIDEO_MODEL_OPTIONS, VideoModelMethod

#: Wan 2.1's official negative prompt (wan/configs/shared_config.py, `sample_neg_prompt`)
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，"
    "多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)


def scheduler_overrides(flow_shift: Any) -> dict[str, Any]:
    return {} if flow_shift in (None, "") else {"flow_shift": float(flow_shift)}


class WanV2V(VideoModelMethod):
    name: ClassVar[str] = "wan-v2v"
    description: ClassVar[str] = "Wan 2.1 T2V (1.3B) video-to-video: SDEdit on the whole clip with a flow-matching video model"
    tasks: ClassVar[frozenset[str]] = frozenset({"text"})
    needs: ClassVar[frozenset[str]] = frozenset({"text"})
    weights: ClassVar[tuple[str, ...]] = ("wan2.1-t2v-1.3b",)
    min_gpu_memory_gb: ClassVar[float] = 12.0
    pipeline_class: ClassVar[str] = "WanVideoToVideoPipeline"
    frame_multiple: ClassVar[int] = 4
    size_multiple: ClassVar[int] = 16
    fp32_components: ClassVar[tuple[str, ...]] = ("vae",)
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or local diffusers folder; None = wan2.1-t2v-1.3b
        "resolution": 480,
        **VIDEO_MODEL_OPTIONS,
        "strength": 0.7,
        "num_inference_steps": 50,
        "guidance_scale": 5.0,
        "negative_prompt": WAN_NEGATIVE_PROMPT,
        "flow_shift": None,  # None = the checkpoint scheduler's shift
    }

    def _load(self) -> Any:
        return own_pipeline(super()._load(), "default", **scheduler_overrides(self.cfg["flow_shift"]))

    def call_kwargs(self, video: Any, frames: list[Any], plan: Any, size: tuple[int, int], prompt: str) -> dict[str, Any]:
        return dict(
            video=frames,
            prompt=prompt,
            negative_prompt=self.cfg["negative_prompt"] or None,
            height=size[0],
            width=size[1],
            strength=float(self.cfg["strength"]),
            num_inference_steps=int(self.cfg["num_inference_steps"]),
            guidance_scale=float(self.cfg["guidance_scale"]),
        )
