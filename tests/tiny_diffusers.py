"""Tiny random-weight diffusers pipelines, built from configs only (no network), for tests.

Every builder writes a directory in the standard Hugging Face hub layout (`model_index.json`
plus one sub-folder per component, or a single model folder), so tests load them through the
same `from_pretrained(path, local_files_only=True)` path that real weights use. Point a method
at one with its `weights=` option or with `$VIDEDITBENCH_WEIGHT_<NAME>`.

Shapes follow Stable Diffusion 1.5 (VAE downsampling x8, 4 latent channels, CLIP text encoder
feeding cross-attention) with tiny widths: a 64x64 frame becomes an 8x8 latent. The tokenizer is
the real CLIP BPE tokenizer, built offline from the vocabulary that open_clip ships.

Builders:
  build_sd15_dir(path)              stable-diffusion-v1-5 layout (StableDiffusionPipeline, PNDM)
  build_ip2p_dir(path)              instruct-pix2pix layout (8-channel UNet, Euler ancestral)
  build_paint_by_example_dir(path)  Paint-by-Example layout (9-channel UNet, CLIP image encoder)
  build_motion_adapter_dir(path)    AnimateDiff MotionAdapter matching the tiny UNet
ControlNet and DPT depth builders: `tests/tiny_control.py`; the CLIP tokenizer files:
`tests/tiny_models.write_clip_tokenizer`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tiny_models import write_clip_tokenizer

# Tiny but structurally faithful sizes.
TEXT_HIDDEN = 32  # CLIP text hidden size == UNet cross_attention_dim
UNET_CHANNELS = (16, 32)
UNET_LAYERS_PER_BLOCK = 1
UNET_HEADS = 2
NORM_GROUPS = 8
VAE_CHANNELS = (8, 8, 16, 16)  # four levels -> three downsamplings -> factor 8, like SD
VAE_NORM_GROUPS = 4
#: SD 1.5 / instruct-pix2pix / Paint-by-Example noise schedule (their scheduler configs)
SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000}

_TOKENIZER_DIR: Path | None = None


def _set_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------------------------
def tiny_tokenizer():
    """The real CLIP tokenizer (transformers CLIPTokenizer), built once per process from open_clip's vocab."""
    global _TOKENIZER_DIR
    from transformers import CLIPTokenizer

    if _TOKENIZER_DIR is None or not (_TOKENIZER_DIR / "vocab.json").is_file():
        _TOKENIZER_DIR = write_clip_tokenizer(tempfile.mkdtemp(prefix="clip-tokenizer-"))
    return CLIPTokenizer(
        str(_TOKENIZER_DIR / "vocab.json"),
        str(_TOKENIZER_DIR / "merges.txt"),
        model_max_length=77,
        pad_token="<|endoftext|>",
    )


# --------------------------------------------------------------------------------------------
# components
# --------------------------------------------------------------------------------------------
def tiny_text_encoder(seed: int = 0):
    from transformers import CLIPTextConfig, CLIPTextModel

    _set_seed(seed)
    cfg = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=64,
        num_attention_heads=2,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=TEXT_HIDDEN,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    return CLIPTextModel(cfg).eval()


def unet_config(in_channels: int = 4, cross_attention_dim: int = TEXT_HIDDEN) -> dict[str, Any]:
    return dict(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=UNET_CHANNELS,
        layers_per_block=UNET_LAYERS_PER_BLOCK,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=UNET_HEADS,
        norm_num_groups=NORM_GROUPS,
    )


def tiny_unet(in_channels: int = 4, cross_attention_dim: int = TEXT_HIDDEN, seed: int = 0):
    from diffusers import UNet2DConditionModel

    _set_seed(seed)
    return UNet2DConditionModel(**unet_config(in_channels, cross_attention_dim)).eval()


def tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKL

    _set_seed(seed)
    n = len(VAE_CHANNELS)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=VAE_CHANNELS,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=VAE_NORM_GROUPS,
        sample_size=64,
        scaling_factor=0.18215,
    ).eval()


def pndm_scheduler():
    from diffusers import PNDMScheduler

    return PNDMScheduler(**SD_BETAS, skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)


def ddim_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(**SD_BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def euler_ancestral_scheduler():
    from diffusers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler(**SD_BETAS)


def tiny_motion_adapter(seed: int = 0):
    from diffusers import MotionAdapter

    _set_seed(seed)
    return MotionAdapter(
        block_out_channels=UNET_CHANNELS,
        motion_layers_per_block=UNET_LAYERS_PER_BLOCK,
        motion_norm_num_groups=NORM_GROUPS,
        motion_num_attention_heads=2,
        motion_max_seq_length=32,
        use_motion_mid_block=True,
    ).eval()


def tiny_controlnet(seed: int = 0):
    """A ControlNet matching `tiny_unet()`; its conditioning embedding downsamples x8 like the VAE."""
    from diffusers import ControlNetModel

    _set_seed(seed)
    return ControlNetModel(
        in_channels=4,
        block_out_channels=UNET_CHANNELS,
        layers_per_block=UNET_LAYERS_PER_BLOCK,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=UNET_HEADS,
        norm_num_groups=NORM_GROUPS,
        conditioning_embedding_out_channels=(8, 8, 8, 16),
    ).eval()


def tiny_image_processor(size: int = 32):
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def tiny_paint_by_example_encoder(seed: int = 0):
    try:
        from diffusers.pipelines.paint_by_example import PaintByExampleImageEncoder
    except ImportError:  # diffusers >= 0.36 moved it under pipelines.deprecated
        from diffusers.pipelines.deprecated.paint_by_example import PaintByExampleImageEncoder
    from transformers import CLIPVisionConfig

    _set_seed(seed)
    cfg = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=2,
        num_hidden_layers=4,  # mapper gets (4 + 1) // 5 = 1 transformer block
        image_size=32,
        patch_size=8,
        projection_dim=TEXT_HIDDEN,
    )
    return PaintByExampleImageEncoder(cfg, proj_size=TEXT_HIDDEN).eval()


# --------------------------------------------------------------------------------------------
# pipeline directories (hub layout)
# --------------------------------------------------------------------------------------------
def build_sd15_dir(path: str | os.PathLike, seed: int = 0, variant: str | None = "fp16") -> Path:
    """A tiny `stable-diffusion-v1-5` folder: vae, text_encoder, tokenizer, unet, scheduler (PNDM).

    Saved as the `fp16` variant (`*.fp16.safetensors`) by default because that is what the
    `stable-diffusion-v1-5` weights spec downloads; load it with `variant="fp16"` (the loader in
    `methods.diffusion_common` detects this).
    """
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=tiny_vae(seed),
        text_encoder=tiny_text_encoder(seed + 1),
        tokenizer=tiny_tokenizer(),
        unet=tiny_unet(4, seed=seed + 2),
        scheduler=pndm_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if variant == "fp16":
        import torch

        pipe.to(dtype=torch.float16)  # the real fp16 variant stores half-precision tensors
    pipe.save_pretrained(str(path), safe_serialization=True, variant=variant)
    return Path(path)


def build_ip2p_dir(path: str | os.PathLike, seed: int = 0) -> Path:
    """A tiny `instruct-pix2pix` folder: the UNet takes 8 channels (noisy latent + image latent)."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=tiny_vae(seed),
        text_encoder=tiny_text_encoder(seed + 1),
        tokenizer=tiny_tokenizer(),
        unet=tiny_unet(8, seed=seed + 2),
        scheduler=euler_ancestral_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(path), safe_serialization=True)
    return Path(path)


def build_paint_by_example_dir(path: str | os.PathLike, seed: int = 0) -> Path:
    """A tiny `Paint-by-Example` folder: 9-channel UNet (latent + masked-image latent + mask)."""
    from diffusers import PaintByExamplePipeline

    pipe = PaintByExamplePipeline(
        vae=tiny_vae(seed),
        image_encoder=tiny_paint_by_example_encoder(seed + 1),
        unet=tiny_unet(9, seed=seed + 2),
        scheduler=pndm_scheduler(),
        safety_checker=None,
        feature_extractor=tiny_image_processor(32),
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(path), safe_serialization=True)
    # The hub repo declares the encoder as ["paint_by_example", ...], a module path that newer diffusers
    # no longer resolve on their own; mirror it so loaders are tested against the real layout.
    index_path = Path(path) / "model_index.json"
    index = json.loads(index_path.read_text())
    index["image_encoder"] = ["paint_by_example", "PaintByExampleImageEncoder"]
    index_path.write_text(json.dumps(index, indent=2))
    return Path(path)


def build_motion_adapter_dir(path: str | os.PathLike, seed: int = 0) -> Path:
    adapter = tiny_motion_adapter(seed)
    adapter.save_pretrained(str(path), safe_serialization=True)
    return Path(path)
