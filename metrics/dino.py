"""DINO metrics: V2VBench Object Consistency and DINO-I / R-DINO.

* dino_consistency: `Dinov2Model.pooler_output` (final-LayerNorm CLS) with the checkpoint's
  BitImageProcessor (resize 256, centre crop 224), L2-normalised, max(0, cos) over the pairing's
  pairs, mean. `pos_interp=legacy` reproduces the DINOv2 position-embedding interpolation of the
  older transformers V2VBench was written against (RECIPE.md §1: moves the value by ~5e-3).
* dino_image: cos(DINO CLS feature of each edited frame, of the reference), mean; region=True
  crops each frame to its mask's bounding box first (DreamVideo-2 R-DINO).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from bench.metric import Metric
from bench.types import EvalItem
from metrics._precision import DEFAULT_PRECISION, PRECISIONS, PrecisionOption
from metrics._embed import (
    BACKENDS,
    PAIRINGS,
    EncoderPrefetch,
    FrameEncoder,
    consistency_score,
    dino_cls_features,
    hf_pixels,
    l2_normalize,
    load_dino_model,
    load_image_processor,
    registry_weight_names,
    weights_path,
)
from metrics.clip import frames_for_reference_metric, reference_similarity, region_applicable

DEFAULT_DINO = "dinov2-base"


class DinoBackbone:
    """A loaded DINO vision transformer + its image processor; features cached per content."""

    def __init__(self, weights: str, backend: str, device: str, batch_size: int, pos_interp: str = "size",
                 precision: str = DEFAULT_PRECISION):
        from bench.models import create_model

        self.path = weights_path(weights)
        self.device = device
        self.model = create_model(self.path, load_dino_model, device, pos_interp=pos_interp, precision=precision)
        self.processor = create_model(self.path, load_image_processor, "cpu", backend=backend)
        self.encoder = FrameEncoder(
            namespace=f"dino-cls|{self.path}|{backend}|{pos_interp}",
            preprocess=lambda ims: hf_pixels(self.processor, ims),
            forward=lambda pv: dino_cls_features(self.model, pv),
            device=device,
            batch_size=batch_size,
            precision=precision,
        )

    def features(self, images: np.ndarray | Sequence[np.ndarray], cache: Any = None) -> Any:
        return self.encoder.encode(images, cache)


class _DinoMetric(EncoderPrefetch, PrecisionOption, Metric):
    defaults: ClassVar[dict[str, Any]] = {"weights": DEFAULT_DINO, "backend": "pil", "precision": DEFAULT_PRECISION}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"backend": BACKENDS, "precision": PRECISIONS}

    _dino: DinoBackbone | None = None

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"])

    def setup(self) -> None:
        self._dino = DinoBackbone(
            self.options["weights"], self.options["backend"], self.device, self.batch_size,
            pos_interp=self.options.get("pos_interp", "size"), precision=self.precision,
        )

    @property
    def dino(self) -> DinoBackbone:
        if self._dino is None:
            self.setup()
        assert self._dino is not None
        return self._dino

    def teardown(self) -> None:
        self._dino = None


class DinoConsistency(_DinoMetric):
    name = "dino_consistency"
    description = "Object Consistency (V2VBench): max(0, cos) of DINOv2 CLS features over frame pairs"
    higher_is_better = True
    value_range = (0.0, 1.0)
    defaults = {**_DinoMetric.defaults, "pairing": "consecutive", "pos_interp": "size"}
    choices = {**_DinoMetric.choices, "pairing": PAIRINGS, "pos_interp": ("size", "legacy")}

    def compute(self, item: EvalItem) -> dict[str, float]:
        feats = l2_normalize(self.dino.features(item.edited.frames, item.cache)).double().numpy()
        return {self.name: consistency_score(feats, self.options["pairing"])}

    def encode_requests(self, item: EvalItem) -> list[tuple[FrameEncoder, Any]]:
        return [(self.dino.encoder, item.edited.frames)]


class DinoImageSimilarity(_DinoMetric):
    name = "dino_image"
    description = "DINO-I: cos(DINO CLS feature of each edited frame, of the reference); region=True: R-DINO on the mask's box"
    higher_is_better = True
    value_range = (-1.0, 1.0)
    needs = frozenset({"reference"})
    defaults = {**_DinoMetric.defaults, "region": False}
    choices = {**_DinoMetric.choices, "region": (False, True)}

    def applicable(self, item_has: set[str]) -> str | None:
        return region_applicable(self, item_has)

    def compute(self, item: EvalItem) -> dict[str, float]:
        images = frames_for_reference_metric(item, bool(self.options["region"]))
        dino = self.dino
        ref = dino.features([np.asarray(item.reference)], item.cache)
        return {self.name: reference_similarity(dino.features(images, item.cache), ref)}

    def encode_requests(self, item: EvalItem) -> list[tuple[FrameEncoder, Any]]:
        images = frames_for_reference_metric(item, bool(self.options["region"]))
        return [(self.dino.encoder, [np.asarray(item.reference)]), (self.dino.encoder, images)]


__all__ = ["DinoConsistency", "DinoImageSimilarity", "DinoBackbone"]
