"""Decoded videos held once per run, bounded by bytes: each edit (and each loaded sample: source
frames, mask, reference, flow) is decoded once and handed to every metric that needs it.

The runner scores metric-major (one metric over all edits, then the next), so a plain LRU smaller
than the whole decoded set would miss every time; the runner therefore walks the edits in
alternating directions (forward for one metric, backward for the next), and the LRU then serves the
`max_bytes` most recently decoded videos of the previous pass without decoding them again.
When everything fits (the usual case: 12 edits of 8 frames at 256² are 19 MB), every video is
decoded at most once per run; an edit made in the same run is not decoded at all (the runner puts
the frames it has just written into the cache).
"""

from __future__ import annotations

import dataclasses
import os
from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, TypeVar

import numpy as np

T = TypeVar("T")

#: default budget for decoded frames held between metrics (per cache; at most 1/8 of the RAM);
#: VIDEDITBENCH_DECODE_CACHE_MB overrides it
DEFAULT_MAX_MB = 2048.0


def default_max_bytes() -> int:
    mb = os.environ.get("VIDEDITBENCH_DECODE_CACHE_MB")
    try:
        if mb not in (None, ""):
            return max(0, int(float(mb) * 2**20))
    except ValueError:
        pass
    budget = int(DEFAULT_MAX_MB * 2**20)
    try:
        budget = min(budget, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 8)
    except (ValueError, OSError, AttributeError):  # not on every platform
        pass
    return budget


def nbytes(obj: Any) -> int:
    """Bytes of the numpy arrays an object holds (arrays, dataclasses of arrays, tuples/lists/dicts)."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(nbytes(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    if isinstance(obj, (tuple, list)):
        return sum(nbytes(x) for x in obj)
    if isinstance(obj, dict):
        return sum(nbytes(x) for x in obj.values())
    return 0


class ByteLRU(Generic[T]):
    """get(key, load): the cached value, else load() once and keep it while the total stays under
    max_bytes (least recently used entries leave first; a value larger than the budget is returned
    but not kept). max_bytes=0 disables caching: every get() loads (the old decode-per-metric path)."""

    def __init__(self, max_bytes: int | None = None, size: Callable[[Any], int] = nbytes):
        self.max_bytes = default_max_bytes() if max_bytes is None else int(max_bytes)
        self._size = size
        self._items: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key][0]
        self.misses += 1
        value = load()
        n = self._size(value)
        if 0 < self.max_bytes and n <= self.max_bytes:
            while self._items and self.bytes + n > self.max_bytes:
                _, (_, freed) = self._items.popitem(last=False)
                self.bytes -= freed
                self.evictions += 1
            self._items[key] = (value, n)
            self.bytes += n
        return value

    def discard(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.bytes -= item[1]

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
