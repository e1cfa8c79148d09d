"""Per-run cache of SOURCE-video features and flows, shared by every method and prompt.

V2VBench recomputes source features for each edit; here a metric asks
`cache.get_or_compute((namespace, source_key), fn)` and the work happens once per source video.
Entries are kept in LRU order up to `max_entries` per namespace (runs are ordered by source video).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable


class FeatureCache:
    def __init__(self, max_entries: int = 16, enabled: bool = True):
        self.max_entries = max_entries
        self.enabled = enabled
        self._data: dict[str, OrderedDict[Hashable, Any]] = {}
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, namespace: str, key: Hashable, fn: Callable[[], Any]) -> Any:
        if not self.enabled or not key:
            self.misses += 1
            return fn()
        bucket = self._data.setdefault(namespace, OrderedDict())
        if key in bucket:
            self.hits += 1
            bucket.move_to_end(key)
            return bucket[key]
        self.misses += 1
        value = fn()
        bucket[key] = value
        while len(bucket) > self.max_entries:
            bucket.popitem(last=False)
        return value

    def clear(self) -> None:
        self._data.clear()
