"""The docs keep up with the registries: the tables of docs/metrics.md and docs/methods.md list every
registered metric and method once, README.md stays a first page whose docs links exist, and
docs/architecture.md names every module (a merged branch that adds one must say what it is)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from bench.api.catalog import BUILTIN_METHODS, BUILTIN_METRICS

REPO = Path(__file__).resolve().parents[1]


def _page_head(page: str) -> str:
    """docs/<page>.md up to its first `## ` subsection: where the page's reference table lives."""
    text = (REPO / "docs" / f"{page}.md").read_text()
    end = text.find("\n## ")
    return text if end < 0 else text[:end]


def _table_names(page: str) -> list[str]:
    names: list[str] = []
    for line in _page_head(page).splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([^`]+)`", line.split("|")[1])
    return names


def test_readme_metric_table_lists_every_registered_metric_once():
    names = _table_names("metrics")
    counts = Counter(names)
    assert sorted(set(BUILTIN_METRICS) - set(names)) == []
    assert [n for n in BUILTIN_METRICS if counts[n] > 1] == []


def test_readme_method_table_lists_every_registered_method_once():
    names = _table_names("methods")
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

    rows = {re.findall(r"`([^`]+)`", line.split("|")[1])[0]: line.split("|")[4]
            for line in _page_head("methods").splitlines() if line.startswith("| `")}
    files = sorted((REPO / "methods" / "presets").glob("*.yaml"))
    assert files
    for f in files:
        data = yaml.safe_load(f.read_text())
        presets = set((data.get("presets", data)).keys())
        assert set(re.findall(r"`([^`]+)`", rows[f.stem])) == presets, f.stem


#: docs/methods.md's "official mode" values (issue 21); "–" = no official code (reference rows, weight-free
#: baselines, plumbing), "pending" = being brought to the goldens on another branch
OFFICIAL_MODES = ("equal to official code on goldens", "declared differences", "baseline only")
DIFFERENCES_HEADING = "Differences from the official code that change output frames:"


def _method_rows() -> dict[str, list[str]]:
    lines = _page_head("methods").splitlines()
    header = next(line for line in lines if line.startswith("| method |"))
    assert [c.strip() for c in header.split("|")[5:7]] == ["official mode", "differences from the official code"]
    return {re.findall(r"`([^`]+)`", line.split("|")[1])[0]: [c.strip() for c in line.split("|")]
            for line in lines if line.startswith("| `")}


def _docstring_declaration(doc: str) -> tuple[str | None, list[str]]:
    """("Official mode: X." value, the labels of the bullets under DIFFERENCES_HEADING) of a module docstring."""
    mode = re.search(r"^Official mode: ([^.(]+?)\s*[.(]", doc, re.M)
    labels: list[str] = []
    if DIFFERENCES_HEADING in doc:
        for line in doc.split(DIFFERENCES_HEADING, 1)[1].splitlines()[1:]:
            if not line.startswith("* "):
                break
            labels.append(line[2:].split(":", 1)[0].strip())
    return (mode.group(1) if mode else None), labels


def test_readme_official_mode_and_differences_follow_each_adapters_docstring():
    import sys

    from bench.api.catalog import METHODS
    from methods.diffusion_common import DiffusersMethod

    rows = _method_rows()
    checked = 0
    for name, cells in rows.items():
        mode_cell, diff_cell = cells[5], cells[6]
        cls = METHODS.get(name)
        doc = sys.modules[cls.__module__].__doc__ or ""
        if mode_cell == "pending":
            continue
        if mode_cell == "–":
            assert not issubclass(cls, DiffusersMethod), f"{name}: a diffusion adapter needs an official mode"
            continue
        assert mode_cell in OFFICIAL_MODES, f"{name}: official mode {mode_cell!r}; use one of {OFFICIAL_MODES}"
        doc_mode, labels = _docstring_declaration(doc)
        assert doc_mode == mode_cell, f"{name}: docstring says official mode {doc_mode!r}, docs/methods.md {mode_cell!r}"
        assert labels, f"{name}: its docstring lists no differences under {DIFFERENCES_HEADING!r}"
        readme_labels = [item.split(":", 1)[0].strip() for item in diff_cell.split("; ")]
        assert readme_labels == labels, f"{name}: docs/methods.md differences {readme_labels} != docstring {labels}"
        if mode_cell == OFFICIAL_MODES[0]:
            assert (REPO / "tests" / f"test_method_goldens_{name}.py").is_file(), f"{name}: no golden test"
        checked += 1
    assert checked >= 12


def test_readme_is_a_first_page_whose_docs_links_exist():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150, "README.md is a first page: move reference text to docs/"
    links = re.findall(r"\]\((docs/[^)#\s]+\.md)(#[^)]*)?\)", readme)
    assert len(links) >= 10  # the reference pages are linked
    assert [page for page, _ in links if not (REPO / page).is_file()] == []
    # a #fragment names a heading of its page (GitHub's anchor: lower case, punctuation dropped, spaces as -)
    anchors = {page: {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                      for h in re.findall(r"^#+ (.+)$", (REPO / page).read_text(), re.M)}
               for page, _ in links}
    assert [page + frag for page, frag in links if frag and frag[1:] not in anchors[page]] == []
