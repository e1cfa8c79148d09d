"""DOVER's per-branch quality head: 1x1x1 convs 768 -> 64 -> 1 with GELU, applied at every position."""

from __future__ import annotations

import torch
from torch import nn


class VQAHead(nn.Module):
    """(B, C, T, H, W) features -> (B, 1, T, H, W) local quality scores (no pooling; the caller averages).

    The reference head has dropout (p=0.5) before both convs; it is the identity at inference and
    has no weights, so it is left out.
    """

    def __init__(self, in_channels: int = 768, hidden_channels: int = 64):
        super().__init__()
        self.fc_hid = nn.Conv3d(in_channels, hidden_channels, kernel_size=1)
        self.act = nn.GELU()
        self.fc_last = nn.Conv3d(hidden_channels, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_last(self.act(self.fc_hid(x)))
