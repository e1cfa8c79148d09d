"""Shared plumbing for the diffusers-based method adapters.

* Loading: `load_pipeline(pipeline_class, weights, device)` takes a weights-registry name (resolved
  with `bench.weights.resolve`, so a missing checkpoint raises `WeightsMissing` naming
  `videditbench weights download <name>`) or a local folder in the hub layout, and loads it through
  `bench.models.create_model` (once per process) with `from_pretrained(path, local_files_only=True)`.
  The `fp16` file variant is picked automatically when only `*.fp16.safetensors` files are present
  (that is what the `stable-diffusion-v1-5` spec downloads).
* Precision: float16 on CUDA (bfloat16 / float32 with `$VIDEDITBENCH_CUDA_DTYPE`), float32 elsewhere
  (CPU half precision is slow and lossy).
* Randomness: generators are CPU `torch.Generator`s seeded from the method's seed, so the initial
  noise is the same on every device; "same seed per frame" adapters pass one generator per frame,
  each seeded identically.
* Frames: uint8 (T, H, W, 3) <-> PIL, resized to a processing size whose sides are multiples of 8
  (the VAE downsamples x8), and back to the source size afterwards.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from bench.errors import NotApplicable, VidEditBenchError, WeightsMissing
from bench.method import Method
from bench.types import Video

#: the VAE of Stable Diffusion downsamples by 8, so processed sizes are multiples of 8
SIZE_MULTIPLE = 8


# ------------------------------------------------------------------------------------------------
# devices, precision, randomness
# ------------------------------------------------------------------------------------------------
#: environment variable choosing the CUDA precision of the diffusion adapters: float16 (default) or bfloat16
DTYPE_ENV = "VIDEDITBENCH_CUDA_DTYPE"


def torch_dtype_for(device: str) -> Any:
    """float16 on CUDA (bfloat16 with $VIDEDITBENCH_CUDA_DTYPE=bfloat16), float32 elsewhere."""
    import torch

    if not str(device).startswith("cuda"):
        return torch.float32
    name = os.environ.get(DTYPE_ENV, "float16").strip().lower() or "float16"
    aliases = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
               "bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32}
    if name not in aliases:
        raise VidEditBenchError(f"${DTYPE_ENV}={name!r} is not a precision; use float16, bfloat16 or float32")
    return aliases[name]


def cpu_generator(seed: int) -> Any:
    import torch

    return torch.Generator(device="cpu").manual_seed(int(seed))


def same_seed_generators(seed: int, n: int) -> list[Any]:
    """n CPU generators all seeded with `seed`: every frame of a batch draws the same noise."""
    return [cpu_generator(seed) for _ in range(n)]


# ------------------------------------------------------------------------------------------------
# weights and loading
# ------------------------------------------------------------------------------------------------
def _looks_like_path(value: str) -> bool:
    return os.sep in value or value.startswith((".", "~")) or (os.altsep is not None and os.altsep in value)


def weights_source(option: str | os.PathLike | None, default_name: str, method: str, option_name: str = "weights") -> str:
    """The registry name or local path to load: the user's option, else the method's default spec.

    A path that does not exist is a configuration error (naming the option), not a registry lookup.
    """
    if option is None or str(option) == "":
        return default_name
    value = str(option)
    if Path(value).expanduser().exists():
        return str(Path(value).expanduser())
    if _looks_like_path(value):
        raise VidEditBenchError(
            f"method '{method}': option '{option_name}' points to {value}, which does not exist "
            f"(give an existing pipeline folder, or a weights name such as '{default_name}')"
        )
    return value


def registry_names(*sources: str) -> list[str]:
    """Which of these weight sources are registry names (checked by the runner before setup)."""
    return [s for s in sources if not Path(s).expanduser().exists() and not _looks_like_path(s)]


def detect_variant(path: Path, component: str = "unet") -> str | None:
    """'fp16' when a component folder holds only `*.fp16.*` weight files, else None."""
    folder = path / component if (path / component).is_dir() else path
    files = [p.name for p in folder.glob("*") if p.suffix in (".safetensors", ".bin")]
    if not files:
        return None
    if any(".fp16." not in f for f in files):
        return None
    return "fp16"


def dtype_kwarg(torch_dtype: Any, library: str = "diffusers") -> dict[str, Any]:
    """`{"dtype": ...}` where the library takes it (diffusers >= 0.36, transformers >= 4.56), else the
    older `{"torch_dtype": ...}` (now deprecated in both)."""
    if library == "diffusers":
        from diffusers.utils import deprecation_utils

        new = hasattr(deprecation_utils, "_resolve_dtype")
    else:
        import transformers

        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        new = (major, minor) >= (4, 56)
    return {"dtype" if new else "torch_dtype": torch_dtype}


def _pipeline_class(name: str) -> Any:
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None:
        raise VidEditBenchError(f"diffusers {diffusers.__version__} has no pipeline class {name}; upgrade diffusers")
    return cls


def _load_error(path: Path, what: str, exc: Exception) -> VidEditBenchError:
    return VidEditBenchError(
        f"could not load {what} from {path}: {type(exc).__name__}: {exc} "
        "(expected a diffusers folder in the Hugging Face hub layout; re-download it with "
        "`videditbench weights download <name>` or fix the path)"
    )


def _load_pipeline(path: Path, device: str, pipeline: str, dtype: str, **components: str) -> Any:
    """create_model loader: `pipeline` is a diffusers class name, `components` name extra weight
    folders to load first (`motion_adapter=<path>`)."""
    import torch

    cls = _pipeline_class(pipeline)
    torch_dtype = getattr(torch, dtype)
    kwargs: dict[str, Any] = {"local_files_only": True, **dtype_kwarg(torch_dtype)}
    variant = detect_variant(path)
    if variant:
        kwargs["variant"] = variant
    params = inspect.signature(cls.__init__).parameters
    if "safety_checker" in params:  # benchmark outputs are not filtered (black frames would skew metrics)
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    if "feature_extractor" in params and "image_encoder" not in params:
        kwargs["feature_extractor"] = None
    if "motion_adapter" in components:
        from diffusers import MotionAdapter

        adapter_path = Path(components["motion_adapter"])
        try:
            kwargs["motion_adapter"] = MotionAdapter.from_pretrained(
                str(adapter_path), local_files_only=True, **dtype_kwarg(torch_dtype),
                **({"variant": "fp16"} if detect_variant(adapter_path) else {}),
            )
        except (OSError, ValueError, EnvironmentError) as exc:
            raise _load_error(adapter_path, "the AnimateDiff motion adapter", exc) from exc
    try:
        pipe = cls.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise _load_error(path, f"{pipeline}", exc) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_pipeline(pipeline: str, weights: str, device: str, **components: str) -> Any:
    """Load (once per process) diffusers pipeline class `pipeline` from a weights name or local path."""
    from bench.models import create_model, resolve_path

    main = resolve_path(weights)  # the checkpoint first: its WeightsMissing is the one to report
    resolved = {k: str(resolve_path(v)) for k, v in components.items()}
    dtype = str(torch_dtype_for(device)).replace("torch.", "")
    return create_model(main, _load_pipeline, device, pipeline=pipeline, dtype=dtype, **resolved)


SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_ancestral": "EulerAncestralDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
}


def own_pipeline(base: Any, scheduler: str | None = "default", **scheduler_overrides: Any) -> Any:
    """A pipeline object of its own over the (shared, cached) modules of `base`, with a fresh
    scheduler instance: schedulers carry state, and methods must not change each other's setup.

    `scheduler` picks another scheduler class ('default' keeps the checkpoint's), always with the
    checkpoint's noise schedule; `scheduler_overrides` change config values (e.g. timestep spacing).
    """
    import diffusers

    if scheduler in (None, "", "default"):
        sched_cls = type(base.scheduler)
    elif scheduler in SCHEDULERS:
        sched_cls = getattr(diffusers, SCHEDULERS[scheduler])
    else:
        raise VidEditBenchError(f"unknown scheduler '{scheduler}'; valid: default, {', '.join(SCHEDULERS)}")
    if sched_cls.__name__ == "DDIMScheduler" and "clip_sample" not in base.scheduler.config:
        # latent diffusion never clips latents; DDIM's class default (True) would
        scheduler_overrides.setdefault("clip_sample", False)
    components = dict(base.components)
    components["scheduler"] = sched_cls.from_config(base.scheduler.config, **scheduler_overrides)
    params = inspect.signature(type(base).__init__).parameters
    if "requires_safety_checker" in params:
        components["requires_safety_checker"] = False
    pipe = type(base)(**{k: v for k, v in components.items() if k in params})
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------------------------
# DDIM inversion
# ------------------------------------------------------------------------------------------------
def ddim_invert(eps_fn: Any, latents: Any, scheduler: Any, num_steps: int, save_at: Sequence[int] = ()) -> tuple[Any, dict[int, Any]]:
    """Deterministic DDIM inversion x_0 -> x_T (no guidance), as RAVE's and TokenFlow's official code.

    `eps_fn(x, t)` is the noise prediction; `scheduler` a DDIM scheduler (its `alphas_cumprod` and
    `final_alpha_cumprod` are used, its timesteps set to `num_steps`). Walks the timesteps in
    ascending order: x0 = (x - sqrt(1 - a_prev) eps) / sqrt(a_prev), x = sqrt(a_t) x0 + sqrt(1 - a_t) eps.
    Returns (x_T, {t: x_t for t in save_at}) where x_t is the latent right after the step at t.
    """
    scheduler.set_timesteps(int(num_steps), device=latents.device)
    alphas = scheduler.alphas_cumprod.to(latents.device, latents.dtype)
    timesteps = scheduler.timesteps.flip(0)  # ascending noise level
    wanted = {int(t) for t in save_at}
    missing = wanted - {int(t) for t in timesteps}
    if missing:
        raise VidEditBenchError(
            f"DDIM inversion with {num_steps} steps never visits timestep(s) {sorted(missing)} that denoising needs "
            "(make the number of inversion steps a multiple of the number of denoising steps)"
        )
    saved: dict[int, Any] = {}
    x = latents
    for i, t in enumerate(timesteps):
        a_t = alphas[t]
        a_prev = alphas[timesteps[i - 1]] if i > 0 else scheduler.final_alpha_cumprod.to(x.device, x.dtype)
        eps = eps_fn(x, t)
        x0 = (x - (1 - a_prev).sqrt() * eps) / a_prev.sqrt()
        x = a_t.sqrt() * x0 + (1 - a_t).sqrt() * eps
        if int(t) in wanted:
            saved[int(t)] = x
    return x, saved


# ------------------------------------------------------------------------------------------------
# frames
# ------------------------------------------------------------------------------------------------
def processing_size(height: int, width: int, resolution: int | None, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """(h, w) to run the model at: the shorter side scaled to `resolution` (None = keep the source
    scale), both sides rounded to the nearest multiple of `multiple` (at least `multiple`)."""
    scale = 1.0 if not resolution else float(resolution) / min(height, width)

    def snap(v: float) -> int:
        return max(multiple, int(round(v / multiple)) * multiple)

    return snap(height * scale), snap(width * scale)


def frames_to_pil(frames: np.ndarray, size: tuple[int, int]) -> list[Any]:
    """uint8 (T, H, W, 3) -> list of RGB PIL images at size (h, w) (Lanczos when resampling)."""
    from PIL import Image

    h, w = size
    out = []
    for f in np.asarray(frames):
        img = Image.fromarray(np.ascontiguousarray(f), mode="RGB")
        out.append(img if img.size == (w, h) else img.resize((w, h), Image.LANCZOS))
    return out


def image_to_pil(image: np.ndarray, size: tuple[int, int] | None = None) -> Any:
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise VidEditBenchError(f"reference image must be uint8 (h, w, 3), got {arr.dtype} {arr.shape}")
    img = Image.fromarray(np.ascontiguousarray(arr[..., :3]), mode="RGB")
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.LANCZOS)
    return img


def masks_to_pil(masks: np.ndarray, size: tuple[int, int]) -> list[Any]:
    """bool (T, H, W) -> list of 'L' PIL masks (255 = edit here) at size (h, w), nearest-neighbour."""
    from PIL import Image

    h, w = size
    out = []
    for m in np.asarray(masks):
        img = Image.fromarray((np.asarray(m) > 0).astype(np.uint8) * 255, mode="L")
        out.append(img if img.size == (w, h) else img.resize((w, h), Image.NEAREST))
    return out


def to_uint8(images: Any) -> np.ndarray:
    """Pipeline output (float [0,1] array (N,h,w,3), list of PIL, or tensor) -> uint8 (N, h, w, 3)."""
    if isinstance(images, list) and images and not isinstance(images[0], np.ndarray):
        return np.stack([np.asarray(im.convert("RGB")) for im in images]).astype(np.uint8)
    arr = images.detach().float().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if arr.dtype == np.uint8:
        return arr
    if not np.isfinite(arr).all():
        raise VidEditBenchError("the diffusion pipeline produced NaN/inf pixels (try float32 or another seed)")
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (N, h, w, 3) -> uint8 (N, H, W, 3) at size (H, W) (Lanczos); unchanged if already there."""
    from PIL import Image

    frames = np.asarray(frames)
    h, w = size
    if frames.shape[1:3] == (h, w):
        return frames
    return np.stack([np.asarray(Image.fromarray(f, mode="RGB").resize((w, h), Image.LANCZOS)) for f in frames])


def batches(n: int, size: int) -> list[range]:
    size = max(1, int(size))
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


# ------------------------------------------------------------------------------------------------
# base adapter
# ------------------------------------------------------------------------------------------------
class DiffusersMethod(Method):
    """Common parts of the diffusers adapters: the `weights` option, loading, prompt checks, sizing.

    Subclasses set `weights` (the default spec names; the first is the pipeline checkpoint),
    `defaults` (must contain "weights" and "resolution"), and implement `_load` and `edit`.
    """

    #: option name -> index into `weights`, for every weights-like option of the method
    weight_options: ClassVar[dict[str, int]] = {"weights": 0}

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        super().__init__(device=device, seed=seed, **config)
        self.pipe: Any = None
        # validate paths early (a clear config error before any model is touched)
        self._sources = {
            opt: weights_source(self.cfg.get(opt), self.weights[i], self.name, opt)
            for opt, i in self.weight_options.items()
        }

    def weight_source(self, option: str = "weights") -> str:
        return self._sources[option]

    def required_weights(self) -> list[str]:
        return registry_names(*self._sources.values())

    def setup(self) -> None:
        if self.pipe is None:
            self.pipe = self._load()

    def _load(self) -> Any:
        raise NotImplementedError

    def teardown(self) -> None:
        self.pipe = None

    # helpers ------------------------------------------------------------------------------------
    def _size_for(self, video: Video) -> tuple[int, int]:
        return processing_size(video.height, video.width, self.cfg.get("resolution"))

    def _require_prompt(self, prompt: str | None) -> str:
        if prompt is None or not str(prompt).strip():
            raise NotApplicable(f"{self.name} needs a target prompt (text-guided edit); the sample has none")
        return str(prompt)

    def _finish(self, frames: np.ndarray, video: Video) -> np.ndarray:
        """Resize the model output back to the source size and check the frame count."""
        out = resize_frames(to_uint8(frames), video.size)
        if out.shape[0] != video.num_frames:
            raise VidEditBenchError(f"{self.name}: produced {out.shape[0]} frames for a {video.num_frames}-frame video")
        return np.ascontiguousarray(out, dtype=np.uint8)


__all__: Sequence[str] = (
    "DiffusersMethod",
    "WeightsMissing",
    "batches",
    "cpu_generator",
    "ddim_invert",
    "detect_variant",
    "frames_to_pil",
    "image_to_pil",
    "load_pipeline",
    "masks_to_pil",
    "processing_size",
    "resize_frames",
    "same_seed_generators",
    "own_pipeline",
    "to_uint8",
    "torch_dtype_for",
    "weights_source",
)
