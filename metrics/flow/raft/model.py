"""RAFT (Teed & Deng, "RAFT: Recurrent All-Pairs Field Transforms for Optical Flow", ECCV 2020), the standard
(large) model, written for this project in plain torch.nn so that RAFT scores need neither ptlflow nor lightning.
Module names and tensor shapes follow the original repository's checkpoints (`raft-things.pth`,
`raft-sintel.pth`: bare state dicts, keys prefixed `module.`; ptlflow's `.ckpt` files hold the same keys
without the prefix), so they load with strict key matching. The code is our own.

Stages:

* `fnet` / `cnet`: the same encoder shape (7x7/2 conv to 64 channels, three stages of two residual blocks at
  64, 96/2, 128/2 channels, a 1x1 conv to 256), instance norm without affine parameters for the features of
  both frames, batch norm (frozen statistics) for the context of the first frame;
* the all-pairs correlation of the 1/8-scale features (dot products / sqrt(256)), average-pooled 3 times to a
  4-level pyramid; at every refinement step each level is sampled bilinearly (align_corners=True, zeros outside)
  on a 9x9 window (radius 4) around the current match position divided by 2^level;
* `update_block`: motion encoder (correlation 1x1 + 3x3 convs, flow 7x7 + 3x3 convs), a separable ConvGRU
  (1x5, then 5x1) on the hidden state, the flow head (the residual flow update) and the mask head, whose
  output scaled by 0.25 gives the convex 8x upsampling weights of the final flow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from metrics.flow.gmflow.model import CNNEncoder, convex_upsample

FEATURE_DIM = 256
HIDDEN_DIM = 128
CONTEXT_DIM = 128
CORR_LEVELS = 4
CORR_RADIUS = 4
UPSAMPLE = 8
#: the inputs are padded (replicate, split between both sides) to a multiple of this
PAD_MULTIPLE = 8
MASK_SCALE = 0.25
#: the 1/64-scale correlation level must be at least 2 px per side (the sampler divides by side - 1)
MIN_SIDE = 128


# ---- correlation --------------------------------------------------------------------------------------------
def correlation_pyramid(f0: torch.Tensor, f1: torch.Tensor, levels: int = CORR_LEVELS) -> list[torch.Tensor]:
    """All-pairs correlation of f0 (B, C, H, W) with f1: level l is (B*H*W, 1, H/2^l, W/2^l)."""
    b, c, h, w = f0.shape
    corr = torch.matmul(f0.reshape(b, c, h * w).transpose(1, 2), f1.reshape(b, c, h * w))
    corr = (corr / float(c) ** 0.5).reshape(b * h * w, 1, h, w)
    pyramid = [corr]
    for _ in range(levels - 1):
        corr = F.avg_pool2d(corr, 2, stride=2)
        pyramid.append(corr)
    return pyramid


def window_offsets(radius: int, like: torch.Tensor) -> torch.Tensor:
    """(2r+1, 2r+1, 2) pixel offsets (x, y) of the lookup window. The checkpoints are trained with the x offset
    varying along the FIRST window axis, so the (2r+1)^2 features of a level are ordered x-major."""
    d = torch.arange(-radius, radius + 1, dtype=like.dtype, device=like.device)
    n = d.numel()
    return torch.stack([d[:, None].expand(n, n), d[None, :].expand(n, n)], dim=-1)


def lookup(pyramid: list[torch.Tensor], coords: torch.Tensor, radius: int = CORR_RADIUS) -> torch.Tensor:
    """Correlation features at match positions `coords` (B, 2, H, W) in frame-1 pixels at 1/8 scale:
    (B, levels*(2r+1)^2, H, W), bilinear samples of each level, zeros outside the frame."""
    b, _, h, w = coords.shape
    centre = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)
    offsets = window_offsets(radius, coords)[None]
    out = []
    for level, corr in enumerate(pyramid):
        pos = centre / 2 ** level + offsets  # (BHW, 2r+1, 2r+1, 2)
        hl, wl = corr.shape[-2:]
        gx, gy = pos.split([1, 1], dim=-1)
        grid = torch.cat([2 * gx / (wl - 1) - 1, 2 * gy / (hl - 1) - 1], dim=-1)
        sampled = F.grid_sample(corr, grid, align_corners=True)  # (BHW, 1, 2r+1, 2r+1)
        out.append(sampled.reshape(b, h, w, -1))
    return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous()


# ---- update block -------------------------------------------------------------------------------------------
class _MotionEncoder(nn.Module):
    def __init__(self, corr_channels: int):
        super().__init__()
        self.convc1 = nn.Conv2d(corr_channels, 256, 1)
        self.convc2 = nn.Conv2d(256, 192, 3, padding=1)
        self.convf1 = nn.Conv2d(2, 128, 7, padding=3)
        self.convf2 = nn.Conv2d(128, 64, 3, padding=1)
        self.conv = nn.Conv2d(192 + 64, 128 - 2, 3, padding=1)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        c = F.relu(self.convc2(F.relu(self.convc1(corr))))
        f = F.relu(self.convf2(F.relu(self.convf1(flow))))
        return torch.cat([F.relu(self.conv(torch.cat([c, f], dim=1))), flow], dim=1)


class _SepConvGRU(nn.Module):
    """A ConvGRU step with 1x5 gates, then one with 5x1 gates."""

    def __init__(self, hidden: int, inp: int):
        super().__init__()
        for axis, (k, p) in (("1", ((1, 5), (0, 2))), ("2", ((5, 1), (2, 0)))):
            for gate in "zrq":
                setattr(self, f"conv{gate}{axis}", nn.Conv2d(hidden + inp, hidden, k, padding=p))

    def _step(self, h: torch.Tensor, x: torch.Tensor, axis: str) -> torch.Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(getattr(self, f"convz{axis}")(hx))
        r = torch.sigmoid(getattr(self, f"convr{axis}")(hx))
        q = torch.tanh(getattr(self, f"convq{axis}")(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._step(self._step(h, x, "1"), x, "2")


class _FlowHead(nn.Module):
    def __init__(self, cin: int = HIDDEN_DIM, hidden: int = 256):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class _UpdateBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = _MotionEncoder(CORR_LEVELS * (2 * CORR_RADIUS + 1) ** 2)
        self.gru = _SepConvGRU(HIDDEN_DIM, CONTEXT_DIM + HIDDEN_DIM)
        self.flow_head = _FlowHead(HIDDEN_DIM, 256)
        self.mask = nn.Sequential(nn.Conv2d(HIDDEN_DIM, 256, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(256, UPSAMPLE ** 2 * 9, 1))

    def forward(self, net: torch.Tensor, inp: torch.Tensor, corr: torch.Tensor,
                flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(new hidden state, flow update); the upsampling mask is computed from the final state only."""
        net = self.gru(net, torch.cat([inp, self.encoder(flow, corr)], dim=1))
        return net, self.flow_head(net)


# ---- the network --------------------------------------------------------------------------------------------
def pixel_grid(b: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) pixel coordinates, channel 0 = x."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=like.dtype, device=like.device),
                            torch.arange(w, dtype=like.dtype, device=like.device), indexing="ij")
    return torch.stack([xs, ys], 0)[None].expand(b, -1, -1, -1)


def pad_amounts(h: int, w: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding to the next multiple, the odd pixel going right/bottom."""
    ph, pw = -h % multiple, -w % multiple
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


class RAFT(nn.Module):
    """`forward(img0, img1)`: RGB normalised to [-1, 1] (B, 3, H, W) -> flow img0 -> img1 (B, 2, H, W) in pixels
    (channel 0 = x) after `iters` refinement steps, upsampled (test mode). The inputs are replicate-padded to a
    multiple of 8 and the flow cropped back; after padding each side must be at least `MIN_SIDE` px."""

    def __init__(self, iters: int = 32) -> None:
        super().__init__()
        self.iters = int(iters)
        self.fnet = CNNEncoder(FEATURE_DIM, nn.InstanceNorm2d, bias=True)
        self.cnet = CNNEncoder(HIDDEN_DIM + CONTEXT_DIM, nn.BatchNorm2d, bias=True)
        self.update_block = _UpdateBlock()

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        b, _, h, w = img0.shape
        left, right, top, bottom = pad_amounts(h, w)
        # NCHW memory layout: inputs permuted from (H, W, 3) frames are channels-last, and the convolutions
        # round differently there (~1e-6 per step, 1e-4 px after 32 steps)
        x = torch.cat([img0, img1], 0).contiguous()
        if left or right or top or bottom:
            x = F.pad(x, (left, right, top, bottom), mode="replicate")
        feats = self.fnet(x)
        pyramid = correlation_pyramid(feats[:b], feats[b:])
        net, inp = torch.split(self.cnet(x[:b]), [HIDDEN_DIM, CONTEXT_DIM], dim=1)
        net, inp = torch.tanh(net), torch.relu(inp)
        coords0 = pixel_grid(b, feats.shape[-2], feats.shape[-1], feats)
        coords1 = coords0
        for _ in range(self.iters):
            net, delta = self.update_block(net, inp, lookup(pyramid, coords1), coords1 - coords0)
            coords1 = coords1 + delta
        mask = MASK_SCALE * self.update_block.mask(net)
        up = convex_upsample(coords1 - coords0, mask, UPSAMPLE)
        return up[:, :, top:top + h, left:left + w]


__all__ = ["MIN_SIDE", "PAD_MULTIPLE", "RAFT", "correlation_pyramid", "lookup", "pad_amounts", "window_offsets"]
