"""Efficiency numbers that mean something: per-edit memory increase, warm-up default, models
released between methods; set-level metrics kept per sample set."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from bench.api.catalog import METHODS, METRICS
from bench.api.method import Method
from bench.api.metric import Metric
from bench.running.runner import RunConfig, run_benchmark
from bench.store.results import ResultStore

TINY = {"num_frames": 4, "size": 32}
MB = 2**20


class _Alloc200(Method):
    """Allocates and touches a known 200 MB buffer during each edit."""

    name = "test-alloc-200"
    tasks = frozenset({"text", "image"})

    def edit(self, video, **kw):
        buf = np.ones(200 * MB, np.uint8)
        shift = int(buf[:: 4096].sum() % 7)
        return np.roll(video.frames, shift + 1, axis=2)


class _Counted(Method):
    name = "test-counted"
    tasks = frozenset({"text", "image"})
    calls = 0

    def edit(self, video, **kw):
        type(self).calls += 1
        return video.frames[:, ::-1].copy()


class _Model:
    pass


LIVE: list[weakref.ref] = []


def _load_model(path, device):
    m = _Model()
    LIVE.append(weakref.ref(m))
    return m


class _UsesModel(Method):
    name = "test-uses-model"
    tasks = frozenset({"text", "image"})
    defaults = {"weights_path": ""}

    def setup(self):
        from bench.weights.models import create_model

        self.model = create_model(self.cfg["weights_path"], _load_model, self.device)

    def edit(self, video, **kw):
        return video.frames.copy()


class _SetCount(Metric):
    """Set-level probe: the number of samples in the set (so each stored set is recognisable)."""

    name = "test-set-count"
    level = "set"
    needs = frozenset({"source"})

    def compute_set(self, items):
        return {self.name: float(len(list(items)))}


for cls in (_Alloc200, _Counted, _UsesModel):
    METHODS.register(cls.name, cls)
METRICS.register(_SetCount.name, _SetCount)


def _cfg(tmp_path, methods, metrics=("peak_memory",), **kw) -> RunConfig:
    return RunConfig(suite="mini", methods=list(methods), metrics=list(metrics), results_dir=str(tmp_path),
                     run_name="e", device="cpu", suite_overrides=dict(TINY), **kw)


def test_cpu_memory_is_the_edits_increase_known_200mb_and_source_near_zero(tmp_path):
    cfg = _cfg(tmp_path, ["test-alloc-200", "source"], limit=3)
    run_benchmark(cfg)
    edits = ResultStore(cfg.run_dir).edits_frame()
    alloc = edits[edits.method == "test-alloc-200"]["peak_memory_mb"].dropna()
    src = edits[edits.method == "source"]["peak_memory_mb"].dropna()
    assert len(alloc) == 3 and len(src) == 3
    assert ((alloc > 180) & (alloc < 220)).all(), list(alloc)
    assert (src < 20).all(), list(src)
    assert set(edits["memory_device"]) == {"cpu"}


def test_warmup_default_is_one_on_cuda_zero_on_cpu(tmp_path):
    from bench.running.efficiency import warmup_edits

    assert warmup_edits("cuda") == 1 and warmup_edits("cuda:1") == 1 and warmup_edits("cpu") == 0
    assert warmup_edits("cuda", 3) == 3 and warmup_edits("cpu", 2) == 2
    _Counted.calls = 0
    run_benchmark(_cfg(tmp_path / "a", ["test-counted"], limit=2))
    assert _Counted.calls == 2  # CPU default: no warm-up edit
    _Counted.calls = 0
    run_benchmark(_cfg(tmp_path / "b", ["test-counted"], limit=2, warmup=1))
    assert _Counted.calls == 3  # one untimed warm-up before the first timed edit


def test_models_are_released_between_methods(tmp_path):
    from bench.weights.models import cached_models, create_model, model_scope, release

    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x")
    LIVE.clear()
    cfg = _cfg(tmp_path, ["test-uses-model", "source"], limit=1,
               method_options={"test-uses-model": {"weights_path": str(weights)}})
    run_benchmark(cfg)
    gc.collect()
    assert len(LIVE) == 1 and LIVE[0]() is None  # loaded once, gone once its method finished
    assert cached_models() == 0
    # the explicit API: a scope releases what was created inside it
    with model_scope():
        m = create_model(str(weights), _load_model)
        assert cached_models() == 1 and create_model(str(weights), _load_model) is m
    assert cached_models() == 0
    create_model(str(weights), _load_model)
    assert release() == 1 and cached_models() == 0


def test_set_level_values_are_kept_per_sample_set(tmp_path):
    """A --limit re-run stores its set beside the full one; nothing is replaced."""
    from bench.report.table import build_leaderboard
    from bench.store.pairing import is_set_uid

    run_benchmark(_cfg(tmp_path, ["source", "test-counted"], metrics=["test-set-count"]))
    store = ResultStore(tmp_path / "e")
    full = store.scores_frame()
    n_text = store.edits_frame().query("method == 'test-counted' and task == 'text' and status == 'ok'").shape[0]
    run_benchmark(_cfg(tmp_path, ["source", "test-counted"], metrics=["test-set-count"], limit=2))
    after = store.scores_frame()
    assert set(full["score_key"]) <= set(after["score_key"])  # nothing replaced
    assert after["sample_uid"].map(is_set_uid).all()
    values = set(after[after["method"] == "test-counted"]["value"])
    assert {2.0, float(n_text)} <= values
    lb = build_leaderboard(after, store.edits_frame(), bootstrap=0)
    text = lb.sections["text"] if lb.sections else lb
    header = next(h for h in text.columns["header"] if h.startswith("test-set-count"))
    assert text.main.loc["test-counted", header] == n_text == text.settings["n_paired"]


@pytest.mark.parametrize("formula", ["pytorch-fid", "exact-lowrank"])
def test_fid_variants_and_frame_count(formula):
    from metrics.fid import FrechetInceptionDistance

    m = FrechetInceptionDistance(formula=formula)
    assert m.variant()["formula"] == formula
    assert "fid_frames" in [o.name for o in m.outputs()]
    assert FrechetInceptionDistance().options["formula"] == "pytorch-fid"
