"""The "source" row: returns the source video unchanged.

IVE-Benchmark prints the source video's own scores as a reference row (what a method that does
nothing would get: perfect background preservation and temporal consistency, no edit). Runs on
text- and image-guided samples and needs nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.method import Method
from bench.types import Video


class SourceMethod(Method):
    name = "source"
    description = "Reference row: the unedited source video (IVE-Benchmark prints it alongside the methods)"
    tasks = frozenset({"text", "image"})
    needs = frozenset()
    reference = True

    def edit(
        self,
        video: Video,
        *,
        prompt: str | None = None,
        reference: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        prepared: Any = None,
        source_prompt: str | None = None,
    ) -> np.ndarray:
        return video.frames.copy()
