"""Guards around user code (method adapters, metrics): read-only inputs, a time limit, clean stops.

* Inputs are handed over as read-only copies (`writeable=False`) of the cached arrays, so an
  adapter that writes into its source frames fails with a clear error row instead of corrupting
  the cached source for every later method and metric; a write that bypasses the flag (e.g.
  through `torch.from_numpy`) only touches the copy and is detected by a checksum afterwards.
* `time_limit` (SIGALRM, main thread only) turns a Python adapter or metric that runs past the
  per-edit timeout into an error row; the run goes on.
* `SystemExit` raised inside an adapter or metric becomes an error row too (it must not end the run);
  so does `os._exit` (replaced while adapter code runs, see `no_process_exit`) and a KeyboardInterrupt
  that no signal caused.
* `interruptible()` turns SIGTERM into `RunInterrupted` (like Ctrl-C's KeyboardInterrupt), so the
  `external` adapter kills its process groups on the way out and the CLI prints how to resume.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import warnings
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from bench.api.errors import MethodOutputError, VidEditBenchError
from bench.api.types import EvalItem, Video

DEFAULT_TIMEOUT_S = 3600.0

# torch.from_numpy on our read-only copies warns once per process; a write through it only touches
# the copy and is caught by the checksum in GuardedMethod.edit, so the warning is noise here.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")


class EditTimeout(BaseException):
    """Raised by SIGALRM inside user code. A BaseException, so an adapter's `except Exception` cannot eat it."""


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) stopped the run; finished work is in the store."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class MetricOutputError(VidEditBenchError):
    """A metric returned something other than a mapping of its declared outputs."""


def read_only(a: Any) -> Any:
    """A read-only copy of a numpy array (anything else unchanged)."""
    if isinstance(a, np.ndarray):
        v = np.array(a, copy=True)
        v.flags.writeable = False
        return v
    return a


def _checksum(a: Any) -> int | None:
    import zlib

    return zlib.adler32(np.ascontiguousarray(a).view(np.uint8).reshape(-1)) if isinstance(a, np.ndarray) else None


def read_only_video(video: Video) -> Video:
    return dataclasses.replace(video, frames=read_only(video.frames))


def _describe_write(e: BaseException, who: str) -> str | None:
    if isinstance(e, ValueError) and "read-only" in str(e):
        return (f"{who} tried to write into its input arrays, which are shared with every other method and "
                f"metric (read-only); copy them first, e.g. frames = video.frames.copy()")
    return None


@contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise VidEditBenchError after `seconds` of wall time (no-op outside the main thread / when None)."""
    if not seconds or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    fired = []

    def on_alarm(signum, frame):
        # an adapter's bare `except:` may swallow this: the limit is enforced again from outside its
        # frames (re-raised every 0.5 s, and checked when the call returns)
        fired.append(True)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        raise EditTimeout()

    # an outer alarm (e.g. pytest-timeout's) is kept: it fires first if due first, else resumes after
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_delay and outer_delay <= seconds:
        yield
        return
    import time

    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
        if fired:  # the adapter caught EditTimeout and returned anyway: its result is past the limit
            raise EditTimeout()
    except EditTimeout:
        raise VidEditBenchError(f"{what} timed out after {seconds:g} s (raise --timeout)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:
            signal.setitimer(signal.ITIMER_REAL, max(1e-3, outer_delay - (time.monotonic() - start)), outer_interval)


def _guarded_call(fn, what: str, timeout: float | None):
    try:
        with time_limit(timeout, what), no_process_exit(what):
            return fn()
    except ProcessExitCalled as e:
        raise VidEditBenchError(str(e)) from None
    except KeyboardInterrupt:
        err = _adapter_interrupt(what)
        if err is not None:
            raise err from None
        raise
    except SystemExit as e:
        raise VidEditBenchError(f"{what} called sys.exit({e.code!r}); an adapter must raise an exception instead") from None
    except ValueError as e:
        msg = _describe_write(e, what)
        if msg:
            raise MethodOutputError(msg) from None
        raise


class GuardedMethod:
    """Wraps a Method: read-only inputs, a time limit per prepare/edit, SystemExit as an error."""

    def __init__(self, method: Any, timeout_s: float | None = DEFAULT_TIMEOUT_S, label: str | None = None):
        self._inner = method
        self._timeout = timeout_s
        self._what = f"method '{label or getattr(method, 'name', type(method).__name__)}'"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def prepare(self, video: Video) -> Any:
        return _guarded_call(lambda: self._inner.prepare(read_only_video(video)), f"{self._what} (prepare)", self._timeout)

    def edit(self, video: Video, **kw: Any) -> Any:
        for k in ("reference", "mask"):
            if k in kw:
                kw[k] = read_only(kw[k])
        ro = read_only_video(video)
        inputs = [ro.frames, kw.get("reference"), kw.get("mask")]
        before = [_checksum(a) for a in inputs]
        out = _guarded_call(lambda: self._inner.edit(ro, **kw), self._what, self._timeout)
        if [_checksum(a) for a in inputs] != before:
            raise MethodOutputError(f"{self._what} modified its input frames/reference/mask in place; "
                                    "work on a copy (e.g. frames = video.frames.copy())")
        return out


def read_only_item(item: EvalItem) -> EvalItem:
    return dataclasses.replace(
        item, source=read_only_video(item.source), edited=read_only_video(item.edited),
        reference=read_only(item.reference), mask=read_only(item.mask), flow_gt=read_only(item.flow_gt),
    )


def _read_only_view(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        v = a.view()
        v.flags.writeable = False
        return v
    return a


def read_only_view_item(item: EvalItem) -> EvalItem:
    """Like `read_only_item` without the copies: writes through these views fail, the cached arrays stay."""
    return dataclasses.replace(
        item, source=dataclasses.replace(item.source, frames=_read_only_view(item.source.frames)),
        edited=dataclasses.replace(item.edited, frames=_read_only_view(item.edited.frames)),
        reference=_read_only_view(item.reference), mask=_read_only_view(item.mask), flow_gt=_read_only_view(item.flow_gt),
    )


class GuardedMetric:
    """Wraps a Metric: read-only items, a time limit per compute, unknown output keys refused."""

    def __init__(self, metric: Any, timeout_s: float | None = DEFAULT_TIMEOUT_S):
        self._inner = metric
        self._timeout = timeout_s
        self._what = f"metric '{getattr(metric, 'name', type(metric).__name__)}'"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _check(self, values: Any) -> dict[str, Any]:
        if not isinstance(values, dict):
            raise MetricOutputError(f"{self._what} returned {type(values).__name__}, not a mapping of output name to value")
        names = {o.name for o in self._inner.outputs()}
        unknown = sorted(set(values) - names)
        if unknown:
            raise MetricOutputError(f"{self._what} returned unknown output(s) {unknown}; declared: {sorted(names)}")
        return values

    def compute(self, item: EvalItem) -> dict[str, Any]:
        return self._check(_guarded_call(lambda: self._inner.compute(read_only_item(item)), self._what, self._timeout))

    def prefetch(self, items: Sequence[EvalItem]) -> None:
        """The metric's cross-sample prefetch under the time limit, on read-only VIEWS of the items
        (a chunk's copies would double its memory; prefetch only reads)."""
        views = [read_only_view_item(i) for i in items]
        _guarded_call(lambda: self._inner.prefetch(views), f"{self._what} (prefetch)", self._timeout)

    def compute_set(self, items: Iterable[EvalItem]) -> dict[str, Any]:
        gen = (read_only_item(i) for i in items)
        return self._check(_guarded_call(lambda: self._inner.compute_set(gen), self._what, self._timeout))


def check_value(value: Any, lo: float | None, hi: float | None, name: str) -> tuple[float | None, str | None]:
    """(value, None) for a usable number, else (None, why): missing, not a number, not finite, out of range."""
    if value is None:
        return None, f"{name}: the metric returned no value (None)"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None, f"{name}: the metric returned {type(value).__name__} {str(value)[:40]!r}, not a number"
    if not math.isfinite(v):
        return None, f"{name} is {v} (not finite)"
    lo = -math.inf if lo is None else float(lo)
    hi = math.inf if hi is None else float(hi)
    # float round-off (e.g. an FID of -1e-9 from sqrtm) is not a bug; 42 for a [0, 1] metric is
    tol = 1e-4 * max(1.0, abs(lo) if math.isfinite(lo) else 0.0, abs(hi) if math.isfinite(hi) else 0.0)
    if v < lo - tol or v > hi + tol:
        return None, f"{name} = {v:.6g} is outside its declared range [{lo:g}, {hi:g}] (a bug in the metric)"
    return v, None


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM and SIGINT raise RunInterrupted in the main thread while the run is going (restored
    afterwards), and are recorded: libraries that turn a KeyboardInterrupt into a new one (Ray's
    `ray.get`) lose the signal, `received_signal()` keeps it; a KeyboardInterrupt raised by an
    adapter with no signal received is the adapter's error, not the user's Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum, frame):
        _received.append(signum)
        raise RunInterrupted(signum)

    _received.clear()
    _active.append(True)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _active.pop()


_received: list[int] = []
_active: list[bool] = []


def received_signal() -> int | None:
    """The last SIGTERM/SIGINT that `interruptible` caught (None: none since the run started)."""
    return _received[-1] if _received else None


def _adapter_interrupt(what: str) -> VidEditBenchError | None:
    """The error for a KeyboardInterrupt that no signal caused (only known while `interruptible` is on)."""
    if _active and received_signal() is None:
        return VidEditBenchError(f"{what} raised KeyboardInterrupt although no Ctrl-C or SIGTERM arrived; an adapter "
                                 "must raise an ordinary exception")
    return None


@contextmanager
def no_process_exit(what: str) -> Iterator[None]:
    """`os._exit` called by adapter code in this process raises instead of ending the run with exit 0 and no
    leaderboard (it skips every `finally` and atexit). Forked children (data loaders) still exit normally."""
    import os
    import posix

    real = os._exit
    owner, thread = os.getpid(), threading.get_ident()

    def guarded_exit(code: int = 0) -> None:
        if os.getpid() != owner or threading.get_ident() != thread:  # a forked child, or another thread (Ray's own)
            real(code)
        raise ProcessExitCalled(f"{what} called os._exit({code!r}); an adapter must raise an exception instead")

    os._exit = posix._exit = guarded_exit  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = posix._exit = real  # type: ignore[assignment]


class ProcessExitCalled(BaseException):
    """Raised in place of os._exit inside adapter code (a BaseException: `except Exception` cannot eat it)."""
