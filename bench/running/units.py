"""Executing one unit of a run: inputs -> an `EditRow` or `ScoreRow`s. Nothing here writes the store.

An edit unit writes its frames into the run folder (the record points at them) and returns the
record; the caller (the local loop in `bench.running.runner`, or the driver of `bench.running.ray_executor`) is
the one writer of the store. Both executors drive these same functions, so their records, and
the keys in them, are the same.
"""

from __future__ import annotations

import numpy as np

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.api.errors import NotApplicable, WeightsMissing
from bench.running.guard import check_value
from bench.store.pairing import is_set_uid
from bench.running.plan import EditUnit, make_edit_row, score_key
from bench.store.runpaths import safe_component
from bench.store.results import EditRow, ScoreRow
from bench.api.types import EvalItem, LoadedSample, Sample


def edit_output_dir(run_dir: Path, label: str, mkey: str, sample: Sample, sample_key: str) -> Path:
    return Path(run_dir) / "edits" / safe_component(label) / mkey[:10] / (
        f"{safe_component(sample.video_id)}-{safe_component(sample.edit_id)}-{sample_key[:10]}")


def ready_check(obj: Any) -> tuple[str, str, str] | None:
    """Weights present and setup() done, or (status, message, 'weights'|'setup') for every unit of
    this method or metric."""
    from bench.running.common import describe_exception, missing_weights_message

    msg = missing_weights_message(obj.required_weights())
    if msg:
        return "skipped", msg, "weights"
    try:
        obj.setup()
    except Exception as e:  # noqa: BLE001
        return ("skipped" if isinstance(e, (WeightsMissing, ImportError)) else "error"), describe_exception(e), "setup"
    return None


class MethodWorker:
    """One set-up method running many edit units; `prepare` runs once per source video (the units of
    one source come together) and the first unit gets the untimed warm-up edits."""

    def __init__(self, method: Any, label: str, device: str, seed: int, warmup: int | None, run_dir: Path,
                 oom_retries: int = 0):
        self.method, self.label, self.device, self.seed = method, label, device, seed
        self.warmup, self.run_dir, self.oom_retries = warmup, Path(run_dir), oom_retries
        self._source: str | None = None
        self._prepared: Any = None
        self._prep_time: float | None = None
        self._prep_error: str | None = None
        self._done = 0
        self.last_frames: Any = None  # the frames of the last ok edit (the local runner caches them)

    def _prepare(self, unit: EditUnit, loaded: LoadedSample) -> None:
        from bench.running.efficiency import measure_if
        from bench.running.common import _seed_everything, describe_exception

        if self._source == unit.source:
            return
        self._source, self._prepared, self._prep_time, self._prep_error = unit.source, None, None, None
        try:
            _seed_everything(self.seed)
            self._prepared, m = measure_if(getattr(self.method, "measures_efficiency", True),
                                           lambda: self.method.prepare(loaded.video), self.device)
            self._prep_time = m.seconds
        except Exception as e:  # noqa: BLE001
            self._prep_error = f"prepare failed: {describe_exception(e)}"

    def run(self, unit: EditUnit, sample: Sample, load: Callable[[Sample], LoadedSample],
            source_dir: Callable[[LoadedSample], str], log: Callable[[str], None] = lambda m: None) -> EditRow:
        """The edit of one (method, sample): an ok row with its frames written, or an error row."""
        from bench.running.common import _free_memory, _is_oom, describe_exception

        self._done += 1
        row = lambda status, **kw: make_edit_row(sample, unit.sample_key, self.label, unit.method_key,  # noqa: E731
                                                 unit.method_config, status, **kw)
        try:
            loaded = load(sample)
        except Exception as e:  # noqa: BLE001
            return row("error", message=describe_exception(e))
        self._prepare(unit, loaded)
        if self._prep_error:
            return row("error", message=self._prep_error)
        for attempt in range(self.oom_retries + 1):
            try:
                return self._edit(unit, sample, loaded, source_dir, row)
            except Exception as e:  # noqa: BLE001
                msg = describe_exception(e)
                _free_memory()
                if _is_oom(e) and attempt < self.oom_retries:
                    log(f"{self.label} on {sample.uid}: {msg}; memory released, retrying once")
                    continue
                log(f"{self.label} on {sample.uid}: {msg}")
                if _is_oom(e) and attempt:
                    msg += " (again after releasing memory and retrying)"
                return row("error", message=msg)
        raise AssertionError("unreachable")

    def _edit(self, unit: EditUnit, sample: Sample, loaded: LoadedSample, source_dir, row) -> EditRow:
        from bench.running.efficiency import measure_if, warmup_edits
        from bench.running.common import _seed_everything, validate_output
        from bench.media.video_io import write_frames

        method = self.method
        extra = {"sample": sample} if getattr(method, "receives_sample", False) else {}

        def call():
            return method.edit(
                loaded.video, prompt=sample.target_prompt, reference=loaded.reference, mask=loaded.mask,
                prepared=self._prepared, source_prompt=sample.source_prompt, **extra,
            )

        warmup = warmup_edits(self.device, self.warmup)
        if self._done == 1 and warmup:
            for _ in range(warmup):
                _seed_everything(self.seed)
                call()
        timed = getattr(method, "measures_efficiency", True)
        _seed_everything(self.seed)
        out, m = measure_if(timed, call, self.device)
        frames = validate_output(out, loaded.video, self.label)
        out_dir = edit_output_dir(self.run_dir, self.label, unit.method_key, sample, unit.sample_key)
        # a method that returned the user's own PNG files unchanged (precomputed) hands over their bytes
        png = getattr(method, "last_output_png", None) if frames is out else None
        write_frames(out_dir, frames, png=png)
        self.last_frames = np.ascontiguousarray(frames).copy()  # handed to the local runner's frame cache
        return row("ok", output_dir=str(out_dir), source_dir=source_dir(loaded),
                   preprocess_s=self._prep_time if timed else None, generate_s=m.seconds if timed else None,
                   peak_memory_mb=m.peak_memory_mb if timed else None, memory_device=m.memory_device)

    def close(self) -> None:
        try:
            self.method.teardown()
        except Exception:  # noqa: BLE001
            pass


# --- scores -------------------------------------------------------------------------------------------
def score_rows(metric: Any, row_like: dict, ekey: str, sample_uid: str, status: str,
               values: dict[str, float] | None = None, message: str | None = None,
               details: dict | None = None) -> list[ScoreRow]:
    vid, vlabel = metric.variant_id(), metric.variant_label()
    details_json = json.dumps(details, sort_keys=True, default=str) if details else None
    rows = []
    for out in metric.outputs():
        value = None if values is None else values.get(out.name)
        st, msg = status, message
        if status == "ok":  # a missing, non-numeric, non-finite or out-of-range value is an error row
            value, why = check_value(value, out.value_range[0], out.value_range[1], out.name)
            if why:
                st, msg = "error", why
        rows.append(ScoreRow(
            score_key=score_key(ekey, out.name, vid), edit_key=None if is_set_uid(sample_uid) else ekey,
            method=row_like["method"], method_key=row_like["method_key"], sample_uid=sample_uid, metric=out.name,
            metric_family=metric.name, variant_id=vid, variant_label=vlabel, value=value, status=st,
            message=msg, higher_is_better=out.higher_is_better, value_min=out.value_range[0],
            value_max=out.value_range[1], level=metric.level, details=details_json,
        ))
    return rows


def unavailable_rows(name: str, edits: list[dict], status: str, msg: str) -> list[ScoreRow]:
    """Rows for a metric that could not even be created (no variant to key on)."""
    return [ScoreRow(
        score_key=score_key(r["edit_key"], name, "unavailable"), edit_key=r["edit_key"], method=r["method"],
        method_key=r["method_key"], sample_uid=r["sample_uid"], metric=name, metric_family=name,
        variant_id="unavailable", variant_label="unavailable", value=None, status=status, message=msg,
        higher_is_better=True, value_min=None, value_max=None, level="sample",
    ) for r in edits]


def execute_score(metric: Any, row: dict, item: Callable[[], EvalItem],
                  log: Callable[[str], None] = lambda m: None) -> tuple[list[ScoreRow], bool]:
    """One metric on one edit: (rows, computed ok)."""
    from bench.running.common import describe_exception

    try:
        values = metric.compute(item())
        return score_rows(metric, row, row["edit_key"], row["sample_uid"], "ok", values=values,
                          details=getattr(values, "details", None), message=metric.row_note()), True
    except NotApplicable as e:
        return score_rows(metric, row, row["edit_key"], row["sample_uid"], "not_applicable", message=str(e)), False
    except Exception as e:  # noqa: BLE001
        msg = describe_exception(e)
        log(f"{metric.name} on {row['method']} {row['sample_uid']}: {msg}")
        return score_rows(metric, row, row["edit_key"], row["sample_uid"], "error", message=msg,
                          details=getattr(e, "details", None)), False


def execute_set(metric: Any, row0: dict, set_key: str, set_uid: str,
                items: Callable[[], Iterable[EvalItem]] | None) -> tuple[list[ScoreRow], bool]:
    """A set-level metric on one sample set (items None: no applicable sample)."""
    from bench.running.common import describe_exception

    if items is None:
        return score_rows(metric, row0, set_key, set_uid, "not_applicable", message="no applicable samples"), False
    try:
        values = metric.compute_set(items())
        return score_rows(metric, row0, set_key, set_uid, "ok", values=values), True
    except Exception as e:  # noqa: BLE001
        return score_rows(metric, row0, set_key, set_uid, "error", message=describe_exception(e)), False


def teardown(obj: Any) -> None:
    try:
        obj.teardown()
    except Exception:  # noqa: BLE001
        pass
