"""Shipped run configs that reproduce the metric columns of the seed papers' tables.

Each `<name>.yaml` here is an ordinary `--config` file (metrics in the table's column order, with
the variants the paper used); its first comment line says which table it reproduces.
`videditbench run --config ive-benchmark` uses the shipped file when no file of that name exists.
Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PRESET_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    description: str


def _describe(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[:1]
    return first[0].lstrip("#").strip() if first and first[0].startswith("#") else ""


def list_presets() -> list[Preset]:
    return [Preset(p.stem, p, _describe(p)) for p in sorted(PRESET_DIR.glob("*.yaml"))]


def preset_path(name: str) -> Path | None:
    """The shipped file of preset `name` (with or without `.yaml`), or None when there is none."""
    stem = name[:-5] if name.endswith(".yaml") else name
    if "/" in stem or "\\" in stem:
        return None
    p = PRESET_DIR / f"{stem}.yaml"
    return p if p.is_file() else None
