"""A weight spec (where a model's weights come from, their licence and size) and the registry of specs.

`catalog` registers the built-in specs; plug-ins call `register_weight` for theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WeightSpec:
    name: str
    #: "hf" (a Hugging Face repo, downloaded as a snapshot), "hf-file" (one file of a HF repo),
    #: "url" (one file over HTTPS), "package" (shipped/handled by a pip package)
    kind: str
    source: str  # repo id for hf / hf-file, URL for url
    filename: str | None = None  # file inside the repo (hf-file) or the local file name (url)
    sha256: str | None = None
    licence: str = "unknown"
    used_by: tuple[str, ...] = ()
    size_mb: float | None = None
    allow_patterns: tuple[str, ...] = ()  # for "hf": which files of the repo are needed
    revision: str | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def env_var(self) -> str:
        return "VIDEDITBENCH_WEIGHT_" + re.sub(r"[^A-Za-z0-9]", "_", self.name).upper()

    @property
    def fix_command(self) -> str:
        return f"videditbench weights download {self.name}"


_SPECS: dict[str, WeightSpec] = {}


def register_weight(spec: WeightSpec) -> WeightSpec:
    _SPECS[spec.name] = spec
    return spec
