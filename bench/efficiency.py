"""Harness-side measurement of wall time and peak memory around one call (prepare or edit).

GPU: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`, CUDA synchronised before and
after timing. CPU: peak resident set size of this process and its children, sampled every few ms
by a background thread during the call.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Measurement:
    seconds: float
    peak_memory_mb: float
    memory_device: str  # "cuda" or "cpu"


class _RSSSampler(threading.Thread):
    def __init__(self, interval: float = 0.005):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = self._rss()
        self._stop_event = threading.Event()

    def _rss(self) -> int:
        total = 0
        try:
            total = self.proc.memory_info().rss
            for child in self.proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except Exception:  # noqa: BLE001 (child exited)
                    pass
        except Exception:  # noqa: BLE001
            pass
        return total

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, self._rss())
        return self.peak


def _cuda(device: str):
    if not str(device).startswith("cuda") or "torch" not in sys.modules:
        return None
    import torch

    return torch.cuda if torch.cuda.is_available() else None


def measure(fn: Callable[[], Any], device: str = "cpu") -> tuple[Any, Measurement]:
    """Run fn() and return (its result, Measurement). Exceptions propagate unchanged."""
    cuda = _cuda(device)
    if cuda is not None:
        cuda.synchronize(device)
        cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        result = fn()
        cuda.synchronize(device)
        seconds = time.perf_counter() - start
        return result, Measurement(seconds, cuda.max_memory_allocated(device) / 2**20, "cuda")
    sampler = _RSSSampler()
    sampler.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - start
        peak = sampler.stop()
    return result, Measurement(seconds, peak / 2**20, "cpu")
