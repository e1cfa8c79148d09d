"""Methods for the Ray executor tests, importable by Ray worker processes (tests/ is on their PYTHONPATH)."""

from __future__ import annotations

import os
import time

import numpy as np

from bench.api.method import Method


class SlowShift(Method):
    """Rolls the source frames by one pixel per frame after `delay` seconds (a slow, deterministic edit)."""

    name = "ray-slow-shift"
    tasks = frozenset({"text", "image"})
    defaults = {"delay": 0.5}

    def edit(self, video, **kw):
        time.sleep(float(self.cfg["delay"]))
        return np.stack([np.roll(f, i, axis=1) for i, f in enumerate(video.frames)])


class Raises(Method):
    """Raises inside edit; appends a line to `calls` per call (to count attempts across processes)."""

    name = "ray-raises"
    tasks = frozenset({"text", "image"})
    defaults = {"calls": ""}

    def edit(self, video, **kw):
        with open(self.cfg["calls"], "a") as fh:
            fh.write(f"{os.getpid()}\n")
        raise ValueError("adapter bug: no frames for you")


from metrics.clip import ClipConsistency  # noqa: E402


class CountingClipConsistency(ClipConsistency):
    """clip_consistency that appends the size of every cross-sample prefetch to `calls` (one line per call)."""

    name = "ray-counting-clip"
    defaults = {**ClipConsistency.defaults, "calls": ""}

    def prefetch(self, items):
        with open(self.options["calls"], "a") as fh:
            fh.write(f"{os.getpid()} {len(items)}\n")
        super().prefetch(items)
