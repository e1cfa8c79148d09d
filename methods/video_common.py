"""Shared plumbing for the adapters over large video diffusion models (Wan, CogVideoX, LTX-Video).

Frame count. Video VAEs compress time by 4 (Wan, CogVideoX) or 8 (LTX) and keep the first frame
on its own, so a model accepts `k * multiple + 1` frames; some checkpoints were trained at one
length (CogVideoX 1.0: 49). `FramePlan` maps a T-frame sample to the model's count and back:

* T <= N (the model's count): pad by repeating the last frame up to N, run, then drop the padded
  frames (a 24-frame sample on Wan becomes 25 frames, its frame 24 a copy of frame 23; on
  CogVideoX-2b/5b it becomes 49 frames, frames 24..48 copies of frame 23);
* T > N (only when the model's count is fixed, e.g. `num_frames: 49` on a 60-frame clip): sample N
  frames uniformly (rounded `linspace(0, T-1, N)`), run, and give each source frame the output
  frame nearest in time.

Size. Each model needs sides that are multiples of its spatial factor (VAE x patch: Wan and
CogVideoX 16, LTX 32): the clip is resized (Lanczos) to a legal size from `resolution` (shorter
side) or explicit `height` / `width`, and the output is resized back to the source size.

Loading. `load_video_pipeline` loads a diffusers pipeline folder (hub layout) once per process in
the chosen precision: `dtype: auto` is bfloat16 on CUDA (what these models were trained in) and
float32 on the CPU; `cpu_offload` uses diffusers' `enable_model_cpu_offload` (components moved to
the GPU one at a time) and `vae_tiling` enables tiled VAE encode/decode, both for small GPUs.
Components listed in `fp32_components` stay float32 (the Wan VAE, as diffusers' Wan examples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from bench.errors import VidEditBenchError
from bench.media.video_io import evenly_spaced
from bench.types import Video
from methods.diffusion_common import (
    DiffusersMethod,
    _load_error,
    _pipeline_class,
    dtype_kwarg,
    frames_to_pil,
    processing_size,
    resize_frames,
    to_uint8,
)

DTYPES = ("auto", "float32", "float16", "bfloat16")


# ------------------------------------------------------------------------------------------------
# frame count mapping (pure, unit-tested)
# ------------------------------------------------------------------------------------------------
def legal_frame_count(num_frames: int, multiple: int) -> int:
    """The smallest count of the form k * multiple + 1 (k >= 0) that is >= num_frames."""
    if num_frames < 1 or multiple < 1:
        raise ValueError(f"need num_frames >= 1 and multiple >= 1, got {num_frames}, {multiple}")
    return int(math.ceil((num_frames - 1) / multiple)) * multiple + 1


@dataclass(frozen=True)
class FramePlan:
    """How T source frames become the model's N frames (`forward`) and N output frames become T (`back`)."""

    source_frames: int
    model_frames: int
    forward: tuple[int, ...]  # for each model frame, the source frame it shows
    back: tuple[int, ...]  # for each source frame, the model output frame it takes

    @classmethod
    def make(cls, source_frames: int, model_frames: int) -> "FramePlan":
        t, n = int(source_frames), int(model_frames)
        if t < 1 or n < 1:
            raise ValueError(f"need at least one frame on both sides, got {t} -> {n}")
        if n >= t:  # pad with copies of the last frame, drop them afterwards
            return cls(t, n, tuple(list(range(t)) + [t - 1] * (n - t)), tuple(range(t)))
        forward = np.asarray(evenly_spaced(t, n))
        back = np.abs(np.arange(t)[:, None] - forward[None, :]).argmin(axis=1)
        return cls(t, n, tuple(int(i) for i in forward), tuple(int(i) for i in back))

    def to_model(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if len(frames) != self.source_frames:
            raise ValueError(f"plan is for {self.source_frames} frames, got {len(frames)}")
        return frames[list(self.forward)]

    def from_model(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if len(frames) != self.model_frames:
            raise ValueError(f"model produced {len(frames)} frames, expected {self.model_frames}")
        return frames[list(self.back)]


def plan_frames(num_frames: int, multiple: int, fixed: int | None = None) -> FramePlan:
    """The plan for a clip: to the fixed count if one is given (it must be k * multiple + 1), else to
    the nearest legal count at or above the clip's."""
    if fixed:
        if (int(fixed) - 1) % multiple:
            raise VidEditBenchError(f"num_frames={fixed} is not of the form k*{multiple}+1 (e.g. {legal_frame_count(int(fixed), multiple)})")
        return FramePlan.make(num_frames, int(fixed))
    return FramePlan.make(num_frames, legal_frame_count(num_frames, multiple))


def model_size(height: int, width: int, *, resolution: int | None, multiple: int,
               target_height: int | None = None, target_width: int | None = None) -> tuple[int, int]:
    """(h, w) to run at: explicit height/width (snapped to `multiple`) win; else the shorter side
    scaled to `resolution` with the aspect ratio kept (None = the source scale)."""
    if target_height or target_width:
        th = int(target_height or round(height * int(target_width) / width))
        tw = int(target_width or round(width * int(target_height) / height))
        return processing_size(th, tw, None, multiple)
    return processing_size(height, width, resolution, multiple)


# ------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------
def resolve_dtype(name: str, device: str) -> str:
    if name not in DTYPES:
        raise VidEditBenchError(f"option 'dtype' is {name!r}; valid: {', '.join(DTYPES)}")
    if name == "auto":
        return "bfloat16" if str(device).startswith("cuda") else "float32"
    return name


def _load_component_fp32(path: Path, name: str) -> Any:
    """Component `name` of a pipeline folder loaded in float32 with the class its model_index.json names."""
    import importlib
    import json

    import torch

    library, class_name = json.loads((path / "model_index.json").read_text())[name][:2]
    cls = getattr(importlib.import_module(library), class_name)
    lib = "transformers" if library == "transformers" else "diffusers"
    return cls.from_pretrained(str(path / name), local_files_only=True, **dtype_kwarg(torch.float32, lib))


def _load_video_pipeline(path: Path, device: str, pipeline: str, dtype: str, cpu_offload: bool,
                         vae_tiling: bool, fp32_components: tuple[str, ...]) -> Any:
    import torch

    cls = _pipeline_class(pipeline)
    torch_dtype = getattr(torch, dtype)
    try:
        overrides = {name: _load_component_fp32(path, name) for name in fp32_components
                     if torch_dtype != torch.float32 and (path / name).is_dir()}
        pipe = cls.from_pretrained(str(path), local_files_only=True, **dtype_kwarg(torch_dtype), **overrides)
    except (OSError, ValueError, EnvironmentError, KeyError) as exc:
        raise _load_error(path, pipeline, exc) from exc
    pipe.set_progress_bar_config(disable=True)
    if vae_tiling and hasattr(pipe.vae, "enable_tiling"):
        pipe.vae.enable_tiling()
    if cpu_offload and str(device).startswith("cuda"):
        pipe.enable_model_cpu_offload(device=device)
        return pipe
    return pipe.to(device)


def load_video_pipeline(pipeline: str, weights: str, device: str, *, dtype: str = "auto", cpu_offload: bool = False,
                        vae_tiling: bool = False, fp32_components: Sequence[str] = ()) -> Any:
    """Load (once per process) diffusers pipeline class `pipeline` from a weights name or local folder."""
    from bench.models import create_model, resolve_path

    return create_model(resolve_path(weights), _load_video_pipeline, device, pipeline=pipeline,
                        dtype=resolve_dtype(str(dtype), device), cpu_offload=bool(cpu_offload),
                        vae_tiling=bool(vae_tiling), fp32_components=tuple(fp32_components))


# ------------------------------------------------------------------------------------------------
# base adapter
# ------------------------------------------------------------------------------------------------
#: options every video-model adapter takes (merged into each subclass's `defaults`)
VIDEO_MODEL_OPTIONS: dict[str, Any] = {
    "dtype": "auto",  # auto = bfloat16 on CUDA, float32 on CPU; or float16 / bfloat16 / float32
    "cpu_offload": False,  # diffusers enable_model_cpu_offload (CUDA only)
    "vae_tiling": False,
    "height": None,  # explicit processing size (snapped to the model's multiple); None = from resolution
    "width": None,
    "num_frames": None,  # None = the clip's count padded to the next legal one; or a fixed legal count
}


class VideoModelMethod(DiffusersMethod):
    """A diffusers video pipeline run on the whole clip (frame count and size mapped as above)."""

    pipeline_class: ClassVar[str] = ""
    #: the model accepts k * frame_multiple + 1 frames
    frame_multiple: ClassVar[int] = 4
    #: processed sides are multiples of this
    size_multiple: ClassVar[int] = 16
    fp32_components: ClassVar[tuple[str, ...]] = ()

    def _load(self) -> Any:
        return load_video_pipeline(self.pipeline_class, self.weight_source(), self.device, dtype=self.cfg["dtype"],
                                   cpu_offload=self.cfg["cpu_offload"], vae_tiling=self.cfg["vae_tiling"],
                                   fp32_components=self.fp32_components)

    def frame_plan(self, num_frames: int) -> FramePlan:
        return plan_frames(num_frames, self.frame_multiple, self.cfg.get("num_frames"))

    def _size_for(self, video: Video) -> tuple[int, int]:
        return model_size(video.height, video.width, resolution=self.cfg.get("resolution"), multiple=self.size_multiple,
                          target_height=self.cfg.get("height"), target_width=self.cfg.get("width"))

    def model_inputs(self, video: Video) -> tuple[FramePlan, tuple[int, int], list[Any]]:
        """(frame plan, processing size, the model's frames as PIL images)."""
        plan = self.frame_plan(video.num_frames)
        size = self._size_for(video)
        return plan, size, frames_to_pil(plan.to_model(video.frames), size)

    def generator(self) -> Any:
        import torch

        # CPU noise: the same draws on every device (the pipelines move it to the execution device)
        return torch.Generator(device="cpu").manual_seed(self.seed)

    def call_kwargs(self, video: Video, frames: list[Any], plan: FramePlan, size: tuple[int, int],
                    prompt: str) -> dict[str, Any]:
        """The pipeline arguments of one text-guided edit (besides generator and output type)."""
        raise NotImplementedError

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
        import torch

        text = self._require_prompt(prompt)
        self.setup()
        plan, size, frames = self.model_inputs(video)
        kwargs = self.call_kwargs(video, frames, plan, size, text)
        with torch.inference_mode():
            result = self.pipe(**kwargs, generator=self.generator(), output_type="np")
        return self.finish_video(result.frames[0], plan, video)

    def finish_video(self, frames: Any, plan: FramePlan, video: Video) -> np.ndarray:
        """Model output (N frames at the processing size) -> the source's T frames at its size."""
        out = to_uint8(np.asarray(frames) if not isinstance(frames, list) else frames)
        out = plan.from_model(out)
        return self._finish(resize_frames(out, video.size), video)


__all__: Sequence[str] = (
    "FramePlan",
    "VIDEO_MODEL_OPTIONS",
    "VideoModelMethod",
    "legal_frame_count",
    "load_video_pipeline",
    "model_size",
    "plan_frames",
    "resolve_dtype",
)
