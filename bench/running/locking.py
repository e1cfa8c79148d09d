"""One process per run folder: a second `run`/`eval` on the same folder gets one clear line.

The lock is an advisory `flock` on `<run>/.lock`, released by the kernel when the process dies
(so a `kill -9` never leaves a stale lock behind).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.api.errors import VidEditBenchError


class RunLocked(VidEditBenchError):
    """Another process holds the run folder."""


class RunLock:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / ".lock"
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        import fcntl

        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise RunLocked(
                f"run folder {self.run_dir} is in use by another videditbench process (pid {other}); "
                "wait for it to finish, or use another --name"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class SiblingLock:
    """An exclusive lock on a folder that may not exist yet: `flock` on `.<name>.<what>.lock` beside it
    (e.g. two merges into one new folder). The lock file goes when the lock is released."""

    def __init__(self, folder: Path, what: str):
        self.folder = Path(folder)
        self.path = self.folder.parent / f".{self.folder.name}.{what}.lock"
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> "SiblingLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunLocked(f"another {self.what} into {self.folder} is running; wait for it to finish") from None
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            try:
                self.path.unlink()  # while still held: a waiter opening it now fails, a later one makes a new file
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
