"""Shared helpers of the CLIP / DINO metric family: model and processor loaders, frame batching,
image-processor backend selection, L2 normalisation, mask crops and consistency pairing math.

Everything heavy (torch, transformers, torchvision) is imported inside functions: this module is
only imported when one of these metrics is selected, but it is also imported by tests that only
need the plain math.

Loaders take `(path, device, **options)` so they can go through `bench.models.create_model`, which
loads each (weights, loader, device, options) once per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from bench.errors import NotApplicable, VidEditBenchError

if TYPE_CHECKING:
    import torch

#: image-processor backends: "pil" reproduces the transformers-4 "slow" processors that V2VBench
#: was written against (CLIPImageProcessorPil / BitImageProcessorPil in transformers 5);
#: "torchvision" is the transformers-5 default (the old "fast" processors).
BACKENDS: tuple[str, ...] = ("pil", "torchvision")
#: consistency pairings: V2VBench (consecutive), LOVEU-TGVE (all pairs), VBench (prev_first).
PAIRINGS: tuple[str, ...] = ("consecutive", "all", "prev_first")

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class OptionalDependencyMissing(VidEditBenchError, ImportError):
    """An optional extra is not installed. It is an ImportError, so the runner reports the metric as
    skipped, and a VidEditBenchError, so the message (with the install command) is shown as is."""

    def __init__(self, package: str, fix: str, needed_by: str):
        self.package, self.fix = package, fix
        super().__init__(f"{needed_by} needs the optional package '{package}', which is not installed; run: {fix}")


# ---------------------------------------------------------------------------------------------
# weights references
# ---------------------------------------------------------------------------------------------
def registry_weight_names(*refs: str | os.PathLike | None) -> list[str]:
    """The registry names among `refs` (local paths need no download, so they are not listed).

    A reference that is neither an existing path nor a registered name raises a clear error.
    """
    from bench.weights import all_specs

    known = {s.name for s in all_specs()}
    names: list[str] = []
    for ref in refs:
        if ref is None:
            continue
        ref_s = str(ref)
        if Path(ref_s).expanduser().exists():
            continue
        if ref_s in known:
            names.append(ref_s)
            continue
        raise VidEditBenchError(
            f"weights '{ref_s}' is neither an existing local path nor a registered weights name "
            f"(see `videditbench weights list`)"
        )
    return names


def single_file(path: str | os.PathLike, patterns: Sequence[str], what: str) -> Path:
    """`path` itself when it is a file, else the one file in the folder matching `patterns` (else one clear error)."""
    p = Path(path)
    if p.is_file():
        return p
    found = sorted({f for pat in patterns for f in p.glob(pat)})
    if len(found) != 1:
        raise VidEditBenchError(f"{p}: expected exactly one {what} ({', '.join(patterns)}) in the folder, found {len(found)}")
    return found[0]


def weights_path(ref: str | os.PathLike) -> Path:
    """Resolve a registry name or a local path (raises WeightsMissing with the fix command)."""
    from bench.models import resolve_path

    return resolve_path(ref)


# ---------------------------------------------------------------------------------------------
# plain math
# ---------------------------------------------------------------------------------------------
def l2_normalize(x: "torch.Tensor") -> "torch.Tensor":
    """x / ||x|| along the last axis (no epsilon, as the reference implementations)."""
    import torch

    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)


def iter_batches(n: int, batch_size: int) -> Iterator[slice]:
    step = max(1, int(batch_size))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def pair_similarities(features: np.ndarray, pairing: str = "consecutive") -> np.ndarray:
    """Per-term similarities of L2-normalised features (N, D), each clipped at 0.

    consecutive: max(0, cos(f_t, f_{t-1})) for t = 1..N-1 (V2VBench);
    all:         max(0, cos(f_i, f_j)) for all i < j (LOVEU-TGVE frame consistency);
    prev_first:  (max(0, cos(f_t, f_{t-1})) + max(0, cos(f_t, f_0))) / 2 for t = 1..N-1 (VBench).
    """
    f = np.asarray(features, dtype=np.float64)
    n = f.shape[0]
    if n < 2:
        raise NotApplicable(f"consistency needs at least 2 frames, got {n}")
    if pairing == "consecutive":
        return np.maximum(0.0, np.sum(f[1:] * f[:-1], axis=1))
    if pairing == "all":
        gram = f @ f.T
        iu = np.triu_indices(n, k=1)
        return np.maximum(0.0, gram[iu])
    if pairing == "prev_first":
        prev = np.maximum(0.0, np.sum(f[1:] * f[:-1], axis=1))
        first = np.maximum(0.0, f[1:] @ f[0])
        return (prev + first) / 2.0
    raise VidEditBenchError(f"bad pairing '{pairing}'; valid choices: {', '.join(PAIRINGS)}")


def consistency_score(features: np.ndarray, pairing: str = "consecutive") -> float:
    """Mean of `pair_similarities` (features must already be L2-normalised)."""
    return float(np.mean(pair_similarities(features, pairing)))


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) exclusive bounds of the True pixels of a (H, W) mask, or None if empty."""
    m = np.asarray(mask).astype(bool)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def region_crops(frames: np.ndarray, mask: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """Crop each frame to its mask's bounding box (DreamVideo-2 R-CLIP / R-DINO).

    Returns the crops and the indices of the frames they come from; frames whose mask is
    empty are skipped. The mask is resized (nearest) when its size differs from the frames'.
    """
    frames = np.asarray(frames)
    m = np.asarray(mask).astype(bool)
    if m.ndim == 2:
        m = np.broadcast_to(m, (frames.shape[0], *m.shape))
    if m.shape[0] != frames.shape[0]:
        raise NotApplicable(f"mask has {m.shape[0]} frames but the edited video has {frames.shape[0]}")
    h, w = frames.shape[1:3]
    if m.shape[1:] != (h, w):
        ys = (np.arange(h) * m.shape[1] // h).clip(0, m.shape[1] - 1)
        xs = (np.arange(w) * m.shape[2] // w).clip(0, m.shape[2] - 1)
        m = m[:, ys][:, :, xs]
    crops, idx = [], []
    for t in range(frames.shape[0]):
        box = mask_bbox(m[t])
        if box is None:
            continue
        top, left, bottom, right = box
        crops.append(np.ascontiguousarray(frames[t, top:bottom, left:right]))
        idx.append(t)
    if not crops:
        raise NotApplicable("the mask is empty in every frame, so there is no region to crop")
    return crops, idx


def content_key(*arrays: np.ndarray | Sequence[np.ndarray] | str | None) -> str:
    """A content hash of arrays (or lists of arrays) and strings, for feature-cache keys."""
    from bench.api.hashing import hash_array, hash_obj

    parts: list[str] = []
    for a in arrays:
        if a is None:
            parts.append("-")
        elif isinstance(a, str):
            parts.append(a)
        elif isinstance(a, np.ndarray):
            parts.append(hash_array(a))
        else:
            parts.append(hash_obj([hash_array(np.asarray(x)) for x in a]))
    return hash_obj(parts, n=24)


def cached(cache: Any, namespace: str, key: str, fn: Callable[[], Any]) -> Any:
    """`cache.get_or_compute` when the run gave a FeatureCache, else just `fn()`."""
    if cache is None:
        return fn()
    return cache.get_or_compute(namespace, key, fn)


# ---------------------------------------------------------------------------------------------
# image preprocessing
# ---------------------------------------------------------------------------------------------
def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def load_image_processor(path: Path, device: str = "cpu", backend: str = "pil") -> Any:
    """The checkpoint's own image processor (preprocessor_config.json) with the chosen backend."""
    from transformers import AutoImageProcessor

    if backend not in BACKENDS:
        raise VidEditBenchError(f"bad image backend '{backend}'; valid choices: {', '.join(BACKENDS)}")
    if not (Path(path) / "preprocessor_config.json").is_file():
        raise VidEditBenchError(
            f"{path}: no preprocessor_config.json; point the weights option at a Hugging Face model folder"
        )
    if _transformers_major() >= 5:
        return AutoImageProcessor.from_pretrained(str(path), backend=backend, local_files_only=True)
    # transformers 4.x: the "slow" processors are the PIL ones, the "fast" ones use torchvision
    return AutoImageProcessor.from_pretrained(str(path), use_fast=(backend == "torchvision"), local_files_only=True)


def hf_pixels(processor: Any, images: Sequence[np.ndarray]) -> "torch.Tensor":
    """Run a transformers image processor on uint8 (H, W, 3) arrays -> float32 (N, 3, h, w)."""
    out = processor(images=[np.asarray(im) for im in images], return_tensors="pt")
    return out["pixel_values"].float()


def vbench_pixels(images: np.ndarray | Sequence[np.ndarray], size: int, kind: str) -> "torch.Tensor":
    """VBench's tensor transforms on frames given as uint8 (H, W, 3).

    VBench builds `torch.Tensor(frames)`, i.e. float32 values in [0, 255], and resizes that float
    tensor (torchvision, antialias=False): the resized values are neither rounded nor clamped
    (bicubic overshoots stay). Resizing the uint8 tensor instead would round and clamp, which moved
    subject_consistency by 2% on random DINO weights.

    kind "clip": Resize(size, bicubic) + CenterCrop(size), /255, CLIP mean/std (background_consistency,
    aesthetic_quality);
    kind "dino": Resize(size, bilinear) of the shorter side, no crop, /255, ImageNet mean/std
    (subject_consistency).
    """
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    arr = np.stack([np.asarray(im) for im in images]) if not isinstance(images, np.ndarray) else images
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float()  # float32 (N, 3, H, W), 0..255
    if kind == "clip":
        x = TF.resize(x, [size], interpolation=InterpolationMode.BICUBIC, antialias=False)
        x = TF.center_crop(x, [size, size])
        mean, std = CLIP_MEAN, CLIP_STD
    elif kind == "dino":
        x = TF.resize(x, [size], interpolation=InterpolationMode.BILINEAR, antialias=False)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        raise VidEditBenchError(f"unknown VBench transform '{kind}'")
    x = x.div(255.0)
    return TF.normalize(x, list(mean), list(std))


# ---------------------------------------------------------------------------------------------
# model loaders (all go through bench.models.create_model)
# ---------------------------------------------------------------------------------------------
def _float32_kwargs() -> dict[str, Any]:
    import torch

    # transformers 5 renamed torch_dtype to dtype (and defaults to the checkpoint's dtype)
    return {"dtype": torch.float32} if _transformers_major() >= 5 else {"torch_dtype": torch.float32}


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - logging tweaks are best effort
        pass


def load_clip_model(path: Path, device: str = "cpu", precision: str = "fp32") -> Any:
    """A transformers CLIPModel (text + vision towers and projections), eval mode, float32 (or
    cast to `precision` after loading)."""
    from transformers.models.clip.modeling_clip import CLIPModel  # the model module, not the Auto machinery

    from metrics._precision import cast_model

    _quiet_transformers()
    if not (Path(path) / "config.json").is_file():
        raise VidEditBenchError(f"{path}: not a transformers CLIP folder (no config.json)")
    model = CLIPModel.from_pretrained(str(path), local_files_only=True, **_float32_kwargs())
    return cast_model(model, precision).to(device).eval()


def load_tokenizer(path: Path, device: str = "cpu") -> Any:
    from transformers import AutoTokenizer

    _quiet_transformers()
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def _legacy_dinov2_interpolation(embeddings_module: Any) -> Callable[..., Any]:
    """DINOv2 position-embedding interpolation of older transformers (the one V2VBench ran with):
    bicubic with scale_factor ((n + 0.1) / sqrt(N)) instead of an exact output size."""
    import torch
    from torch import nn

    def interpolate_pos_encoding(embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
        pos = embeddings_module.position_embeddings
        num_patches = embeddings.shape[1] - 1
        num_positions = pos.shape[1] - 1
        if num_patches == num_positions and height == width:
            return pos
        class_pos, patch_pos = pos[:, :1], pos[:, 1:]
        dim = embeddings.shape[-1]
        ph, pw = embeddings_module.patch_embeddings.patch_size
        new_h, new_w = height // ph + 0.1, width // pw + 0.1
        side = int(num_positions**0.5)
        patch_pos = patch_pos.reshape(1, side, side, dim).permute(0, 3, 1, 2)
        dtype = patch_pos.dtype
        patch_pos = nn.functional.interpolate(
            patch_pos.to(torch.float32),
            scale_factor=(float(new_h / side), float(new_w / side)),
            mode="bicubic",
            align_corners=False,
        ).to(dtype)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((class_pos, patch_pos), dim=1)

    return interpolate_pos_encoding


def _dino_model_class(path: Path) -> Any:
    """The model class of the folder's config `model_type`, imported from its own module
    (AutoModel's class for any other type)."""
    import json

    try:
        model_type = json.loads((Path(path) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as e:
        raise VidEditBenchError(f"{path}/config.json: unreadable ({e}); point the weights option at a model folder") from e
    if model_type == "dinov2":
        from transformers.models.dinov2.modeling_dinov2 import Dinov2Model

        return Dinov2Model
    if model_type == "vit":
        from transformers.models.vit.modeling_vit import ViTModel

        return ViTModel
    from transformers import AutoModel

    return AutoModel


def load_dino_model(path: Path, device: str = "cpu", pos_interp: str = "size", precision: str = "fp32") -> Any:
    """A DINO-family vision transformer (Dinov2Model, or ViTModel for DINO v1), eval mode, float32
    (or cast to `precision` after loading).

    pos_interp "legacy" swaps in the older transformers DINOv2 position interpolation (a variant).
    A file (not a folder) is read as an original DINO v1 checkpoint (`dino_vitbase16_pretrain.pth`).
    """
    from metrics._precision import cast_model

    _quiet_transformers()
    if Path(path).is_file():  # an original facebookresearch/dino .pth (what VBench loads)
        from metrics.dino_hub import load_dino_hub_checkpoint

        if pos_interp != "size":
            raise VidEditBenchError("pos_interp=legacy applies to DINOv2 models only")
        return load_dino_hub_checkpoint(Path(path), device)
    if not (Path(path) / "config.json").is_file():
        raise VidEditBenchError(f"{path}: not a transformers model folder (no config.json)")
    model = _dino_model_class(path).from_pretrained(str(path), local_files_only=True, **_float32_kwargs())
    if pos_interp == "legacy":
        emb = getattr(model, "embeddings", None)
        if emb is None or type(model).__name__ != "Dinov2Model":
            raise VidEditBenchError("pos_interp=legacy applies to DINOv2 models only")
        emb.interpolate_pos_encoding = _legacy_dinov2_interpolation(emb)
    elif pos_interp != "size":
        raise VidEditBenchError(f"bad pos_interp '{pos_interp}'; valid choices: size, legacy")
    return cast_model(model, precision).to(device).eval()


def dino_cls_features(model: Any, pixel_values: "torch.Tensor") -> "torch.Tensor":
    """The final-LayerNorm CLS token: Dinov2Model.pooler_output, ViTModel last_hidden_state[:, 0]."""
    if type(model).__name__ == "Dinov2Model":
        return model(pixel_values=pixel_values).pooler_output
    # ViTModel's pooler is an extra (untrained for DINO) dense layer: use the normed CLS token instead
    out = model(pixel_values=pixel_values, interpolate_pos_encoding=True)
    return out.last_hidden_state[:, 0]


def clip_vision_pooler(model: Any, pixel_values: "torch.Tensor") -> "torch.Tensor":
    """post_layernorm(CLS) of the CLIP vision tower (`CLIPVisionModel.pooler_output`), before projection."""
    return model.vision_model(pixel_values=pixel_values).pooler_output


def clip_text_embeds(model: Any, tokenizer: Any, prompts: Sequence[str], device: str) -> "torch.Tensor":
    """Projected text embeddings (`get_text_features`): text_projection of the EOS hidden state."""
    import torch

    tok = tokenizer(list(prompts), padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.inference_mode():
        pooled = model.text_model(
            input_ids=tok["input_ids"].to(device), attention_mask=tok["attention_mask"].to(device)
        ).pooler_output
        return model.text_projection(pooled).float().cpu()


# ---------------------------------------------------------------------------------------------
# batched, cached frame encoding
# ---------------------------------------------------------------------------------------------
@dataclass
class FrameEncoder:
    """Preprocess frames and run a vision model in batches; results cached by content.

    `namespace` must identify everything that changes the features (model path, backend, feature
    kind), so that metrics sharing a backbone (clip_text, clip_consistency, aesthetic) share one
    forward pass per video through the run's FeatureCache.
    """

    namespace: str
    preprocess: Callable[[Sequence[np.ndarray]], "torch.Tensor"]
    forward: Callable[["torch.Tensor"], "torch.Tensor"]
    device: str = "cpu"
    batch_size: int = 16
    #: the model's precision (metrics._precision): inputs are cast to it, features come back float32
    precision: str = "fp32"

    @property
    def cache_namespace(self) -> str:
        return self.namespace if self.precision == "fp32" else f"{self.namespace}|{self.precision}"

    @staticmethod
    def key_for(images: np.ndarray | Sequence[np.ndarray]) -> str:
        return content_key(images if isinstance(images, np.ndarray) else list(images))

    def encode(self, images: np.ndarray | Sequence[np.ndarray], cache: Any = None, key: str | None = None) -> "torch.Tensor":
        """Float32 CPU features (N, D) of uint8 (H, W, 3) images (a (T, H, W, 3) array or a list)."""
        k = key or self.key_for(images)
        return cached(cache, self.cache_namespace, k, lambda: self._run(images))

    def _pixels(self, images: np.ndarray | Sequence[np.ndarray], dtype: Any) -> Iterator["torch.Tensor"]:
        """Preprocessed pixels of `images` on the device, in the chunks `encode` preprocesses them in."""
        seq = images if isinstance(images, np.ndarray) else list(images)
        for sl in iter_batches(len(seq), self.batch_size):
            yield self.preprocess(list(seq[sl])).to(self.device, dtype=dtype)

    def _run(self, images: np.ndarray | Sequence[np.ndarray]) -> "torch.Tensor":
        import torch

        from metrics._precision import torch_dtype

        dtype = torch_dtype(self.precision)
        with torch.inference_mode():
            outs = [self.forward(pv).float().cpu() for pv in self._pixels(images, dtype)]
        return torch.cat(outs, dim=0)

    def encode_many(self, videos: Sequence[np.ndarray | Sequence[np.ndarray]], cache: Any,
                    keys: Sequence[str] | None = None) -> int:
        """Encode the frames of many videos in full batches of `batch_size` ACROSS videos and put each
        video's features into `cache` under the key `encode` uses (so a later `encode` reads them).

        Videos already cached (or repeated) are skipped. Preprocessing is the same per-video chunks
        as `encode`'s and every frame's forward is independent of its batch neighbours, so the
        features equal `encode`'s. Returns the number of forward calls. Without an enabled cache
        there is nowhere to keep the features: nothing is done.
        """
        import torch

        from metrics._precision import torch_dtype

        if cache is None or not getattr(cache, "enabled", True):
            return 0
        ns = self.cache_namespace
        todo: dict[str, np.ndarray | Sequence[np.ndarray]] = {}
        for i, ims in enumerate(videos):
            k = keys[i] if keys is not None else self.key_for(ims)
            if k and len(ims) and k not in todo and not cache.contains(ns, k):
                todo[k] = ims
        if not todo:
            return 0
        dtype = torch_dtype(self.precision)
        bs = max(1, int(self.batch_size))
        pending: list[torch.Tensor] = []  # preprocessed rows not yet through the model, in order
        outs: list[torch.Tensor] = []
        done: list[tuple[str, int]] = []  # (key, frames) in the order of the rows
        calls = 0

        def run(n: int) -> None:
            nonlocal pending, calls
            pv = pending[0] if len(pending) == 1 else torch.cat(pending)
            outs.append(self.forward(pv[:n]).float().cpu())
            calls += 1
            pending = [pv[n:]] if pv.shape[0] > n else []

        def flush_finished() -> None:
            # hand every video whose rows are all computed to the cache (keeps `outs` small)
            nonlocal outs
            have = sum(o.shape[0] for o in outs)
            feats = None
            while done and have >= done[0][1]:
                k, n = done.pop(0)
                if feats is None:
                    feats = torch.cat(outs) if len(outs) > 1 else outs[0]
                cache.put(ns, k, feats[:n].clone())
                feats, have = feats[n:], have - n
            if feats is not None:
                outs = [feats] if feats.shape[0] else []

        with torch.inference_mode():
            queued = 0
            for k, ims in todo.items():
                for pv in self._pixels(ims, dtype):
                    pending.append(pv)
                    queued += pv.shape[0]
                    while queued >= bs:
                        run(bs)
                        queued -= bs
                done.append((k, len(ims)))
                flush_finished()
            if queued:
                run(queued)
            flush_finished()
        return calls


class EncoderPrefetch:
    """`Metric.prefetch` for metrics whose `compute` encodes frames through `FrameEncoder`s: the
    frames of a chunk of items go through each encoder in full batches across samples and land in
    the run's FeatureCache, where `compute` then finds them.

    A metric lists, per item, the (encoder, images) pairs its `compute` will encode
    (`encode_requests`); an item that is not applicable is left out (its `compute` says why).
    """

    def encode_requests(self, item: Any) -> list[tuple[FrameEncoder, Any]]:
        raise NotImplementedError

    def prefetch(self, items: Sequence[Any]) -> None:
        groups: dict[tuple[int, int], tuple[FrameEncoder, Any, list[Any]]] = {}
        for item in items:
            if item.cache is None:
                continue
            try:
                requests = self.encode_requests(item)
            except NotApplicable:
                continue
            for encoder, images in requests:
                groups.setdefault((id(encoder), id(item.cache)), (encoder, item.cache, []))[2].append(images)
        for encoder, cache, videos in groups.values():
            encoder.encode_many(videos, cache)
