"""Benchmark suites: manifests, the embedded `mini` suite, and loaders for public layouts.

`load_suite(name_or_path, **overrides)` accepts

* the name of an embedded suite (``bench/suites/embedded/<name>/suite.yaml``; see `list_suites()`),
* a manifest file (``.yaml`` / ``.yml`` / ``.json``) or a folder holding ``suite.yaml``,
* a dataset folder in a known layout, detected from its contents or named by a prefix:
  ``v2vbench:<dir>`` (``config.yaml`` + ``frames/<video_id>/``, e.g. a local copy of the
  Hugging Face dataset ``Wenhao-Sun/V2VBench``), ``hf:Wenhao-Sun/V2VBench`` (that dataset from
  the local Hugging Face cache, never downloaded here), ``ive:<dir>`` (IVE-style triplets),
  ``davis:<dir>`` (``JPEGImages/480p`` + ``Annotations/480p``), ``folder:<dir>`` (videos + a
  prompts file).

`overrides` are preprocessing options (``num_frames``, ``size``, ``max_stride``, ``resample``);
loaders also take ``prompts=<file>`` (davis, folder) and ``name=<suite name>``.
Loading a suite never decodes a video; `Suite.load(sample)` does.
The suites room imports the interfaces and media rooms only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.api.errors import ManifestError, UnknownNameError
from bench.suites.manifest import PREPROCESS_KEYS, Manifest, load_manifest, parse_manifest, validate_preprocess
from bench.suites.suite import Suite, build_suite

__all__ = ["Suite", "load_suite", "list_suites", "datasets_dir", "LAYOUTS"]

MANIFEST_NAMES = ("suite.yaml", "suite.yml", "suite.json")
LAYOUTS = ("v2vbench", "ive", "davis", "folder", "hf")


def datasets_dir() -> Path:
    """The folder of embedded suites: `$VIDEDITBENCH_DATASETS`, else `bench/suites/embedded/`.

    The embedded suites are package data (`mini` works from a wheel or a non-editable install); the
    repository's `datasets/` holds the builder of their reference images."""
    env = os.environ.get("VIDEDITBENCH_DATASETS")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent / "embedded"


def list_suites() -> list[str]:
    """Names of the embedded suites (folders of `datasets_dir()` with a suite manifest)."""
    root = datasets_dir()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if d.is_dir() and any((d / m).is_file() for m in MANIFEST_NAMES))


def _detect_layout(root: Path) -> str | None:
    if any((root / m).is_file() for m in MANIFEST_NAMES):
        return "manifest"
    if (root / "config.yaml").is_file() and (root / "frames").is_dir():
        return "v2vbench"
    if (root / "JPEGImages").is_dir():
        return "davis"
    from bench.suites.loaders.ive import INDEX_NAMES

    if any((root / n).is_file() for n in INDEX_NAMES):
        return "ive"
    return "folder"


def _from_layout(layout: str, target: str, opts: dict[str, Any]) -> tuple[dict, str, Path]:
    """(manifest dict, file to name in errors, base dir) from a dataset in a known layout."""
    if layout == "hf":
        from bench.suites.loaders.v2vbench import hf_snapshot

        root = hf_snapshot(target or "Wenhao-Sun/V2VBench")
        layout = "v2vbench"
    else:
        root = Path(target).expanduser().resolve()
        if not root.exists():
            raise ManifestError(str(root), None, None, "dataset folder not found", "check the path")
    if layout == "v2vbench":
        from bench.suites.loaders import v2vbench as mod
    elif layout == "ive":
        from bench.suites.loaders import ive as mod  # type: ignore[no-redef]
    elif layout == "davis":
        from bench.suites.loaders import davis as mod  # type: ignore[no-redef]
    elif layout == "folder":
        from bench.suites.loaders import folder as mod  # type: ignore[no-redef]
    else:
        raise ManifestError(target, None, None, f"unknown dataset layout {layout!r}", f"valid: {', '.join(LAYOUTS)}")
    return mod.to_manifest(root, **opts)


def load_suite(name_or_path: str | os.PathLike, **overrides: Any) -> Suite:
    """A `Suite` by embedded name, manifest path, or dataset folder (see the module docstring)."""
    pre = {k: v for k, v in overrides.items() if k in PREPROCESS_KEYS}
    opts = {k: v for k, v in overrides.items() if k not in PREPROCESS_KEYS}
    target = str(name_or_path)
    layout: str | None = None
    prefix, sep, rest = target.partition(":")
    if sep and prefix in LAYOUTS:
        layout, target = prefix, rest
    path = Path(target).expanduser()

    if layout is None and "/" not in target and os.sep not in target and not path.is_file():
        # a bare name is an embedded suite first (a folder of the same name in the cwd comes second)
        for m in MANIFEST_NAMES:
            if (datasets_dir() / target / m).is_file():
                _reject(opts, str(datasets_dir() / target / m))
                return _finish(load_manifest(datasets_dir() / target / m), pre)
    if layout is None and path.is_file():
        from bench.suites.manifest import read_manifest_file

        data = read_manifest_file(path)
        if "data" in data and "videos" not in data:  # a V2VBench config.yaml given directly
            layout, target = "v2vbench", str(path.resolve().parent)
        else:
            _reject(opts, str(path))
            return _finish(parse_manifest(data, str(path.resolve()), path.resolve().parent), pre)
    if layout is None and path.is_dir():
        layout = _detect_layout(path)
        if layout == "manifest":
            _reject(opts, str(path))
            mf = next(path / m for m in MANIFEST_NAMES if (path / m).is_file())
            return _finish(load_manifest(mf), pre)
    if layout is None:
        raise UnknownNameError("suite", target, list_suites())
    data, file, base = _from_layout(layout, target, opts)
    return _finish(parse_manifest(data, file, base), pre)


def _reject(opts: dict, file: str) -> None:
    for k in opts:
        raise ManifestError(file, "load_suite overrides", k, "unknown option for a manifest suite",
                            f"valid: {', '.join(PREPROCESS_KEYS)}")


def _finish(manifest: Manifest, pre: dict) -> Suite:
    """Apply preprocessing overrides BEFORE building samples: each sample records its preprocessing,
    so content keys derived from a sample change when the frames do."""
    if pre:
        manifest.preprocess = validate_preprocess(manifest.preprocess, pre, manifest.file, "load_suite overrides")
    return build_suite(manifest)
