"""GMFlow (Xu et al., "GMFlow: Learning Optical Flow via Global Matching", CVPR 2022), written for this
project in plain torch.nn so that motion metrics need neither ptlflow nor lightning. Module names and
tensor shapes follow the original repository's checkpoints (`gmflow_sintel-0c07dcb3.pth`,
`{'model': sd}`; ptlflow's `.ckpt` files hold the same keys), so they load with strict key matching.
The code is our own.

Only V2VBench's configuration is built: one scale, 128 feature channels, 6 transformer blocks with
single-head shifted-window attention (2x2 windows, every second block shifted), FFN expansion 4,
global softmax matching, global flow propagation and 8x convex upsampling. Stages:

* `backbone`: 7x7/2 conv, then three stages of two residual blocks (64, 96/2, 128/2 channels; instance
  norm without affine parameters), then a 1x1 conv: 1/8-scale features of both frames;
* sine position encoding per attention window, added to both feature maps;
* `transformer`: each block is window self-attention, then window cross-attention to the other frame
  followed by an FFN on [token, message]; both frames go through the same block side by side;
* global matching: softmax over the all-pairs correlation, flow = expected target position - position;
* `feature_flow_attn`: the flow is replaced by its self-attention average over frame-0 features;
* `upsampler`: per-pixel 9-neighbour convex weights for each of the 8x8 sub-pixels.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_CHANNELS = 128
NUM_BLOCKS = 6
FFN_EXPANSION = 4
ATTN_SPLITS = 2  # windows per side in the transformer
UPSAMPLE = 8
#: the inputs are padded (replicate, split between both sides) to a multiple of this
PAD_MULTIPLE = 32
#: added to the scores of token pairs from different regions of a shifted window
SHIFT_MASK_VALUE = -100.0
POS_TEMPERATURE = 10000.0


# ---- backbone ---------------------------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    """The residual block of GMFlow's and RAFT's CNN encoders (names as in their checkpoints; the skip
    projection's norm is stored twice, as `norm3` and as `downsample.1`)."""

    def __init__(self, cin: int, cout: int, stride: int, norm: Callable[[int], nn.Module] = nn.InstanceNorm2d,
                 bias: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=bias)
        self.norm1, self.norm2 = norm(cout), norm(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.norm3 = norm(cout)
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride), self.norm3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(skip + y)


class CNNEncoder(nn.Module):
    """GMFlow's backbone and RAFT's feature/context encoders: (B, 3, H, W) -> (B, out_dim, H/8, W/8), a
    7x7/2 conv to 64 channels, three stages of two residual blocks (64, 96/2, 128/2), a 1x1 conv."""

    def __init__(self, out_dim: int = FEATURE_CHANNELS, norm: Callable[[int], nn.Module] = nn.InstanceNorm2d,
                 bias: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=bias)
        self.norm1 = norm(64)
        stages, cin = [], 64
        for cout, stride in ((64, 1), (96, 2), (128, 2)):
            stages.append(nn.Sequential(ResidualBlock(cin, cout, stride, norm, bias),
                                        ResidualBlock(cout, cout, 1, norm, bias)))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = nn.Conv2d(128, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


# ---- position encoding --------------------------------------------------------------------------------------
def sine_position(h: int, w: int, channels: int, like: torch.Tensor) -> torch.Tensor:
    """(1, channels, h, w) sine encoding of normalised row/column positions (first half rows, second half
    columns; within each half sin/cos alternate over geometric frequencies)."""
    half = channels // 2
    scale = 2 * math.pi
    eps = 1e-6
    rows = torch.arange(1, h + 1, dtype=like.dtype, device=like.device)
    cols = torch.arange(1, w + 1, dtype=like.dtype, device=like.device)
    rows = rows / (rows[-1:] + eps) * scale
    cols = cols / (cols[-1:] + eps) * scale
    idx = torch.arange(half, dtype=like.dtype, device=like.device)
    freq = POS_TEMPERATURE ** (2 * (idx // 2) / half)

    def encode(pos: torch.Tensor) -> torch.Tensor:  # (n,) -> (n, half)
        angles = pos[:, None] / freq
        out = torch.empty_like(angles)
        out[:, 0::2] = angles[:, 0::2].sin()
        out[:, 1::2] = angles[:, 1::2].cos()
        return out

    pe_rows = encode(rows).t()[:, :, None].expand(half, h, w)
    pe_cols = encode(cols).t()[:, None, :].expand(half, h, w)
    return torch.cat([pe_rows, pe_cols], 0)[None]


def add_window_position(f0: torch.Tensor, f1: torch.Tensor, splits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Add the same encoding, computed for one window, to every window of both feature maps."""
    _, c, h, w = f0.shape
    pos = sine_position(h // splits, w // splits, c, f0).repeat(1, 1, splits, splits)
    return f0 + pos, f1 + pos


# ---- window attention ---------------------------------------------------------------------------------------
def to_windows(x: torch.Tensor, splits: int) -> torch.Tensor:
    """(B, H, W, C) -> (B*splits*splits, H/splits * W/splits, C); windows in row-major order per image."""
    b, h, w, c = x.shape
    wh, ww = h // splits, w // splits
    x = x.reshape(b, splits, wh, splits, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b * splits * splits, wh * ww, c)


def from_windows(x: torch.Tensor, splits: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `to_windows`: -> (B, H, W, C)."""
    wh, ww = h // splits, w // splits
    c = x.shape[-1]
    b = x.shape[0] // (splits * splits)
    x = x.reshape(b, splits, splits, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shifted_window_mask(h: int, w: int, splits: int, device: torch.device) -> torch.Tensor:
    """(splits*splits, L, L) additive mask for attention inside windows of the map rolled by half a window:
    tokens that were not neighbours before the roll (different bands of the wrap-around) get -100."""
    wh, ww = h // splits, w // splits

    def bands(n: int, win: int) -> torch.Tensor:
        band = torch.zeros(n, dtype=torch.long, device=device)
        band[n - win:] = 1
        band[n - win // 2:] = 2
        return band

    region = bands(h, wh)[:, None] * 3 + bands(w, ww)[None, :]  # (H, W)
    win = to_windows(region[None, :, :, None], splits)[..., 0]  # (K*K, L)
    same = win[:, :, None] == win[:, None, :]
    zeros = torch.zeros(same.shape, device=device)
    return zeros.masked_fill(~same, SHIFT_MASK_VALUE)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    scores = torch.matmul(q, k.transpose(1, 2)) / (q.shape[-1] ** 0.5)
    if bias is not None:
        scores = scores + bias
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, h: int, w: int, splits: int,
                     mask: torch.Tensor | None) -> torch.Tensor:
    """Attention within each of splits x splits windows of the (B, H*W, C) token maps; with `mask` the maps
    are first rolled up-left by half a window (and the result rolled back)."""
    b, _, c = q.shape
    shift = (h // splits // 2, w // splits // 2)
    maps = [t.reshape(b, h, w, c) for t in (q, k, v)]
    if mask is not None:
        maps = [torch.roll(t, shifts=(-shift[0], -shift[1]), dims=(1, 2)) for t in maps]
    qw, kw, vw = (to_windows(t, splits) for t in maps)
    bias = None if mask is None else mask.repeat(b, 1, 1)
    out = from_windows(attention(qw, kw, vw, bias), splits, h, w)
    if mask is not None:
        out = torch.roll(out, shifts=shift, dims=(1, 2))
    return out.reshape(b, h * w, c)


class _AttnLayer(nn.Module):
    """Attention from `source` to `target` tokens, merged, normed and (cross layers) passed through an FFN
    on [source, message]; returns source + update."""

    def __init__(self, dim: int, ffn: bool, expansion: int = FFN_EXPANSION):
        super().__init__()
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.merge = nn.Linear(dim, dim, bias=False)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp: nn.Sequential | None = None
        if ffn:
            self.mlp = nn.Sequential(nn.Linear(2 * dim, 2 * dim * expansion, bias=False), nn.GELU(),
                                     nn.Linear(2 * dim * expansion, dim, bias=False))
            self.norm2 = nn.LayerNorm(dim)

    def forward(self, source: torch.Tensor, target: torch.Tensor, h: int, w: int, splits: int,
                mask: torch.Tensor | None) -> torch.Tensor:
        q, k, v = self.q_proj(source), self.k_proj(target), self.v_proj(target)
        msg = window_attention(q, k, v, h, w, splits, mask) if splits > 1 else attention(q, k, v)
        msg = self.norm1(self.merge(msg))
        if self.mlp is not None:
            msg = self.norm2(self.mlp(torch.cat([source, msg], dim=-1)))
        return source + msg


class _Block(nn.Module):
    def __init__(self, dim: int, shifted: bool):
        super().__init__()
        self.shifted = shifted
        self.self_attn = _AttnLayer(dim, ffn=False)
        self.cross_attn_ffn = _AttnLayer(dim, ffn=True)

    def forward(self, x: torch.Tensor, other: torch.Tensor, h: int, w: int, splits: int,
                mask: torch.Tensor | None) -> torch.Tensor:
        mask = mask if self.shifted else None
        x = self.self_attn(x, x, h, w, splits, mask)
        return self.cross_attn_ffn(x, other, h, w, splits, mask)


class _Transformer(nn.Module):
    def __init__(self, dim: int = FEATURE_CHANNELS, blocks: int = NUM_BLOCKS):
        super().__init__()
        self.layers = nn.ModuleList([_Block(dim, shifted=i % 2 == 1) for i in range(blocks)])

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, splits: int) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = f0.shape
        mask = shifted_window_mask(h, w, splits, f0.device).to(f0.dtype) if splits > 1 else None
        # both frames as one batch: frame 0 attends to frame 1 and vice versa
        x = torch.cat([f0, f1], 0).flatten(2).transpose(1, 2)  # (2B, HW, C)
        for layer in self.layers:
            other = torch.cat([x[b:], x[:b]], 0)
            x = layer(x, other, h, w, splits, mask)
        x = x.transpose(1, 2).reshape(2 * b, c, h, w)
        return x[:b], x[b:]


# ---- matching, propagation, upsampling -------------------------------------------------------------------------
def pixel_coords(b: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W): channel 0 = x (column), 1 = y (row)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=like.device), torch.arange(w, device=like.device), indexing="ij")
    return torch.stack([xs, ys], 0).to(like.dtype)[None].expand(b, -1, -1, -1)


def global_matching_flow(f0: torch.Tensor, f1: torch.Tensor) -> torch.Tensor:
    """Flow f0 -> f1 as the softmax-weighted mean target position minus the position, (B, 2, H, W)."""
    b, c, h, w = f0.shape
    corr = torch.matmul(f0.flatten(2).transpose(1, 2), f1.flatten(2)) / (c ** 0.5)  # (B, HW, HW)
    coords = pixel_coords(b, h, w, f0)
    target = torch.matmul(torch.softmax(corr, dim=-1), coords.flatten(2).transpose(1, 2))  # (B, HW, 2)
    return target.transpose(1, 2).reshape(b, 2, h, w) - coords


class _FlowPropagation(nn.Module):
    def __init__(self, dim: int = FEATURE_CHANNELS):
        super().__init__()
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)

    def forward(self, feature: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        b, c, h, w = feature.shape
        q = self.q_proj(feature.flatten(2).transpose(1, 2))
        # the original computes the keys from the projected queries (a quirk its weights are trained with)
        k = self.k_proj(q)
        out = attention(q, k, flow.flatten(2).transpose(1, 2))  # (B, HW, 2)
        return out.transpose(1, 2).reshape(b, 2, h, w)


def convex_upsample(flow: torch.Tensor, weights: torch.Tensor, factor: int) -> torch.Tensor:
    """Each of the factor x factor sub-pixels is a convex combination of the 3x3 coarse neighbours' flow
    (scaled to the fine grid); `weights` (B, 9*factor^2, H, W) are the logits."""
    b, _, h, w = flow.shape
    weights = torch.softmax(weights.reshape(b, 1, 9, factor, factor, h, w), dim=2)
    neigh = F.unfold(factor * flow, [3, 3], padding=1).reshape(b, 2, 9, 1, 1, h, w)
    up = (weights * neigh).sum(dim=2)  # (B, 2, f, f, H, W)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(b, 2, factor * h, factor * w)


def pad_amounts(h: int, w: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding to the next multiple, the odd pixel going right/bottom."""
    ph, pw = -h % multiple, -w % multiple
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


class GMFlow(nn.Module):
    """`forward(img0, img1)`: ImageNet-normalised RGB (B, 3, H, W) -> flow img0 -> img1 (B, 2, H, W) in pixels
    (channel 0 = x). Any H, W: the inputs are replicate-padded to a multiple of 32 and the flow cropped back."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = CNNEncoder(FEATURE_CHANNELS)
        self.transformer = _Transformer(FEATURE_CHANNELS, NUM_BLOCKS)
        self.feature_flow_attn = _FlowPropagation(FEATURE_CHANNELS)
        self.upsampler = nn.Sequential(nn.Conv2d(2 + FEATURE_CHANNELS, 256, 3, 1, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(256, UPSAMPLE ** 2 * 9, 1))

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        b, _, h, w = img0.shape
        left, right, top, bottom = pad_amounts(h, w)
        pad = (left, right, top, bottom)
        x = torch.cat([img0, img1], 0)
        if any(pad):
            x = F.pad(x, pad, mode="replicate")
        feats = self.backbone(x)
        f0, f1 = add_window_position(feats[:b], feats[b:], ATTN_SPLITS)
        f0, f1 = self.transformer(f0, f1, ATTN_SPLITS)
        flow = global_matching_flow(f0, f1)
        flow = self.feature_flow_attn(f0, flow)
        up = convex_upsample(flow, self.upsampler(torch.cat([flow, f0], 1)), UPSAMPLE)
        return up[:, :, top:top + h, left:left + w]


__all__ = ["GMFlow", "PAD_MULTIPLE", "pad_amounts"]
