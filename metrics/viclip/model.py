"""ViCLIP (Wang et al., InternVid, 2023): a CLIP whose vision tower attends over space and time.

Our own implementation with the module tree of the official checkpoint (`vision_encoder.*`,
`text_encoder.*`, `temp`), so `ViClip-InternVid-10M-FLT.pth` (`{'model': state_dict}`) loads with
strict key matching. The architecture is read from the tensor shapes (`infer_config`); only the
head count is not visible in a shape, so it comes from `head_dim` (64 in the released ViT-L/14:
vision width 1024 / 16 heads, text width 768 / 12 heads).

Vision tower: a Conv3d patch embedding with a (k, p, p) kernel, a shared CLS token plus the 2-D
positional embedding per frame, then a learned temporal embedding (one vector per frame index,
fixed to `num_frames`; a single frame gets their mean) added to every patch token; all T*N patch
tokens and one CLS token go through one transformer, and the projected final-norm CLS is the video
embedding. Text tower: the CLIP text transformer with a causal mask, EOT token features projected.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from bench.errors import VidEditBenchError

_FIX = "use the official ViClip-InternVid-10M-FLT.pth (videditbench weights download viclip-internvid-10m-flt)"


@dataclass(frozen=True)
class ViClipConfig:
    # vision tower (defaults: the released ViT-L/14)
    image_size: int = 224
    patch_size: int = 14
    temporal_kernel: int = 1
    num_frames: int = 8
    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    embed_dim: int = 768
    # text tower
    context_length: int = 32
    vocab_size: int = 49408
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    """Pre-norm transformer block; tensors are (sequence, batch, width) as nn.MultiheadAttention's default."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


class VisionEncoder(nn.Module):
    def __init__(self, cfg: ViClipConfig):
        super().__init__()
        w, p, k = cfg.vision_width, cfg.patch_size, cfg.temporal_kernel
        self.conv1 = nn.Conv3d(3, w, (k, p, p), (k, p, p), bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(w))
        self.positional_embedding = nn.Parameter(torch.zeros((cfg.image_size // p) ** 2 + 1, w))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, cfg.num_frames, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(w, cfg.vision_layers, cfg.vision_heads)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.zeros(w, cfg.embed_dim))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) normalised frames -> (B, embed_dim) video embeddings (not normalised)."""
        x = self.conv1(video)  # (B, C, T', h, w)
        b, c, t, gh, gw = x.shape
        tokens = x.permute(0, 2, 3, 4, 1).reshape(b, t, gh * gw, c)
        cls = self.class_embedding + self.positional_embedding[0]
        tokens = tokens + self.positional_embedding[1:]
        temporal = self.temporal_positional_embedding
        if t == 1:
            temporal = temporal.mean(1, keepdim=True)
        elif t != temporal.shape[1]:
            raise VidEditBenchError(
                f"ViCLIP takes {temporal.shape[1]} frames (or 1), got {t}; choose the frames with the stride/sampling options"
            )
        tokens = tokens + temporal[:, :, None, :]  # (B, T, N, C): one vector per frame index
        tokens = tokens.transpose(1, 2).reshape(b, gh * gw * t, c)  # patch-major, then time, as the checkpoint's order
        x = torch.cat([cls.expand(b, 1, c).to(tokens.dtype), tokens], dim=1)
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.ln_post(self.transformer(x))
        return x[0] @ self.proj


class TextEncoder(nn.Module):
    def __init__(self, cfg: ViClipConfig):
        super().__init__()
        self.context_length = cfg.context_length
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.context_length, cfg.text_width))
        self.transformer = Transformer(cfg.text_width, cfg.text_layers, cfg.text_heads)
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.text_projection = nn.Parameter(torch.zeros(cfg.text_width, cfg.embed_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, context_length) token ids (SOT ... EOT, zero padded) -> (B, embed_dim), not normalised."""
        n = tokens.shape[1]
        causal = torch.full((n, n), float("-inf"), device=tokens.device).triu_(1)
        x = self.token_embedding(tokens) + self.positional_embedding[:n]
        x = self.transformer(x.permute(1, 0, 2), causal).permute(1, 0, 2)
        x = self.ln_final(x)
        eot = tokens.argmax(dim=-1)  # EOT has the highest id of the vocabulary
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection


class ViClip(nn.Module):
    def __init__(self, cfg: ViClipConfig = ViClipConfig()):
        super().__init__()
        self.cfg = cfg
        self.vision_encoder = VisionEncoder(cfg)
        self.text_encoder = TextEncoder(cfg)
        self.temp = nn.Parameter(torch.tensor(0.01))  # contrastive temperature of training; unused here

    def encode_vision(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) normalised frames -> (B, embed_dim); ViCLIP's `encode_vision(test=True)` (no token masking)."""
        return self.vision_encoder(video.permute(0, 2, 1, 3, 4).contiguous())

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(tokens)


# ---------------------------------------------------------------------------------------------
# checkpoint loading
# ---------------------------------------------------------------------------------------------
def extract_state_dict(obj: Any, file: str) -> dict[str, torch.Tensor]:
    """The official file is `{'model': state_dict}`; a bare state dict is accepted too."""
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not any(str(k).startswith("vision_encoder.") for k in obj):
        raise VidEditBenchError(f"{file}: not a ViCLIP checkpoint (no vision_encoder.* tensors); {_FIX}")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def _count_layers(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    idx = {int(k[len(prefix):].split(".")[0]) for k in sd if k.startswith(prefix)}
    return max(idx) + 1 if idx else 0


def infer_config(sd: Mapping[str, torch.Tensor], file: str, head_dim: int = 64) -> ViClipConfig:
    try:
        conv = sd["vision_encoder.conv1.weight"].shape  # (width, 3, k, p, p)
        pos = sd["vision_encoder.positional_embedding"].shape  # (grid² + 1, width)
        grid = math.isqrt(pos[0] - 1)
        vision_width, text_width = conv[0], sd["text_encoder.ln_final.weight"].shape[0]
        for w in (vision_width, text_width):
            if w % head_dim:
                raise VidEditBenchError(f"{file}: width {w} is not a multiple of head_dim {head_dim}")
        return ViClipConfig(
            image_size=grid * conv[-1],
            patch_size=conv[-1],
            temporal_kernel=conv[2],
            num_frames=sd["vision_encoder.temporal_positional_embedding"].shape[1],
            vision_width=vision_width,
            vision_layers=_count_layers(sd, "vision_encoder.transformer.resblocks."),
            vision_heads=vision_width // head_dim,
            embed_dim=sd["vision_encoder.proj"].shape[1],
            context_length=sd["text_encoder.positional_embedding"].shape[0],
            vocab_size=sd["text_encoder.token_embedding.weight"].shape[0],
            text_width=text_width,
            text_layers=_count_layers(sd, "text_encoder.transformer.resblocks."),
            text_heads=text_width // head_dim,
        )
    except KeyError as e:
        raise VidEditBenchError(f"{file}: the ViCLIP state dict lacks {e}; {_FIX}") from None


def _checkpoint_file(path: Path) -> Path:
    if path.is_dir():
        files = sorted(path.glob("*.pth")) + sorted(path.glob("*.pt"))
        if not files:
            raise VidEditBenchError(f"{path}: no .pth file in this folder; {_FIX}")
        return files[0]
    return path


def load_viclip(path: str | os.PathLike, device: str = "cpu", head_dim: int = 64) -> ViClip:
    """Loader for `bench.models.create_model`: a ViCLIP checkpoint -> eval-mode float32 ViClip (strict keys)."""
    file = _checkpoint_file(Path(path))
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt / truncated / not a torch file
        raise VidEditBenchError(f"{file}: cannot read the ViCLIP checkpoint ({type(e).__name__}: {e}); {_FIX}") from None
    sd = extract_state_dict(obj, str(file))
    cfg = infer_config(sd, str(file), head_dim)
    with torch.device("meta"):
        model = ViClip(cfg)
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [f"{k} {tuple(sd[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in sd and sd[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise VidEditBenchError(
            f"{file}: the ViCLIP state dict does not match the model (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}); {_FIX}"
        )
    model.load_state_dict(sd, strict=True, assign=True)
    return model.float().eval().requires_grad_(False).to(device)
