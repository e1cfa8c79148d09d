"""The method-adapter interface: `edit(video, prompt | reference, mask) -> edited frames`.

Subclass `Method`, set the class metadata, implement `edit` (and optionally `setup` to load
models and `prepare` for per-source-video pre-processing that the harness caches and times
separately). Register with `@METHODS.register("name")`, in `bench.api.catalog`, or through the
`videditbench.methods` entry-point group.

Presets: named option sets (the settings of the paper / official code, of a benchmark that states
its setup) live as package data in `methods/presets/<method name>.yaml`, so `videditbench list
methods --details` shows them without importing the adapter (or torch):

    official:
      description: the official code's settings (repo file and function)
      options: {num_inference_steps: 50, guidance_scale: 7.5}

A plug-in method may instead (or additionally) set the class attribute `presets` ({name: options}).
The user selects one with the option `preset` (`--method-opt NAME.preset=official`); the preset's
options are applied first and the user's explicit options on top (`Method.resolve_options`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from bench.api.types import Video

#: package (importable, torch-free) holding `presets/<method>.yaml`
PRESETS_PACKAGE = "methods"


@dataclass(frozen=True)
class Preset:
    name: str
    options: dict[str, Any]
    description: str = ""
    source: str = ""  # where the settings come from (paper section, repo file)
    origin: str = field(default="", compare=False)  # the YAML file or "class attribute"


def _bad_preset_file(where: str, problem: str) -> Exception:
    from bench.api.errors import VidEditBenchError

    return VidEditBenchError(f"{where}: {problem} (expected `NAME: {{description: ..., options: {{KEY: VALUE}}}}`)")


def load_preset_file(method_name: str, package: str = PRESETS_PACKAGE) -> dict[str, Preset]:
    """Presets of `method_name` from `<package>/presets/<method_name>.yaml` ({} if there is none).

    Reads YAML only: never imports the adapter module.
    """
    from importlib import resources

    import yaml

    from bench.api import safe_yaml

    try:
        path = resources.files(package).joinpath("presets", f"{method_name}.yaml")
    except ModuleNotFoundError:
        return {}
    if not path.is_file():
        return {}
    where = f"{package}/presets/{method_name}.yaml"
    try:
        data = safe_yaml.load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise _bad_preset_file(where, f"not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise _bad_preset_file(where, "top level must be a mapping of preset names")
    out: dict[str, Preset] = {}
    for name, body in data.items():
        if not isinstance(body, dict) or not isinstance(body.get("options", {}), dict):
            raise _bad_preset_file(where, f"preset '{name}' must be a mapping with an 'options' mapping")
        out[str(name)] = Preset(str(name), dict(body.get("options") or {}), str(body.get("description", "")),
                                str(body.get("source", "")), where)
    return out


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
    #: if True the harness also passes `sample=<bench.api.types.Sample>` to `edit` (adapters that look
    #: outputs up by video_id / edit_id, e.g. "precomputed", or pass them to an external script)
    receives_sample: ClassVar[bool] = False
    #: False for adapters that do not compute the edit here (e.g. "precomputed" reads files): the
    #: harness then stores no generation time / peak memory, so efficiency metrics show "n/a"
    measures_efficiency: ClassVar[bool] = True
    #: named option sets in code ({name: options}); the package-data YAML presets are merged over these
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: True for reference rows (e.g. "source", the unedited input): shown in every table and plot,
    #: marked, but never ranked, bolded, normalised or aggregated, and not part of the paired set
    reference: ClassVar[bool] = False

    def __init__(self, device: str = "cpu", seed: int = 0, **config: Any):
        config = self.resolve_options(config)
        self.preset: str | None = config.pop("preset", None)
        unknown = set(config) - set(self.defaults)
        if unknown and not getattr(self, "accepts_any_config", False):
            from bench.api.errors import VidEditBenchError

            raise VidEditBenchError(
                f"method '{self.name}' got unknown option(s) {sorted(unknown)}; valid: {sorted(self.defaults) or '(none)'}"
            )
        self.device = device
        self.seed = int(seed)
        self.cfg: dict[str, Any] = {**self.defaults, **config}

    # --- presets ------------------------------------------------------------------------------
    @classmethod
    def available_presets(cls) -> dict[str, Preset]:
        found = {n: Preset(n, dict(o), origin="class attribute") for n, o in cls.presets.items()}
        if cls.name:
            found.update(load_preset_file(cls.name))
        return found

    @classmethod
    def resolve_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Expand `preset`: the preset's options first, the explicit options on top.

        The returned dict keeps `preset` (the name, recorded in `config()`); without one, the
        options come back unchanged.
        """
        options = dict(options)
        name = options.get("preset")
        if name in (None, ""):
            options.pop("preset", None)
            return options
        presets = cls.available_presets()
        if str(name) not in presets:
            from bench.api.errors import VidEditBenchError

            raise VidEditBenchError(
                f"method '{cls.name}' has no preset '{name}'; available: {', '.join(sorted(presets)) or '(none)'}"
            )
        explicit = {k: v for k, v in options.items() if k != "preset"}
        return {**presets[str(name)].options, **explicit, "preset": str(name)}

    # --- identity -------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """What makes two runs of this method produce the same output (hashed into keys)."""
        extra = {"preset": self.preset} if self.preset else {}
        return {"name": self.name, "seed": self.seed, **extra, **self.cfg}

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
