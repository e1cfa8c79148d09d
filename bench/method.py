"""The method-adapter interface: `edit(video, prompt | reference, mask) -> edited frames`.

Subclass `Method`, set the class metadata, implement `edit` (and optionally `setup` to load
models and `prepare` for per-source-video pre-processing that the harness caches and times
separately). Register with `@METHODS.register("name")`, in `bench.catalog`, or through the
`videditbench.methods` entry-point group.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench.types import Video


class Method:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: which sample tasks it can do: "text" (target prompt) and/or "image" (reference image + mask)
    tasks: ClassVar[frozenset[str]] = frozenset({"text"})
    #: inputs it cannot run without: subset of {"text", "reference", "mask"}
    needs: ClassVar[frozenset[str]] = frozenset()
    #: names in the weights registry (bench.weights) that `setup` loads
    weights: ClassVar[tuple[str, ...]] = ()
    #: GPU memory it needs to run at the suite's resolution (informational; 0 = runs on CPU)
    min_gpu_memory_gb: ClassVar[float] = 0.0
    #: default config values; user overrides are merged over these and hashed into result keys
    defaults: ClassVar[dict[str, Any]] = {}
    #: if True the harness also passes `sample=<bench.types.Sample>` to `edit` (adapters that look
    #: outputs up by video_id / edit_id, e.g. "precomputed", or pass them to an external script)
    receives_sample: ClassVar[bool] = False
    #: False for adapters that do not compute the edit here (e.g. "precomputed" reads files): the
    #: harness then stores no generation time / peak memory, so efficiency metrics show "n/a"
    measures_efficiency: ClassVar[bool] = True
    #: True for reference rows (e.g. "source", the unedited input): shown in every table and plot,
    #: marked, but never ranked, bolded, normalised or aggregated, and not part of the paired set
    reference: ClassVar[bool] = False

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        unknown = set(config) - set(self.defaults)
        if unknown and not getattr(self, "accepts_any_config", False):
            from bench.errors import VidEditBenchError

            raise VidEditBenchError(
                f"method '{self.name}' got unknown option(s) {sorted(unknown)}; valid: {sorted(self.defaults) or '(none)'}"
            )
        self.device = device
        self.seed = int(seed)
        self.cfg: dict[str, Any] = {**self.defaults, **config}

    # --- identity -------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """What makes two runs of this method produce the same output (hashed into keys)."""
        return {"name": self.name, "seed": self.seed, **self.cfg}

    def required_weights(self) -> list[str]:
        return list(self.weights)

    def applicable(self, sample_task: str, has_prompt: bool, has_reference: bool, has_mask: bool) -> str | None:
        """None if this method can do the sample, else the reason it cannot."""
        if sample_task not in self.tasks:
            return f"{self.name} does {'/'.join(sorted(self.tasks))}-guided edits, sample is {sample_task}-guided"
        have = {"text": has_prompt, "reference": has_reference, "mask": has_mask}
        missing = [n for n in sorted(self.needs) if not have.get(n, False)]
        if missing:
            return f"{self.name} needs {', '.join(missing)}"
        return None

    # --- lifecycle --------------------------------------------------------------------------
    def setup(self) -> None:
        """Load models (called once, before the first prepare/edit). Raise WeightsMissing if absent."""

    def prepare(self, video: Video) -> Any:
        """Per-source-video pre-processing (inversion, depth maps, fine-tuning); cached by the harness."""
        return None

    def edit(
        self,
        video: Video,
        *,
        prompt: str | None = None,
        reference: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        prepared: Any = None,
        source_prompt: str | None = None,
    ) -> np.ndarray | Video:
        """Return edited frames (T, H, W, 3) uint8 with the source's frame count and size."""
        raise NotImplementedError

    def teardown(self) -> None:
        """Release models (called at the end of a run)."""

    # --- helpers for subclasses ---------------------------------------------------------------
    def torch_generator(self, offset: int = 0):
        import torch

        gen_device = "cpu" if not str(self.device).startswith("cuda") else self.device
        return torch.Generator(device=gen_device).manual_seed(self.seed + offset)
