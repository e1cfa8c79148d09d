"""Harness-side measurement of wall time and peak memory around one call (prepare or edit).

Definitions (what `peak_memory_mb` means in the store and the leaderboard):

* CUDA: the peak of `torch.cuda.max_memory_allocated` during the call, after
  `reset_peak_memory_stats` (CUDA synchronised before and after timing). It includes the method's
  own weights on the GPU (what a user needs to run it), never an earlier method's: the runner
  releases the model cache between methods (`bench.weights.models.release`).
* CPU: the edit's increase in resident memory: peak resident set size (this process + its
  children, sampled every few ms by a background thread) during the call minus the resident set
  size just before it. Memory that stays allocated from before (weights, the loaded video, caches
  of earlier methods) is not counted; what the edit allocates and touches is.

`warmup_edits(device)` is the default number of untimed warm-up edits before a method's first
timed one: 1 on CUDA (kernel selection, cuDNN autotuning and lazy allocations are excluded, as
SPEC §4 requires), 0 on CPU.
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


def _reset_rss_high_water_mark() -> bool:
    """Linux: reset this process's VmHWM to its current RSS (exact peaks a sampler could miss)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_high_water_mark() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cuda(device: str):
    if not str(device).startswith("cuda") or "torch" not in sys.modules:
        return None
    import torch

    return torch.cuda if torch.cuda.is_available() else None


def _return_free_heap_to_os() -> None:
    """glibc keeps freed heap pages resident and hands them to the next allocation, which then adds
    nothing to the RSS: an edit allocating 200 MB right after another freed 200 MB would read ~0 MB.
    malloc_trim(0) gives the free pages back first, so the edit's own allocations show up."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): best effort
        pass


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
    import gc

    gc.collect()  # garbage of earlier edits must not be counted as (negative) headroom
    _return_free_heap_to_os()
    hwm = _reset_rss_high_water_mark()
    sampler = _RSSSampler()
    baseline = sampler.peak
    sampler.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - start
        peak = sampler.stop()
        if hwm:  # the kernel's exact peak of this process (children: from the sampler)
            peak = max(peak, _rss_high_water_mark())
    return result, Measurement(seconds, max(peak - baseline, 0) / 2**20, "cpu")


def measure_if(timed: bool, fn: Callable[[], Any], device: str = "cpu") -> tuple[Any, Measurement]:
    """measure(fn) when `timed`; otherwise just fn(): a method whose figures are never recorded
    (precomputed outputs) skips the garbage collection, heap trim and RSS sampling. The untimed
    Measurement only names the memory device."""
    if timed:
        return measure(fn, device)
    return fn(), Measurement(float("nan"), float("nan"), "cuda" if _cuda(device) is not None else "cpu")


def warmup_edits(device: str, requested: int | None = None) -> int:
    """Untimed warm-up edits before the first timed one: `requested`, else 1 on CUDA and 0 on CPU."""
    if requested is not None:
        return max(int(requested), 0)
    return 1 if str(device).startswith("cuda") else 0
