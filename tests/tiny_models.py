"""Builders of tiny random-weight CLIP / DINOv2 / DINO-v1 ViT / open_clip models and a LAION-aesthetic
head, saved to a folder in the same on-disk format as the real checkpoints, so tests load them
through the same loaders real weights use (point a metric's `weights` option at the folder, or set
`VIDEDITBENCH_WEIGHT_<NAME>`).

Nothing here downloads: the CLIP tokenizer is rebuilt from the real CLIP BPE merges that open_clip
ships as package data. Weights are re-drawn with a wide spread (like the goldens' recipe), because
default HF init makes every frame-to-frame cosine ~0.9999, which no test can tell apart.
Other engineers may import these builders.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CLIP_VOCAB_SIZE = 49408
_N_MERGES = 49152 - 256 - 2


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins for bytes used by GPT-2/CLIP byte-level BPE, in vocabulary order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    order = list(keep)
    chars = [chr(b) for b in keep]
    extra = 0
    for b in range(256):
        if b not in keep:
            order.append(b)
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def write_clip_tokenizer(folder: str | Path) -> Path:
    """Save a transformers CLIPTokenizer (real CLIP BPE, 49408 tokens) into `folder`."""
    import open_clip
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gz = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(gz, "rt", encoding="utf-8").read().split("\n")
    merges = lines[1 : 1 + _N_MERGES]
    alphabet = _byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    assert len(tokens) == CLIP_VOCAB_SIZE, len(tokens)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    tok = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(str(folder))
    return folder


def spread_weights(model: Any, seed: int = 0, qk_gain: float = 3.0) -> Any:
    """Re-draw weights so features differ clearly between inputs (see module docstring)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embed" in name.lower() and "patch" not in name.lower() and "token" not in name.lower():
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            elif p.ndim >= 2:
                fan_in = p[0].numel()
                gain = qk_gain if any(k in name for k in ("q_proj", "k_proj", "query", "key")) else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * gain / fan_in**0.5)
    return model


def build_tiny_clip(
    folder: str | Path,
    *,
    image_size: int = 64,
    patch_size: int = 16,
    projection_dim: int = 32,
    seed: int = 0,
    resize: int | None = None,
    vision_width: int = 64,
    vision_layers: int = 2,
) -> Path:
    """A transformers CLIPModel (text 32-d, vision 64-d, 2 layers each by default), tokenizer and processor.

    `vision_width` / `vision_layers` give a vision tower with a real model's compute shape (speed
    benchmarks, where forwards must dominate); tests keep the tiny default.

    The processor has the real CLIP values (bicubic, mean/std) at this image size: resize the
    shortest edge to `resize` (default image_size), centre crop image_size.
    """
    import math

    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = Path(folder)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=77, vocab_size=CLIP_VOCAB_SIZE, eos_token_id=49407,
                         bos_token_id=49406, pad_token_id=49407, hidden_act="quick_gelu"),
        vision_config=dict(hidden_size=vision_width, intermediate_size=4 * vision_width if vision_width != 64 else 128,
                           num_hidden_layers=vision_layers, num_attention_heads=max(2, vision_width // 64),
                           image_size=image_size, patch_size=patch_size, hidden_act="quick_gelu"),
        projection_dim=projection_dim,
        logit_scale_init_value=math.log(100.0),
    )
    model = CLIPModel(config).eval()
    spread_weights(model, seed)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    model.save_pretrained(str(folder))
    write_clip_tokenizer(folder)
    proc = CLIPImageProcessor(
        size={"shortest_edge": resize or image_size}, crop_size={"height": image_size, "width": image_size},
        resample=3, image_mean=CLIP_MEAN, image_std=CLIP_STD, do_center_crop=True, do_convert_rgb=True,
    )
    proc.save_pretrained(str(folder))
    return folder


def build_tiny_dinov2(folder: str | Path, *, image_size: int = 64, patch_size: int = 8, pos_grid: int = 64,
                      seed: int = 0, width: int = 32, layers: int = 2) -> Path:
    """A transformers Dinov2Model (hidden 32, 2 layers) + BitImageProcessor (resize to 8/7 of the crop
    size, as dinov2-base's 256/224, bicubic; centre crop `image_size`; ImageNet mean/std).

    `pos_grid` is the config image_size: larger than the crop, as dinov2-base (518 vs 224), so the
    position embeddings are interpolated at run time.
    """
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    folder = Path(folder)
    torch.manual_seed(seed)
    config = Dinov2Config(hidden_size=width, num_hidden_layers=layers, num_attention_heads=max(2, width // 64), mlp_ratio=4,
                          patch_size=patch_size, image_size=pos_grid, layerscale_value=1.0)
    model = Dinov2Model(config).eval()
    spread_weights(model, seed)
    model.save_pretrained(str(folder))
    proc = BitImageProcessor(
        size={"shortest_edge": round(image_size * 256 / 224)}, crop_size={"height": image_size, "width": image_size},
        resample=3, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD, do_center_crop=True, do_convert_rgb=True,
    )
    proc.save_pretrained(str(folder))
    return folder


def build_tiny_dino_vit(folder: str | Path, *, image_size: int = 224, patch_size: int = 16, seed: int = 0,
                        width: int = 32, layers: int = 2) -> Path:
    """A DINO v1-style transformers ViTModel (as facebook/dino-vitb16, no pooler), hidden 32, 2 layers."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = Path(folder)
    torch.manual_seed(seed)
    config = ViTConfig(hidden_size=width, num_hidden_layers=layers, num_attention_heads=max(2, width // 64),
                       intermediate_size=2 * width if width == 32 else 4 * width,
                       image_size=image_size, patch_size=patch_size)
    model = ViTModel(config, add_pooling_layer=False).eval()
    spread_weights(model, seed)
    model.save_pretrained(str(folder))
    ViTImageProcessor(size={"height": image_size, "width": image_size}, image_mean=IMAGENET_MEAN,
                      image_std=IMAGENET_STD).save_pretrained(str(folder))
    return folder


def build_tiny_open_clip(folder: str | Path, *, image_size: int = 224, patch_size: int = 32, seed: int = 0,
                         width: int = 64, layers: int = 2) -> Path:
    """An open_clip model in the hub folder format (open_clip_config.json + open_clip_model.safetensors)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_cfg = {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": image_size, "layers": layers, "width": width, "patch_size": patch_size,
                       "head_width": 32 if width == 64 else 64},
        "text_cfg": {"context_length": 77, "vocab_size": CLIP_VOCAB_SIZE, "width": 32, "heads": 2, "layers": 2},
    }
    cfg = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": CLIP_MEAN, "std": CLIP_STD}}
    (folder / "open_clip_config.json").write_text(json.dumps(cfg, indent=2))
    torch.manual_seed(seed)
    model = open_clip.CLIP(**{k: v for k, v in model_cfg.items()})
    spread_weights(model, seed)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder


def build_tiny_aesthetic_head(path: str | Path, *, in_dim: int = 32, seed: int = 0) -> Path:
    """A random LAION aesthetic-v2 head saved as the real .pth: a plain state dict with keys
    layers.{0,2,4,6,7}.{weight,bias} (Linear in_dim-1024-128-64-16-1; Dropouts at 1, 3, 5)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    dims = [in_dim, 1024, 128, 64, 16, 1]
    state = {}
    for (i, (a, b)) in zip((0, 2, 4, 6, 7), zip(dims[:-1], dims[1:])):
        state[f"layers.{i}.weight"] = torch.randn(b, a, generator=g) / a**0.5
        state[f"layers.{i}.bias"] = 0.1 * torch.randn(b, generator=g)
    state["layers.7.bias"] = torch.tensor([5.0])  # centre the random scores near a plausible 5
    torch.save(state, str(path))
    return path


def textured_frames(n: int, h: int, w: int, seed: int):
    """(n, h, w, 3) uint8 smooth random textures (8 px blocks plus noise), so flow matching is not degenerate."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    up = np.kron(base, np.ones((1, 8, 8, 1), np.float32))[:, :h, :w]
    return np.clip(up + rng.normal(0, 8, up.shape), 0, 255).astype(np.uint8)
