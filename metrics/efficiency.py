"""Efficiency metrics: read what the harness measured around `prepare` and `edit`.

The harness (not the method) times pre-processing and generation per sample and records peak
memory (GPU: `torch.cuda.max_memory_allocated` after a reset; CPU: peak resident memory). These
metrics only expose those measurements as stored rows so the leaderboard can rank them. Lower is
better. A value the harness could not measure (None) raises NotApplicable instead of inventing one.
"""

from __future__ import annotations

from typing import ClassVar

from bench.errors import NotApplicable
from bench.metric import Metric
from bench.types import EvalItem


class _EfficiencyField(Metric):
    higher_is_better = False
    value_range = (0.0, float("inf"))
    needs = frozenset({"efficiency"})
    #: attribute of bench.types.Efficiency that holds the value
    field: ClassVar[str] = ""

    def compute(self, item: EvalItem) -> dict[str, float]:
        eff = item.efficiency
        value = getattr(eff, self.field, None) if eff is not None else None
        if value is None:
            raise NotApplicable(
                f"{self.name}: no '{self.field}' measurement for {item.sample.uid} "
                f"(the harness records it when it runs the method; precomputed or imported edits have none)"
            )
        value = float(value)
        if value != value or value < 0:  # NaN or negative: a broken measurement, not a score
            raise NotApplicable(f"{self.name}: invalid '{self.field}' measurement {value} for {item.sample.uid}")
        return {self.name: value}


class GenerationTime(_EfficiencyField):
    name = "generation_time"
    description = "Wall-clock seconds of the method's edit() for one sample (warm-up excluded, CUDA synchronised)"
    unit = "s"
    field = "generate_s"


class PreprocessTime(_EfficiencyField):
    name = "preprocess_time"
    description = "Wall-clock seconds of the method's per-source-video prepare() (inversion, depth maps, tuning)"
    unit = "s"
    field = "preprocess_s"


class PeakMemory(_EfficiencyField):
    name = "peak_memory"
    description = (
        "Peak memory of the edit in MB (GPU max_memory_allocated on CUDA, else peak resident memory); "
        "the device it was measured on is Efficiency.memory_device"
    )
    unit = "MB"
    field = "peak_memory_mb"
