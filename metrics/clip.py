"""CLIP metrics: V2VBench Frames Text Alignment and Semantic Consistency, and CLIP-I / R-CLIP.

Definitions (SPEC.md §4, goldens RECIPE.md §1):
* clip_text: per frame logit_scale.exp() * cos(get_text_features, get_image_features) (projected
  embeddings), mean over frames, no clipping.
* clip_consistency: vision tower pooler_output (post_layernorm(CLS), NOT projected), L2-normalised,
  max(0, cos) over the pairing's pairs, mean.
* clip_image: cos(projected image embedding of each edited frame, of the reference image), mean;
  region=True crops each frame to its mask's bounding box first (DreamVideo-2 R-CLIP).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from bench.errors import NotApplicable
from bench.metric import Metric
from bench.types import EvalItem
from metrics._precision import DEFAULT_PRECISION, PRECISIONS, PrecisionOption, torch_dtype
from metrics._embed import (
    BACKENDS,
    PAIRINGS,
    EncoderPrefetch,
    FrameEncoder,
    clip_text_embeds,
    clip_vision_pooler,
    consistency_score,
    hf_pixels,
    l2_normalize,
    load_clip_model,
    load_image_processor,
    load_tokenizer,
    region_crops,
    registry_weight_names,
    weights_path,
)

DEFAULT_CLIP = "clip-vit-large-patch14"


class ClipBackbone:
    """A loaded transformers CLIP model + its image processor (+ tokenizer on demand).

    Image features are cached per content in the run's FeatureCache under a namespace of
    (model path, backend), so every CLIP metric of a run shares one vision forward per video.
    """

    def __init__(self, weights: str, backend: str, device: str, batch_size: int, processor_weights: str | None = None,
                 precision: str = DEFAULT_PRECISION):
        from bench.models import create_model

        self.path = weights_path(weights)
        self.processor_path = weights_path(processor_weights) if processor_weights else self.path
        self.device = device
        self.precision = precision
        self.model = create_model(self.path, load_clip_model, device, precision=precision)
        self.processor = create_model(self.processor_path, load_image_processor, "cpu", backend=backend)
        self._tokenizer: Any = None
        self._text_cache: dict[str, Any] = {}
        self.pooler = FrameEncoder(
            namespace=f"clip-vision-pooler|{self.path}|{self.processor_path}|{backend}",
            preprocess=lambda ims: hf_pixels(self.processor, ims),
            forward=lambda pv: clip_vision_pooler(self.model, pv),
            device=device,
            batch_size=batch_size,
            precision=precision,
        )

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp().item())

    def pooled(self, images: np.ndarray | Sequence[np.ndarray], cache: Any = None) -> Any:
        """Un-projected vision features (N, D_vision), float32 CPU."""
        return self.pooler.encode(images, cache)

    def image_embeds(self, images: np.ndarray | Sequence[np.ndarray], cache: Any = None) -> Any:
        """Projected image embeddings (`get_image_features`), (N, D_proj), float32 CPU."""
        import torch

        pooled = self.pooled(images, cache)
        with torch.inference_mode():
            return self.model.visual_projection(pooled.to(self.device, dtype=torch_dtype(self.precision))).float().cpu()

    def text_embeds(self, prompt: str) -> Any:
        """Projected text embedding (1, D_proj) of one prompt, memoised per prompt."""
        if prompt not in self._text_cache:
            if self._tokenizer is None:
                from bench.models import create_model

                self._tokenizer = create_model(self.processor_path, load_tokenizer, "cpu")
            self._text_cache[prompt] = clip_text_embeds(self.model, self._tokenizer, [prompt], self.device)
        return self._text_cache[prompt]


class _ClipMetric(EncoderPrefetch, PrecisionOption, Metric):
    defaults: ClassVar[dict[str, Any]] = {"weights": DEFAULT_CLIP, "backend": "pil", "precision": DEFAULT_PRECISION}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"backend": BACKENDS, "precision": PRECISIONS}

    _clip: ClipBackbone | None = None

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"])

    def setup(self) -> None:
        self._clip = ClipBackbone(self.options["weights"], self.options["backend"], self.device, self.batch_size,
                                  precision=self.precision)

    @property
    def clip(self) -> ClipBackbone:
        if self._clip is None:
            self.setup()
        assert self._clip is not None
        return self._clip

    def teardown(self) -> None:
        self._clip = None


def text_alignment(image_embeds: Any, text_embed: Any, logit_scale: float) -> float:
    """mean over frames of logit_scale * cos(image_t, text), as V2VBench / PickScore."""
    img = l2_normalize(image_embeds)
    txt = l2_normalize(text_embed)
    per_frame = (logit_scale * (img @ txt.T)).squeeze(-1).double().numpy()
    return float(np.mean(per_frame))


class ClipTextAlignment(_ClipMetric):
    name = "clip_text"
    description = "Frames Text Alignment (V2VBench): 100*cos(CLIP text, frame), mean over frames"
    higher_is_better = True
    value_range = (-100.0, 100.0)
    needs = frozenset({"text"})

    def compute(self, item: EvalItem) -> dict[str, float]:
        if not item.prompt:
            raise NotApplicable("clip_text needs a target prompt")
        clip = self.clip
        img = clip.image_embeds(item.edited.frames, item.cache)
        return {self.name: text_alignment(img, clip.text_embeds(item.prompt), clip.logit_scale)}

    def encode_requests(self, item: EvalItem) -> list[tuple[FrameEncoder, Any]]:
        return [(self.clip.pooler, item.edited.frames)] if item.prompt else []


class ClipConsistency(_ClipMetric):
    name = "clip_consistency"
    description = "Semantic Consistency (V2VBench): max(0, cos) of CLIP vision pooler features over frame pairs"
    higher_is_better = True
    value_range = (0.0, 1.0)
    defaults = {**_ClipMetric.defaults, "pairing": "consecutive"}
    choices = {**_ClipMetric.choices, "pairing": PAIRINGS}

    def compute(self, item: EvalItem) -> dict[str, float]:
        feats = l2_normalize(self.clip.pooled(item.edited.frames, item.cache)).double().numpy()
        return {self.name: consistency_score(feats, self.options["pairing"])}

    def encode_requests(self, item: EvalItem) -> list[tuple[FrameEncoder, Any]]:
        return [(self.clip.pooler, item.edited.frames)]


def reference_similarity(frame_feats: Any, ref_feat: Any) -> float:
    """mean over frames of cos(frame_t, reference) (no clipping, as CLIP-I / DINO-I)."""
    f = l2_normalize(frame_feats).double()
    r = l2_normalize(ref_feat).double()
    return float((f @ r.T).squeeze(-1).mean().item())


def region_applicable(metric: Metric, item_has: set[str]) -> str | None:
    need = set(metric.needs) | ({"mask"} if metric.options.get("region") else set())
    missing = sorted(need - item_has)
    return f"{metric.name} needs {', '.join(missing)}" if missing else None


def frames_for_reference_metric(item: EvalItem, region: bool) -> np.ndarray | list[np.ndarray]:
    if item.reference is None:
        raise NotApplicable("this metric needs a reference image")
    if not region:
        return item.edited.frames
    if item.mask is None:
        raise NotApplicable("region=True needs a per-frame mask")
    crops, _ = region_crops(item.edited.frames, item.mask)
    return crops


class ClipImageSimilarity(_ClipMetric):
    name = "clip_image"
    description = "CLIP-I: cos(CLIP image embedding of each edited frame, of the reference); region=True: R-CLIP on the mask's box"
    higher_is_better = True
    value_range = (-1.0, 1.0)
    needs = frozenset({"reference"})
    defaults = {**_ClipMetric.defaults, "region": False}
    choices = {**_ClipMetric.choices, "region": (False, True)}

    def applicable(self, item_has: set[str]) -> str | None:
        return region_applicable(self, item_has)

    def compute(self, item: EvalItem) -> dict[str, float]:
        images = frames_for_reference_metric(item, bool(self.options["region"]))
        clip = self.clip
        ref = clip.image_embeds([np.asarray(item.reference)], item.cache)
        return {self.name: reference_similarity(clip.image_embeds(images, item.cache), ref)}

    def encode_requests(self, item: EvalItem) -> list[tuple[FrameEncoder, Any]]:
        images = frames_for_reference_metric(item, bool(self.options["region"]))
        return [(self.clip.pooler, [np.asarray(item.reference)]), (self.clip.pooler, images)]


__all__ = ["ClipTextAlignment", "ClipConsistency", "ClipImageSimilarity", "ClipBackbone"]
