"""Frame-wise Paint-by-Example (Yang et al., CVPR 2023): exemplar-guided inpainting of every frame.

Each frame's masked region is repainted to contain the reference image's object (the image-guided
"object swap" task of IVE-Benchmark), with the same seed for every frame.

Built from the checkpoint's components, not from diffusers' `PaintByExamplePipeline` (deprecated:
frozen and moved to `diffusers.pipelines.deprecated`): the VAE and UNet load with diffusers'
`AutoencoderKL` / `UNet2DConditionModel`, the scheduler from its config, the CLIP image processor
with transformers, and the image encoder with `PaintByExampleEncoder` below, a transformers
`CLIPPreTrainedModel` of the checkpoint's architecture (CLIP vision tower -> pooled token ->
(num_layers + 1) // 5 one-head transformer blocks -> layer norm -> projection, plus the learnt
unconditional vector), loaded with `from_pretrained` from the `image_encoder` folder.

Sampling (as the reference implementation): the mask is binarised and inverted (1 = keep), the
masked image (source x keep-mask) is VAE-encoded with a sampled posterior, the UNet sees
`[latents, masked-image latents, keep-mask]` (9 channels), classifier-free guidance uses the learnt
unconditional vector as the negative embedding, and the final latent is decoded. The output is the
WHOLE regenerated frame (nothing is pasted back); with `paste_back` (default) the adapter keeps the
source pixels outside the mask at the source resolution, as inpainting benchmarks expect;
`paste_back: false` returns the raw model output.

Defaults: 50 PNDM steps (the checkpoint's scheduler; the official code uses PLMS), guidance 5.0 (the
paper's / official default), resolution 512.

Official mode: declared differences.

Differences from the official code that change output frames:
* sampler: PNDM, the checkpoint's scheduler (official: PLMS)
* reference: the CLIP processor's resize and centre crop to 224 (official: squashed to 224x224)
* mask: resized to the latent grid by nearest neighbour (official: bilinear)
* paste back: source pixels kept outside the mask (`paste_back`, default on; official: the raw output)
* resize: shorter side 512, multiples of 8 (official: 512x512)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.api.errors import NotApplicable, VidEditBenchError
from bench.api.types import Video
from methods.diffusion_common import (
    SCHEDULERS,
    DiffusersMethod,
    batches,
    dtype_kwarg,
    frames_to_pil,
    image_to_pil,
    masks_to_pil,
    same_seed_generators,
    torch_dtype_for,
)


def _encoder_class() -> type:
    """`PaintByExampleEncoder`, defined on first use (transformers / diffusers are imported lazily)."""
    global _ENCODER_CLS
    if _ENCODER_CLS is not None:
        return _ENCODER_CLS
    import torch
    from diffusers.models.attention import BasicTransformerBlock
    from torch import nn
    from transformers import CLIPPreTrainedModel, CLIPVisionConfig, CLIPVisionModel

    class _Mapper(nn.Module):
        def __init__(self, config: Any):
            super().__init__()
            width = config.hidden_size
            self.blocks = nn.ModuleList([
                BasicTransformerBlock(width, 1, width, activation_fn="gelu", attention_bias=True)
                for _ in range((config.num_hidden_layers + 1) // 5)
            ])

        def forward(self, x: Any) -> Any:
            for block in self.blocks:
                x = block(x)
            return x

    class PaintByExampleEncoder(CLIPPreTrainedModel):
        """The Paint-by-Example exemplar encoder (checkpoint keys: model.*, mapper.blocks.*,
        final_layer_norm.*, proj_out.*, uncond_vector)."""

        config_class = CLIPVisionConfig
        main_input_name = "pixel_values"

        def __init__(self, config: Any):
            super().__init__(config)
            proj = int(getattr(config, "projection_dim", 768) or 768)
            self.model = CLIPVisionModel(config)
            self.mapper = _Mapper(config)
            self.final_layer_norm = nn.LayerNorm(config.hidden_size)
            self.proj_out = nn.Linear(config.hidden_size, proj)
            self.uncond_vector = nn.Parameter(torch.zeros((1, 1, proj)))
            self.post_init()

        def forward(self, pixel_values: Any) -> Any:
            """(B, 3, h, w) -> (B, 1, proj) exemplar embedding."""
            pooled = self.model(pixel_values=pixel_values).pooler_output
            return self.proj_out(self.final_layer_norm(self.mapper(pooled[:, None])))

    _ENCODER_CLS = PaintByExampleEncoder
    return _ENCODER_CLS


_ENCODER_CLS: type | None = None


@dataclass
class PaintByExampleParts:
    vae: Any
    unet: Any
    image_encoder: Any
    feature_extractor: Any
    scheduler_config: Any
    scheduler_class: str


def _load_parts(path: Path, device: str, dtype: str) -> PaintByExampleParts:
    """create_model loader: the components of a Paint-by-Example folder in the hub layout."""
    import diffusers
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig

    torch_dtype = getattr(torch, dtype)
    common = {"local_files_only": True, **dtype_kwarg(torch_dtype)}
    try:
        sched_cfg = diffusers.PNDMScheduler.load_config(str(path / "scheduler"))
        vae = diffusers.AutoencoderKL.from_pretrained(str(path / "vae"), **common)
        unet = diffusers.UNet2DConditionModel.from_pretrained(str(path / "unet"), **common)
        enc_cfg = CLIPVisionConfig.from_pretrained(str(path / "image_encoder"))
        encoder = _encoder_class().from_pretrained(str(path / "image_encoder"), config=enc_cfg, local_files_only=True,
                                                   **dtype_kwarg(torch_dtype, "transformers"))
        processor = CLIPImageProcessor.from_pretrained(str(path / "feature_extractor"))
    except (OSError, ValueError, EnvironmentError) as exc:
        raise VidEditBenchError(
            f"could not load Paint-by-Example from {path}: {type(exc).__name__}: {exc} (expected the hub layout "
            "vae/ unet/ image_encoder/ feature_extractor/ scheduler/; re-download it with "
            "`videditbench weights download paint-by-example` or fix the 'weights' option)"
        ) from exc
    if int(unet.config.in_channels) != 9:
        raise VidEditBenchError(f"{path}: the UNet takes {unet.config.in_channels} input channels, Paint-by-Example "
                                "needs 9 (latent + masked-image latent + mask)")
    return PaintByExampleParts(vae.to(device).eval(), unet.to(device).eval(), encoder.to(device).eval(), processor,
                               sched_cfg, str(sched_cfg.get("_class_name", "PNDMScheduler")))


def load_paint_by_example(weights: str, device: str) -> PaintByExampleParts:
    from bench.models import create_model

    dtype = str(torch_dtype_for(device)).replace("torch.", "")
    return create_model(weights, _load_parts, device, dtype=dtype)


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

    def _load(self) -> PaintByExampleParts:
        parts = load_paint_by_example(self.weight_source(), self.device)
        self._scheduler(parts)  # an unknown scheduler name fails at setup
        return parts

    def _scheduler(self, parts: PaintByExampleParts | None = None) -> Any:
        """A fresh scheduler (schedulers carry state) with the checkpoint's noise schedule."""
        import diffusers

        choice = self.cfg["scheduler"]
        parts = parts or self.pipe
        cls_name = parts.scheduler_class if choice in (None, "", "default") else SCHEDULERS.get(str(choice))
        if cls_name is None:
            raise VidEditBenchError(f"unknown scheduler '{choice}'; valid: default, {', '.join(SCHEDULERS)}")
        return getattr(diffusers, cls_name).from_config(parts.scheduler_config)

    # --- the sampler --------------------------------------------------------------------------
    def embed_example(self, example: Any, n: int) -> Any:
        """(2n, 1, D): n copies of the learnt unconditional vector, then n exemplar embeddings."""
        import torch

        parts = self.pipe
        dtype = parts.image_encoder.dtype
        pixels = parts.feature_extractor(images=example, return_tensors="pt").pixel_values.to(self.device, dtype)
        cond = parts.image_encoder(pixels)  # (1, 1, D)
        uncond = parts.image_encoder.uncond_vector.to(dtype)
        return torch.cat([uncond.expand(n, -1, -1), cond.expand(n, -1, -1)])

    def inpaint(self, images: list[Any], masks: list[Any], example: Any, generators: list[Any]) -> np.ndarray:
        """One batch of frames (PIL), their 'L' masks (255 = repaint) and the exemplar -> float (n, h, w, 3)."""
        import torch
        from diffusers.utils.torch_utils import randn_tensor

        parts = self.pipe
        n = len(images)
        unet, vae = parts.unet, parts.vae
        dtype = unet.dtype
        image = torch.from_numpy(np.stack([np.asarray(i.convert("RGB")) for i in images])).permute(0, 3, 1, 2).float()
        image = image / 127.5 - 1.0
        keep = 1.0 - torch.from_numpy(np.stack([np.asarray(m.convert("L")) for m in masks])[:, None]).float() / 255.0
        keep = (keep >= 0.5).float()  # binarised, 1 = keep (Paint-by-Example's inverted mask)
        masked = image * keep
        h, w = image.shape[-2:]
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        guidance = float(self.cfg["guidance_scale"])
        cfg_on = guidance > 1.0

        embeds = self.embed_example(example, n)
        if not cfg_on:
            embeds = embeds[n:]
        sched = self._scheduler()
        sched.set_timesteps(int(self.cfg["num_inference_steps"]), device=self.device)
        shape = (n, int(vae.config.latent_channels), h // factor, w // factor)
        latents = randn_tensor(shape, generator=generators, device=torch.device(self.device), dtype=dtype)
        latents = latents * sched.init_noise_sigma
        keep_lat = torch.nn.functional.interpolate(keep, size=(h // factor, w // factor)).to(self.device, dtype)
        masked = masked.to(self.device, vae.dtype)
        masked_lat = torch.cat([vae.encode(masked[i:i + 1]).latent_dist.sample(generators[i]) for i in range(n)])
        masked_lat = (masked_lat * float(vae.config.scaling_factor)).to(dtype)
        if cfg_on:
            keep_lat, masked_lat = torch.cat([keep_lat] * 2), torch.cat([masked_lat] * 2)
        step_kwargs = {"generator": generators} if "generator" in inspect.signature(sched.step).parameters else {}
        for t in sched.timesteps:
            x = torch.cat([latents] * 2) if cfg_on else latents
            x = torch.cat([sched.scale_model_input(x, t), masked_lat, keep_lat], dim=1)
            eps = unet(x, t, encoder_hidden_states=embeds.to(dtype), return_dict=False)[0]
            if cfg_on:
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + guidance * (eps_c - eps_u)
            latents = sched.step(eps, t, latents, **step_kwargs, return_dict=False)[0]
        decoded = vae.decode(latents.to(vae.dtype) / float(vae.config.scaling_factor), return_dict=False)[0]
        return (decoded.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()

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
                out.append(self.inpaint([images[i] for i in idx], [masks[i] for i in idx], example,
                                        same_seed_generators(self.seed, len(idx))))
        edited = self._finish(np.concatenate(out), video)
        if self.cfg["paste_back"]:
            edited = np.where(mask[..., None], edited, video.frames)
        return np.ascontiguousarray(edited, dtype=np.uint8)
