"""The benchmark loop: methods × samples -> edited videos (stored losslessly) -> metrics -> store.

The unit of work is one (method, sample) edit and one (edit, metric variant) score; both are keyed
by content hashes, so a rerun or `--resume` skips finished work, shards (`--shard i/n`) never
overlap, and their stores merge. A failing sample, method or metric becomes an error row and the
run goes on.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from bench.store.feature_cache import FeatureCache
from bench.api.catalog import METHODS, METRICS
from bench.api.errors import VidEditBenchError
from bench.running.common import (  # noqa: F401  (describe_exception, validate_output: also the runner's API)
    _empty_cuda_cache, _free_memory, _is_oom, _seed_everything, describe_exception, missing_weights_message, validate_output,
)
from bench.running.guard import DEFAULT_TIMEOUT_S, GuardedMetric
from bench.store.runpaths import safe_component
from bench.store.pairing import is_set_uid
from bench.running.plan import edit_key, score_key  # noqa: F401  (re-exported: the run's content keys)
from bench.store.results import EditRow, ResultStore, ScoreRow
from bench.api.types import Efficiency, EvalItem, LoadedSample, Sample, Video

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

#: cross-sample batching (RunConfig.cross_batch): a chunk of edits is at most this many items and
#: this many full model batches of frames (bounds the decoded frames and features held at once)
CHUNK_MAX_ITEMS = 64
CHUNK_BATCHES = 4


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
    batch_size: int | None = None  # frames per model batch in metrics; None = per device (bench.api.device)
    warmup: int | None = None  # untimed warm-up edits; None = 1 on CUDA, 0 on CPU (bench.running.efficiency)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    method_labels: dict[str, str] = field(default_factory=dict)  # registry name -> stored name (e.g. eval)
    suite_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. num_frames, size
    samples: list[str] | None = None  # only these sample uids (eval: the samples that have an edit)
    export_metrics: list[str] | None = None  # a --config's metrics: the leaderboard's columns, in this order
    source_cache: bool = True
    # each edit decoded once per run for all metrics (bench.store.frame_cache); False (or VIDEDITBENCH_DECODE_ONCE=0)
    # restores the old path, one decode per metric, for benchmarks
    decode_once: bool = field(default_factory=lambda: os.environ.get("VIDEDITBENCH_DECODE_ONCE") != "0")
    timeout_s: float | None = DEFAULT_TIMEOUT_S  # per prepare/edit of a Python adapter and per metric compute
    # model metrics batch frames across samples (Metric.prefetch, once per chunk of edits); False (or
    # VIDEDITBENCH_CROSS_BATCH=0) restores one model batch per video, for benchmarks
    cross_batch: bool = field(default_factory=lambda: os.environ.get("VIDEDITBENCH_CROSS_BATCH") != "0")

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

    from bench.api import safe_yaml

    name, _, rest = spec.partition("@")
    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        if "=" not in part:
            raise VidEditBenchError(f"bad metric spec '{spec}'; expected name@key=value[,key=value], e.g. warp_error@flow=dis")
        key, value = part.split("=", 1)
        try:
            options[key.strip()] = safe_yaml.load(value)
        except yaml.YAMLError as e:
            raise VidEditBenchError(f"bad metric spec '{spec[:200]}': {key.strip()}= is not valid YAML "
                                    f"({str(e).splitlines()[0]}); quote the value") from None
    return name.strip(), options


def shard_filter(samples: list[Sample], shard: tuple[int, int] | None) -> list[Sample]:
    from bench.running.plan import balanced_shard

    return balanced_shard(samples, shard)


def _read_edit(folder: str) -> np.ndarray:
    """An edit's frames; a symbolic link in its folder is refused, never followed out of the run."""
    from bench.media.safe_files import refuse_links
    from bench.media.video_io import read_video

    refuse_links(folder)
    return read_video(folder)[0]


class Runner:
    def __init__(self, config: RunConfig, progress: Progress | None = None, log: Callable[[str], None] | None = None,
                 worker: bool = False):
        """`worker`: a Ray actor's runner (loads samples, builds items; never opens the store)."""
        from bench.api.device import resolve_batch_size, resolve_device
        from bench.suites import load_suite

        self.config = config
        self.progress = progress or (lambda label, done, total: None)
        self.log = log or (lambda msg: None)
        self.suite = load_suite(config.suite, **config.suite_overrides)
        self.device = resolve_device(config.device)
        self.batch_size = resolve_batch_size(config.batch_size, self.device)
        samples = list(self.suite.samples)
        if config.samples is not None:
            wanted = set(config.samples)
            samples = [s for s in samples if s.uid in wanted]
        samples = shard_filter(samples, config.shard)
        self.samples = samples[: config.limit] if config.limit else samples
        self.run_dir = config.run_dir
        self.store = None if worker else ResultStore(self.run_dir)
        self.cache = FeatureCache(enabled=config.source_cache)
        self.summary = RunSummary(self.run_dir)
        from bench.store.frame_cache import ByteLRU

        # decoded edits and loaded samples (source frames, mask, reference, flow), bounded by bytes
        self._frames: ByteLRU[np.ndarray] = ByteLRU(None if config.decode_once else 0)
        self._loaded: ByteLRU[LoadedSample] = ByteLRU()
        self._metric_pass = 0  # metric passes over the edits so far (their direction alternates)
        self._method_setups = 0  # methods set up so far (only those have models to release)
        self._edits_memo: list[dict] | None = None
        self._source_dirs: dict[str, str] = {}
        self._sample_keys: dict[str, str] = {}
        self._by_uid = {s.uid: s for s in self.samples}
        self._suite_by_uid = {s.uid: s for s in self.suite.samples}  # set metrics also see other shards' edits
        METHODS.validate(config.methods)
        METRICS.validate([parse_metric_spec(m)[0] for m in config.metrics])

    # --- entry point ----------------------------------------------------------------------------
    def run(self, do_edits: bool = True, do_metrics: bool = True) -> RunSummary:
        t0 = time.perf_counter()
        self.store.add_invocation(self._config_record(), code_version(), environment_info(self.device))
        if do_edits:
            from bench.weights.models import cached_models, release

            for name in self.config.methods:
                setups = self._method_setups
                self._run_method(name)
                # this method's models leave the cache (and the GPU) before the next one; a method with
                # nothing to do loaded nothing, and release() costs a gc.collect() (~0.2 s with torch loaded)
                if self._method_setups != setups or cached_models():
                    release()
        if do_metrics:
            from bench.weights.models import cached_models, release

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
        from bench.suites.spec import absolute_suite_spec

        d = asdict(self.config)
        d["suite"] = absolute_suite_spec(d["suite"])  # later commands may start from another folder
        d["resolved_device"] = self.device
        d["resolved_batch_size"] = self.batch_size
        d["num_samples"] = len(self.samples)
        return d

    # --- samples ----------------------------------------------------------------------------------
    def sample_key(self, sample: Sample) -> str:
        """Content key of a sample that does not depend on where the data lives (shards merge)."""
        if sample.uid not in self._sample_keys:
            from bench.store.content_keys import sample_content_key

            self._sample_keys[sample.uid] = sample_content_key(self.suite, sample)
        return self._sample_keys[sample.uid]

    def load(self, sample: Sample) -> LoadedSample:
        return self._loaded.get(sample.uid, lambda: self.suite.load(sample))

    def _source_dir(self, loaded: LoadedSample) -> str:
        """The preprocessed source frames, saved once per source video (for previews and re-scoring)."""
        from bench.media.video_io import write_frames

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
        from bench.running.plan import make_edit_row

        return make_edit_row(sample, self.sample_key(sample), label, mkey, mconfig, status, **kw)

    def _needs_edit(self, row: dict | None) -> bool:
        from bench.running.plan import needs_edit

        return needs_edit(row, self.config.retry_errors)

    def _sample(self, uid: str) -> Sample:
        return self._by_uid.get(uid) or self._suite_by_uid[uid]

    def _set_edits(self, edits: list[dict]) -> list[dict]:
        """The invocation's ok edits plus the store's ok edits of the same methods on other samples of
        this suite made with the same preprocessing (same sample key): an earlier shard or `--limit`
        run into this store. Set-level metrics get the sets over all of them too, so the full-set value
        exists once the last shard has run (each invocation's own sets are still scored)."""
        have = {r["edit_key"] for r in edits}
        labels = {self._method_label(m) for m in self.config.methods}
        more = [r for r in self.store.iter_edits("ok")
                if r["edit_key"] not in have and r["method"] in labels and r["sample_uid"] in self._suite_by_uid
                and r["sample_key"] == self.sample_key(self._suite_by_uid[r["sample_uid"]])]
        return edits + more

    def begin_method(self, name: str):
        """Plan a method's units and store the rows decided without running it (local loop and Ray
        driver); the plan when units are left to execute, else None."""
        from bench.running.plan import plan_method

        plan = plan_method(self, name)
        if plan.create_error:
            self.log(plan.create_error)
        for row in plan.decided:
            self.store.put_edit(row)
        self.summary.edits_skipped_existing += plan.skipped_existing
        return None if plan.create_error or not plan.units else plan

    def _run_method(self, name: str) -> None:
        """Plan the method's units, set it up once, execute every unit, persist each record."""
        from bench.running.units import MethodWorker, ready_check

        plan = self.begin_method(name)
        if plan is None:
            return
        self._method_setups += 1
        failed = ready_check(plan.method)
        if failed:
            status, msg, phase = failed
            self.log(f"{plan.label}: {'skipped' if phase == 'weights' else 'setup failed'} — {msg}")
            for u in plan.units:
                self.store.put_edit(self._edit_row(self._sample(u.sample_uid), plan.label, u.method_key,
                                                   u.method_config, status, message=msg))
            return
        worker = MethodWorker(plan.method, plan.label, self.device, self.config.seed, self.config.warmup, self.run_dir)
        try:
            for i, u in enumerate(plan.units, 1):
                self.progress(f"edit {plan.label}", i, len(plan.units))
                row = worker.run(u, self._sample(u.sample_uid), self.load, self._source_dir, self.log)
                if row.status == "ok" and worker.last_frames is not None:
                    # the frames just written (PNG is lossless) serve the metrics without decoding them
                    # again; keyed like the store's resolved output_dir
                    frames, worker.last_frames = worker.last_frames, None
                    self._frames.get(str(Path(row.output_dir).resolve()), lambda: frames)
                self.put_edit_record(row, u)
        finally:
            worker.close()

    def put_edit_record(self, row: EditRow, unit=None) -> None:
        """The one place an executed edit reaches the store (local loop and Ray driver)."""
        assert unit is None or row.edit_key == unit.edit_key
        if row.status == "ok":
            self.summary.edits_done += 1
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
        from bench.media.video_io import read_video

        loaded = self.load(sample)
        frames = self._frames.get(row["output_dir"], lambda: _read_edit(row["output_dir"]))
        return EvalItem(
            sample=sample, source=loaded.video, edited=Video(frames, fps=loaded.video.fps), prompt=sample.target_prompt,
            reference=loaded.reference, mask=loaded.mask, flow_gt=loaded.flow_gt,
            efficiency=Efficiency(row["preprocess_s"], row["generate_s"], row["peak_memory_mb"], row["memory_device"] or "cpu"),
            source_key=loaded.source_key, method=row["method"], cache=self.cache, boxes=loaded.boxes,
        )

    @staticmethod
    def _has(sample: Sample, row: dict) -> set[str]:
        from bench.running.plan import sample_has

        return sample_has(sample, row)

    def _score_rows(self, metric, row_like: dict, ekey: str, sample_uid: str, status: str,
                    values: dict[str, float] | None = None, message: str | None = None,
                    details: dict | None = None) -> list[ScoreRow]:
        from bench.running.units import score_rows

        return score_rows(metric, row_like, ekey, sample_uid, status, values=values, message=message, details=details)

    def build_metric(self, spec: str):
        """(name, guarded metric) of a metric spec with the run's options."""
        name, spec_options = parse_metric_spec(spec)
        options = {**self.config.metric_options.get(name, {}), **spec_options}
        cls = METRICS.get(name)
        # a batch_size among the options (--metric-opt NAME.batch_size=N) wins over the run's
        return name, GuardedMetric(cls(device=self.device, **{"batch_size": self.batch_size, **options}),
                                   self.config.timeout_s)

    def prepare_metric(self, spec: str, edits: list[dict] | None = None, check_ready: bool = True):
        """Plan one metric spec: (metric, kind, units) with kind 'sample' or 'set', or None when
        nothing is to execute (decided rows are written here). `check_ready=False`: the executor's
        workers check weights and set up (the driver never loads the model)."""
        from bench.running.plan import plan_scores, plan_set_scores
        from bench.running.units import unavailable_rows

        edits = self._selected_edits() if edits is None else edits
        if not edits:
            return None
        try:
            name, metric = self.build_metric(spec)
        except Exception as e:  # noqa: BLE001
            name = parse_metric_spec(spec)[0]
            msg = f"metric '{name}' could not be created: {describe_exception(e)}"
            self.log(msg)
            self.summary.problems.append(("metric", name, "error", msg))
            self.store.put_scores(unavailable_rows(name, edits, "skipped" if isinstance(e, ImportError) else "error", msg))
            return None
        bind = getattr(metric, "bind_run", None)  # metrics that keep state in the store (judge answer cache)
        if callable(bind):
            bind(self.store, self.log)
        existing = self.store.existing_score_keys()
        if metric.level == "set":
            todo, done = plan_set_scores(metric, edits, self._suite_by_uid, existing, self.config.retry_errors,
                                         extra_edits=self._set_edits(edits))
            self.summary.scores_skipped_existing += done
            if not todo:
                return None
            if check_ready and not self._metric_ready(metric, [(u.row0, u.set_key, u.set_uid) for u in todo]):
                return None
            return metric, "set", todo
        units, not_applicable, done = plan_scores(metric, edits, self._by_uid, existing, self.config.retry_errors)
        self.summary.scores_skipped_existing += done
        for r, reason in not_applicable:
            self.store.put_scores(self._score_rows(metric, r, r["edit_key"], r["sample_uid"], "not_applicable", message=reason))
        if not units:
            return None
        if check_ready and not self._metric_ready(metric, [(u.row, u.row["edit_key"], u.sample_uid) for u in units]):
            return None
        return metric, "sample", units

    def put_score_records(self, rows: list[ScoreRow], ok: bool) -> None:
        """The one place executed scores reach the store (local loop and Ray driver)."""
        if ok:
            self.summary.scores_done += 1
        self.store.put_scores(rows)

    def _run_metric(self, spec: str, edits: list[dict] | None = None) -> None:
        from bench.running.units import execute_score, execute_set, teardown

        planned = self.prepare_metric(spec, edits)
        if planned is None:
            return
        metric, kind, units = planned
        if kind == "sample":
            self._metric_pass += 1
            if self._metric_pass % 2 == 0:  # alternate directions: the decoded-frame LRU serves the last pass's tail
                units = list(reversed(units))
        try:
            if kind == "sample" and self.config.cross_batch and metric.prefetches():
                self._score_in_chunks(metric, units)
                return
            for i, u in enumerate(units, 1):
                self.progress(f"score {metric.name}", i, len(units))
                if kind == "set":
                    # stored under the set's own uid: values on other sample sets (a --limit re-run, a
                    # shard) stay beside it and the leaderboard picks the one for the set it compares
                    items = (lambda rows=u.rows: (self._eval_item(r, self._sample(r["sample_uid"])) for r in rows)) \
                        if u.rows else None
                    self.put_score_records(*execute_set(metric, u.row0, u.set_key, u.set_uid, items))
                else:
                    item = lambda r=u.row: self._eval_item(r, self._sample(r["sample_uid"]))  # noqa: E731
                    self.put_score_records(*execute_score(metric, u.row, item, self.log))
        finally:
            teardown(metric)

    def _score_in_chunks(self, metric, units: list) -> None:
        """Sample units in chunks: build the chunk's items, let the metric batch their model work
        across samples (`prefetch`, results in the FeatureCache), then score each unit as usual.

        A chunk ends at CHUNK_MAX_ITEMS items or CHUNK_BATCHES full model batches of frames; the cache
        keeps room for all of its entries while it is scored. A prefetch that fails is logged once and
        the metric goes on without it (each compute does its own work and reports its own error)."""
        from bench.running.units import execute_score

        state = {"prefetch": True}
        done = 0
        for chunk in iter_chunks(units, lambda u: self._eval_item(u.row, self._sample(u.row["sample_uid"])), metric):
            items = [it for _, it in chunk if it is not None]
            with self.cache.reserve(2 * len(chunk) + 2):  # edited + one more (e.g. a reference) per item
                if state["prefetch"] and items:
                    failed = prefetch_items(metric, items)
                    if failed:
                        state["prefetch"] = False
                        self.log(failed)
                for u, it in chunk:
                    done += 1
                    self.progress(f"score {metric.name}", done, len(units))
                    item = (lambda it=it: it) if it is not None else \
                        (lambda r=u.row: self._eval_item(r, self._sample(r["sample_uid"])))
                    self.put_score_records(*execute_score(metric, u.row, item, self.log))

    def _metric_ready(self, metric, targets: list[tuple[dict, str, str]]) -> bool:
        """Check weights and run setup(); on failure write skipped/error rows for every target."""
        from bench.running.units import ready_check

        failed = ready_check(metric)
        if failed is None:
            return True
        status, msg, _ = failed
        self.log(f"{metric.name}: {status} — {msg}")
        rows = []
        for r, ekey, uid in targets:
            rows += self._score_rows(metric, r, ekey, uid, status, message=msg)
        self.store.put_scores(rows)
        return False

    def _set_targets(self, edits: list[dict]) -> list[tuple[dict, list[dict]]]:
        from bench.running.plan import set_targets

        return set_targets(edits)

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
        seen_msgs: set[tuple[str, str, str]] = set()
        for metric, method, uid, status, message in self.store.score_statuses():
            if method not in labels or (not is_set_uid(uid) and uid not in uids):
                continue
            scores[metric][status] += 1
            if status in ("error", "skipped") and (metric, status, message) not in seen_msgs:
                seen_msgs.add((metric, status, message))
                self.summary.problems.append(("metric", metric, status, message or ""))
        self.summary.edits = {k: dict(v) for k, v in edits.items()}
        self.summary.scores = {k: dict(v) for k, v in scores.items()}


def iter_chunks(units: list, build: Callable[[Any], EvalItem], metric: Any) -> Iterator[list[tuple[Any, EvalItem | None]]]:
    """(unit, item) chunks for cross-sample batching: at most CHUNK_MAX_ITEMS items or CHUNK_BATCHES full
    model batches of frames each (bounds the frames and features held at once). An item that cannot be
    built is None (scoring builds it again and writes the error row)."""
    budget = CHUNK_BATCHES * max(1, int(getattr(metric, "batch_size", 1) or 1))
    chunk: list[tuple[Any, EvalItem | None]] = []
    frames = 0
    for u in units:
        try:
            item = build(u)
        except Exception:  # noqa: BLE001
            item = None
        chunk.append((u, item))
        frames += item.edited.num_frames if item is not None else 0
        if len(chunk) >= CHUNK_MAX_ITEMS or frames >= budget:
            yield chunk
            chunk, frames = [], 0
    if chunk:
        yield chunk


def prefetch_items(metric: Any, items: list[EvalItem]) -> str | None:
    """Run a metric's cross-sample prefetch; on failure the line to log (then score one edit at a time)."""
    try:
        metric.prefetch(items)
        return None
    except Exception as e:  # noqa: BLE001
        if _is_oom(e):
            _free_memory()
        return f"{metric.name}: cross-sample batching failed ({describe_exception(e)}); scoring one edit at a time"


def run_benchmark(config: RunConfig, progress: Progress | None = None, log: Callable[[str], None] | None = None,
                  do_edits: bool = True, do_metrics: bool = True) -> RunSummary:
    """One run under the run folder's lock (a second process gets one line); stale temp folders of
    killed writes are removed first; SIGTERM stops it like Ctrl-C (KeyboardInterrupt) with work kept."""
    from bench.running.guard import interruptible
    from bench.running.locking import RunLock
    from bench.store.runpaths import clean_stale_temp

    with RunLock(config.run_dir), interruptible():
        clean_stale_temp(config.run_dir)
        runner = Runner(config, progress=progress, log=log)
        try:
            return runner.run(do_edits=do_edits, do_metrics=do_metrics)
        finally:
            runner.store.close()

