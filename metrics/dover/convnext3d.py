"""DOVER's aesthetic branch: ConvNeXt-T inflated to 3D.

Stem: Conv3d kernel/stride (2,4,4) + channels-first LayerNorm; three downsamplers LayerNorm +
Conv3d (1,2,2)/(1,2,2); stages of depths 3-3-9-3 whose depthwise convs are 7x7 spatially and
alternate temporal kernel sizes 1, 3, 1 ("131" inflation, cycling over each stage's blocks).
The output keeps the spatio-temporal map, with the final LayerNorm over channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


def inflate(depths: tuple[int, ...], strategy: str = "131") -> tuple[tuple[int, ...], ...]:
    """Temporal kernel size of every block: stage i, block j gets int(strategy[j % len(strategy)])."""
    return tuple(tuple(int(strategy[j % len(strategy)]) for j in range(d)) for d in depths)


@dataclass(frozen=True)
class ConvNeXtConfig:
    in_chans: int = 3
    dims: tuple[int, ...] = (96, 192, 384, 768)
    depths: tuple[int, ...] = (3, 3, 9, 3)
    stem_kernel: tuple[int, int, int] = (2, 4, 4)
    #: temporal kernel of each block's depthwise conv, per stage (default: the "131" inflation)
    temporal_kernels: tuple[tuple[int, ...], ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.temporal_kernels:
            object.__setattr__(self, "temporal_kernels", inflate(self.depths))

    @property
    def num_features(self) -> int:
        return self.dims[-1]


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of (N, C, T, H, W), computed as mean/biased variance like the reference."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        shape = (-1,) + (1,) * (x.dim() - 2)
        return self.weight.view(shape) * x + self.bias.view(shape)


class ConvNeXtBlock3D(nn.Module):
    def __init__(self, dim: int, temporal_kernel: int):
        super().__init__()
        # layer scale, registered first so it leads the block's keys as in the official checkpoint
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))
        self.dwconv = nn.Conv3d(dim, dim, kernel_size=(temporal_kernel, 7, 7),
                                padding=(temporal_kernel // 2, 3, 3), groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 4, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 4, 1, 2, 3)


class ConvNeXt3D(nn.Module):
    """(B, 3, T, H, W) normalised clip -> (B, C, T/2, H/32, W/32) features."""

    def __init__(self, cfg: ConvNeXtConfig = ConvNeXtConfig()):
        super().__init__()
        self.cfg = cfg
        dims = cfg.dims
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv3d(cfg.in_chans, dims[0], kernel_size=cfg.stem_kernel, stride=cfg.stem_kernel),
                           ChannelsFirstLayerNorm(dims[0]))]
            + [nn.Sequential(ChannelsFirstLayerNorm(dims[i]),
                             nn.Conv3d(dims[i], dims[i + 1], kernel_size=(1, 2, 2), stride=(1, 2, 2)))
               for i in range(len(dims) - 1)]
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock3D(dims[i], k) for k in cfg.temporal_kernels[i])) for i in range(len(dims))
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
