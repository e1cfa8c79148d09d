"""Imports run one way along the rooms of `bench/` (docs/architecture.md draws them), with no circles.

Every `import` in bench/, methods/ and metrics/ is read with `ast` (imports inside functions count:
a lazy import is still an arrow). A room imports only rooms before it; plug-ins (methods/, metrics/)
import only the interfaces and small utilities, never the runner or the report.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: the rooms in data-path order: a room may import only rooms with a smaller rank (equal ranks are
#: independent of each other)
ROOMS = {"api": 0, "presets": 1, "weights": 1, "media": 1, "suites": 2, "store": 3, "running": 4, "study": 5,
         "report": 6, "cli": 7}
#: the stable plug-in import paths: `bench.<name>` re-exports `bench.api.<name>` (`bench.models`:
#: bench.weights.models); bench's own code imports the room module, never these
PUBLIC = {"bench.method", "bench.metric", "bench.types", "bench.registry", "bench.errors", "bench.models"}
#: what plug-ins may import from bench (module prefixes)
PLUGIN_OK = ("bench.api", "bench.weights", "bench.media") + tuple(sorted(PUBLIC))
#: the VLM judges keep their answers in the run's store (metrics only)
METRIC_EXTRA_OK = ("bench.store.judge_cache",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str) -> str:
    """The module a dotted name refers to (`bench.x.y` is module y when bench/x/y.py exists)."""
    parts = name.split(".")
    while parts:
        base = REPO.joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return name


def imports_of(path: Path) -> set[str]:
    """Every bench module `path` imports (top-level or inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {_resolve(a.name) for a in node.names if a.name.split(".")[0] == "bench"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] != "bench":
                continue
            for a in node.names:
                out.add(_resolve(f"{base}.{a.name}") if a.name != "*" else _resolve(base))
    out.discard(me)
    return out


def _graph(top: str) -> dict[str, set[str]]:
    return {_module_name(p): imports_of(p) for p in sorted((REPO / top).rglob("*.py"))}


def room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def test_rooms_import_only_rooms_before_them():
    upward = []
    for mod, targets in _graph("bench").items():
        src = room(mod)
        for t in targets:
            dst = room(t)
            if src is None or dst is None or src == dst:
                continue
            if ROOMS[dst] >= ROOMS[src]:
                upward.append(f"{mod} -> {t}")
    assert upward == [], f"imports against the room order ({ROOMS}): {upward}"


def test_every_bench_module_is_in_a_room():
    loose = [m for m in _graph("bench") if room(m) is None and m != "bench" and m not in PUBLIC]
    assert loose == [], f"put these modules in a room (and in docs/architecture.md): {loose}"


def test_bench_code_imports_rooms_not_the_plugin_paths():
    graph = _graph("bench")
    used = sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts & PUBLIC if m not in PUBLIC)
    assert used == []
    # each public path re-exports the public names of one room module, the very same objects
    import importlib
    import inspect

    targets = {"bench.models": "bench.weights.models"}
    for name in sorted(PUBLIC):
        public, impl = importlib.import_module(name), importlib.import_module(targets.get(name, name.replace("bench.", "bench.api.")))
        exported = [n for n in vars(public) if not n.startswith("_")]
        assert exported and all(getattr(public, n) is getattr(impl, n) for n in exported), name
        defined = [n for n, v in vars(impl).items() if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
                   and v.__module__ == impl.__name__]
        assert set(defined) <= set(exported), f"{name} does not re-export {sorted(set(defined) - set(exported))}"

def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    # a package's __init__ re-exporting its own modules is not a circle between modules
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in _graph("bench").items()}
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_plugins_import_only_interfaces_and_utilities():
    bad = []
    for top, extra in (("methods", ()), ("metrics", METRIC_EXTRA_OK)):
        for mod, targets in _graph(top).items():
            bad += [f"{mod} -> {t}" for t in targets
                    if t != "bench" and not any(t == ok or t.startswith(ok + ".") for ok in PLUGIN_OK + extra)]
    assert bad == [], f"plug-ins import only {PLUGIN_OK}: {bad}"


def test_import_reader_sees_lazy_and_relative_imports(tmp_path):
    # the reader counts an import inside a function and resolves a module named in `from pkg import mod`
    src = REPO / "bench" / "running" / "units.py"
    assert "bench.running.common" in imports_of(src)
    assert "bench.store.results" in imports_of(src)
