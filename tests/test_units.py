"""Issue 8: the unit functions (bench.running.plan / bench.running.units) on their own: no store, OOM retried once."""

from __future__ import annotations

import numpy as np

from bench.api.method import Method
from bench.running.plan import EditUnit, edit_key
from bench.suites import load_suite
from bench.running.units import MethodWorker


class _OomOnce(Method):
    """Raises MemoryError on its first `fails` calls, then returns the source frames inverted."""

    name = "units-oom"
    tasks = frozenset({"text", "image"})
    defaults = {"fails": 1}

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = 0

    def edit(self, video, **kw):
        self.calls += 1
        if self.calls <= self.cfg["fails"]:
            raise MemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return 255 - video.frames


def _unit(sample, sk: str) -> EditUnit:
    return EditUnit("units-oom", "units-oom", "mk", {"name": "units-oom"}, sample.uid, sk, edit_key(sk, "mk"),
                    sample.source)


def _run(tmp_path, fails: int, oom_retries: int):
    suite = load_suite("mini", num_frames=3, size=16)
    s = suite.samples[0]
    method = _OomOnce(fails=fails)
    worker = MethodWorker(method, "units-oom", "cpu", 0, 0, tmp_path / "run", oom_retries=oom_retries)
    row = worker.run(_unit(s, "sk0123456789"), s, suite.load, lambda loaded: str(tmp_path / "src"))
    return row, method, suite.load(s)


def test_an_out_of_memory_is_retried_once_and_the_retry_is_the_result(tmp_path):
    row, method, loaded = _run(tmp_path, fails=1, oom_retries=1)
    assert row.status == "ok" and method.calls == 2
    from bench.media.video_io import read_video

    np.testing.assert_array_equal(read_video(row.output_dir)[0], 255 - loaded.video.frames)
    assert not (tmp_path / "run" / "results.sqlite").exists()  # a unit never writes the store


def test_a_second_out_of_memory_is_an_error_row_saying_so(tmp_path):
    row, method, _ = _run(tmp_path, fails=5, oom_retries=1)
    assert row.status == "error" and method.calls == 2
    assert row.message.startswith("out of memory") and "again after releasing memory" in row.message


def test_the_local_executor_does_not_retry_an_out_of_memory(tmp_path):
    row, method, _ = _run(tmp_path, fails=1, oom_retries=0)
    assert row.status == "error" and method.calls == 1 and "again" not in row.message
