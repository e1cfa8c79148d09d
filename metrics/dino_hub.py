"""DINO v1 checkpoints in the original `facebookresearch/dino` format, loaded into transformers' ViTModel.

VBench's subject_consistency loads `dino_vitbase16_pretrain.pth` (a plain state dict of the DINO
repository's VisionTransformer) through `torch.hub`. The Hugging Face `facebook/dino-vitb16` repo holds
the same weights under transformers' names. This module maps the original names onto ViTModel
(strictly: every tensor must be used and every ViTModel parameter filled), so a VBench cache file
works as `weights` without conversion. Architecture facts of DINO's ViT: pre-norm blocks, fused
qkv with bias, exact GELU MLP with ratio 4, LayerNorm eps 1e-6, final norm on the CLS token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.errors import VidEditBenchError

_BLOCK = re.compile(r"^blocks\.(\d+)\.")
#: original per-block names -> ViTModel names, for the two layouts transformers has used:
#: 4.x (`encoder.layer.N.attention.attention.query`, ...) and 5.x (`layers.N.attention.q_proj`, ...)
_LAYOUTS: dict[str, dict[str, Any]] = {
    "v4": {
        "prefix": "encoder.layer.{i}.",
        "qkv": ("attention.attention.query", "attention.attention.key", "attention.attention.value"),
        "map": {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.output.dense",
                "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"},
    },
    "v5": {
        "prefix": "layers.{i}.",
        "qkv": ("attention.q_proj", "attention.k_proj", "attention.v_proj"),
        "map": {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.o_proj",
                "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"},
    },
}
_TOP_MAP = {
    "cls_token": "embeddings.cls_token",
    "pos_embed": "embeddings.position_embeddings",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}


def is_dino_hub_state_dict(sd: Any) -> bool:
    return isinstance(sd, dict) and "patch_embed.proj.weight" in sd and "blocks.0.attn.qkv.weight" in sd


def convert_dino_hub_state_dict(sd: dict[str, Any], layout: str = "v5") -> tuple[dict[str, Any], dict[str, Any]]:
    """(ViTConfig kwargs, transformers state dict in `layout`) of an original DINO ViT state dict."""
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    sd = {k[len("backbone."):] if k.startswith("backbone.") else k: v for k, v in sd.items()}
    sd = {k: v for k, v in sd.items() if not k.startswith("head.")}  # DINO training heads, unused by VBench
    if not is_dino_hub_state_dict(sd):
        raise VidEditBenchError("not an original DINO ViT state dict (no patch_embed.proj.weight / blocks.0.attn.qkv.weight)")
    hidden, _, patch, _ = sd["patch_embed.proj.weight"].shape
    layers = 1 + max(int(m.group(1)) for k in sd if (m := _BLOCK.match(k)))
    n_pos = sd["pos_embed"].shape[1] - 1
    grid = int(round(n_pos**0.5))
    if grid * grid != n_pos:
        raise VidEditBenchError(f"DINO pos_embed has {n_pos} patch positions, not a square grid")
    out: dict[str, Any] = {}
    used: set[str] = set()
    for k, new in _TOP_MAP.items():
        if k in sd:
            out[new] = sd[k]
            used.add(k)
    lay = _LAYOUTS[layout]
    for i in range(layers):
        p, q = f"blocks.{i}.", lay["prefix"].format(i=i)
        for old, new in lay["map"].items():
            for suffix in ("weight", "bias"):
                key = f"{p}{old}.{suffix}"
                if key in sd:
                    out[f"{q}{new}.{suffix}"] = sd[key]
                    used.add(key)
        for suffix in ("weight", "bias"):
            key = f"{p}attn.qkv.{suffix}"
            if key in sd:
                for name, part in zip(lay["qkv"], sd[key].chunk(3, dim=0)):
                    out[f"{q}{name}.{suffix}"] = part.clone()
                used.add(key)
    left = sorted(set(sd) - used)
    if left:
        raise VidEditBenchError(f"DINO checkpoint has tensors the ViT does not use: {left[:6]}")
    heads = hidden // 64  # DINO ViT-S/B use 64-d heads (ViT-S/16: 6 heads, ViT-B/16: 12 heads)
    config = dict(
        hidden_size=int(hidden), num_hidden_layers=int(layers), num_attention_heads=int(heads),
        intermediate_size=int(sd["blocks.0.mlp.fc1.weight"].shape[0]), hidden_act="gelu", layer_norm_eps=1e-6,
        image_size=int(grid * patch), patch_size=int(patch), qkv_bias="blocks.0.attn.qkv.bias" in sd,
    )
    return config, out


def load_dino_hub_checkpoint(path: Path, device: str = "cpu", num_heads: int | None = None) -> Any:
    """A transformers ViTModel (no pooler) holding an original DINO `.pth` state dict, eval, float32."""
    import torch
    from transformers import ViTConfig, ViTModel

    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets one clear line
        raise VidEditBenchError(f"cannot read DINO checkpoint {path}: {e}") from e
    if isinstance(sd, dict) and isinstance(sd.get("teacher"), dict):  # DINO training checkpoints
        sd = sd["teacher"]
    if not isinstance(sd, dict):
        raise VidEditBenchError(f"{path}: expected a DINO ViT state dict, got {type(sd).__name__}")
    try:
        config_kw, _ = convert_dino_hub_state_dict(sd)
        if num_heads:
            config_kw["num_attention_heads"] = int(num_heads)
        model = ViTModel(ViTConfig(**config_kw), add_pooling_layer=False)
        layout = "v5" if "layers.0.attention.q_proj.weight" in model.state_dict() else "v4"
        _, hf_sd = convert_dino_hub_state_dict(sd, layout)
    except VidEditBenchError as e:
        raise VidEditBenchError(f"{path}: {e}") from None
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in hf_sd.items()}, strict=False)
    if missing or unexpected:
        raise VidEditBenchError(f"{path}: DINO weights do not fit ViT: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.to(device).eval()


__all__ = ["convert_dino_hub_state_dict", "is_dino_hub_state_dict", "load_dino_hub_checkpoint"]
