"""The metric interface: classes with metadata (like torchmetrics) over plain math functions.

A metric declares whether higher is better, its expected range, what it needs (source video,
text, reference, mask, ground-truth flow), whether it is per-sample or set-level (FID), the
weights it loads, and its *variant*: everything that changes the number (backbone, pairing,
image backend, flow model...). Every stored value carries its variant id, so numbers computed
differently never mix.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Sequence

from bench.api.types import EvalItem


@dataclass(frozen=True)
class OutputInfo:
    """Metadata of one stored value (a metric may store several, e.g. dover / dover_technical)."""

    name: str
    higher_is_better: bool
    value_range: tuple[float, float]
    unit: str = ""
    description: str = ""


class Scores(dict):
    """compute()'s values plus optional JSON-able `details` (e.g. a judge's questions and answers),
    stored with every score row of the sample. An exception may carry `details` the same way."""

    def __init__(self, values: dict[str, float], details: dict[str, Any] | None = None):
        super().__init__(values)
        self.details = details


class Metric:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    value_range: ClassVar[tuple[float, float]] = (float("-inf"), float("inf"))
    unit: ClassVar[str] = ""
    #: how tables, exports and plots show the value: shown = stored × display_scale, with
    #: display_label in the header (IVE-Benchmark prints warp error ×10⁻¹: scale 10, label "×10⁻¹";
    #: a fraction shown as a percentage: scale 100, label "%")
    display_scale: ClassVar[float] = 1.0
    display_label: ClassVar[str] = ""
    #: subset of {"source", "text", "reference", "mask", "flow_gt", "efficiency"}
    needs: ClassVar[frozenset[str]] = frozenset()
    #: "sample" (one value per edited video) or "set" (one value per method over all its samples)
    level: ClassVar[str] = "sample"
    #: extra stored values beyond `name` (e.g. dover_technical); name -> OutputInfo
    extra_outputs: ClassVar[tuple[OutputInfo, ...]] = ()
    #: default options (the variant); user overrides are merged over these
    defaults: ClassVar[dict[str, Any]] = {}
    #: choices for options that have a closed set of values (validated in __init__)
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        from bench.api.device import resolve_batch_size
        from bench.api.errors import VidEditBenchError

        # batch_size may also come as an option (--metric-opt NAME.batch_size=N): it changes how fast,
        # never the value, so it is not an option of the variant
        if "batch_size" in options:
            batch_size = options.pop("batch_size")

        unknown = set(options) - set(self.defaults)
        if unknown:
            raise VidEditBenchError(
                f"metric '{self.name}' got unknown option(s) {sorted(unknown)}; valid: {sorted(self.defaults) or '(none)'}"
            )
        self.options: dict[str, Any] = {**self.defaults, **options}
        for key, allowed in self.choices.items():
            if self.options.get(key) not in allowed:
                raise VidEditBenchError(
                    f"metric '{self.name}': bad {key} '{self.options.get(key)}'; valid choices: {', '.join(map(str, allowed))}"
                )
        self.device = device
        self.batch_size = resolve_batch_size(batch_size, device)

    # --- metadata -----------------------------------------------------------------------------
    @classmethod
    def outputs(cls) -> tuple[OutputInfo, ...]:
        main = OutputInfo(cls.name, cls.higher_is_better, cls.value_range, cls.unit, cls.description)
        return (main, *cls.extra_outputs)

    def variant(self) -> dict[str, Any]:
        """Everything that changes the value. Subclasses may add resolved facts (e.g. weight names)."""
        return dict(sorted(self.options.items()))

    def variant_id(self) -> str:
        blob = json.dumps(self.variant(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def variant_label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.variant().items()) or "default"

    def required_weights(self) -> list[str]:
        """Names in the weights registry this variant loads (checked before the run computes it)."""
        return []

    def applicable(self, item_has: set[str]) -> str | None:
        missing = sorted(self.needs - item_has)
        return f"{self.name} needs {', '.join(missing)}" if missing else None

    # --- computation ----------------------------------------------------------------------------
    def setup(self) -> None:
        """Load models once per run (raise bench.api.errors.WeightsMissing when absent)."""

    def prefetch(self, items: Sequence[EvalItem]) -> None:
        """Optional: do the model work of `compute` for many items at once (full batches across
        samples) and leave the results in the items' FeatureCache, so each `compute(item)` then only
        reads them. The runner calls it once per chunk of items before their `compute`s; a failure
        here loses nothing (each `compute` then does its own work). Values must not depend on it."""

    def prefetches(self) -> bool:
        """Whether this metric overrides `prefetch` (the runner only chunks items for those)."""
        return type(self).prefetch is not Metric.prefetch

    def compute(self, item: EvalItem) -> dict[str, float]:
        """Per-sample value(s): {name: value, **extra_outputs}."""
        raise NotImplementedError

    def row_note(self) -> str | None:
        """A note stored with the ok row(s) of the last `compute` (e.g. a fallback it took), or None."""
        return None

    def compute_set(self, items: Iterable[EvalItem]) -> dict[str, float]:
        """Set-level value(s) over all samples of one method (level == "set")."""
        raise NotImplementedError

    def teardown(self) -> None:
        """Release models."""
