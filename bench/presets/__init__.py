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


# --- the methods' settings a paper config applies (issue 21) -----------------------------------
@dataclass(frozen=True)
class MethodSettings:
    """What `--config NAME` does to one method: apply its preset `preset` (options), or nothing."""

    method: str
    preset: str | None  # the method's preset of that name; None = it has none
    options: dict
    flagged: bool  # no preset although the method has settings of its own: it runs with its defaults, labelled


def method_preset_of(path: Path) -> str | None:
    """The `method_preset` key of a config file: the name of the method presets it applies."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    value = data.get("method_preset") if isinstance(data, dict) else None
    return str(value) if value else None


def method_settings(preset: str, methods: list[str]) -> list[MethodSettings]:
    """Per method: its preset called `preset` (from `methods/presets/<method>.yaml`), or a flag when it
    has none although it has model settings (weights). Reference rows and weight-free methods have no
    paper settings and are not flagged."""
    from bench.api.catalog import METHODS
    from bench.api.method import load_preset_file

    out = []
    for name in methods:
        found = load_preset_file(name).get(preset)
        if found is not None:
            out.append(MethodSettings(name, preset, dict(found.options), False))
            continue
        try:
            cls = METHODS.get(name)
            configurable = bool(getattr(cls, "weights", ())) and not getattr(cls, "reference", False)
        except Exception:  # noqa: BLE001  (an import error is reported by the run itself)
            configurable = True
        out.append(MethodSettings(name, None, {}, configurable))
    return out


def flagged_label(method: str, preset: str) -> str:
    """The stored (leaderboard) name of a method that runs a paper config without that config's preset."""
    return f"{method}-defaults-no-{preset}-preset"
