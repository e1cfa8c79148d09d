"""VBench's motion dimensions: motion smoothness (AMT-S frame interpolation) and dynamic degree (RAFT).

motion_smoothness (VBench 0.1.5, `motion_smoothness.py`): keep frames 0, 2, 4, …; AMT-S interpolates the
frame between each consecutive kept pair at t = 0.5 (RGB uint8 / 255 in, replicate-padded to a
multiple of 16); each prediction becomes uint8 by `(x * 255).clip(0, 255)` and **truncation** (as
VBench's `tensor2img`, not rounding); it is compared with the real odd frame 1, 3, 5, … by the mean
absolute difference over all pixels and channels (0–255; a trailing odd frame with no right neighbour
is not used); score = (255 − mean over the pairs) / 255. VBench shrinks the frames inside AMT on GPUs
by a factor derived from the card's memory; that is the variant `downscale=True` (off by default, as
VBench on CPU), with `vram_gb` standing in for the card size (0 = the current CUDA device's).

dynamic_degree (VBench 0.1.5, `dynamic_degree.py`): frames are kept every max(1, round(fps / 8)); RAFT
(raft-things, 20 iterations, test mode; our network, `metrics/flow/raft/`) between consecutive kept
frames, on float RGB in [0, 255] replicate-padded to a multiple of 8 (RAFT's "sintel" padding); per pair, the mean of the
int(0.05·H·W) largest flow magnitudes (over the padded flow, as VBench); the video is dynamic when at
least round(4·N/16) pairs exceed 6·min(H, W)/256 px, N being the number of kept frames. The per-sample
value is 1.0 (dynamic) or 0.0, so the leaderboard's mean is VBench's fraction of dynamic videos.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from bench.errors import NotApplicable
from bench.metric import Metric
from bench.types import EvalItem
from metrics._embed import registry_weight_names, weights_path

# ---- motion smoothness -----------------------------------------------------------------------------------
#: VBench's memory model for AMT on CUDA (anchor resolution, memory per anchor, fixed overhead)
AMT_ANCHOR_RESOLUTION = 1024 * 512
AMT_ANCHOR_MEMORY = 1500 * 1024**2
AMT_ANCHOR_MEMORY_BIAS = 2500 * 1024**2
#: below this the 1/64-scale correlation level is one pixel wide and AMT's lookup divides by zero
AMT_MIN_SIDE = 128


def amt_scale(h: int, w: int, vram_bytes: float | None) -> float:
    """VBench's AMT working scale: 1.0 without a memory limit (its CPU branch), else the GPU formula
    scale = 1 / floor(16 / sqrt(min(1, anchor / (h·w) · sqrt((vram − bias) / memory)))) · 16."""
    if vram_bytes is None:
        return 1.0
    s = AMT_ANCHOR_RESOLUTION / (h * w) * math.sqrt(max(vram_bytes - AMT_ANCHOR_MEMORY_BIAS, 0.0) / AMT_ANCHOR_MEMORY)
    s = min(1.0, s)
    if s <= 0:
        raise NotApplicable(f"vram {vram_bytes / 1024**3:.1f} GB leaves no memory for AMT (VBench needs > 2.4 GB)")
    return 1.0 / math.floor(1.0 / math.sqrt(s) * 16) * 16


def pad_amounts(h: int, w: int, divisor: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) replicate padding to the next multiple of `divisor`, split in halves."""
    ph = (((h // divisor) + 1) * divisor - h) % divisor
    pw = (((w // divisor) + 1) * divisor - w) % divisor
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def to_uint8_truncated(x: "Any") -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8 as VBench's tensor2img: x·255, clip, truncate."""
    return (x * 255.0).detach().squeeze(0).permute(1, 2, 0).cpu().numpy().clip(0, 255).astype(np.uint8)


def vfi_mean_abs_diff(frames: np.ndarray, predicted: Sequence[np.ndarray]) -> float:
    """Mean over the predictions of mean |prediction − real odd frame| (uint8 values, 0..255)."""
    odd = np.asarray(frames)[1::2]
    diffs = [float(np.mean(np.abs(p.astype(np.int16) - o.astype(np.int16)))) for p, o in zip(predicted, odd)]
    return float(np.mean(diffs))


def smoothness_from_diff(mean_abs_diff: float) -> float:
    return (255.0 - mean_abs_diff) / 255.0


def interpolate_middle_frames(model: Any, frames: np.ndarray, device: str = "cpu", scale: float = 1.0) -> list[np.ndarray]:
    """AMT-S at t = 0.5 between frames (0, 2), (2, 4), …: the predicted frames 1, 3, … as uint8."""
    import torch
    import torch.nn.functional as F

    kept = np.asarray(frames)[0::2]
    if len(kept) < 2:
        raise NotApplicable(f"motion_smoothness needs at least 3 frames, got {len(frames)}")
    h, w = kept.shape[1:3]
    left, right, top, bottom = pad_amounts(h, w, int(16 / scale))
    embt = torch.tensor(0.5).float().view(1, 1, 1, 1).to(device)

    def tensor(frame: np.ndarray) -> "torch.Tensor":
        x = torch.tensor(frame).permute(2, 0, 1).unsqueeze(0) / 255.0
        return F.pad(x, [left, right, top, bottom], mode="replicate").to(device)

    out = []
    with torch.inference_mode():
        prev = tensor(kept[0])
        for frame in kept[1:]:
            nxt = tensor(frame)
            pred = model(prev, nxt, embt, scale_factor=scale)
            out.append(to_uint8_truncated(pred[..., top:pred.shape[-2] - bottom, left:pred.shape[-1] - right]))
            prev = nxt
    return out


def load_amt(path: Path, device: str = "cpu") -> Any:
    from metrics.amt import load_amt_s

    return load_amt_s(path, device)


class MotionSmoothness(Metric):
    name = "motion_smoothness"
    description = ("VBench motion smoothness: AMT-S interpolates every odd frame from its even neighbours; "
                   "(255 - mean |interpolated - real|) / 255")
    higher_is_better = True
    value_range = (0.0, 1.0)
    defaults: ClassVar[dict[str, Any]] = {"weights": "amt-s", "downscale": False, "vram_gb": 0.0}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"downscale": (False, True)}

    _model: Any = None

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"])

    def variant(self) -> dict[str, Any]:
        v = super().variant()
        if not v["downscale"]:
            v.pop("vram_gb")  # only used by the downscale variant
        return v

    def setup(self) -> None:
        from bench.models import create_model

        self._model = create_model(weights_path(self.options["weights"]), load_amt, self.device)

    def _vram_bytes(self) -> float | None:
        if not self.options["downscale"]:
            return None
        gb = float(self.options["vram_gb"] or 0.0)
        if gb > 0:
            return gb * 1024**3
        import torch

        if str(self.device).startswith("cuda") and torch.cuda.is_available():
            return float(torch.cuda.get_device_properties(torch.device(self.device)).total_memory)
        return None  # VBench does not shrink frames on CPU

    def compute(self, item: EvalItem) -> dict[str, float]:
        if self._model is None:
            self.setup()
        frames = item.edited.frames
        if frames.shape[0] < 3:
            raise NotApplicable(f"{self.name} needs at least 3 frames, {item.sample.uid} has {frames.shape[0]}")
        if min(frames.shape[1:3]) < AMT_MIN_SIDE:
            raise NotApplicable(f"{self.name}: AMT-S needs frames of at least {AMT_MIN_SIDE} px per side "
                                f"(its coarsest correlation level is 1/64 scale), got {frames.shape[2]}x{frames.shape[1]}")
        scale = amt_scale(frames.shape[1], frames.shape[2], self._vram_bytes())
        predicted = interpolate_middle_frames(self._model, frames, self.device, scale)
        return {self.name: smoothness_from_diff(vfi_mean_abs_diff(frames, predicted))}

    def teardown(self) -> None:
        self._model = None


__all__ = ["MotionSmoothness", "amt_scale", "interpolate_middle_frames", "smoothness_from_diff", "vfi_mean_abs_diff"]


# ---- dynamic degree ----------------------------------------------------------------------------------------
RAFT_ITERS = 20
#: RAFT needs the 1/64-scale correlation level to be at least 2 px wide
RAFT_MIN_SIDE = 128


def keep_interval(fps: float) -> int:
    """VBench keeps every max(1, round(fps / 8))-th frame (Python's round: 12 fps -> 2, 20 fps -> 2)."""
    return max(1, round(float(fps) / 8))


def kept_indices(n_frames: int, fps: float) -> list[int]:
    return list(range(0, int(n_frames), keep_interval(fps)))


def dynamic_params(h: int, w: int, n_kept: int) -> tuple[float, int]:
    """(threshold in px, pairs needed): 6·min(H, W)/256 and round(4·N/16), N = number of kept frames."""
    return 6.0 * (min(h, w) / 256.0), round(4 * (n_kept / 16.0))


def top_magnitude_mean(flow: np.ndarray, fraction: float = 0.05) -> float:
    """Mean of the int(fraction·H·W) largest |flow| of one (H, W, 2) field (float32, as VBench)."""
    f = np.asarray(flow, np.float32)
    rad = np.sqrt(np.square(f[..., 0]) + np.square(f[..., 1])).ravel()
    k = int(rad.size * fraction)
    if k < 1:
        raise NotApplicable(f"a {f.shape[1]}x{f.shape[0]} flow field has fewer than 1/{fraction:g} pixels")
    return float(np.mean(np.sort(rad)[::-1][:k]))


def is_dynamic(max_rads: Sequence[float], thres: float, count_num: int) -> bool:
    """VBench's check_move: at least `count_num` pairs move more than `thres` (never with no pairs)."""
    return len(max_rads) > 0 and sum(1 for r in max_rads if r > thres) >= count_num


def sintel_pad(h: int, w: int, divisor: int = 8) -> tuple[int, int, int, int]:
    """RAFT's InputPadder ("sintel" mode): (left, right, top, bottom) to the next multiple of 8."""
    return pad_amounts(h, w, divisor)


def raft_pair_flows(model: Any, frames: np.ndarray, device: str = "cpu") -> list[np.ndarray]:
    """RAFT flow between consecutive frames of `frames`, on VBench's padded float [0, 255] input.

    Our RAFT (`metrics.flow.raft`) gets the original RAFT normalisation 2·(x/255) − 1 of the RGB frames
    already padded to a multiple of 8, so the network sees exactly VBench's tensor and the flow keeps the
    padded size (as VBench's, whose magnitudes are taken over the padded field).
    """
    import torch
    import torch.nn.functional as F

    h, w = frames.shape[1:3]
    left, right, top, bottom = sintel_pad(h, w)
    dtype = next(model.parameters()).dtype
    out = []

    def prep(frame: np.ndarray) -> "torch.Tensor":
        x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float()[None]
        x = F.pad(x, [left, right, top, bottom], mode="replicate")
        return (2 * (x / 255.0) - 1.0).to(device=device, dtype=dtype)

    with torch.inference_mode():
        prev = prep(frames[0])
        for frame in frames[1:]:
            nxt = prep(frame)
            flow = model(prev, nxt)[0]  # (2, H, W)
            out.append(flow.permute(1, 2, 0).float().cpu().numpy())
            prev = nxt
    return out


class DynamicDegree(Metric):
    name = "dynamic_degree"
    description = ("VBench dynamic degree: 1 if enough RAFT flow pairs (frames kept every round(fps/8)) have a "
                   "top-5% mean magnitude above 6*min(H,W)/256 px, else 0; the mean is the fraction of dynamic videos")
    higher_is_better = True
    value_range = (0.0, 1.0)
    defaults: ClassVar[dict[str, Any]] = {"weights": "raft-things", "flow": "raft", "iters": RAFT_ITERS}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"flow": ("raft", "gt")}

    _model: Any = None

    def required_weights(self) -> list[str]:
        return [] if self.options["flow"] == "gt" else registry_weight_names(self.options["weights"])

    def variant(self) -> dict[str, Any]:
        v = super().variant()
        if v["flow"] == "gt":  # exact flow: no network
            v.pop("weights")
            v.pop("iters")
        return v

    def applicable(self, item_has: set[str]) -> str | None:
        if self.options["flow"] == "gt" and "flow_gt" not in item_has:
            return f"{self.name} with flow=gt needs a suite with exact ground-truth flow (flow_gt)"
        return super().applicable(item_has)

    def setup(self) -> None:
        if self.options["flow"] == "gt":
            return
        from bench.models import create_model
        from metrics.flow.raft import load_raft

        self._model = create_model(weights_path(self.options["weights"]), load_raft, self.device,
                                   iters=int(self.options["iters"]))

    def pair_magnitudes(self, item: EvalItem) -> tuple[list[float], float, int]:
        """(top-5% mean magnitude per kept pair, threshold, pairs needed) of the edited video."""
        frames = item.edited.frames
        keep = kept_indices(frames.shape[0], item.edited.fps)
        if len(keep) < 2:
            raise NotApplicable(f"{self.name}: {item.sample.uid} keeps {len(keep)} frame(s) at {item.edited.fps:g} fps "
                                "(every round(fps/8)-th); need at least 2")
        h, w = frames.shape[1:3]
        thres, count_num = dynamic_params(h, w, len(keep))
        if self.options["flow"] == "gt":
            if keep != list(range(frames.shape[0])):
                raise NotApplicable(f"{self.name} with flow=gt needs every frame kept (fps < 12); "
                                    f"{item.sample.uid} is {item.edited.fps:g} fps")
            if item.flow_gt is None:
                raise NotApplicable(f"{self.name} with flow=gt: {item.sample.uid} has no flow_gt")
            flows = list(np.asarray(item.flow_gt, np.float32))
        else:
            if min(h, w) < RAFT_MIN_SIDE:
                raise NotApplicable(f"{self.name}: RAFT needs frames of at least {RAFT_MIN_SIDE} px per side, got {w}x{h}")
            if self._model is None:
                self.setup()
            flows = raft_pair_flows(self._model, frames[keep], self.device)
        return [top_magnitude_mean(f) for f in flows], thres, count_num

    def compute(self, item: EvalItem) -> dict[str, float]:
        rads, thres, count_num = self.pair_magnitudes(item)
        return {self.name: 1.0 if is_dynamic(rads, thres, count_num) else 0.0}

    def teardown(self) -> None:
        self._model = None


__all__ += ["DynamicDegree", "dynamic_params", "is_dynamic", "keep_interval", "kept_indices", "top_magnitude_mean"]
