"""DOVER video quality (Wu et al., ICCV 2023) as a VidEditBench metric.

Stored values per edited video:
* `dover`: the fused overall score sigmoid(0.6104*t + 0.3896*a) with t = (tech - 0.1107)/0.07355
  and a = (aes + 0.08285)/0.03774 (the official `fuse_results`), in (0, 1), higher is better;
* `dover_technical`, `dover_aesthetic`: the raw branch scores (mean of each head's output map).

The official sampler is random (fragment offsets, and temporal offsets for long videos); here it is
seeded by the `seed` option, so a score is reproducible and its variant records the seed.

Options (all part of the variant):
* `short_clip` — clips shorter than 32 frames (V2VBench's are 24). "official" runs the official
  sampler on the native frames: the technical clips wrap around, and the aesthetic branch sees 32
  copies of frame 0 (this is what V2VBench's published numbers used). "stretch" first repeats frames
  to 32 (frame j <- floor(j*T/32)), as the golden test input does with its 8 frames.
* `antialias` — the aesthetic Resize; False reproduces torchvision < 0.17.
* `lowres_grid` — frames under 224 px: "official" keeps the reference's fragment grid computed from
  the pre-upscale size (fragments come from the top-left of the upscaled frame), "rescaled" spreads
  the grid over the whole upscaled frame.
Weights: the `dover` weights spec (DOVER.pth, S-Lab License 1.0, non-commercial), or a local path
given as the `weights` option.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

from bench.metric import Metric, OutputInfo
from bench.types import EvalItem

TECH_MEAN, TECH_STD, TECH_WEIGHT = 0.1107, 0.07355, 0.6104
AES_MEAN, AES_STD, AES_WEIGHT = -0.08285, 0.03774, 0.3896


def fused_logit(technical: float, aesthetic: float) -> float:
    return (technical - TECH_MEAN) / TECH_STD * TECH_WEIGHT + (aesthetic - AES_MEAN) / AES_STD * AES_WEIGHT


def fuse(technical: float, aesthetic: float) -> float:
    """Overall DOVER score in (0, 1) from the raw technical and aesthetic branch scores."""
    x = fused_logit(technical, aesthetic)
    return 1.0 / (1.0 + math.exp(-x))


class DoverScore(Metric):
    name: ClassVar[str] = "dover"
    description: ClassVar[str] = (
        "DOVER overall video quality: sigmoid-fused technical (Swin-T-3D on fragments) and aesthetic "
        "(ConvNeXt-T-3D on a 224x224 resize) scores"
    )
    higher_is_better: ClassVar[bool] = True
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    needs: ClassVar[frozenset[str]] = frozenset()
    extra_outputs: ClassVar[tuple[OutputInfo, ...]] = (
        OutputInfo("dover_technical", True, (float("-inf"), float("inf")),
                   description="raw DOVER technical-branch score (mean head output over fragment clips)"),
        OutputInfo("dover_aesthetic", True, (float("-inf"), float("inf")),
                   description="raw DOVER aesthetic-branch score (mean head output over the resized clip)"),
    )
    defaults: ClassVar[dict[str, Any]] = {
        "seed": 0,
        "weights": "dover",
        # videos with fewer than 32 frames: "official" sampler as-is (aesthetic branch then sees only
        # frame 0), or "stretch" to 32 frames by repetition first; see metrics/dover/sampling.py
        "short_clip": "official",
        "antialias": True,
        "lowres_grid": "official",
    }
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {
        "short_clip": ("official", "stretch"),
        "antialias": (True, False),
        "lowres_grid": ("official", "rescaled"),
    }

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        super().__init__(device=device, batch_size=batch_size, **options)
        self.model = None

    def _local_weights(self) -> Path | None:
        p = Path(str(self.options["weights"])).expanduser()
        return p if p.exists() else None

    def required_weights(self) -> list[str]:
        return [] if self._local_weights() is not None else [str(self.options["weights"])]

    def setup(self) -> None:
        from bench.models import create_model
        from metrics.dover.model import load_dover

        self.model = create_model(self.options["weights"], load_dover, self.device)

    def scores(self, frames) -> dict[str, float]:
        """Raw branch scores and the fused score for (T, H, W, 3) uint8 frames."""
        from metrics.dover.sampling import AestheticSpec, TechnicalSpec, sample_views, to_clips

        if self.model is None:
            self.setup()
        views = sample_views(frames, int(self.options["seed"]), antialias=bool(self.options["antialias"]),
                             short_clip=self.options["short_clip"], lowres_grid=self.options["lowres_grid"])
        tech = self.model.branch_score("technical", to_clips(views.technical, TechnicalSpec().num_clips))
        aes = self.model.branch_score("aesthetic", to_clips(views.aesthetic, AestheticSpec().num_clips))
        return {"dover": fuse(tech, aes), "dover_technical": tech, "dover_aesthetic": aes}

    def compute(self, item: EvalItem) -> dict[str, float]:
        return self.scores(item.edited.frames)

    def teardown(self) -> None:
        self.model = None
