"""Weight-free image-guided baseline: paste the reference into frame 0, carry it along optical flow.

1. Anchor = the first frame whose mask is not empty. The reference is fitted into that mask's
   bounding box (`fit`: "cover" keeps the aspect ratio and crops the overflow, "contain" keeps
   the aspect ratio and letterboxes, "stretch" resizes to the box) and composited through the mask
   (alpha = mask, Gaussian-feathered by `feather` px).
2. Backward optical flow of the SOURCE video (frame t -> t-1; OpenCV DIS or Farneback, no weights)
   is computed in `prepare` (cached and timed as pre-processing by the harness).
3. For every later frame the per-pixel coordinates into the anchor frame are obtained by
   composing the backward flows (a coordinate map is warped, not the pixels, so the pasted
   content is resampled only once and does not blur over time); the reference layer is sampled
   through that map and composited through THIS frame's mask. Mask pixels the propagated layer
   does not cover (disocclusions, content that entered the frame) are filled by re-fitting the
   reference into the current mask's bounding box (`refit_uncovered`), or left as source.

Frames before the anchor and frames with an empty mask are returned unchanged; outside the
(feathered) mask every frame is the source, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.errors import NotApplicable, VidEditBenchError
from bench.method import Method
from bench.types import Video
from methods.color_transfer import align_mask, feather_alpha

FLOWS = ("dis", "farneback")
FITS = ("cover", "contain", "stretch")
DIS_PRESETS = ("ultrafast", "fast", "medium")


@dataclass
class SourceFlows:
    """Backward flows of a source video: flows[t-1] maps frame t to t-1 (frame_t(x) ≈ frame_{t-1}(x + f(x)))."""

    flows: np.ndarray  # (T-1, H, W, 2) float32, (dx, dy) in pixels
    method: str


def backward_flows(frames: np.ndarray, method: str = "dis", dis_preset: str = "medium") -> np.ndarray:
    import cv2

    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    h, w = gray[0].shape
    out = np.zeros((max(len(gray) - 1, 0), h, w, 2), np.float32)
    if method == "dis":
        preset = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }[dis_preset]
        dis = cv2.DISOpticalFlow_create(preset)
        for t in range(1, len(gray)):
            out[t - 1] = dis.calc(gray[t], gray[t - 1], None)
    elif method == "farneback":
        for t in range(1, len(gray)):
            out[t - 1] = cv2.calcOpticalFlowFarneback(gray[t], gray[t - 1], None, 0.5, 3, 15, 3, 5, 1.2, 0)
    else:
        raise VidEditBenchError(f"flow-propagate: bad flow '{method}'; valid choices: {', '.join(FLOWS)}")
    return out


def fit_reference(reference: np.ndarray, mask: np.ndarray, fit: str) -> tuple[np.ndarray, np.ndarray]:
    """Place the reference in the mask's bounding box: (layer (H,W,3) float32, coverage (H,W) float32)."""
    import cv2

    h, w = mask.shape
    layer = np.zeros((h, w, 3), np.float32)
    cover = np.zeros((h, w), np.float32)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return layer, cover
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    bh, bw = int(y1 - y0), int(x1 - x0)
    rh, rw = reference.shape[:2]
    ref = reference.astype(np.float32)
    if fit == "stretch":
        layer[y0:y1, x0:x1] = cv2.resize(ref, (bw, bh), interpolation=cv2.INTER_AREA if rw > bw else cv2.INTER_LINEAR)
        cover[y0:y1, x0:x1] = 1.0
        return layer, cover
    scale = max(bw / rw, bh / rh) if fit == "cover" else min(bw / rw, bh / rh)
    nw, nh = max(1, round(rw * scale)), max(1, round(rh * scale))
    resized = cv2.resize(ref, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if fit == "cover":  # centre-crop the overflow
        oy, ox = max(0, (nh - bh) // 2), max(0, (nw - bw) // 2)
        crop = resized[oy : oy + bh, ox : ox + bw]
        layer[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
        cover[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = 1.0
    else:  # contain: centre in the box
        py, px = y0 + (bh - nh) // 2, x0 + (bw - nw) // 2
        layer[py : py + nh, px : px + nw] = resized[: bh, : bw]
        cover[py : py + nh, px : px + nw] = 1.0
    return layer, cover


class FlowPropagateComposite(Method):
    name = "flow-propagate"
    description = "Composite the reference into the first masked frame, propagate it along the source's optical flow (weight-free)"
    tasks = frozenset({"image"})
    needs = frozenset({"reference", "mask"})
    defaults = {"flow": "dis", "dis_preset": "medium", "fit": "cover", "feather": 0.0, "refit_uncovered": True}

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        super().__init__(device=device, seed=seed, **config)
        for key, allowed in (("flow", FLOWS), ("fit", FITS), ("dis_preset", DIS_PRESETS)):
            if self.cfg[key] not in allowed:
                raise VidEditBenchError(f"flow-propagate: bad {key} '{self.cfg[key]}'; valid choices: {', '.join(allowed)}")
        if float(self.cfg["feather"]) < 0:
            raise VidEditBenchError(f"flow-propagate: feather must be >= 0 (pixels), got {self.cfg['feather']}")

    def prepare(self, video: Video) -> SourceFlows:
        return SourceFlows(backward_flows(video.frames, self.cfg["flow"], self.cfg["dis_preset"]), self.cfg["flow"])

    def edit(
        self,
        video: Video,
        *,
        prompt: str | None = None,
        reference: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        prepared: Any = None,
        source_prompt: str | None = None,
    ) -> np.ndarray:
        import cv2

        if reference is None or mask is None:
            raise NotApplicable("flow-propagate needs a reference image and a mask")
        ref = np.asarray(reference)
        if ref.ndim != 3 or ref.shape[-1] != 3 or ref.dtype != np.uint8:
            raise VidEditBenchError(f"flow-propagate: reference must be (h, w, 3) uint8, got {ref.shape} {ref.dtype}")
        m = align_mask(mask, video, self.name)
        nonempty = np.flatnonzero(m.reshape(m.shape[0], -1).any(axis=1))
        if nonempty.size == 0:
            raise NotApplicable("flow-propagate: the mask is empty in every frame")
        anchor = int(nonempty[0])

        expected = (video.num_frames - 1, video.height, video.width, 2)
        if isinstance(prepared, SourceFlows) and prepared.flows.shape == expected and prepared.method == self.cfg["flow"]:
            flows = prepared.flows
        else:
            flows = self.prepare(video).flows

        layer0, cover0 = fit_reference(ref, m[anchor], self.cfg["fit"])
        h, w = video.size
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        map_x, map_y = gx.copy(), gy.copy()  # coordinates into the anchor frame
        far = np.float32(-1e6)  # out-of-frame marker: any sample reaching it has zero coverage
        sigma = float(self.cfg["feather"])
        out = video.frames.copy()
        for t in range(anchor, video.num_frames):
            if t > anchor:
                fx, fy = gx + flows[t - 1][..., 0], gy + flows[t - 1][..., 1]
                map_x = cv2.remap(map_x, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=float(far))
                map_y = cv2.remap(map_y, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=float(far))
            if not m[t].any():
                continue
            if t == anchor:
                content, cov = layer0 * cover0[..., None], cover0
            else:
                warped = cv2.remap(layer0, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                cov = np.clip(cv2.remap(cover0, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0), 0, 1)
                # layer0 is zero outside its coverage, so `warped` is already premultiplied by cov
                content = warped
                if self.cfg["refit_uncovered"] and (cov < 0.999).any():
                    refit, refit_cov = fit_reference(ref, m[t], self.cfg["fit"])
                    gap = (1.0 - cov)[..., None]
                    content = content + gap * refit * refit_cov[..., None]
                    cov = cov + (1.0 - cov) * refit_cov
            alpha = feather_alpha(m[t], sigma)
            src = video.frames[t].astype(np.float32)
            blended = alpha[..., None] * content + (1.0 - (alpha * cov)[..., None]) * src
            edited = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
            touched = alpha > 0
            out[t][touched] = edited[touched]
        return out
