"""CogVideoX video-to-video (Yang et al., 2024): SDEdit with the CogVideoX text-to-video model.

The source clip is encoded by the CogVideoX 3D VAE, noised to `strength` and denoised with the
target prompt by diffusers' `CogVideoXVideoToVideoPipeline` (CogVideoX-2b by default;
`weights: cogvideox-5b` for the 5B model). CogVideoX 1.0 was trained on 49-frame clips at 480x720:
by default a clip is mapped to 49 frames (`num_frames: 49`; shorter clips are padded by repeating the
last frame — a 24-frame sample becomes frames 0..23 then 25 copies of frame 23 — and the padding is
dropped afterwards; longer clips are sampled uniformly and mapped back to the nearest output frame),
`num_frames: null` pads to the next 8k+1 count instead; the size is 480x720 by default
(multiples of 16; methods.video_common).

Defaults follow the official CogVideoX inference demo (cli_demo.py) and diffusers' video-to-video
example: 50 steps, guidance 6.0, dynamic CFG on, the checkpoint's scheduler, strength 0.8
(diffusers' example), fp16/bf16 on CUDA (`dtype: auto` = bf16; the 2b model was trained in fp16,
`dtype: float16` matches the official demo for it), `cpu_offload` / `vae_tiling` for small GPUs.

Official mode: baseline only.

Differences from the official code that change output frames:
* algorithm: SDEdit on the clip through diffusers' CogVideoXVideoToVideoPipeline; CogVideoX has no official video editing, strength 0.8 is diffusers' example
* frames: clips mapped to 49 frames (padding dropped; longer clips sampled uniformly)
"""

from __future__ import annotations

from typing import Any, ClassVar

from methods.diffusion_common import own_pipeline
from methods.video_common import VIDEO_MODEL_OPTIONS, VideoModelMethod


class CogVideoXV2V(VideoModelMethod):
    name: ClassVar[str] = "cogvideox-v2v"
    description: ClassVar[str] = "CogVideoX (2b; 5b option) video-to-video: SDEdit on the whole clip with a 3D-VAE video transformer"
    tasks: ClassVar[frozenset[str]] = frozenset({"text"})
    needs: ClassVar[frozenset[str]] = frozenset({"text"})
    weights: ClassVar[tuple[str, ...]] = ("cogvideox-2b",)
    min_gpu_memory_gb: ClassVar[float] = 18.0
    pipeline_class: ClassVar[str] = "CogVideoXVideoToVideoPipeline"
    frame_multiple: ClassVar[int] = 8
    size_multiple: ClassVar[int] = 16
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name (cogvideox-2b / cogvideox-5b) or a local diffusers folder
        "resolution": 480,
        **VIDEO_MODEL_OPTIONS,
        "height": 480,
        "width": 720,
        "num_frames": 49,
        "strength": 0.8,
        "num_inference_steps": 50,
        "guidance_scale": 6.0,
        "use_dynamic_cfg": True,
        "negative_prompt": "",
    }

    def _load(self) -> Any:
        return own_pipeline(super()._load(), "default")

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
            use_dynamic_cfg=bool(self.cfg["use_dynamic_cfg"]),
        )
