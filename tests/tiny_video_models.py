"""Tiny random-weight video diffusion pipelines (Wan, Wan-VACE, CogVideoX, LTX-Video, I2VGen-XL) for tests.

Like `tiny_diffusers`, every builder saves a folder in the Hugging Face hub layout
(`model_index.json` + one sub-folder per component) that the adapters load through the same
`from_pretrained(path, local_files_only=True)` path real checkpoints use. Architectures are the
real diffusers / transformers classes with tiny widths (a few hundred KB per pipeline); frames of
at most 64 px, 5 frames.

The T5 / UMT5 text encoders need a T5 tokenizer; `tiny_t5_tokenizer()` builds a real
`transformers.T5Tokenizer` (SentencePiece-style Unigram model in `tokenizer.json`) over a small
character vocabulary, offline.

Builders:
  build_wan_dir(path)       Wan2.1 T2V layout (WanVideoToVideoPipeline; UMT5, WanTransformer3DModel, AutoencoderKLWan)
  build_wan_vace_dir(path)  Wan2.1-VACE layout (WanVACEPipeline; WanVACETransformer3DModel)
  build_cogvideox_dir(path) CogVideoX layout (CogVideoXVideoToVideoPipeline)
  build_ltx_dir(path)       LTX-Video layout (LTXConditionPipeline)
  build_i2vgen_xl_dir(path) I2VGen-XL component folders (I2VGenXLUNet, CLIP text + vision encoders, DDIM)
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

T5_DIM = 32


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# text side
# --------------------------------------------------------------------------------------------
def tiny_t5_tokenizer():
    """A real T5Tokenizer over a small Unigram vocabulary (pad=0, eos=1, unk=2)."""
    from transformers import T5Tokenizer

    chars = string.ascii_letters + string.digits + string.punctuation
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -3.0) for c in chars] + [("\u2581" + c, -2.5) for c in string.ascii_lowercase]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_t5_encoder(umt5: bool = False, seed: int = 0):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    _seed(seed)
    kw = dict(vocab_size=128, d_model=T5_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
              relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    if umt5:
        return UMT5EncoderModel(UMT5Config(**kw)).eval()
    return T5EncoderModel(T5Config(**kw)).eval()


# --------------------------------------------------------------------------------------------
# Wan 2.1 (T2V / V2V and VACE)
# --------------------------------------------------------------------------------------------
def tiny_wan_vae(seed: int = 0):
    from diffusers import AutoencoderKLWan

    _seed(seed)
    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True]).eval()


def wan_transformer_kwargs() -> dict[str, Any]:
    return dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
                text_dim=T5_DIM, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", rope_max_seq_len=32)


def wan_scheduler():
    """The Wan hub repos' sampler: UniPC on flow-matching sigmas (shift 3.0)."""
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                   num_train_timesteps=1000)


def build_wan_dir(path: str | os.PathLike, seed: int = 0) -> Path:
    from diffusers import WanTransformer3DModel, WanVideoToVideoPipeline

    _seed(seed + 2)
    transformer = WanTransformer3DModel(**wan_transformer_kwargs()).eval()
    pipe = WanVideoToVideoPipeline(tokenizer=tiny_t5_tokenizer(), text_encoder=tiny_t5_encoder(True, seed + 1),
                                   transformer=transformer, vae=tiny_wan_vae(seed), scheduler=wan_scheduler())
    pipe.save_pretrained(str(path), safe_serialization=True)
    return Path(path)


def build_wan_vace_dir(path: str | os.PathLike, seed: int = 0) -> Path:
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    _seed(seed + 2)
    # vace_in_channels = 16 (inactive latent) + 16 (reactive latent) + 64 (8x8 pixel mask per latent cell)
    transformer = WanVACETransformer3DModel(**wan_transformer_kwargs(), vace_layers=[0], vace_in_channels=96).eval()
    pipe = WanVACEPipeline(tokenizer=tiny_t5_tokenizer(), text_encoder=tiny_t5_encoder(True, seed + 1),
                           transformer=transformer, vae=tiny_wan_vae(seed), scheduler=wan_scheduler())
    pipe.save_pretrained(str(path), safe_serialization=True)
    return Path(path)


# --------------------------------------------------------------------------------------------
# I2VGen-XL (AnyV2V's image-to-video backbone)
# --------------------------------------------------------------------------------------------
I2V_DIM = 16  # CLIP text hidden == CLIP vision projection == UNet cross-attention dim


def tiny_i2vgen_unet(seed: int = 0):
    """Four resolution levels with two layers per down block (three per up block), as the real model,
    so AnyV2V's injection points (decoder blocks 1-3, resnet up_blocks[1].resnets[1]) exist."""
    from diffusers import I2VGenXLUNet

    _seed(seed)
    return I2VGenXLUNet(block_out_channels=(8, 8, 16, 16), layers_per_block=2, in_channels=4, out_channels=4,
                        cross_attention_dim=I2V_DIM, attention_head_dim=4, norm_num_groups=4, sample_size=8).eval()


def build_i2vgen_xl_dir(path: str | os.PathLike, seed: int = 0) -> Path:
    """Component folders of `ali-vilab/i2vgen-xl` (its model_index.json names the I2VGenXLPipeline)."""
    import json

    from diffusers import DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    from tiny_diffusers import tiny_image_processor, tiny_tokenizer, tiny_vae

    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    # saved as the hub's fp16 variant (`*.fp16.safetensors`, half-precision tensors), which the weights spec downloads
    half = {"safe_serialization": True, "variant": "fp16"}
    tiny_vae(seed).half().save_pretrained(str(root / "vae"), **half)
    _seed(seed + 1)
    CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=I2V_DIM, intermediate_size=32, num_attention_heads=2,
                                 num_hidden_layers=2, max_position_embeddings=77, projection_dim=I2V_DIM,
                                 bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
                  ).eval().half().save_pretrained(str(root / "text_encoder"), **half)
    tiny_tokenizer().save_pretrained(str(root / "tokenizer"))
    _seed(seed + 2)
    CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_attention_heads=2,
                                                   num_hidden_layers=2, image_size=32, patch_size=8,
                                                   projection_dim=I2V_DIM)
                                  ).eval().half().save_pretrained(str(root / "image_encoder"), **half)
    tiny_image_processor(32).save_pretrained(str(root / "feature_extractor"))
    tiny_i2vgen_unet(seed + 3).half().save_pretrained(str(root / "unet"), **half)
    DDIMScheduler(beta_schedule="squaredcos_cap_v2", clip_sample=False, prediction_type="v_prediction",
                  rescale_betas_zero_snr=True, timestep_spacing="leading", steps_offset=1,
                  set_alpha_to_one=True).save_pretrained(str(root / "scheduler"))
    index = {"_class_name": "I2VGenXLPipeline", "_diffusers_version": "0.26.0",
             "feature_extractor": ["transformers", "CLIPImageProcessor"],
             "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
             "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "I2VGenXLUNet"],
             "vae": ["diffusers", "AutoencoderKL"]}
    (root / "model_index.json").write_text(json.dumps(index, indent=2))
    return root


# --------------------------------------------------------------------------------------------
# CogVideoX
# --------------------------------------------------------------------------------------------
def build_cogvideox_dir(path: str | os.PathLike, seed: int = 0) -> Path:
    """CogVideoX-2b layout: T5 encoder, CogVideoXTransformer3DModel, AutoencoderKLCogVideoX, CogVideoX DDIM."""
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXTransformer3DModel,
        CogVideoXVideoToVideoPipeline,
    )

    _seed(seed)
    vae = AutoencoderKLCogVideoX(in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
                                 up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
                                 latent_channels=4, layers_per_block=1, norm_num_groups=2,
                                 temporal_compression_ratio=4).eval()
    _seed(seed + 2)
    transformer = CogVideoXTransformer3DModel(num_attention_heads=4, attention_head_dim=8, in_channels=4, out_channels=4,
                                              time_embed_dim=2, text_embed_dim=T5_DIM, num_layers=1, sample_width=8,
                                              sample_height=8, sample_frames=9, patch_size=2,
                                              temporal_compression_ratio=4, max_text_seq_length=226).eval()
    scheduler = CogVideoXDDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                       clip_sample=False, prediction_type="v_prediction", rescale_betas_zero_snr=True,
                                       snr_shift_scale=3.0, timestep_spacing="trailing", set_alpha_to_one=True)
    pipe = CogVideoXVideoToVideoPipeline(tokenizer=tiny_t5_tokenizer(), text_encoder=tiny_t5_encoder(False, seed + 1),
                                         vae=vae, transformer=transformer, scheduler=scheduler)
    pipe.save_pretrained(str(path), safe_serialization=True)
    return Path(path)


# --------------------------------------------------------------------------------------------
# LTX-Video
# --------------------------------------------------------------------------------------------
def build_ltx_dir(path: str | os.PathLike, seed: int = 0) -> Path:
    """LTX-Video layout (LTXConditionPipeline): T5 encoder, LTXVideoTransformer3DModel, AutoencoderKLLTXVideo
    (tiny: x4 spatial, x4 temporal compression), flow-matching Euler."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )

    _seed(seed)
    vae = AutoencoderKLLTXVideo(in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
                                decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
                                decoder_layers_per_block=(1, 1, 1, 1, 1),
                                spatio_temporal_scaling=(True, True, False, False),
                                decoder_spatio_temporal_scaling=(True, True, False, False),
                                decoder_inject_noise=(False, False, False, False, False),
                                upsample_residual=(False, False, False, False), upsample_factor=(1, 1, 1, 1),
                                timestep_conditioning=False, patch_size=1, patch_size_t=1, encoder_causal=True,
                                decoder_causal=False).eval()
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    _seed(seed + 2)
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                             num_layers=1, caption_channels=T5_DIM).eval()
    pipe = LTXConditionPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                                text_encoder=tiny_t5_encoder(False, seed + 1), tokenizer=tiny_t5_tokenizer(),
                                transformer=transformer)
    pipe.save_pretrained(str(path), safe_serialization=True)
    return Path(path)
