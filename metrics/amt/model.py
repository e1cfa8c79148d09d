"""AMT-S (Li et al., "AMT: All-Pairs Multi-Field Transforms for Efficient Frame Interpolation", CVPR 2023),
written for this project so that the official `amt-s.pth` (`{'state_dict': sd}`) loads with strict key
matching. Module names and tensor shapes follow the checkpoint; the code is our own.

Structure (AMT-S: correlation radius 3, 4 correlation levels, 3 flow fields, pyramid channels
20/32/44/56, skip channels 20):
* `feat_encoder`: a RAFT-style small encoder (instance norm, bottleneck blocks) giving 1/8-scale
  features of both frames for a bidirectional all-pairs correlation volume (4-level pyramid);
* `encoder`: a 4-level conv pyramid (stride 2 each) applied to each frame;
* `decoder4` → `decoder1`: coarse-to-fine decoders predicting the flows from the intermediate time t
  to both frames plus an intermediate feature; decoders 4, 3 and 2 are each followed by a correlation
  lookup and an update block (`update4/3/2`) refining flow and feature; `decoder1` outputs 3 flow
  pairs, occlusion masks and residuals at full resolution;
* `comb_block`: merges the 3 warped-and-blended candidate frames.
The inputs are RGB in [0, 1]; the mean over both frames is removed and added back.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

CORR_RADIUS = 3
CORR_LEVELS = 4
NUM_FLOWS = 3
CHANNELS = (20, 32, 44, 56)
SKIP_CHANNELS = 20


def _resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


def _conv_prelu(cin: int, cout: int, k: int = 3, stride: int = 1, pad: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad), nn.PReLU(cout))


def backward_warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `img` at (x + u, y + v): bilinear, border padding, corner-aligned grid."""
    b, _, h, w = flow.shape
    xs = torch.linspace(-1.0, 1.0, w).view(1, 1, 1, w).expand(b, -1, h, -1)
    ys = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1).expand(b, -1, -1, w)
    base = torch.cat([xs, ys], 1).to(img)
    offset = torch.cat([flow[:, 0:1] / ((w - 1.0) / 2.0), flow[:, 1:2] / ((h - 1.0) / 2.0)], 1)
    grid = (base + offset).permute(0, 2, 3, 1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _pixel_grid(b: int, h: int, w: int, device: Any) -> torch.Tensor:
    """(B, 2, H, W) pixel coordinates, channel 0 = x, channel 1 = y."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([xs, ys], 0).float()[None].repeat(b, 1, 1, 1)


# ---- feature encoder (1/8 scale, for the correlation volume) ----------------------------------------------
class _Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        mid = cout // 4
        self.conv1 = nn.Conv2d(cin, mid, 1)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1)
        self.conv3 = nn.Conv2d(mid, cout, 1)
        self.norm1, self.norm2, self.norm3 = nn.InstanceNorm2d(mid), nn.InstanceNorm2d(mid), nn.InstanceNorm2d(cout)
        self.downsample = None
        if stride != 1:
            self.norm4 = nn.InstanceNorm2d(cout)
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride), self.norm4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        y = F.relu(self.norm3(self.conv3(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return F.relu(x + y)


class _SmallEncoder(nn.Module):
    def __init__(self, out_dim: int = 84):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 7, stride=2, padding=3)
        self.norm1 = nn.InstanceNorm2d(32)
        self.layer1 = nn.Sequential(_Bottleneck(32, 32, 1), _Bottleneck(32, 32, 1))
        self.layer2 = nn.Sequential(_Bottleneck(32, 64, 2), _Bottleneck(64, 64, 1))
        self.layer3 = nn.Sequential(_Bottleneck(64, 96, 2), _Bottleneck(96, 96, 1))
        self.conv2 = nn.Conv2d(96, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


# ---- bidirectional all-pairs correlation ----------------------------------------------------------------
class _BidirCorrelation:
    """Correlation pyramids of fmap0 against fmap1 and its transpose, looked up in a (2r+1)² window."""

    def __init__(self, fmap0: torch.Tensor, fmap1: torch.Tensor, levels: int, radius: int):
        self.levels, self.radius = levels, radius
        b, c, h, w = fmap0.shape
        corr = torch.matmul(fmap0.view(b, c, h * w).transpose(1, 2), fmap1.view(b, c, h * w))
        corr = corr.view(b, h, w, 1, h, w) / torch.sqrt(torch.tensor(c).float())
        corr_t = corr.clone().permute(0, 4, 5, 3, 1, 2)
        fwd, bwd = corr.reshape(b * h * w, 1, h, w), corr_t.reshape(b * h * w, 1, h, w)
        self.fwd, self.bwd = [fwd], [bwd]
        for _ in range(levels - 1):
            fwd, bwd = F.avg_pool2d(fwd, 2, stride=2), F.avg_pool2d(bwd, 2, stride=2)
            self.fwd.append(fwd)
            self.bwd.append(bwd)

    @staticmethod
    def _sample(vol: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        h, w = vol.shape[-2:]
        x, y = coords.split([1, 1], dim=-1)
        grid = torch.cat([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], dim=-1)
        return F.grid_sample(vol, grid, align_corners=True)

    def __call__(self, coords0: torch.Tensor, coords1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.radius
        c0, c1 = coords0.permute(0, 2, 3, 1), coords1.permute(0, 2, 3, 1)
        b, h, w, _ = c0.shape
        steps = torch.linspace(-r, r, 2 * r + 1, device=c0.device)
        # window offsets: the first grid axis is added to x (as in RAFT's lookup)
        window = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), dim=-1).view(1, 2 * r + 1, 2 * r + 1, 2)
        outs0, outs1 = [], []
        for i in range(self.levels):
            p0 = c0.reshape(b * h * w, 1, 1, 2) / 2**i + window
            p1 = c1.reshape(b * h * w, 1, 1, 2) / 2**i + window
            outs0.append(self._sample(self.fwd[i], p0).view(b, h, w, -1))
            outs1.append(self._sample(self.bwd[i], p1).view(b, h, w, -1))
        out0 = torch.cat(outs0, dim=-1).permute(0, 3, 1, 2).contiguous().float()
        out1 = torch.cat(outs1, dim=-1).permute(0, 3, 1, 2).contiguous().float()
        return out0, out1


# ---- pyramid encoder and decoders ---------------------------------------------------------------------
class _Pyramid(nn.Module):
    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        self.n = len(channels)
        prev = 3
        for i, ch in enumerate(channels, 1):
            self.add_module(f"pyramid{i}", nn.Sequential(_conv_prelu(prev, ch, 3, 2, 1), _conv_prelu(ch, ch)))
            prev = ch

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i in range(1, self.n + 1):
            x = getattr(self, f"pyramid{i}")(x)
            feats.append(x)
        return feats


class _SideResBlock(nn.Module):
    """Residual block whose last `side` channels get extra convolutions in between."""

    def __init__(self, ch: int, side: int):
        super().__init__()
        self.side = side
        self.conv1 = _conv_prelu(ch, ch)
        self.conv2 = _conv_prelu(side, side)
        self.conv3 = _conv_prelu(ch, ch)
        self.conv4 = _conv_prelu(side, side)
        self.conv5 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.prelu = nn.PReLU(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.side
        y = self.conv1(x)
        y = self.conv3(torch.cat([y[:, :-s], self.conv2(y[:, -s:])], 1))
        y = self.conv5(torch.cat([y[:, :-s], self.conv4(y[:, -s:])], 1))
        return self.prelu(x + y)


def _decoder_block(cin: int, width: int, cout: int, side: int) -> nn.Sequential:
    return nn.Sequential(_conv_prelu(cin, width), _SideResBlock(width, side), nn.ConvTranspose2d(width, cout, 4, 2, 1))


class _InitDecoder(nn.Module):
    def __init__(self, cin: int, cout: int, side: int):
        super().__init__()
        self.convblock = _decoder_block(2 * cin + 1, 2 * cin, cout + 4, side)

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, embt: torch.Tensor):
        h, w = f0.shape[2:]
        out = self.convblock(torch.cat([f0, f1, embt.repeat(1, 1, h, w)], 1))
        flow0, flow1 = torch.chunk(out[:, :4], 2, 1)
        return flow0, flow1, out[:, 4:]


class _MidDecoder(nn.Module):
    def __init__(self, cin: int, cout: int, side: int):
        super().__init__()
        self.convblock = _decoder_block(3 * cin + 4, 3 * cin, cout + 4, side)

    def forward(self, ft, f0, f1, flow0_in, flow1_in):
        x = torch.cat([ft, backward_warp(f0, flow0_in), backward_warp(f1, flow1_in), flow0_in, flow1_in], 1)
        out = self.convblock(x)
        flow0, flow1 = torch.chunk(out[:, :4], 2, 1)
        flow0 = flow0 + 2.0 * _resize(flow0_in, 2.0)
        flow1 = flow1 + 2.0 * _resize(flow1_in, 2.0)
        return flow0, flow1, out[:, 4:]


class _MultiFlowDecoder(nn.Module):
    def __init__(self, cin: int, side: int, num_flows: int):
        super().__init__()
        self.num_flows = num_flows
        self.convblock = _decoder_block(3 * cin + 4, 3 * cin, 8 * num_flows, side)

    def forward(self, ft, f0, f1, flow0_in, flow1_in):
        n = self.num_flows
        out = self.convblock(torch.cat([ft, backward_warp(f0, flow0_in), backward_warp(f1, flow1_in),
                                        flow0_in, flow1_in], 1))
        d0, d1, mask, res = torch.split(out, [2 * n, 2 * n, n, 3 * n], 1)
        flow0 = d0 + 2.0 * _resize(flow0_in, 2.0).repeat(1, n, 1, 1)
        flow1 = d1 + 2.0 * _resize(flow1_in, 2.0).repeat(1, n, 1, 1)
        return flow0, flow1, torch.sigmoid(mask), res


class _UpdateBlock(nn.Module):
    """Refines (feature, flow pair) from the correlation lookup, optionally at 1/`scale` resolution."""

    def __init__(self, cdim: int, scale: int | None, hidden: int = 76, flow_dim: int = 20, corr_dim: int = 64,
                 fc_dim: int = 68, levels: int = CORR_LEVELS, radius: int = CORR_RADIUS):
        super().__init__()
        planes = levels * (2 * radius + 1) ** 2
        self.scale = scale
        self.convc1 = nn.Conv2d(2 * planes, corr_dim, 1)
        self.convf1 = nn.Conv2d(4, 2 * flow_dim, 7, padding=3)
        self.convf2 = nn.Conv2d(2 * flow_dim, flow_dim, 3, padding=1)
        self.conv = nn.Conv2d(corr_dim + flow_dim, fc_dim, 3, padding=1)
        self.gru = nn.Sequential(nn.Conv2d(fc_dim + 4 + cdim, hidden, 3, padding=1), nn.LeakyReLU(0.1),
                                 nn.Conv2d(hidden, hidden, 3, padding=1))
        self.feat_head = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.1),
                                       nn.Conv2d(hidden, cdim, 3, padding=1))
        self.flow_head = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.1),
                                       nn.Conv2d(hidden, 4, 3, padding=1))

    def forward(self, net, flow, corr):
        lrelu = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
        if self.scale is not None:
            net = _resize(net, 1 / self.scale)
        cor = lrelu(self.convc1(corr))
        flo = lrelu(self.convf2(lrelu(self.convf1(flow))))
        x = torch.cat([lrelu(self.conv(torch.cat([cor, flo], 1))), flow, net], 1)
        h = self.gru(x)
        d_net, d_flow = self.feat_head(h), self.flow_head(h)
        if self.scale is not None:
            d_net = _resize(d_net, self.scale)
            d_flow = self.scale * _resize(d_flow, self.scale)
        return d_net, d_flow


class AMTS(nn.Module):
    """AMT-S. `forward(img0, img1, embt, scale_factor)` -> the frame at time embt, RGB in [0, 1]."""

    def __init__(self, radius: int = CORR_RADIUS, levels: int = CORR_LEVELS, num_flows: int = NUM_FLOWS,
                 channels: tuple[int, ...] = CHANNELS, skip: int = SKIP_CHANNELS):
        super().__init__()
        self.radius, self.levels, self.num_flows = radius, levels, num_flows
        c = channels
        self.feat_encoder = _SmallEncoder(84)
        self.encoder = _Pyramid(c)
        self.decoder4 = _InitDecoder(c[3], c[2], skip)
        self.decoder3 = _MidDecoder(c[2], c[1], skip)
        self.decoder2 = _MidDecoder(c[1], c[0], skip)
        self.decoder1 = _MultiFlowDecoder(c[0], skip, num_flows)
        self.update4 = _UpdateBlock(c[2], None, levels=levels, radius=radius)
        self.update3 = _UpdateBlock(c[1], 2, levels=levels, radius=radius)
        self.update2 = _UpdateBlock(c[0], 4, levels=levels, radius=radius)
        self.comb_block = nn.Sequential(nn.Conv2d(3 * num_flows, 6 * num_flows, 3, 1, 1), nn.PReLU(6 * num_flows),
                                        nn.Conv2d(6 * num_flows, 3, 3, 1, 1))

    @staticmethod
    def _lookup(corr: _BidirCorrelation, coord, flow0, flow1, embt, down: int = 1):
        if down != 1:
            inv = 1 / down
            flow0, flow1 = inv * _resize(flow0, inv), inv * _resize(flow1, inv)
        # linear-motion assumption: t->1 flow / t reaches frame 1 from 0, t->0 flow / (1 - t) frame 0 from 1
        c0, c1 = corr(coord + flow1 * (1.0 / embt), coord + flow0 * (1.0 / (1.0 - embt)))
        return torch.cat([c0, c1], 1), torch.cat([flow0, flow1], 1)

    def _refine(self, update: nn.Module, corr, coord, flow0, flow1, ft, embt, down: int):
        c, f = self._lookup(corr, coord, flow0, flow1, embt, down)
        d_ft, d_flow = update(ft, f, c)
        d0, d1 = torch.chunk(d_flow, 2, 1)
        return flow0 + d0, flow1 + d1, ft + d_ft

    def _combine(self, img0, img1, flow0, flow1, mask, res, mean):
        b, c, h, w = flow0.shape
        n = c // 2
        flow0 = flow0.reshape(b, n, 2, h, w).reshape(-1, 2, h, w)
        flow1 = flow1.reshape(b, n, 2, h, w).reshape(-1, 2, h, w)
        mask = mask.reshape(b, n, 1, h, w).reshape(-1, 1, h, w)
        res = res.reshape(b, n, 3, h, w).reshape(-1, 3, h, w)
        img0 = torch.stack([img0] * n, 1).reshape(-1, 3, h, w)
        img1 = torch.stack([img1] * n, 1).reshape(-1, 3, h, w)
        mean = torch.stack([mean] * n, 1).reshape(-1, 1, 1, 1)
        warped = mask * backward_warp(img0, flow0) + (1 - mask) * backward_warp(img1, flow1) + mean + res
        warped = warped.reshape(b, n, 3, h, w)
        return warped.mean(1) + self.comb_block(warped.view(b, -1, h, w))

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, embt: torch.Tensor, scale_factor: float = 1.0):
        mean = torch.cat([img0, img1], 2).mean(1, keepdim=True).mean(2, keepdim=True).mean(3, keepdim=True)
        img0, img1 = img0 - mean, img1 - mean
        x0 = _resize(img0, scale_factor) if scale_factor != 1.0 else img0
        x1 = _resize(img1, scale_factor) if scale_factor != 1.0 else img1
        b, _, h, w = x0.shape
        coord = _pixel_grid(b, h // 8, w // 8, img0.device)
        fmaps = self.feat_encoder(torch.cat([x0, x1], 0))
        corr = _BidirCorrelation(fmaps[:b], fmaps[b:], self.levels, self.radius)
        f0, f1 = self.encoder(x0), self.encoder(x1)

        flow0, flow1, ft = self.decoder4(f0[3], f1[3], embt)
        flow0, flow1, ft = self._refine(self.update4, corr, coord, flow0, flow1, ft, embt, 1)
        flow0, flow1, ft = self.decoder3(ft, f0[2], f1[2], flow0, flow1)
        flow0, flow1, ft = self._refine(self.update3, corr, coord, flow0, flow1, ft, embt, 2)
        flow0, flow1, ft = self.decoder2(ft, f0[1], f1[1], flow0, flow1)
        flow0, flow1, ft = self._refine(self.update2, corr, coord, flow0, flow1, ft, embt, 4)
        flow0, flow1, mask, res = self.decoder1(ft, f0[0], f1[0], flow0, flow1)
        if scale_factor != 1.0:
            inv = 1.0 / scale_factor
            flow0, flow1 = _resize(flow0, inv) * inv, _resize(flow1, inv) * inv
            mask, res = _resize(mask, inv), _resize(res, inv)
        return torch.clamp(self._combine(img0, img1, flow0, flow1, mask, res, mean), 0, 1)


__all__ = ["AMTS", "backward_warp"]
