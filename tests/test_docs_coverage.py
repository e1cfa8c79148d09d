"""The docs keep up with the registries: README's tables list every registered method and metric once,
docs/architecture.md names every module (a merged branch that adds one must say what it is)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from bench.api.catalog import BUILTIN_METHODS, BUILTIN_METRICS

REPO = Path(__file__).resolve().parents[1]


def _table_names(section: str) -> list[str]:
    readme = (REPO / "README.md").read_text()
    start = readme.index(f"\n## {section}\n")
    end = readme.index("\n## ", start + 1)
    names: list[str] = []
    for line in readme[start:end].splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([^`]+)`", line.split("|")[1])
    return names


def test_readme_metric_table_lists_every_registered_metric_once():
    names = _table_names("Metrics")
    counts = Counter(names)
    assert sorted(set(BUILTIN_METRICS) - set(names)) == []
    assert [n for n in BUILTIN_METRICS if counts[n] > 1] == []


def test_readme_method_table_lists_every_registered_method_once():
    names = _table_names("Methods")
    assert sorted(set(BUILTIN_METHODS) - set(names)) == []
    assert sorted(set(names) - set(BUILTIN_METHODS)) == []
    assert [n for n, c in Counter(names).items() if c > 1] == []


def test_architecture_names_every_module():
    arch = (REPO / "docs" / "architecture.md").read_text()
    modules = [p.relative_to(REPO).as_posix() for top in ("methods", "metrics", "scripts")
               for p in sorted((REPO / top).rglob("*.py")) if p.name != "__init__.py"]
    # every module of bench's rooms (the study and suites rooms are described per module by name below / as a folder)
    modules += [p.relative_to(REPO).as_posix() for p in sorted((REPO / "bench").rglob("*.py"))
                if p.name not in ("__init__.py", "__main__.py") and p.parent.name not in ("study", "suites", "loaders")]
    assert len(modules) > 60  # the scan found the tree
    missing = [m for m in modules if f"`{m}`" not in arch]
    assert missing == [], f"add these to docs/architecture.md: {missing}"
    study = [p.stem for p in (REPO / "bench" / "study").glob("*.py") if p.name != "__init__.py"]
    assert [s for s in study if f"`{s}`" not in arch] == []


def test_readme_method_table_names_each_methods_shipped_presets():
    import yaml

    readme = (REPO / "README.md").read_text()
    start = readme.index("\n## Methods\n")
    rows = {re.findall(r"`([^`]+)`", line.split("|")[1])[0]: line.split("|")[4]
            for line in readme[start:readme.index("\n## ", start + 1)].splitlines() if line.startswith("| `")}
    files = sorted((REPO / "methods" / "presets").glob("*.yaml"))
    assert files
    for f in files:
        data = yaml.safe_load(f.read_text())
        presets = set((data.get("presets", data)).keys())
        assert set(re.findall(r"`([^`]+)`", rows[f.stem])) == presets, f.stem
