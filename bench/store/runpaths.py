"""Paths inside a run folder: safe names, paths stored relative to the run, stale temp clean-up.

A run folder is self-contained: the store keeps `output_dir` / `source_dir` relative to it, and any
stored path that would resolve outside it (`../`, an absolute path elsewhere — e.g. from a foreign
or merged store) is refused, so a report never copies files from outside the run.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from bench.api.errors import VidEditBenchError

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@-]")
MAX_NAME = 120


def safe_component(text: str, max_len: int = 80) -> str:
    """A folder name made from arbitrary text (labels, video ids): one path component, never `.`/`..`."""
    s = _UNSAFE.sub("_", str(text))[:max_len].strip(".") or "_"
    return s


def check_name(name: str, what: str = "run name", flag: str = "--name") -> str:
    """A user-given name that becomes ONE folder: no separators, not `.`/`..`, printable, bounded."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name or "\0" in name
            or len(name) > MAX_NAME or not name.isprintable() or name != name.strip()):
        raise VidEditBenchError(
            f"bad {what} {name[:80]!r}: it must be a single folder name (no '/', not '.' or '..', at most "
            f"{MAX_NAME} printable characters); fix {flag}"
        )
    return name


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def to_stored(run_dir: Path, path: str | os.PathLike | None) -> str | None:
    """The form kept in the store: relative to the run folder. A path outside the run is refused."""
    if path is None or str(path) == "":
        return None
    full = Path(path).resolve()  # a relative path given to the store is relative to the working directory
    if not _inside(full, run_dir):
        raise VidEditBenchError(f"refusing to store path {str(path)!r}: it is outside the run folder {run_dir}")
    return full.resolve().relative_to(run_dir.resolve()).as_posix()


def resolve_stored(run_dir: Path, stored: str | None) -> str | None:
    """The absolute path of a stored path, or None when it is empty or would leave the run folder."""
    if stored is None or str(stored) in ("", "nan", "None"):
        return None
    p = Path(str(stored))
    full = p if p.is_absolute() else run_dir / p
    return str(full.resolve()) if _inside(full, run_dir) else None


def is_run_store(folder: Path) -> bool:
    """A folder we created: it holds a results.sqlite whose meta table has our schema_version."""
    import sqlite3

    db = folder / "results.sqlite"
    if not db.is_file() or folder.is_symlink():
        return False
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return row is not None


def remove_run(results_dir: Path, name: str) -> None:
    """Delete <results_dir>/<name>, only when it is a run store of ours directly inside results_dir."""
    check_name(name)
    folder = results_dir / name
    if folder.is_symlink() or folder.resolve().parent != results_dir.resolve():
        raise VidEditBenchError(f"refusing to delete {folder}: it is not a folder inside {results_dir}")
    if not is_run_store(folder):
        raise VidEditBenchError(
            f"refusing to delete {folder}: it is not a videditbench run (no results.sqlite of ours); "
            "remove it yourself or choose another --name"
        )
    shutil.rmtree(folder)


def clean_stale_temp(run_dir: Path) -> int:
    """Remove temp files/folders that a killed write left behind (`.comp-*`, `*.tmp*`, the `.<name>.XXXX`
    folders of write_frames). Call only while holding the run lock. Returns how many went."""
    if not run_dir.is_dir():
        return 0
    stale = [p for p in run_dir.rglob("*") if _is_temp(p)]
    n = 0
    for p in sorted(stale, key=lambda q: len(q.parts)):
        if not os.path.lexists(p):
            continue  # inside a folder removed already
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n


def _is_temp(p: Path) -> bool:
    name = p.name
    if name.startswith(".comp-") or name.endswith(".tmp") or ".tmp." in name:
        return True
    # write_frames' temp folder: ".<dest>.<random>" next to its destination
    return name.startswith(".") and name.count(".") >= 2 and p.is_dir()
