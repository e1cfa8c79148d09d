"""The benchmark loop: methods × samples -> edited videos (stored losslessly) -> metrics -> store.

The unit of work is one (method, sample) edit and one (edit, metric variant) score; both are keyed
by content hashes, so a rerun or `--resume` skips finished work, shards (`--shard i/n`) never
overlap, and their stores merge. A failing sample, method or metric becomes an error row and the
run goes on.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import time
import traceback
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.cache import FeatureCache
from bench.catalog import METHODS, METRICS
from bench.errors import MethodOutputError, NotApplicable, VidEditBenchError, WeightsMissing
from bench.guard import DEFAULT_TIMEOUT_S, GuardedMethod, GuardedMetric, check_value
from bench.hashing import hash_obj
from bench.runpaths import safe_component
from bench.pairing import is_set_uid
from bench.store import EditRow, ResultStore, ScoreRow
from bench.types import Efficiency, EvalItem, LoadedSample, Sample, Video

DEFAULT_METHODS = ("source", "flow-propagate", "color-transfer")
#: the default metric set: every built-in metric; model-based ones are skipped (with the fix) when
#: their weights are absent, so the default run is meaningful offline.
DEFAULT_METRICS = (
    "clip_text", "clip_consistency", "dino_consistency", "aesthetic", "pick_score", "dover",
    "motion_alignment", "warp_error", "fid", "clip_image", "dino_image",
    # weight-free flow variants, so the default run scores motion and warping offline too
    "motion_alignment@flow=dis", "warp_error@flow=dis", "warp_error@flow=gt",
    "temporal_flickering", "bg_psnr", "bg_ssim", "generation_time", "preprocess_time", "peak_memory",
)

Progress = Callable[[str, int, int], None]  # (phase label, done, total)


@dataclass
class RunConfig:
    suite: str = "mini"
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    run_name: str | None = None
    results_dir: str = "results"
    device: str = "auto"
    seed: int = 0
    limit: int | None = None
    shard: tuple[int, int] | None = None  # (index, count), index in [0, count)
    retry_errors: bool = False
    batch_size: int = 16
    warmup: int | None = None  # untimed warm-up edits; None = 1 on CUDA, 0 on CPU (bench.efficiency)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    method_labels: dict[str, str] = field(default_factory=dict)  # registry name -> stored name (e.g. eval)
    suite_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. num_frames, size
    source_cache: bool = True
    # each edit decoded once per run for all metrics (bench.frame_cache); False (or VIDEDITBENCH_DECODE_ONCE=0)
    # restores the old path, one decode per metric, for benchmarks
    decode_once: bool = field(default_factory=lambda: os.environ.get("VIDEDITBENCH_DECODE_ONCE") != "0")
    timeout_s: float | None = DEFAULT_TIMEOUT_S  # per prepare/edit of a Python adapter and per metric compute

    @property
    def name(self) -> str:
        return self.run_name or Path(self.suite).stem

    @property
    def run_dir(self) -> Path:
        return Path(self.results_dir) / self.name


@dataclass
class RunSummary:
    run_dir: Path
    edits: dict[str, dict[str, int]] = field(default_factory=dict)  # method -> status -> count
    scores: dict[str, dict[str, int]] = field(default_factory=dict)  # metric -> status -> count
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)  # (kind, what, status, message)
    edits_done: int = 0
    edits_skipped_existing: int = 0
    scores_done: int = 0
    scores_skipped_existing: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    seconds: float = 0.0


def code_version() -> str:
    from bench import __version__

    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        if rev:
            return f"{__version__}+g{rev}{'.dirty' if dirty else ''}"
    except Exception:  # noqa: BLE001
        pass
    return __version__


def environment_info(device: str) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    info: dict[str, Any] = {
        "python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "device": device,
    }
    for pkg in ("torch", "torchvision", "transformers", "diffusers", "open_clip_torch", "ptlflow", "numpy"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = None
    if device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def parse_metric_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """`name` or `name@key=value,key=value` (a metric variant chosen in the metric list itself)."""
    import yaml

    name, _, rest = spec.partition("@")
    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        if "=" not in part:
            raise VidEditBenchError(f"bad metric spec '{spec}'; expected name@key=value[,key=value], e.g. warp_error@flow=dis")
        key, value = part.split("=", 1)
        options[key.strip()] = yaml.safe_load(value)
    return name.strip(), options


def shard_filter(samples: list[Sample], shard: tuple[int, int] | None) -> list[Sample]:
    if not shard:
        return samples
    i, n = shard
    return [s for s in samples if int(hash_obj(s.uid, 8), 16) % n == i]


def edit_key(sample_key: str, method_key: str) -> str:
    return hash_obj({"sample": sample_key, "method": method_key})


def score_key(edit_or_set_key: str, output: str, variant_id: str) -> str:
    return hash_obj({"edit": edit_or_set_key, "metric": output, "variant": variant_id})


def missing_weights_message(names: list[str]) -> str | None:
    """None when every registry weight is present, else what is missing and the command that fixes it.

    Local paths and unknown names are left to the method's or metric's setup(), which says precisely."""
    from bench.weights import get_spec, locate

    missing = []
    for w in names:
        try:
            if locate(w) is None:
                missing.append(get_spec(w))
        except VidEditBenchError:
            pass
    if not missing:
        return None
    return "; ".join(f"weights '{m.name}' ({m.source}) missing; run: {m.fix_command}" for m in missing)


def validate_output(out: Any, source: Video, method: str) -> np.ndarray:
    """Check an edit's frames against its source: count, size, dtype, finiteness."""
    frames = out.frames if isinstance(out, Video) else out
    if frames is None:
        raise MethodOutputError(f"method '{method}' returned None instead of frames")
    try:
        frames = np.asarray(frames)
    except Exception as e:  # noqa: BLE001
        raise MethodOutputError(f"method '{method}' returned something that is not an array ({type(out).__name__}): {e}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise MethodOutputError(f"method '{method}' returned frames of shape {frames.shape}; expected (T, H, W, 3)")
    if frames.shape[0] != source.num_frames:
        raise MethodOutputError(
            f"method '{method}' returned {frames.shape[0]} frames; the source has {source.num_frames}"
        )
    if frames.shape[1:3] != source.frames.shape[1:3]:
        raise MethodOutputError(
            f"method '{method}' returned frames of size {frames.shape[2]}x{frames.shape[1]}; "
            f"the source is {source.width}x{source.height}"
        )
    if frames.dtype != np.uint8:
        if not np.issubdtype(frames.dtype, np.number):
            raise MethodOutputError(f"method '{method}' returned frames of dtype {frames.dtype}; expected uint8")
        if not np.all(np.isfinite(frames)):
            raise MethodOutputError(f"method '{method}' returned frames containing NaN or infinite values")
        lo, hi = float(frames.min()), float(frames.max())
        if lo < 0.0 or hi > 1.0:
            raise MethodOutputError(
                f"method '{method}' returned {frames.dtype} frames in [{lo:.3g}, {hi:.3g}]; return uint8 in [0, 255] "
                "or floats in [0, 1]"
            )
        frames = np.round(frames * 255.0).astype(np.uint8)
    return frames


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, MemoryError):
        return True
    return type(e).__name__ in ("OutOfMemoryError",) or "out of memory" in str(e).lower()


def describe_exception(e: BaseException) -> str:
    if _is_oom(e):
        return f"out of memory: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    if isinstance(e, VidEditBenchError):
        return str(e)
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {msg}{where}"


def _free_memory() -> None:
    gc.collect()
    import sys

    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _empty_cuda_cache() -> None:
    import sys

    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _seed_everything(seed: int) -> None:
    import random
    import sys

    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


class Runner:
    def __init__(self, config: RunConfig, progress: Progress | None = None, log: Callable[[str], None] | None = None):
        from bench.device import resolve_device
        from bench.suites import load_suite

        self.config = config
        self.progress = progress or (lambda label, done, total: None)
        self.log = log or (lambda msg: None)
        self.suite = load_suite(config.suite, **config.suite_overrides)
        self.device = resolve_device(config.device)
        samples = shard_filter(list(self.suite.samples), config.shard)
        self.samples = samples[: config.limit] if config.limit else samples
        self.run_dir = config.run_dir
        self.store = ResultStore(self.run_dir)
        self.cache = FeatureCache(enabled=config.source_cache)
        self.summary = RunSummary(self.run_dir)
        from bench.frame_cache import ByteLRU

        # decoded edits and loaded samples (source frames, mask, reference, flow), bounded by bytes
        self._frames: ByteLRU[np.ndarray] = ByteLRU(None if config.decode_once else 0)
        self._loaded: ByteLRU[LoadedSample] = ByteLRU()
        self._metric_pass = 0  # metric passes over the edits so far (their direction alternates)
        self._method_setups = 0  # methods set up so far (only those have models to release)
        self._edits_memo: list[dict] | None = None
        self._source_dirs: dict[str, str] = {}
        self._sample_keys: dict[str, str] = {}
        METHODS.validate(config.methods)
        METRICS.validate([parse_metric_spec(m)[0] for m in config.metrics])

    # --- entry point ----------------------------------------------------------------------------
    def run(self, do_edits: bool = True, do_metrics: bool = True) -> RunSummary:
        t0 = time.perf_counter()
        self.store.add_invocation(self._config_record(), code_version(), environment_info(self.device))
        if do_edits:
            from bench.models import cached_models, release

            for name in self.config.methods:
                setups = self._method_setups
                self._run_method(name)
                # this method's models leave the cache (and the GPU) before the next one; a method with
                # nothing to do loaded nothing, and release() costs a gc.collect() (~0.2 s with torch loaded)
                if self._method_setups != setups or cached_models():
                    release()
        if do_metrics:
            from bench.models import cached_models, release

            if cached_models():
                release()
            self._edits_memo = None
            for name in self.config.metrics:
                self._run_metric(name)
                # no gc.collect() here (it cost ~0.1 s per metric on a heap holding torch): a metric's
                # teardown frees its tensors by reference counting; only CUDA's cached blocks need handing back
                _empty_cuda_cache()
            self._frames.clear()
        self.summary.cache_hits, self.summary.cache_misses = self.cache.hits, self.cache.misses
        self.summary.seconds = time.perf_counter() - t0
        self._tally()
        return self.summary

    def _config_record(self) -> dict[str, Any]:
        d = asdict(self.config)
        d["resolved_device"] = self.device
        d["num_samples"] = len(self.samples)
        return d

    # --- samples ----------------------------------------------------------------------------------
    def sample_key(self, sample: Sample) -> str:
        """Content key of a sample that does not depend on where the data lives (shards merge)."""
        if sample.uid not in self._sample_keys:
            from bench.content_keys import sample_content_key

            self._sample_keys[sample.uid] = sample_content_key(self.suite, sample)
        return self._sample_keys[sample.uid]

    def load(self, sample: Sample) -> LoadedSample:
        return self._loaded.get(sample.uid, lambda: self.suite.load(sample))

    def _source_dir(self, loaded: LoadedSample) -> str:
        """The preprocessed source frames, saved once per source video (for previews and re-scoring)."""
        from bench.video_io import write_frames

        key = loaded.source_key
        if key not in self._source_dirs:
            dest = self.run_dir / "sources" / f"{safe_component(loaded.sample.video_id)}-{key[:10]}"
            if not (dest.is_dir() and len(list(dest.glob("*.png"))) == loaded.video.num_frames):
                write_frames(dest, loaded.video.frames)
            self._source_dirs[key] = str(dest)
        return self._source_dirs[key]

    # --- methods ------------------------------------------------------------------------------------
    def _method_label(self, name: str) -> str:
        return self.config.method_labels.get(name, name)

    def _edit_row(self, sample: Sample, label: str, mkey: str, mconfig: dict, status: str, **kw: Any) -> EditRow:
        return EditRow(
            edit_key=edit_key(self.sample_key(sample), mkey), method=label, method_key=mkey,
            method_config=json.dumps(mconfig, sort_keys=True, default=str), sample_uid=sample.uid,
            sample_key=self.sample_key(sample), suite=sample.suite, video_id=sample.video_id, edit_id=sample.edit_id,
            edit_type=sample.edit_type, category=sample.category, task=sample.task, prompt=sample.target_prompt,
            status=status, **kw,
        )

    def _needs_edit(self, row: dict | None) -> bool:
        if row is None:
            return True
        if row["status"] == "ok":
            return not (row["output_dir"] and Path(row["output_dir"]).is_dir())
        if row["status"] == "error":
            return self.config.retry_errors
        if row["status"] == "skipped":
            return True  # weights may have appeared since; re-checking is cheap
        return False

    def _run_method(self, name: str) -> None:
        label = self._method_label(name)
        options = dict(self.config.method_options.get(name, {}))
        fallback_config = {"name": label, "seed": self.config.seed, **options}
        try:
            cls = METHODS.get(name)
            method = GuardedMethod(cls(device=self.device, seed=self.config.seed, **options), self.config.timeout_s, label)
            mconfig = {**method.config(), "label": label}
        except Exception as e:  # noqa: BLE001  (import errors, bad options)
            mkey = hash_obj(fallback_config)
            msg = f"method '{name}' could not be created: {describe_exception(e)}"
            self.log(msg)
            for s in self.samples:
                if self._needs_edit(self.store.get_edit(edit_key(self.sample_key(s), mkey))):
                    self.store.put_edit(self._edit_row(s, label, mkey, fallback_config, "error", message=msg))
            return
        mkey = hash_obj(mconfig)
        if getattr(method, "reference", False):  # stored for the leaderboard, not part of the key
            mconfig = {**mconfig, "reference": True}
        todo: list[Sample] = []
        for s in self.samples:
            row = self.store.get_edit(edit_key(self.sample_key(s), mkey))
            if not self._needs_edit(row):
                self.summary.edits_skipped_existing += 1
                continue
            reason = method.applicable(
                s.task, bool(s.target_prompt), bool(s.reference), bool(s.mask)
            )
            if reason:
                self.store.put_edit(self._edit_row(s, label, mkey, mconfig, "not_applicable", message=reason))
                continue
            todo.append(s)
        if not todo:
            return
        msg = missing_weights_message(method.required_weights())
        if msg:
            self.log(f"{label}: skipped — {msg}")
            for s in todo:
                self.store.put_edit(self._edit_row(s, label, mkey, mconfig, "skipped", message=msg))
            return
        try:
            self._method_setups += 1
            method.setup()
        except Exception as e:  # noqa: BLE001
            status = "skipped" if isinstance(e, (WeightsMissing, ImportError)) else "error"
            msg = describe_exception(e)
            self.log(f"{label}: setup failed — {msg}")
            for s in todo:
                self.store.put_edit(self._edit_row(s, label, mkey, mconfig, status, message=msg))
            return
        by_video: dict[str, list[Sample]] = defaultdict(list)
        for s in todo:
            by_video[s.source].append(s)
        done = 0
        try:
            for _, group in by_video.items():
                prepared, prep_time, prep_error = None, None, None
                for s in group:
                    done += 1
                    self.progress(f"edit {label}", done, len(todo))
                    try:
                        loaded = self.load(s)
                    except Exception as e:  # noqa: BLE001
                        self.store.put_edit(self._edit_row(s, label, mkey, mconfig, "error", message=describe_exception(e)))
                        continue
                    if prep_time is None and prep_error is None:
                        try:
                            _seed_everything(self.config.seed)
                            from bench.efficiency import measure

                            prepared, m = measure(lambda: method.prepare(loaded.video), self.device)
                            prep_time = m.seconds
                        except Exception as e:  # noqa: BLE001
                            prep_error = f"prepare failed: {describe_exception(e)}"
                    if prep_error:
                        self.store.put_edit(self._edit_row(s, label, mkey, mconfig, "error", message=prep_error))
                        continue
                    self._edit_one(method, s, loaded, label, mkey, mconfig, prepared, prep_time, first=done == 1)
        finally:
            try:
                method.teardown()
            except Exception:  # noqa: BLE001
                pass

    def _edit_one(self, method, s: Sample, loaded: LoadedSample, label: str, mkey: str, mconfig: dict,
                  prepared: Any, prep_time: float | None, first: bool) -> None:
        from bench.efficiency import measure, warmup_edits
        from bench.video_io import write_frames

        extra = {"sample": s} if getattr(method, "receives_sample", False) else {}

        def call():
            return method.edit(
                loaded.video, prompt=s.target_prompt, reference=loaded.reference, mask=loaded.mask,
                prepared=prepared, source_prompt=s.source_prompt, **extra,
            )

        ekey = edit_key(self.sample_key(s), mkey)
        try:
            warmup = warmup_edits(self.device, self.config.warmup)
            if first and warmup:
                for _ in range(warmup):
                    _seed_everything(self.config.seed)
                    call()
            _seed_everything(self.config.seed)
            out, m = measure(call, self.device)
            frames = validate_output(out, loaded.video, label)
            out_dir = self.run_dir / "edits" / safe_component(label) / mkey[:10] / (
                f"{safe_component(s.video_id)}-{safe_component(s.edit_id)}-{self.sample_key(s)[:10]}")
            write_frames(out_dir, frames)
            # the frames just written (PNG is lossless) serve the metrics without decoding them again;
            # keyed like the store's resolved output_dir
            self._frames.get(str(out_dir.resolve()), lambda: np.ascontiguousarray(frames).copy())
            timed = getattr(method, "measures_efficiency", True)
            row = self._edit_row(
                s, label, mkey, mconfig, "ok", output_dir=str(out_dir), source_dir=self._source_dir(loaded),
                preprocess_s=prep_time if timed else None, generate_s=m.seconds if timed else None,
                peak_memory_mb=m.peak_memory_mb if timed else None, memory_device=m.memory_device,
            )
            self.summary.edits_done += 1
        except Exception as e:  # noqa: BLE001
            msg = describe_exception(e)
            self.log(f"{label} on {s.uid}: {msg}")
            row = self._edit_row(s, label, mkey, mconfig, "error", message=msg)
            _free_memory()
        assert row.edit_key == ekey
        self.store.put_edit(row)

    # --- metrics --------------------------------------------------------------------------------------
    def _selected_edits(self) -> list[dict]:
        """The ok edits of this invocation's methods and samples (read once per metrics phase: scoring
        writes no edits)."""
        if self._edits_memo is None:
            uids = {s.uid for s in self.samples}
            labels = {self._method_label(m) for m in self.config.methods}
            self._edits_memo = [r for r in self.store.iter_edits("ok") if r["sample_uid"] in uids and r["method"] in labels]
        return list(self._edits_memo)

    def _eval_item(self, row: dict, sample: Sample) -> EvalItem:
        from bench.video_io import read_video

        loaded = self.load(sample)
        frames = self._frames.get(row["output_dir"], lambda: read_video(row["output_dir"])[0])
        return EvalItem(
            sample=sample, source=loaded.video, edited=Video(frames, fps=loaded.video.fps), prompt=sample.target_prompt,
            reference=loaded.reference, mask=loaded.mask, flow_gt=loaded.flow_gt,
            efficiency=Efficiency(row["preprocess_s"], row["generate_s"], row["peak_memory_mb"], row["memory_device"] or "cpu"),
            source_key=loaded.source_key, method=row["method"], cache=self.cache, boxes=loaded.boxes,
        )

    @staticmethod
    def _has(sample: Sample, row: dict) -> set[str]:
        has = {"source"}
        if sample.target_prompt:
            has.add("text")
        if sample.reference:
            has.add("reference")
        if sample.mask:
            has.add("mask")
        if "boxes" in dict(sample.meta):
            has.add("boxes")
        if sample.source.startswith("synthetic:") or dict(sample.meta).get("has_flow_gt"):
            has.add("flow_gt")
        if row.get("generate_s") is not None:
            has.add("efficiency")
        return has

    def _score_rows(self, metric, row_like: dict, ekey: str, sample_uid: str, status: str,
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

    def _score_done(self, existing: dict[str, str], metric, ekey: str) -> bool:
        st = existing.get(score_key(ekey, metric.name, metric.variant_id()))
        if st is None or st == "skipped":
            return False
        return not (st == "error" and self.config.retry_errors)

    def _run_metric(self, spec: str) -> None:
        name, spec_options = parse_metric_spec(spec)
        options = {**self.config.metric_options.get(name, {}), **spec_options}
        edits = self._selected_edits()
        if not edits:
            return
        by_uid = {s.uid: s for s in self.samples}
        try:
            cls = METRICS.get(name)
            metric = GuardedMetric(cls(device=self.device, batch_size=self.config.batch_size, **options), self.config.timeout_s)
        except Exception as e:  # noqa: BLE001
            msg = f"metric '{name}' could not be created: {describe_exception(e)}"
            self.log(msg)
            self.summary.problems.append(("metric", name, "error", msg))
            status = "skipped" if isinstance(e, ImportError) else "error"
            rows = []
            for r in edits:
                rows.append(ScoreRow(
                    score_key=score_key(r["edit_key"], name, "unavailable"), edit_key=r["edit_key"], method=r["method"],
                    method_key=r["method_key"], sample_uid=r["sample_uid"], metric=name, metric_family=name,
                    variant_id="unavailable", variant_label="unavailable", value=None, status=status, message=msg,
                    higher_is_better=True, value_min=None, value_max=None, level="sample",
                ))
            self.store.put_scores(rows)
            return
        bind = getattr(metric, "bind_run", None)  # metrics that keep state in the store (judge answer cache)
        if callable(bind):
            bind(self.store, self.log)
        existing = self.store.existing_score_keys()
        if metric.level == "set":
            self._run_set_metric(metric, edits, by_uid, existing)
            return
        pending = []
        for r in edits:
            if self._score_done(existing, metric, r["edit_key"]):
                self.summary.scores_skipped_existing += 1
                continue
            s = by_uid[r["sample_uid"]]
            reason = metric.applicable(self._has(s, r))
            if reason:
                self.store.put_scores(self._score_rows(metric, r, r["edit_key"], r["sample_uid"], "not_applicable", message=reason))
                continue
            pending.append((r, s))
        if not pending:
            return
        if not self._metric_ready(metric, [(r, r["edit_key"], r["sample_uid"]) for r, _ in pending]):
            return
        pending.sort(key=lambda rs: (rs[1].source, rs[0]["method"]))  # source-major: cached source features hit
        self._metric_pass += 1
        if self._metric_pass % 2 == 0:  # alternate directions: the decoded-frame LRU serves the last pass's tail
            pending.reverse()
        try:
            for i, (r, s) in enumerate(pending, 1):
                self.progress(f"score {name}", i, len(pending))
                try:
                    values = metric.compute(self._eval_item(r, s))
                    rows = self._score_rows(metric, r, r["edit_key"], r["sample_uid"], "ok", values=values,
                                            details=getattr(values, "details", None), message=metric.row_note())
                    self.summary.scores_done += 1
                except NotApplicable as e:
                    rows = self._score_rows(metric, r, r["edit_key"], r["sample_uid"], "not_applicable", message=str(e))
                except Exception as e:  # noqa: BLE001
                    msg = describe_exception(e)
                    self.log(f"{name} on {r['method']} {r['sample_uid']}: {msg}")
                    rows = self._score_rows(metric, r, r["edit_key"], r["sample_uid"], "error", message=msg,
                                            details=getattr(e, "details", None))
                self.store.put_scores(rows)
        finally:
            try:
                metric.teardown()
            except Exception:  # noqa: BLE001
                pass

    def _metric_ready(self, metric, targets: list[tuple[dict, str, str]]) -> bool:
        """Check weights and run setup(); on failure write skipped/error rows for every target."""
        status = "skipped"
        msg = missing_weights_message(metric.required_weights())
        if msg is None:
            try:
                metric.setup()
            except Exception as e:  # noqa: BLE001
                status = "skipped" if isinstance(e, (WeightsMissing, ImportError)) else "error"
                msg = describe_exception(e)
        if msg is None:
            return True
        self.log(f"{metric.name}: {status} — {msg}")
        rows = []
        for r, ekey, uid in targets:
            rows += self._score_rows(metric, r, ekey, uid, status, message=msg)
        self.store.put_scores(rows)
        return False

    def _set_targets(self, edits: list[dict]) -> list[tuple[dict, list[dict]]]:
        """(first row, rows) of every sample set a set-level metric is computed on, per method: all
        its ok edits, those of each task, and each task's paired set (samples every compared,
        non-reference method finished; `bench.pairing`), so the leaderboard finds the value for the
        exact set it compares and a partial re-run never replaces the full-set value."""
        from bench.pairing import is_reference_config, paired_set

        refs = {r["method"] for r in edits if is_reference_config(r.get("method_config"))}
        by_method: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for r in edits:
            by_method[(r["method"], r["method_key"])].append(r)
        tasks = sorted({r["task"] or "" for r in edits})
        paired: dict[str, set[str]] = {}
        for t in tasks:
            finished: dict[str, set[str]] = defaultdict(set)
            for r in edits:
                if (r["task"] or "") == t:
                    finished[r["method"]].add(r["sample_uid"])
            paired[t] = paired_set(finished, refs)
        out, seen = [], set()
        for (method, mkey), rows in sorted(by_method.items()):
            sets = [rows]
            for t in tasks:
                in_task = [r for r in rows if (r["task"] or "") == t]
                sets += [in_task, [r for r in in_task if r["sample_uid"] in paired[t]]]
            for rs in sets:
                ident = (mkey, frozenset(r["sample_uid"] for r in rs))
                if rs and ident not in seen:
                    seen.add(ident)
                    out.append((rs[0], sorted(rs, key=lambda r: r["sample_uid"])))
        return out

    def _run_set_metric(self, metric, edits: list[dict], by_uid: dict[str, Sample], existing: dict[str, str]) -> None:
        from bench.pairing import set_uid

        todo = []
        for r0, rows in self._set_targets(edits):
            set_key = hash_obj({"method": r0["method_key"], "samples": sorted(r["sample_key"] for r in rows)})
            if self._score_done(existing, metric, set_key):
                self.summary.scores_skipped_existing += 1
                continue
            applicable = [r for r in rows if not metric.applicable(self._has(by_uid[r["sample_uid"]], r))]
            todo.append((r0, set_key, set_uid(r["sample_uid"] for r in rows), applicable))
        if not todo:
            return
        if not self._metric_ready(metric, [(r, k, uid) for r, k, uid, _ in todo]):
            return
        try:
            for i, (r0, set_key, uid, rows) in enumerate(todo, 1):
                self.progress(f"score {metric.name}", i, len(todo))
                # stored under the set's own uid: values on other sample sets (a --limit re-run, a
                # shard) stay beside it and the leaderboard picks the one for the set it compares
                if not rows:
                    out = self._score_rows(metric, r0, set_key, uid, "not_applicable", message="no applicable samples")
                else:
                    try:
                        items = (self._eval_item(r, by_uid[r["sample_uid"]]) for r in rows)
                        values = metric.compute_set(items)
                        out = self._score_rows(metric, r0, set_key, uid, "ok", values=values)
                        self.summary.scores_done += 1
                    except Exception as e:  # noqa: BLE001
                        out = self._score_rows(metric, r0, set_key, uid, "error", message=describe_exception(e))
                self.store.put_scores(out)
        finally:
            try:
                metric.teardown()
            except Exception:  # noqa: BLE001
                pass

    # --- summary ---------------------------------------------------------------------------------------
    def _tally(self) -> None:
        labels = {self._method_label(m) for m in self.config.methods}
        uids = {s.uid for s in self.samples}
        edits: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in self.store.iter_edits():
            if r["method"] in labels and r["sample_uid"] in uids:
                edits[r["method"]][r["status"]] += 1
                if r["status"] in ("error", "skipped"):
                    self.summary.problems.append(("edit", f"{r['method']} {r['sample_uid']}", r["status"], r["message"] or ""))
        scores: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        q = "SELECT metric, method, sample_uid, status, message FROM scores"
        seen_msgs: set[tuple[str, str, str]] = set()
        for metric, method, uid, status, message in self.store.conn.execute(q):
            if method not in labels or (not is_set_uid(uid) and uid not in uids):
                continue
            scores[metric][status] += 1
            if status in ("error", "skipped") and (metric, status, message) not in seen_msgs:
                seen_msgs.add((metric, status, message))
                self.summary.problems.append(("metric", metric, status, message or ""))
        self.summary.edits = {k: dict(v) for k, v in edits.items()}
        self.summary.scores = {k: dict(v) for k, v in scores.items()}


def run_benchmark(config: RunConfig, progress: Progress | None = None, log: Callable[[str], None] | None = None,
                  do_edits: bool = True, do_metrics: bool = True) -> RunSummary:
    """One run under the run folder's lock (a second process gets one line); stale temp folders of
    killed writes are removed first; SIGTERM stops it like Ctrl-C (KeyboardInterrupt) with work kept."""
    from bench.guard import interruptible
    from bench.locking import RunLock
    from bench.runpaths import clean_stale_temp

    with RunLock(config.run_dir), interruptible():
        clean_stale_temp(config.run_dir)
        runner = Runner(config, progress=progress, log=log)
        try:
            return runner.run(do_edits=do_edits, do_metrics=do_metrics)
        finally:
            runner.store.close()

