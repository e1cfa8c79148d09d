"""PickScore (V2VBench): per frame logit_scale.exp() * cos(text, image) with the PickScore_v1 CLIP-H
model and the laion/CLIP-ViT-H-14-laion2B-s32B-b79K processor (tokenizer + image processor); mean
over frames.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bench.errors import NotApplicable
from bench.metric import Metric
from bench.types import EvalItem
from metrics._embed import BACKENDS, EncoderPrefetch, FrameEncoder, registry_weight_names
from metrics.clip import ClipBackbone, text_alignment


class PickScore(EncoderPrefetch, Metric):
    name = "pick_score"
    description = "PickScore_v1: logit_scale * cos(text, frame), mean over frames"
    higher_is_better = True
    value_range = (-100.0, 100.0)
    needs = frozenset({"text"})
    defaults: ClassVar[dict[str, Any]] = {
        "weights": "pickscore-v1",
        "processor_weights": "clip-vit-h-14-laion-processor",
        "backend": "pil",
    }
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"backend": BACKENDS}

    _clip: ClipBackbone | None = None

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"], self.options["processor_weights"])

    def setup(self) -> None:
        self._clip = ClipBackbone(
            self.options["weights"], self.options["backend"], self.device, self.batch_size,
            processor_weights=self.options["processor_weights"],
        )

    def compute(self, item: EvalItem) -> dict[str, float]:
        if not item.prompt:
            raise NotApplicable("pick_score needs a target prompt")
        if self._clip is None:
            self.setup()
        assert self._clip is not None
        img = self._clip.image_embeds(item.edited.frames, item.cache)
        return {self.name: text_alignment(img, self._clip.text_embeds(item.prompt), self._clip.logit_scale)}

    def encode_requests(self, item: EvalItem) -> list[tuple[FrameEncoder, Any]]:
        if not item.prompt:
            return []
        if self._clip is None:
            self.setup()
        assert self._clip is not None
        return [(self._clip.pooler, item.edited.frames)]

    def teardown(self) -> None:
        self._clip = None


__all__ = ["PickScore"]
