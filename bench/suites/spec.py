"""The `--suite` value as stored with a run: an embedded name as is, a path made absolute.

A run records its suite so that later commands (a study's reference images, a merge's checks) can
load it again; a path relative to where the run started would break from any other folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def absolute_suite_spec(spec: str) -> str:
    """`mini` → `mini`; `suite.yaml` → `/abs/suite.yaml`; `v2vbench:data/v2v` → `v2vbench:/abs/data/v2v`."""
    from bench.suites import LAYOUTS, MANIFEST_NAMES, datasets_dir

    text = str(spec)
    prefix, sep, rest = text.partition(":")
    layout = prefix if sep and prefix in LAYOUTS else None
    target = rest if layout else text
    if layout == "hf" or not target:
        return text
    path = Path(target).expanduser()
    bare = "/" not in target and os.sep not in target
    if layout is None and bare and not path.is_file() and any((datasets_dir() / target / m).is_file() for m in MANIFEST_NAMES):
        return text  # an embedded suite name
    if not path.exists():
        return text
    resolved = str(path.resolve())
    return f"{layout}:{resolved}" if layout else resolved
