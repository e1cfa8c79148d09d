"""Warp error (Lai et al. 2018, "Learning Blind Video Temporal Consistency"), as IVE-Benchmark uses it.

Flows of the SOURCE video (forward t-1 -> t and backward t -> t-1) define which pixels correspond
and which are occluded; the EDITED video is scored: for each pair, frame t is warped back onto
frame t-1 with the forward flow and compared on the non-occluded pixels. Lower is better. The
paper prints it x10^-1; the value is stored raw.

The plain functions follow the reference code exactly (see goldens/RECIPE.md §3):

* `resample2d` is flownet2's `Resample2d` (kernel 1): bilinear sampling at x + flow(x), weights
  from the unclamped coordinates, indices clamped to the image, so the border is replicated;
* `occlusion_mask` reproduces `compute_flow_occlusion.py`, which calls
  `detect_occlusion(bw_flow, fw_flow)` with its two arguments swapped relative to the parameter
  names. Its effective test (on the frame t-1 grid, where the error is measured) is
  W = bw sampled at x + fw(x); occluded if |W + fw|^2 > 0.01 (|W|^2 + |fw|^2) + 0.5, or if the
  motion boundary test on fw holds: |grad fw|^2 > 0.01 |fw|^2 + 0.002;
* `pair_warp_error`: sum(((warp(img_t, fw) - img_{t-1}) * noc)^2) / sum(noc) over pixel-channels
  of RGB in [0, 1], with sum(noc) replaced by H*W*3 when every pixel is occluded.

Flow option `gt` uses the suite's exact forward flow (`item.flow_gt`, t -> t+1). The backward flow
is derived from it by fixed-point inversion (`invert_flow`), exact for translations and any flow
whose forward map is one-to-one. Where a moving layer covers another the forward map is not
one-to-one and the inversion picks one layer, so Lai's test alone would keep the covered pixels;
`gt_occlusion_mask` adds those (`forward_collisions`: targets reached by differently moving pixels)
and the pixels that leave the image (`leaves_frame`), which with exact flow are known occlusions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.errors import NotApplicable, VidEditBenchError
from bench.metric import Metric
from bench.types import EvalItem
from metrics.flow import BACKENDS, FlowModel, create_flow_model, flow_weight_names


# ---------------------------------------------------------------------------------------------
# plain functions
# ---------------------------------------------------------------------------------------------
def resample2d(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `img` (H, W, C) at x + flow(x) (flow (H, W, 2), u = x, v = y) like flownet2 Resample2d."""
    img = np.asarray(img)
    flow = np.asarray(flow)
    if img.ndim == 2:
        return resample2d(img[..., None], flow)[..., 0]
    h, w = flow.shape[:2]
    if img.shape[:2] != (h, w) or flow.shape[-1] != 2:
        raise VidEditBenchError(f"resample2d: image {img.shape} and flow {flow.shape} do not match")
    xf = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0].astype(np.float32)
    yf = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1].astype(np.float32)
    x0 = np.floor(xf)
    y0 = np.floor(yf)
    alpha = (xf - x0)[..., None]  # from the unclamped coordinates, as the CUDA kernel does
    beta = (yf - y0)[..., None]
    xl = np.clip(x0, 0, w - 1).astype(np.intp)
    xr = np.clip(x0 + 1, 0, w - 1).astype(np.intp)
    yt = np.clip(y0, 0, h - 1).astype(np.intp)
    yb = np.clip(y0 + 1, 0, h - 1).astype(np.intp)
    src = img.astype(np.float32, copy=False)
    return ((1 - alpha) * (1 - beta) * src[yt, xl] + alpha * (1 - beta) * src[yt, xr]
            + (1 - alpha) * beta * src[yb, xl] + alpha * beta * src[yb, xr]).astype(np.float32)


def flow_gradients(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forward differences of u and v along x and y (a[i] - a[i+1]), the last column/row set to 0."""
    u = flow[..., 0]
    v = flow[..., 1]
    fx_du = np.zeros_like(u)
    fx_dv = np.zeros_like(v)
    fy_du = np.zeros_like(u)
    fy_dv = np.zeros_like(v)
    fx_du[:, :-1] = u[:, :-1] - u[:, 1:]
    fx_dv[:, :-1] = v[:, :-1] - v[:, 1:]
    fy_du[:-1, :] = u[:-1, :] - u[1:, :]
    fy_dv[:-1, :] = v[:-1, :] - v[1:, :]
    return fx_du, fx_dv, fy_du, fy_dv


def occlusion_mask(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """(H, W) bool occlusion of the pair whose forward flow is `fw` (frame t -> t+1, on the frame-t
    grid) and backward flow is `bw` (t+1 -> t, on the frame-t+1 grid), exactly as Lai et al.'s
    evaluation computes it (the swapped `detect_occlusion(bw, fw)` call, see module docstring)."""
    fw = np.asarray(fw, np.float32)
    bw = np.asarray(bw, np.float32)
    if fw.shape != bw.shape or fw.ndim != 3 or fw.shape[-1] != 2:
        raise VidEditBenchError(f"occlusion_mask: fw {fw.shape} and bw {bw.shape} must both be (H, W, 2)")
    warped = resample2d(bw, fw)
    fb_sum = warped + fw
    fb_mag = (fb_sum ** 2).sum(-1)
    warped_mag = (warped ** 2).sum(-1)
    fw_mag = (fw ** 2).sum(-1)
    inconsistent = fb_mag > 0.01 * (warped_mag + fw_mag) + 0.5
    fx_du, fx_dv, fy_du, fy_dv = flow_gradients(fw)
    boundary = (fx_du ** 2 + fx_dv ** 2 + fy_du ** 2 + fy_dv ** 2) > 0.01 * fw_mag + 0.002
    return inconsistent | boundary


def _as_unit_rgb(frame: np.ndarray) -> np.ndarray:
    """uint8 frames -> float32 in [0, 1] (like `utils.read_img`); float frames are taken as given."""
    frame = np.asarray(frame)
    return frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32, copy=False)


def pair_warp_error(img_prev: np.ndarray, img_next: np.ndarray, fw: np.ndarray, occ: np.ndarray) -> float:
    """Masked MSE between frame t-1 and frame t warped back with the forward flow t-1 -> t.

    `occ` is (H, W) or (H, W, C), 1/True = occluded; the mean is over non-occluded pixel-channels.
    """
    prev = _as_unit_rgb(img_prev)
    warped = resample2d(_as_unit_rgb(img_next), fw)
    occ = np.asarray(occ, np.float32)
    if occ.ndim == 2:
        occ = np.repeat(occ[..., None], prev.shape[-1], axis=-1)
    noc = 1.0 - occ
    diff = ((warped - prev) * noc).astype(np.float64)
    n = float(noc.astype(np.float64).sum())
    if n == 0:
        n = float(np.prod(prev.shape))
    return float((diff ** 2).sum() / n)


def video_warp_error(frames: np.ndarray, fw: np.ndarray, occ: np.ndarray) -> tuple[float, list[float]]:
    """(mean over pairs, per-pair errors) for frames (T, H, W, 3), fw (T-1, H, W, 2), occ (T-1, H, W)."""
    frames = np.asarray(frames)
    if frames.shape[0] < 2:
        raise NotApplicable(f"warp error needs at least 2 frames, got {frames.shape[0]}")
    if fw.shape[0] != frames.shape[0] - 1 or fw.shape[1:3] != frames.shape[1:3]:
        raise VidEditBenchError(f"warp error: flows {fw.shape} do not fit frames {frames.shape}")
    per_pair = [pair_warp_error(frames[t - 1], frames[t], fw[t - 1], occ[t - 1]) for t in range(1, frames.shape[0])]
    return float(np.mean(per_pair)), per_pair


def invert_flow(fw: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Backward flow (on the target grid) of a forward flow (H, W, 2) by fixed-point iteration
    b(y) = -fw(y + b(y)), starting from b = -fw. Exact for translations."""
    fw = np.asarray(fw, np.float32)
    bw = -fw
    for _ in range(iterations):
        bw = -resample2d(fw, bw)
    return bw


def forward_collisions(fw: np.ndarray, tol: float = 0.5) -> np.ndarray:
    """(H, W) bool: pixels whose forward target (rounded to the grid) is also reached by pixels
    moving differently (flow differing by more than `tol` px), i.e. where layers meet and one of
    them gets covered. Flow alone cannot tell which layer is in front, so both are flagged."""
    fw = np.asarray(fw, np.float32)
    h, w = fw.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    tx = np.rint(xs + fw[..., 0]).astype(np.intp)
    ty = np.rint(ys + fw[..., 1]).astype(np.intp)
    inside = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
    cell = (ty * w + tx)[inside]
    spread = np.zeros(h * w, bool)
    for c in range(2):
        vals = fw[..., c][inside]
        lo = np.full(h * w, np.inf, np.float32)
        hi = np.full(h * w, -np.inf, np.float32)
        np.minimum.at(lo, cell, vals)
        np.maximum.at(hi, cell, vals)
        spread |= (hi - lo) > tol
    out = np.zeros((h, w), bool)
    out[inside] = spread[cell]
    return out


def leaves_frame(fw: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose forward target x + fw(x) falls outside the image."""
    fw = np.asarray(fw, np.float32)
    h, w = fw.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    tx = xs + fw[..., 0]
    ty = ys + fw[..., 1]
    return (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)


def gt_occlusion_mask(fw: np.ndarray) -> np.ndarray:
    """Occlusion for an exact forward flow: Lai's test with the fixed-point inverted backward flow,
    plus `forward_collisions` and `leaves_frame`. The inversion has a single answer only where the
    forward map is one-to-one; where a moving layer covers another it converges to one of the
    layers and Lai's consistency test then misses the covered pixels, which the collision test
    catches; content leaving the image is not visible in the next frame either."""
    return occlusion_mask(fw, invert_flow(fw)) | forward_collisions(fw) | leaves_frame(fw)


def occlusions(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Occlusion masks (T-1, H, W) of a stack of forward/backward flow pairs."""
    return np.stack([occlusion_mask(f, b) for f, b in zip(fw, bw)])


# ---------------------------------------------------------------------------------------------
# source flows, shared with motion alignment through the run's FeatureCache
# ---------------------------------------------------------------------------------------------
def cached(item: EvalItem, namespace: str, fn):
    if item.cache is None:
        return fn()
    return item.cache.get_or_compute(namespace, item.source_key, fn)


def source_forward_flows(item: EvalItem, flow_model: FlowModel) -> np.ndarray:
    """Forward flows t -> t+1 of the SOURCE video, computed once per run and flow model."""
    return cached(item, f"flow-fw:{flow_model.cache_tag()}", lambda: flow_model.consecutive(item.source.frames))


class WarpError(Metric):
    name = "warp_error"
    display_scale = 10.0  # IVE-Benchmark prints warp error ×10⁻¹
    display_label = "×10⁻¹"
    description = ("Lai et al. 2018 warp error of the edited video under the source video's flow and "
                   "occlusions (masked MSE, RGB in [0,1]); the IVE table prints it x10^-1")
    higher_is_better = False
    value_range = (0.0, 1.0)
    needs = frozenset({"source"})
    defaults = {"flow": "gmflow"}
    choices = {"flow": (*BACKENDS, "gt")}

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        super().__init__(device=device, batch_size=batch_size, **options)
        self._flow: FlowModel | None = None

    def required_weights(self) -> list[str]:
        return [] if self.options["flow"] == "gt" else flow_weight_names(self.options["flow"])

    def variant(self) -> dict[str, Any]:
        v = super().variant()
        v["flow_weights"] = ",".join(self.required_weights()) or "none"
        if v["flow"] == "gt":
            v["occlusion"] = "lai(inverted-gt)+collisions+leaves-frame"
        return v

    def applicable(self, item_has: set[str]) -> str | None:
        if self.options["flow"] == "gt" and "flow_gt" not in item_has:
            return f"{self.name} with flow=gt needs a suite with exact ground-truth flow (flow_gt)"
        return super().applicable(item_has)

    def setup(self) -> None:
        if self.options["flow"] != "gt" and self._flow is None:
            self._flow = create_flow_model(self.options["flow"], device=self.device, batch_size=self.batch_size)

    def source_flows_and_occlusion(self, item: EvalItem) -> tuple[np.ndarray, np.ndarray]:
        src = item.source.frames
        if self.options["flow"] == "gt":
            if item.flow_gt is None:
                raise NotApplicable(f"{self.name} flow=gt: {item.sample.uid} has no ground-truth flow")
            fw = np.asarray(item.flow_gt, np.float32)
            if fw.shape != (src.shape[0] - 1, *src.shape[1:3], 2):
                raise VidEditBenchError(
                    f"{item.sample.uid}: flow_gt has shape {fw.shape}, expected {(src.shape[0] - 1, *src.shape[1:3], 2)}"
                )
            occ = cached(item, "warp-occ:gt", lambda: np.stack([gt_occlusion_mask(f) for f in fw]))
            return fw, occ
        if self._flow is None:
            self.setup()
        flow_model = self._flow
        assert flow_model is not None
        fw = source_forward_flows(item, flow_model)

        def occ_fn() -> np.ndarray:
            bw = flow_model.estimate(src[1:], src[:-1])
            return occlusions(fw, bw)

        return fw, cached(item, f"warp-occ:{flow_model.cache_tag()}", occ_fn)

    def compute(self, item: EvalItem) -> dict[str, float]:
        src, edited = item.source.frames, item.edited.frames
        if src.shape != edited.shape:
            raise VidEditBenchError(f"{self.name}: edited video {edited.shape} and source {src.shape} differ in size")
        if src.shape[0] < 2:
            raise NotApplicable(f"{self.name} needs at least 2 frames, {item.sample.uid} has {src.shape[0]}")
        fw, occ = self.source_flows_and_occlusion(item)
        value, _ = video_warp_error(edited, fw, occ)
        return {self.name: value}

    def teardown(self) -> None:
        self._flow = None
