"""VBench's aesthetic_quality (VBench 0.1.5, `aesthetic_quality.py`); it differs from V2VBench's `aesthetic`.

Per frame: OpenAI CLIP ViT-L/14 image embedding (`encode_image`, the OpenAI checkpoint format — a
TorchScript `ViT-L-14.pt` — read by open_clip's OpenAI loader), VBench's tensor transform (Resize 224
bicubic on the float frame, antialias=False, CenterCrop 224, /255, CLIP mean/std), L2-normalised, through
the LAION aesthetic predictor v1 linear head (`sa_0_4_vit_l_14_linear.pth`, Linear(768, 1)); divided by
10; mean over all frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.errors import VidEditBenchError
from bench.metric import Metric
from bench.types import EvalItem
from metrics._embed import EncoderPrefetch, FrameEncoder, l2_normalize, registry_weight_names, single_file, vbench_pixels, weights_path

HEAD_KEYS = frozenset({"weight", "bias"})


def load_linear_head(path: Path, device: str = "cpu") -> Any:
    """The LAION v1 aesthetic head: a bare Linear state dict {weight (1, D), bias (1,)}, strict."""
    import torch
    from torch import nn

    p = single_file(path, ("*.pth", "*.pt"), "aesthetic head")
    try:
        sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - one clear line for any unreadable file
        raise VidEditBenchError(f"cannot read aesthetic head {p}: {e}") from e
    if not isinstance(sd, dict) or set(sd) != HEAD_KEYS or sd["weight"].ndim != 2 or sd["weight"].shape[0] != 1:
        got = sorted(sd)[:6] if isinstance(sd, dict) else type(sd).__name__
        raise VidEditBenchError(
            f"{p}: not a LAION aesthetic v1 linear head (expected keys ['bias', 'weight'] of a Linear(D, 1), got {got}); "
            "the v2 MLP head belongs to the `aesthetic` metric"
        )
    head = nn.Linear(int(sd["weight"].shape[1]), 1)
    head.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return head.to(device).eval()


def load_openai_clip(path: Path, device: str = "cpu") -> Any:
    """An OpenAI-format CLIP checkpoint (TorchScript archive or its state dict) through open_clip's OpenAI loader."""
    from metrics.vbench import load_open_clip_visual

    return load_open_clip_visual(single_file(path, ("*.pt",), "OpenAI CLIP .pt file"), device, arch="openai")


def _embed_dim(model: Any) -> int:
    proj = getattr(model.visual, "proj", None)
    if proj is not None:
        return int(proj.shape[1])
    return int(model.text_projection.shape[1])


class AestheticQuality(EncoderPrefetch, Metric):
    name = "aesthetic_quality"
    description = ("VBench aesthetic quality: LAION aesthetic v1 linear head on L2-normalised OpenAI CLIP ViT-L/14 "
                   "image embeddings, /10, mean over frames")
    higher_is_better = True
    value_range = (0.0, 1.0)
    defaults: ClassVar[dict[str, Any]] = {"weights": "clip-vit-l-14-openai", "head_weights": "laion-aesthetic-v1-l14"}

    _encoder: FrameEncoder | None = None
    _head: Any = None

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"], self.options["head_weights"])

    def setup(self) -> None:
        from bench.models import create_model

        path = weights_path(self.options["weights"])
        clip = create_model(path, load_openai_clip, self.device)
        self._head = create_model(weights_path(self.options["head_weights"]), load_linear_head, self.device)
        dim = _embed_dim(clip)
        if self._head.in_features != dim:
            raise VidEditBenchError(
                f"aesthetic head expects {self._head.in_features}-d CLIP embeddings but '{self.options['weights']}' "
                f"gives {dim}-d (the LAION v1 head needs CLIP ViT-L/14)"
            )
        size = int(clip.visual.image_size[0] if isinstance(clip.visual.image_size, (tuple, list)) else clip.visual.image_size)
        self._encoder = FrameEncoder(
            namespace=f"vbench-openai-clip|{path}|{size}",
            preprocess=lambda ims: vbench_pixels(ims, size, "clip"),
            forward=lambda pv: clip.encode_image(pv),
            device=self.device,
            batch_size=self.batch_size,
        )

    def compute(self, item: EvalItem) -> dict[str, float]:
        import torch

        if self._encoder is None:
            self.setup()
        assert self._encoder is not None
        emb = l2_normalize(self._encoder.encode(item.edited.frames, item.cache).float())
        with torch.inference_mode():
            scores = self._head(emb.to(self.device)).squeeze(-1).double().cpu().numpy()
        return {self.name: float(np.mean(scores / 10.0))}

    def encode_requests(self, item: EvalItem) -> list[tuple[FrameEncoder, Any]]:
        if self._encoder is None:
            self.setup()
        assert self._encoder is not None
        return [(self._encoder, item.edited.frames)]

    def teardown(self) -> None:
        self._encoder = None
        self._head = None


__all__ = ["AestheticQuality", "load_linear_head", "load_openai_clip"]
