"""Per-run cache of SOURCE-video features and flows, shared by every method and prompt.

V2VBench recomputes source features for each edit; here a metric asks
`cache.get_or_compute((namespace, source_key), fn)` and the work happens once per source video.
Entries are kept in LRU order up to `max_entries` per namespace (runs are ordered by source video).

A metric's `prefetch` (cross-sample batching) computes many entries at once and `put`s them; the
first read of such an entry counts as the miss it replaced, so hit/miss counts mean the same with
and without prefetching. `reserve(n)` lifts the bound while a chunk of prefetched items is scored.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Hashable, Iterator


class FeatureCache:
    def __init__(self, max_entries: int = 16, enabled: bool = True):
        self.max_entries = max_entries
        self.enabled = enabled
        self._data: dict[str, OrderedDict[Hashable, Any]] = {}
        self._prefetched: set[tuple[str, Hashable]] = set()  # put() but not yet read
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, namespace: str, key: Hashable, fn: Callable[[], Any]) -> Any:
        if not self.enabled or not key:
            self.misses += 1
            return fn()
        bucket = self._data.setdefault(namespace, OrderedDict())
        if key in bucket:
            if (namespace, key) in self._prefetched:
                self._prefetched.discard((namespace, key))
                self.misses += 1
            else:
                self.hits += 1
            bucket.move_to_end(key)
            return bucket[key]
        self.misses += 1
        value = fn()
        bucket[key] = value
        self._trim(namespace, bucket)
        return value

    def contains(self, namespace: str, key: Hashable) -> bool:
        return self.enabled and bool(key) and key in self._data.get(namespace, {})

    def put(self, namespace: str, key: Hashable, value: Any) -> None:
        """Store a value computed ahead of its first `get_or_compute` (no-op when disabled)."""
        if not self.enabled or not key:
            return
        bucket = self._data.setdefault(namespace, OrderedDict())
        bucket[key] = value
        bucket.move_to_end(key)
        self._prefetched.add((namespace, key))
        self._trim(namespace, bucket)

    def _trim(self, namespace: str, bucket: OrderedDict) -> None:
        while len(bucket) > self.max_entries:
            old, _ = bucket.popitem(last=False)
            self._prefetched.discard((namespace, old))

    @contextmanager
    def reserve(self, n: int) -> Iterator[None]:
        """Room for at least `n` entries per namespace inside the block (the bound is restored after)."""
        before = self.max_entries
        self.max_entries = max(before, int(n))
        try:
            yield
        finally:
            self.max_entries = before
            for namespace, bucket in self._data.items():
                self._trim(namespace, bucket)

    def clear(self) -> None:
        self._data.clear()
        self._prefetched.clear()
