"""DOVER's technical branch: Video Swin Transformer 3D (tiny) with gated relative position biases.

This is the "swin_tiny_grpb" backbone of FAST-VQA / DOVER: a Video Swin-T (patch 2x4x4, window
8x7x7, depths 2-2-6-2) whose window attention in the first three stages carries a second bias
table (`fragment_position_bias_table`). Each token is assigned the index of the fragment it came
from (the 7x7 grid of 32x32 fragments, mapped to token resolution by nearest interpolation). For
a query/key pair the gate is g = |Δfragment_d| + |Δfragment_h| + |Δfragment_w| and the bias is
`rel_bias * g + frag_bias * (1 - g)`; the gate is the raw L1 distance, not clamped to {0, 1},
exactly as in the reference model. State-dict keys and shapes follow the official checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

Triple = tuple[int, int, int]


@dataclass(frozen=True)
class SwinConfig:
    patch_size: Triple = (2, 4, 4)
    in_chans: int = 3
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: Triple = (8, 7, 7)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    patch_norm: bool = True
    frag_biases: tuple[bool, ...] = (True, True, True, False)

    @property
    def num_features(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


def relative_position_index(window: Triple) -> torch.Tensor:
    """(N, N) int64 index into the (2Wd-1)(2Wh-1)(2Ww-1) bias table, N = Wd*Wh*Ww."""
    wd, wh, ww = window
    grid = torch.stack(torch.meshgrid(torch.arange(wd), torch.arange(wh), torch.arange(ww), indexing="ij"))
    flat = grid.flatten(1)  # 3, N
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0)  # N, N, 3
    rel = rel + torch.tensor([wd - 1, wh - 1, ww - 1])
    return rel[..., 0] * (2 * wh - 1) * (2 * ww - 1) + rel[..., 1] * (2 * ww - 1) + rel[..., 2]


def effective_window(size: Triple, window: Triple, shift: Triple) -> tuple[Triple, Triple]:
    """A window never exceeds the feature map; where it covers a whole axis, that axis is not shifted."""
    win = tuple(s if s <= w else w for s, w in zip(size, window))
    sh = tuple(0 if s <= w else h for s, w, h in zip(size, window, shift))
    return win, sh  # type: ignore[return-value]


def partition_windows(x: torch.Tensor, window: Triple) -> torch.Tensor:
    """(B, D, H, W, C) -> (B * num_windows, Wd*Wh*Ww, C)."""
    b, d, h, w, c = x.shape
    wd, wh, ww = window
    x = x.view(b, d // wd, wd, h // wh, wh, w // ww, ww, c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, wd * wh * ww, c)


def merge_windows(windows: torch.Tensor, window: Triple, b: int, d: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `partition_windows`."""
    wd, wh, ww = window
    x = windows.view(b, d // wd, h // wh, w // ww, wd, wh, ww, -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def _region_labels(length: int, window: int, shift: int) -> torch.Tensor:
    lab = torch.zeros(length, dtype=torch.long)
    if shift > 0:
        lab[length - window : length - shift] = 1
        lab[length - shift :] = 2
    return lab


@lru_cache(maxsize=32)
def _shift_mask_cpu(size: Triple, window: Triple, shift: Triple) -> torch.Tensor:
    """(num_windows, N, N) bool: True between tokens that the cyclic shift brought together."""
    d, h, w = size
    ld, lh, lw = (_region_labels(n, win, s) for n, win, s in zip(size, window, shift))
    labels = ld[:, None, None] * 9 + lh[None, :, None] * 3 + lw[None, None, :]
    win_labels = partition_windows(labels.view(1, d, h, w, 1), window).squeeze(-1)  # nW, N
    return win_labels[:, None, :] != win_labels[:, :, None]


@lru_cache(maxsize=32)
def _fragment_gate_cpu(size: Triple, window: Triple, shift: Triple) -> torch.Tensor:
    """(num_windows, 1, N, N) int8 gate: L1 distance between the fragment indices of two tokens."""
    frag_grid = (1, window[1], window[2])  # fragments per axis, as the reference model sets it
    coords = torch.stack(
        torch.meshgrid(*(torch.arange(n) for n in frag_grid), indexing="ij")
    ).float()  # 3, 1, Fh, Fw
    coords = F.interpolate(coords[None], size=size, mode="nearest").long().permute(0, 2, 3, 4, 1)
    coords = torch.roll(coords, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
    win = partition_windows(coords, window)  # nW, N, 3
    return (win[:, None, :, :] - win[:, :, None, :]).abs().sum(-1).unsqueeze(1).to(torch.int8)


@lru_cache(maxsize=64)
def _on_device(fn, size: Triple, window: Triple, shift: Triple, device: torch.device) -> torch.Tensor:
    """A cached gate/mask, copied to `device` once rather than on every block call."""
    return fn(size, window, shift).to(device)


def _window_chunk(n_win: int, bytes_per_window: int, budget: int = 24 << 20) -> int:
    """Windows per attention chunk: a divisor of the per-clip window count whose attention map stays
    under `budget` bytes. Small chunks bound memory and stay below glibc's mmap threshold, so the
    map is not re-faulted from the kernel on every block (about 35% less system time on CPU)."""
    best = 1
    for d in range(1, n_win + 1):
        if n_win % d == 0 and d * bytes_per_window <= budget:
            best = d
    return best


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention3D(nn.Module):
    def __init__(self, dim: int, window: Triple, num_heads: int, qkv_bias: bool, frag_bias: bool):
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        table_len = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table_len, num_heads))
        if frag_bias:
            self.fragment_position_bias_table = nn.Parameter(torch.zeros(table_len, num_heads))
        else:
            self.fragment_position_bias_table = None
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def _table_bias(self, table: torch.Tensor, n: int) -> torch.Tensor:
        # For shrunken windows the reference model slices the full-window index ([:N, :N]).
        idx = self.relative_position_index[:n, :n].reshape(-1)
        return table[idx].reshape(n, n, -1).permute(2, 0, 1)  # nH, N, N

    def window_bias(self, n: int, gate: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Additive attention bias (nW or 1, nH, N, N): gated position biases plus the -100 shift mask."""
        bias = self._table_bias(self.relative_position_bias_table, n).unsqueeze(0)  # 1, nH, N, N
        if self.fragment_position_bias_table is not None:
            g = gate.to(bias.dtype)  # nW, 1, N, N
            frag = self._table_bias(self.fragment_position_bias_table, n).unsqueeze(0)
            bias = (bias * g).addcmul_(frag, 1 - g)
        if mask is not None:
            shift_bias = torch.where(mask, -100.0, 0.0).to(bias.dtype).unsqueeze(1)
            bias = bias.add_(shift_bias) if bias.shape[0] == mask.shape[0] else bias + shift_bias
        return bias

    def forward(self, x: torch.Tensor, gate: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b_, n, c = x.shape
        n_win = gate.shape[0]
        bias = self.window_bias(n, gate, mask)  # shared by every clip of the batch
        qkv = self.qkv(x).reshape(b_, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = torch.empty(b_, n, c, dtype=x.dtype, device=x.device)
        step = _window_chunk(n_win, self.num_heads * n * n * x.element_size())
        for s in range(0, b_, step):
            q, k, v = qkv[0, s : s + step], qkv[1, s : s + step], qkv[2, s : s + step]
            attn = (q * self.scale) @ k.transpose(-2, -1)
            w0 = s % n_win
            attn.add_(bias if bias.shape[0] == 1 else bias[w0 : w0 + step])
            out[s : s + step] = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(-1, n, c)
        return self.proj(out)


class SwinBlock3D(nn.Module):
    def __init__(self, dim: int, num_heads: int, window: Triple, shift: Triple, mlp_ratio: float,
                 qkv_bias: bool, frag_bias: bool):
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, window, num_heads, qkv_bias, frag_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        b, d, h, w, c = x.shape
        window, shift = effective_window((d, h, w), self.window, self.shift)
        x = self.norm1(x)
        pd, ph, pw = ((win - n % win) % win for n, win in zip((d, h, w), window))
        if pd or ph or pw:
            x = F.pad(x, (0, 0, 0, pw, 0, ph, 0, pd))
        dp, hp, wp = x.shape[1:4]
        shifted = any(s > 0 for s in shift)
        if shifted:
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        gate = _on_device(_fragment_gate_cpu, (dp, hp, wp), window, shift, x.device)
        mask = _on_device(_shift_mask_cpu, (dp, hp, wp), window, shift, x.device) if shifted else None
        out = self.attn(partition_windows(x, window), gate, mask)
        x = merge_windows(out, window, b, dp, hp, wp)
        if shifted:
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x[:, :d, :h, :w, :].contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._attention(x)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 spatial merge: concatenate the four neighbours (order (0,0), (1,0), (0,1), (1,1)), norm, reduce."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    def __init__(self, dim: int, depth: int, num_heads: int, window: Triple, mlp_ratio: float, qkv_bias: bool,
                 frag_bias: bool, downsample: bool):
        super().__init__()
        shift = tuple(w // 2 for w in window)
        self.blocks = nn.ModuleList(
            SwinBlock3D(dim, num_heads, window, (0, 0, 0) if i % 2 == 0 else shift, mlp_ratio, qkv_bias, frag_bias)
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 4, 1)  # B, D, H, W, C
        for blk in self.blocks:
            x = blk(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x.permute(0, 4, 1, 2, 3).contiguous()


class PatchEmbed3D(nn.Module):
    def __init__(self, patch: Triple, in_chans: int, dim: int, norm: bool):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, h, w = x.shape[2:]
        pd, ph, pw = ((p - n % p) % p for n, p in zip((d, h, w), self.patch))
        if pd or ph or pw:
            x = F.pad(x, (0, pw, 0, ph, 0, pd))
        x = self.proj(x)
        if self.norm is not None:
            x = self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
        return x


class VideoSwin3D(nn.Module):
    """(B, 3, T, H, W) normalised clip -> (B, C, T/2, H/32, W/32) features (final LayerNorm applied)."""

    def __init__(self, cfg: SwinConfig = SwinConfig()):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed3D(cfg.patch_size, cfg.in_chans, cfg.embed_dim, cfg.patch_norm)
        self.layers = nn.ModuleList(
            SwinStage(
                cfg.embed_dim * 2**i, cfg.depths[i], cfg.num_heads[i], cfg.window_size, cfg.mlp_ratio,
                cfg.qkv_bias, bool(cfg.frag_biases[i]), downsample=i < len(cfg.depths) - 1,
            )
            for i in range(len(cfg.depths))
        )
        self.norm = nn.LayerNorm(cfg.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
