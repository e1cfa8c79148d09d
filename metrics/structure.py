"""Structure distance (FiVE-Bench, from PIE-Bench / Splicing ViT Features): lower is better.

Per frame: the keys of the last layer of DINO ViT-B/8 (all tokens, the CLS token included, heads
concatenated) give a cosine self-similarity matrix (N x N, norms clamped at 1e-8); the value is
the MSE between the source frame's and the edited frame's matrices; the sample value is the mean
over frames. Preprocessing as FiVE-Bench: resize the shorter side to 224 (the longer one capped at
480; bilinear, antialiased), ImageNet mean/std normalisation applied to pixel values in [0, 255]
(`input_range=255`, as FiVE-Bench and PIE-Bench feed them; `input_range=1` scales to [0, 1]
first, as Splicing ViT Features does). Tokens of the 8-pixel grid only (a remainder is dropped,
as by the patch convolution). FiVE-Bench's tables show the value x1000.

The model is transformers' `ViTModel` with `facebook/dino-vitb8`; a forward hook on the last
layer's key projection reads the keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.errors import VidEditBenchError
from bench.metric import Metric
from bench.types import EvalItem
from metrics._embed import IMAGENET_MEAN, IMAGENET_STD, registry_weight_names, weights_path

SHORT_SIDE = 224
MAX_SIZE = 480


def load_vit(path: Path, device: str = "cpu") -> Any:
    from transformers import ViTModel

    return ViTModel.from_pretrained(str(path), add_pooling_layer=False).to(device).eval()


def key_projection(model: Any) -> Any:
    """The last transformer layer's key projection (module names differ across transformers versions)."""
    layers = getattr(model, "layers", None)
    if layers is None:
        layers = model.encoder.layer
    att = layers[-1].attention
    for path in ("k_proj", "attention.key", "key"):
        mod = att
        try:
            for part in path.split("."):
                mod = getattr(mod, part)
            return mod
        except AttributeError:
            continue
    raise VidEditBenchError("structure_distance: cannot find the key projection of the ViT's last layer")


def resized_size(h: int, w: int, short: int = SHORT_SIDE, max_size: int = MAX_SIZE) -> tuple[int, int]:
    """torchvision Resize(short, max_size) output size."""
    if h <= w:
        new_h, new_w = short, int(short * w / h)
        if new_w > max_size:
            new_h, new_w = int(max_size * new_h / new_w), max_size
    else:
        new_w, new_h = short, int(short * h / w)
        if new_h > max_size:
            new_w, new_h = int(max_size * new_w / new_h), max_size
    return new_h, new_w


def dino_input(frames: np.ndarray, input_range: str = "255") -> Any:
    """(T, 3, h, w) float tensor: resized and ImageNet-normalised as FiVE-Bench."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if input_range == "1":
        x = x / 255.0
    size = resized_size(x.shape[2], x.shape[3])
    if size != tuple(x.shape[2:]):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def self_similarity(keys: Any, eps: float = 1e-8) -> Any:
    """Cosine self-similarity (B, N, N) of token features (B, N, D)."""
    norms = keys.norm(dim=-1, keepdim=True)
    return (keys @ keys.transpose(1, 2)) / (norms @ norms.transpose(1, 2)).clamp(min=eps)


def key_self_similarity(model: Any, pixels: Any) -> Any:
    import torch

    captured: list[Any] = []
    handle = key_projection(model).register_forward_hook(lambda mod, inp, out: captured.append(out))
    try:
        with torch.inference_mode():
            model(pixel_values=pixels, interpolate_pos_encoding=True)
    finally:
        handle.remove()
    return self_similarity(captured[-1].float())


class StructureDistance(Metric):
    name = "structure_distance"
    description = "Structure distance (FiVE-Bench): MSE of DINO ViT-B/8 last-layer key self-similarity, source vs edit"
    higher_is_better = False
    value_range = (0.0, 4.0)
    needs = frozenset({"source"})
    defaults: ClassVar[dict[str, Any]] = {"weights": "dino-vitb8", "input_range": "255", "frame_stride": 1}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"input_range": ("255", "1")}

    _model: Any = None

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        if "input_range" in options:
            options["input_range"] = str(options["input_range"])
        super().__init__(device=device, batch_size=batch_size, **options)

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"])

    def setup(self) -> None:
        from bench.models import create_model

        self._model = create_model(weights_path(self.options["weights"]), load_vit, self.device)

    def distances(self, source: np.ndarray, edited: np.ndarray) -> np.ndarray:
        """Per-frame structure distance of two (T, H, W, 3) uint8 stacks of the same shape."""
        if self._model is None:
            self.setup()
        if source.shape != edited.shape:
            raise VidEditBenchError(f"structure_distance: source {source.shape} and edit {edited.shape} differ in shape")
        out = []
        step = max(1, self.batch_size // 2)
        for i in range(0, source.shape[0], step):
            both = np.concatenate([source[i:i + step], edited[i:i + step]])
            sims = key_self_similarity(self._model, dino_input(both, self.options["input_range"]).to(self.device))
            n = sims.shape[0] // 2
            out += ((sims[:n] - sims[n:]) ** 2).mean(dim=(1, 2)).double().cpu().tolist()
        return np.asarray(out)

    def compute(self, item: EvalItem) -> dict[str, float]:
        stride = max(1, int(self.options["frame_stride"]))
        n = min(item.source.num_frames, item.edited.num_frames)
        d = self.distances(item.source.frames[:n:stride], item.edited.frames[:n:stride])
        return {self.name: float(d.mean())}

    def teardown(self) -> None:
        self._model = None


__all__ = ["StructureDistance", "key_self_similarity", "dino_input", "resized_size"]
