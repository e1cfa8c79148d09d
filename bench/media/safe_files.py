"""Reading and copying a run's edit folders without following symbolic links (issue 25).

Nothing we write is a symlink, so a link inside an edit or source folder came from elsewhere (a
hand-edited or foreign run): it is never followed out of the run — copies leave it out, readers
refuse the folder with one line.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.api.errors import VidEditBenchError


def links_in(path: str | os.PathLike) -> list[Path]:
    """`path` itself if it is a link, else every link below it (not descending into linked folders)."""
    p = Path(path)
    if p.is_symlink():
        return [p]
    if not p.is_dir():
        return []
    found: list[Path] = []
    for root, dirs, files in os.walk(p, followlinks=False):
        for name in dirs + files:
            q = Path(root) / name
            if q.is_symlink():
                found.append(q)
    return found


def refuse_links(path: str | os.PathLike, what: str = "edit") -> None:
    """Raise (one line) when the folder or file holds a symbolic link."""
    links = links_in(path)
    if links:
        raise VidEditBenchError(
            f"{what} {path} holds a symbolic link ({links[0].name} -> {os.readlink(links[0])}); links are never "
            "followed out of a run: replace it with the file itself"
        )


def copy_tree_without_links(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Copy a folder, leaving out every symbolic link (never the files they point at); how many were left out."""
    skipped = 0

    def ignore(folder: str, names: list[str]) -> list[str]:
        nonlocal skipped
        links = [n for n in names if os.path.islink(os.path.join(folder, n))]
        skipped += len(links)
        return links

    if Path(src).is_symlink():
        return 1
    shutil.copytree(src, dst, symlinks=True, ignore=ignore)
    return skipped
