"""`videditbench merge`: shards' stores into one self-contained run, or nothing at all.

Refused up front when the runs differ in anything that changes numbers (suite, frame count and
size, seed, method and metric options): their rows would sit under different keys and the
leaderboard would silently mix them. The merge is built in a temporary folder beside the
destination and renamed into place only when complete (an existing destination is validated
first and then merged in place). Edit and source frames are copied (`ResultStore.merge_from`).
Set-level metrics (FID) are recomputed over the merged edits, since each shard only had its own.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from bench.api.errors import VidEditBenchError
from bench.store.results import ResultStore

#: run-config fields that change a result's numbers (the rest — device, batch size, executor,
#: limit, shard, timeouts — only change what is run or how fast)
NUMBER_FIELDS = ("suite", "suite_overrides", "seed", "method_options", "metric_options")


def numbers_config(cfg: dict[str, Any]) -> dict[str, Any]:
    out = {k: cfg.get(k) for k in NUMBER_FIELDS}
    out["suite"] = Path(str(out["suite"])).name  # a manifest mounted elsewhere on another node is the same suite
    out["suite_overrides"] = out["suite_overrides"] or {}
    out["method_options"] = out["method_options"] or {}
    # a metric's batch_size option changes how fast, not the number (bench.api.metric.Metric.__init__)
    stripped = {name: {k: v for k, v in o.items() if k != "batch_size"} if isinstance(o, dict) else o
                for name, o in (out["metric_options"] or {}).items()}
    out["metric_options"] = {name: o for name, o in stripped.items() if o != {}}
    return out


def _signatures(store: ResultStore) -> dict[str, dict]:
    return {json.dumps(numbers_config(i["config"]), sort_keys=True, default=str): numbers_config(i["config"])
            for i in store.invocations()}


def _describe(sig: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v, sort_keys=True, default=str)}" for k, v in sig.items())


def check_compatible(stores: dict[Path, ResultStore]) -> None:
    """Every store's invocations must agree on the number-changing config (stores without any
    invocation — rows put by hand — agree with anything)."""
    ref_path, ref = None, None
    for path, st in stores.items():
        sigs = _signatures(st)
        if not sigs:
            continue
        if ref is None:
            ref_path, ref = path, sigs
            continue
        if set(sigs) != set(ref):
            a, b = next(iter(ref.values())), next(iter(sigs.values()))
            diff = sorted(k for k in NUMBER_FIELDS if a.get(k) != b.get(k)) or ["(mixed runs in one store)"]
            raise VidEditBenchError(
                f"refusing to merge {path} into {ref_path}: their runs differ in {', '.join(diff)} "
                f"({_describe({k: b.get(k) for k in diff if k in b})} vs {_describe({k: a.get(k) for k in diff if k in a})}), "
                "which changes the numbers; re-run the shard with the same --num-frames/--size/--seed/--method-opt/--metric-opt")


def _sample_keys(store: ResultStore) -> dict[str, str]:
    """sample_uid -> the content key of its newest edit row (manifest entry + preprocessing + file bytes)."""
    newest: dict[str, tuple[float, str]] = {}
    for row in store.iter_edits():
        uid, key, created = row["sample_uid"], row.get("sample_key"), float(row.get("created") or 0.0)
        if key and (uid not in newest or created >= newest[uid][0]):
            newest[uid] = (created, key)
    return {uid: key for uid, (_, key) in newest.items()}


def check_same_samples(stores: dict[Path, ResultStore]) -> None:
    """Where two stores hold the same sample id, they must hold the same sample: the same manifest
    entry, preprocessing and file bytes (its content key), not merely the same suite file name."""
    seen: dict[str, tuple[str, Path]] = {}
    for path, st in stores.items():
        for uid, key in sorted(_sample_keys(st).items()):
            if uid in seen and seen[uid][0] != key:
                raise VidEditBenchError(
                    f"refusing to merge {path} into {seen[uid][1]}: sample {uid} differs in content (its video, "
                    f"prompts, reference, mask or preprocessing; content keys {key[:12]} vs {seen[uid][0][:12]}); "
                    "merge only shards of one suite, or re-run one of them on the other's suite")
            seen.setdefault(uid, (key, path))


def _run_config(store: ResultStore, run_dir: Path):
    """A RunConfig over the merged run: the union of the invocations' methods and metrics, all samples."""
    from bench.running.runner import RunConfig

    invs = store.invocations()
    if not invs:
        return None
    last = invs[-1]["config"]
    names = {f.name for f in fields(RunConfig)}
    cfg = RunConfig(**{k: v for k, v in last.items() if k in names})
    methods, metrics, labels = [], [], {}
    for i in invs:
        c = i["config"]
        methods += [m for m in c.get("methods") or [] if m not in methods]
        metrics += [m for m in c.get("metrics") or [] if m not in metrics]
        labels.update(c.get("method_labels") or {})
    cfg.methods, cfg.metrics, cfg.method_labels = methods, metrics, labels
    cfg.shard, cfg.limit, cfg.retry_errors = None, None, False
    cfg.results_dir, cfg.run_name = str(run_dir.parent), run_dir.name
    cfg.device = "cpu" if cfg.device == "auto" else cfg.device
    return cfg


def recompute_set_metrics(run_dir: Path, log: Callable[[str], None] = lambda m: None) -> int:
    """Compute every set-level metric of the run's invocations over the merged edits; how many
    sample sets were scored. The shards' own set values stay beside them (other sample sets)."""
    from bench.api.catalog import METRICS
    from bench.running.runner import Runner, parse_metric_spec

    with ResultStore(run_dir) as st:
        cfg = _run_config(st, run_dir)
    if cfg is None:
        return 0
    set_specs = []
    for spec in cfg.metrics:
        try:
            if getattr(METRICS.get(parse_metric_spec(spec)[0]), "level", "sample") == "set":
                set_specs.append(spec)
        except Exception:  # noqa: BLE001  (a metric that does not import here: its rows stay as merged)
            continue
    if not set_specs:
        return 0
    try:
        runner = Runner(cfg, log=log)
    except VidEditBenchError as e:
        log(f"set-level metrics not recomputed ({e}); run `videditbench run` with the same options on the merged run")
        return 0
    try:
        for spec in set_specs:
            runner._run_metric(spec)
        return runner.summary.scores_done
    finally:
        runner.store.close()


def merge_runs(dest: Path, sources: list[Path], log: Callable[[str], None] = lambda m: None) -> list[tuple[Path, dict]]:
    """Merge the sources' stores into `dest`; [(source, added counts)]. Raises VidEditBenchError
    (and leaves nothing new behind) when a source is missing, foreign or differently configured,
    or when another process holds `dest` (a `run`, or another merge into the same folder)."""
    from bench.running.locking import RunLock, SiblingLock

    dest = Path(dest)
    if not dest.parent.is_dir():
        raise VidEditBenchError(f"{dest.parent} does not exist; create it first")
    with SiblingLock(dest, "merge"):
        removed = clean_stale_merges(dest)
        if removed:
            log(f"removed {removed} unfinished merge folder(s) of an earlier, interrupted merge into {dest.name}")
        if (dest / ResultStore.FILENAME).is_file():
            with RunLock(dest):
                return _merge_runs(dest, sources, log)
        return _merge_runs(dest, sources, log)


def clean_stale_merges(dest: Path) -> int:
    """The `.<dest>.merge-XXXX` temp folders a killed merge left beside `dest` (call under the merge lock)."""
    n = 0
    for p in dest.parent.glob(f".{dest.name}.merge-*"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


def _merge_runs(dest: Path, sources: list[Path], log: Callable[[str], None]) -> list[tuple[Path, dict]]:
    for src in sources:
        if not (Path(src) / ResultStore.FILENAME).is_file():
            raise VidEditBenchError(f"{src} has no {ResultStore.FILENAME}; pass the run folders of the shards")
        if dest.exists() and os.path.samefile(src, dest):
            raise VidEditBenchError(f"{src}: cannot merge a store into itself; pass another run folder")
    stores: dict[Path, ResultStore] = {}
    dest_has_store = (dest / ResultStore.FILENAME).is_file()
    try:
        if dest_has_store:
            stores[dest] = ResultStore(dest)
        for src in sources:
            stores[Path(src)] = ResultStore(src)  # validates: ours, this schema version
        check_compatible(stores)
        check_same_samples(stores)
    finally:
        for st in stores.values():
            st.close()
    if dest.exists() and not dest_has_store and any(dest.iterdir()):
        raise VidEditBenchError(f"{dest} exists and is not a run folder; choose a new or empty destination")
    work = dest if dest_has_store else Path(tempfile.mkdtemp(prefix=f".{dest.name}.merge-", dir=dest.parent
                                                             if dest.parent.exists() else None))
    if work.parent != dest.parent and not dest_has_store:
        shutil.rmtree(work)
        raise VidEditBenchError(f"{dest.parent} does not exist; create it first")
    added = []
    try:
        with ResultStore(work) as store:
            for src in sources:
                added.append((Path(src), store.merge_from(src)))
        n = recompute_set_metrics(work, log)
        if n:
            log(f"recomputed {n} set-level score(s) over the merged edits")
        if work != dest:
            try:
                if dest.exists():
                    dest.rmdir()  # empty (checked above)
                os.replace(work, dest)
            except OSError as e:
                raise VidEditBenchError(f"{dest} was created by another process during the merge ({e.strerror}); "
                                        "merge into it again, or choose another destination") from None
    except BaseException:
        if work != dest:
            shutil.rmtree(work, ignore_errors=True)
        raise
    return added
