"""Depth-ControlNet video editing with cross-frame attention (Text2Video-Zero / ControlVideo family).

Structure-guided, training-free: every frame is generated from text by Stable Diffusion 1.5 under a
depth ControlNet (v1.1 `control_v11f1p_sd15_depth`) fed with that frame's depth map, so the edit
follows the source's geometry and motion. Appearance is tied across frames in two ways:

* the SAME initial noise latent for every frame (one draw from the method's seed, repeated);
* cross-frame attention: in every self-attention layer of the UNet and of the ControlNet, each
  frame attends to the keys/values of the FIRST frame (Text2Video-Zero's ControlNet mode).

Frames run in chunks, each led by frame 0 (the anchor; its duplicates are dropped), with the
Text2Video-Zero group's processor and chunking (`methods.text2video_zero`). Depth maps come from
`methods.depth` in `prepare` (cached per source video by the harness).

Defaults = Text2Video-Zero's ControlNet settings (preset `official`, `model.py`
`Model.process_controlnet_depth`): 20 DDIM steps (eta 0), guidance 9.0, ControlNet conditioning
scale 1.0, its prompt suffix ", best quality, extremely detailed" and negative prompt, chunks of 8
frames. `cross_frame_attention=False` is the frame-wise ControlNet ablation (same noise,
independent frames). `methods/presets/controlnet-depth.yaml` also has `v2vbench`.

Official mode: declared differences (preset `official`).

Differences from the official code that change output frames:
* models: ControlNet v1.1 depth and DPT-Hybrid depth (official: ControlNet v1.0 `sd-controlnet-depth` and the ControlNet MiDaS annotator)
* resize: shorter side scaled to 512, multiples of 8 (official `prepare_video`: longer side 512, multiples of 64)
* random draws: the initial latent from a CPU generator seeded with the run's seed (official: the global RNG)
* frames: every frame of the sample (official: re-sampled to its output fps, at most its frame limit)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.api.errors import VidEditBenchError
from bench.api.types import Video
from methods.depth import DEPTH_WEIGHTS, DepthEstimator, resize_controls
from methods.diffusion_common import (
    DiffusersMethod,
    cpu_generator,
    detect_variant,
    dtype_kwarg,
    load_pipeline,
    torch_dtype_for,
)

SD_WEIGHTS = "stable-diffusion-v1-5"
CONTROLNET_WEIGHTS = "controlnet-depth-sd15"
#: Text2Video-Zero's ControlNet prompt additions (model.py, Model.process_controlnet_depth)
T2VZ_PROMPT_SUFFIX = ", best quality, extremely detailed"
T2VZ_NEGATIVE_PROMPT = ("longbody, lowres, bad anatomy, bad hands, missing fingers, extra digit, fewer digits, "
                        "cropped, worst quality, low quality")


def _load_controlnet(path: Path, device: str, dtype: str) -> Any:
    """create_model loader: a diffusers ControlNetModel folder (config.json + weights)."""
    import torch
    from diffusers import ControlNetModel

    kwargs: dict[str, Any] = {"local_files_only": True, **dtype_kwarg(getattr(torch, dtype))}
    if detect_variant(Path(path)):
        kwargs["variant"] = "fp16"
    try:
        model = ControlNetModel.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise VidEditBenchError(
            f"could not load a ControlNet from {path}: {type(exc).__name__}: {exc} (expected a diffusers "
            f"ControlNetModel folder; re-download with `videditbench weights download {CONTROLNET_WEIGHTS}` "
            "or fix the 'controlnet' option)"
        ) from exc
    return model.to(device).eval()


def load_controlnet(weights: str, device: str) -> Any:
    from bench.models import create_model

    dtype = str(torch_dtype_for(device)).replace("torch.", "")
    return create_model(weights, _load_controlnet, device, dtype=dtype)


def ddim_from(config: Any) -> Any:
    """A fresh DDIM scheduler with the checkpoint's noise schedule (latents are never clipped)."""
    from diffusers import DDIMScheduler

    extra = {} if "clip_sample" in config else {"clip_sample": False}
    return DDIMScheduler.from_config(config, **extra)


class DepthConditioned(DiffusersMethod):
    """Shared parts of the depth-ControlNet methods: three weight options, depth `prepare`, loading."""

    tasks: ClassVar[frozenset[str]] = frozenset({"text"})
    needs: ClassVar[frozenset[str]] = frozenset({"text"})
    weights: ClassVar[tuple[str, ...]] = (SD_WEIGHTS, CONTROLNET_WEIGHTS, DEPTH_WEIGHTS)
    weight_options: ClassVar[dict[str, int]] = {"weights": 0, "controlnet": 1, "depth_model": 2}

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        super().__init__(device=device, seed=seed, **config)
        self.base: Any = None  # the (shared, cached) SD pipeline: vae, text encoder, tokenizer, unet
        self.controlnet: Any = None
        self.depth: DepthEstimator | None = None

    def setup(self) -> None:
        if self.pipe is None:
            # all three load (or raise WeightsMissing) before anything is kept, so a retry reloads all;
            # StableDiffusionImg2ImgPipeline is the same cache entry as framewise-sdedit (shared modules)
            base = load_pipeline("StableDiffusionImg2ImgPipeline", self.weight_source("weights"), self.device)
            controlnet = load_controlnet(self.weight_source("controlnet"), self.device)
            depth = DepthEstimator(self.weight_source("depth_model"), self.device,
                                   int(self.cfg.get("depth_batch_size", 8)))
            depth.load()
            self.base, self.controlnet, self.depth = base, controlnet, depth
            self.pipe = self._load()

    def _load(self) -> Any:
        """The object `edit` runs (a pipeline over the shared modules); must not be None."""
        return self.base

    def teardown(self) -> None:
        self.base = self.controlnet = self.depth = self.pipe = None

    def depth_maps(self, video: Video) -> np.ndarray:
        """(T, H, W, 3) float32 in [0, 1] at the source size."""
        self.setup()
        assert self.depth is not None
        return self.depth(video.frames)

    def prepare(self, video: Video) -> dict[str, np.ndarray]:
        return {"depth": self.depth_maps(video)}

    def _depth_from(self, prepared: Any, video: Video) -> np.ndarray:
        if isinstance(prepared, dict) and "depth" in prepared:
            depth = np.asarray(prepared["depth"], dtype=np.float32)
            if depth.shape != (video.num_frames, video.height, video.width, 3):
                raise VidEditBenchError(f"{self.name}: prepared depth has shape {depth.shape}, expected "
                                        f"{(video.num_frames, video.height, video.width, 3)} (stale prepare cache?)")
            return depth
        return self.depth_maps(video)


class ControlNetDepth(DepthConditioned):
    name: ClassVar[str] = "controlnet-depth"
    description: ClassVar[str] = ("SD 1.5 + depth ControlNet, same initial noise for all frames and cross-frame "
                                  "attention to frame 0 (Text2Video-Zero ControlNet mode)")
    min_gpu_memory_gb: ClassVar[float] = 8.0
    defaults: ClassVar[dict[str, Any]] = {
        "weights": None,  # registry name or local SD 1.5 folder; None = stable-diffusion-v1-5
        "controlnet": None,  # registry name or local ControlNet folder; None = controlnet-depth-sd15
        "depth_model": None,  # registry name or local DPT folder; None = dpt-hybrid-midas
        "resolution": 512,  # shorter side while generating (multiples of 8); None = source size
        "num_inference_steps": 20,  # Text2Video-Zero's ControlNet settings (model.py, process_controlnet_depth)
        "guidance_scale": 9.0,
        "controlnet_conditioning_scale": 1.0,
        "negative_prompt": T2VZ_NEGATIVE_PROMPT,
        "prompt_suffix": T2VZ_PROMPT_SUFFIX,  # appended to the target prompt
        "cross_frame_attention": True,
        "chunk_size": 8,  # frames per pipeline call, anchor frame 0 included
        "depth_batch_size": 8,
    }

    def _load(self) -> Any:
        from diffusers import StableDiffusionControlNetPipeline

        b = self.base
        pipe = StableDiffusionControlNetPipeline(
            vae=b.vae, text_encoder=b.text_encoder, tokenizer=b.tokenizer, unet=b.unet, controlnet=self.controlnet,
            scheduler=ddim_from(b.scheduler.config), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def initial_noise(self, height: int, width: int) -> Any:
        """One (1, 4, h/8, w/8) latent from the seed, drawn on the CPU (same on every device)."""
        import torch

        channels = int(self.pipe.unet.config.in_channels)
        factor = int(self.pipe.vae_scale_factor)
        return torch.randn((1, channels, height // factor, width // factor), generator=cpu_generator(self.seed),
                           dtype=torch.float32)

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
        from contextlib import ExitStack

        from methods.text2video_zero import chunk_frame_ids, cross_frame_attention

        text = self._require_prompt(prompt) + str(self.cfg["prompt_suffix"] or "")
        self.setup()
        h, w = self._size_for(video)
        depth = resize_controls(self._depth_from(prepared, video), h, w)
        control = torch.from_numpy(np.ascontiguousarray(depth)).permute(0, 3, 1, 2)  # (T, 3, h, w) in [0, 1]
        noise = self.initial_noise(h, w)
        negative = self.cfg["negative_prompt"] or None
        results: dict[int, np.ndarray] = {}
        with torch.inference_mode():
            for ids in chunk_frame_ids(video.num_frames, int(self.cfg["chunk_size"])):
                n = len(ids)
                with ExitStack() as stack:
                    if self.cfg["cross_frame_attention"]:
                        stack.enter_context(cross_frame_attention(self.pipe.unet, n))
                        stack.enter_context(cross_frame_attention(self.pipe.controlnet, n))
                    out = self.pipe(
                        prompt=[text] * n,
                        negative_prompt=[negative] * n if negative else None,
                        image=control[ids].to(self.device, self.pipe.controlnet.dtype),
                        height=h,
                        width=w,
                        num_inference_steps=int(self.cfg["num_inference_steps"]),
                        guidance_scale=float(self.cfg["guidance_scale"]),
                        controlnet_conditioning_scale=float(self.cfg["controlnet_conditioning_scale"]),
                        latents=noise.repeat(n, 1, 1, 1).to(self.device, self.pipe.unet.dtype),
                        output_type="np",
                    ).images
                for j, frame_id in enumerate(ids):
                    results.setdefault(frame_id, out[j])
        return self._finish(np.stack([results[i] for i in range(video.num_frames)]), video)
