"""`--executor ray`: the run's units on a Ray cluster, with the driver as the store's one writer.

The driver plans exactly as a local run does (`bench.running.plan`), then hands the units to actors that
hold a loaded model: one actor per (method, worker slot) set up once and fed the units of its
method, a source video's samples together (so `prepare` is reused); then one actor per (metric,
slot) that keeps its model. Every record comes back to the driver, which writes it through the
same `Runner.put_*_record` calls as the local loop, so keys and tables are the same as a local
run's and a crashed driver resumes from the store.

Faults: an actor that dies (kill -9, node lost, Ray's OOM killer) has its unit re-queued on a
fresh actor up to `max_retries` times, then an error row names the failure; an exception inside a
method is the method's result (an error row, never retried); a CUDA/host out-of-memory inside the
unit is retried once in the same actor after releasing memory. Edited frames are written by the
actors into the run folder, so on a multi-node cluster the results dir must be on a shared
filesystem (as for `--shard` on Slurm). Metrics that keep state in the store (the VLM judge's
answer cache) run in the driver.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

#: with this set, a local Ray binds every listener to the node address we give (127.0.0.1) instead
#: of all interfaces and the machine's external address (checked with `ss -ltnp`; a test asserts it).
#: Ray's Python side reads it once at import (`ray_constants.ENABLE_RAY_CLUSTER`), so a local start
#: also sets that switch; only for a local start (a driver joining a cluster needs its real address).
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

import ray  # noqa: E402

from bench.running.runner import RunConfig, Runner



def start_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None) -> bool:
    """Connect to `address` (auto, ray://…) or start a local Ray on 127.0.0.1 only. True if this
    call started or connected (so the caller shuts it down); False if Ray was already up."""
    if ray.is_initialized():
        return False
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
        return True
    from ray._private import ray_constants

    saved_env = {k: os.environ.get(k) for k in LOOPBACK_ENV}
    saved_switch = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(LOOPBACK_ENV)  # inherited by the GCS, raylet and workers started now
    ray_constants.ENABLE_RAY_CLUSTER = False  # `ray` may have been imported before the variable was set
    try:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 runtime_env={"env_vars": {**env, **LOOPBACK_ENV}}, log_to_driver=False)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_switch
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return True


def _worker_runner(config: dict, registrations: dict[str, dict[str, Any]]) -> Runner:
    from bench.api.catalog import METHODS, METRICS

    for reg, table in ((METHODS, registrations.get("methods", {})), (METRICS, registrations.get("metrics", {}))):
        for name, target in table.items():
            if name not in reg.names():
                reg.register(name, target)
    cfg = RunConfig(**{**config, "shard": tuple(config["shard"]) if config.get("shard") else None})
    return Runner(cfg, worker=True)


class EditActor:
    """One method, set up once, running many edit units (the model stays loaded)."""

    def __init__(self, config: dict, registrations: dict, method: str):
        self.runner = _worker_runner(config, registrations)
        self.name = method
        self.worker = None

    def setup(self) -> tuple[int, str, Any]:
        """(pid, method key, failure or None)."""
        from bench.running.plan import build_method
        from bench.running.units import MethodWorker, ready_check

        r, cfg = self.runner, self.runner.config
        label = r._method_label(self.name)
        method, mkey, _ = build_method(self.name, label, dict(cfg.method_options.get(self.name, {})), r.device,
                                       cfg.seed, cfg.timeout_s)
        failed = ready_check(method)
        if failed is None:
            self.worker = MethodWorker(method, label, r.device, cfg.seed, cfg.warmup, r.run_dir, oom_retries=1)
        return os.getpid(), mkey, failed

    def edit(self, unit) -> tuple[Any, list[str]]:
        logs: list[str] = []
        row = self.worker.run(unit, self.runner._sample(unit.sample_uid), self.runner.load, self.runner._source_dir,
                              logs.append)
        return row, logs

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


class MetricActor:
    """One metric variant that keeps its model, scoring many edits (or sample sets)."""

    def __init__(self, config: dict, registrations: dict, spec: str):
        self.runner = _worker_runner(config, registrations)
        self.spec = spec
        self.metric = None
        self._prefetch_ok = True
        self._notes: list[str] = []  # go out with the next score's logs

    def setup(self) -> tuple[int, str, Any]:
        from bench.running.units import ready_check

        _, self.metric = self.runner.build_metric(self.spec)
        return os.getpid(), self.metric.variant_id(), ready_check(self.metric)

    def prefetch(self, units) -> None:
        """Cross-sample batching for a group of units this actor is about to score (the driver sends
        it before the group's first unit; an actor runs its calls in order): the features land in its
        cache, sized to hold them all. A failure only means each score does its own work."""
        from bench.running.runner import iter_chunks, prefetch_items

        r = self.runner
        if not self._prefetch_ok or self.metric is None:
            return
        r.cache.max_entries = max(r.cache.max_entries, 2 * len(units) + 2)
        for chunk in iter_chunks(units, lambda u: r._eval_item(u.row, r._sample(u.sample_uid)), self.metric):
            items = [it for _, it in chunk if it is not None]
            failed = prefetch_items(self.metric, items) if items else None
            if failed:
                self._prefetch_ok = False
                self._notes.append(failed)
                return

    def score(self, unit) -> tuple[Any, list[str]]:
        from bench.running.units import execute_score, execute_set

        r = self.runner
        logs: list[str] = self._notes
        self._notes = []
        if hasattr(unit, "set_key"):
            items = (lambda: (r._eval_item(x, r._sample(x["sample_uid"])) for x in unit.rows)) if unit.rows else None
            return execute_set(self.metric, unit.row0, unit.set_key, unit.set_uid, items), logs
        item = lambda: r._eval_item(unit.row, r._sample(unit.sample_uid))  # noqa: E731
        return execute_score(self.metric, unit.row, item, logs.append), logs

    def close(self) -> None:
        from bench.running.units import teardown

        if self.metric is not None:
            teardown(self.metric)


@dataclass
class PhaseStats:
    label: str
    total: int
    done: int = 0
    failed: int = 0
    retried: int = 0
    started: float = field(default_factory=time.perf_counter)

    def line(self, running: int) -> str:
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        return (f"{self.label}: {self.done}/{self.total} done, {running} running, {self.failed} failed, "
                f"{self.retried} retried, {rate:.2f} units/s")


def _died(e: BaseException) -> bool:
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, WorkerCrashedError

    kinds = (RayActorError, WorkerCrashedError, ActorDiedError, ActorUnavailableError)
    try:
        from ray.exceptions import OutOfMemoryError as RayOOM

        kinds += (RayOOM,)
    except ImportError:
        pass
    return isinstance(e, kinds)


class RayExecutor:
    """Drives a `Runner` (planning, persisting) with Ray actors executing the units."""

    def __init__(self, runner: Runner, workers: int | None = None, gpus_per_edit: float = 1.0, max_retries: int = 2,
                 poll_s: float = 0.2):
        self.runner = runner
        self.max_retries = max_retries
        self.poll_s = poll_s
        use_gpu = runner.device.startswith("cuda")
        res = ray.cluster_resources()
        self.actor_options = {"num_gpus": gpus_per_edit, "num_cpus": 1} if use_gpu else {"num_cpus": 1}
        cap = int(res.get("GPU", 0) // max(gpus_per_edit, 1e-9)) if use_gpu else int(res.get("CPU", 1))
        self.workers = max(1, min(workers or cap, cap) if cap else (workers or 1))
        cfg = asdict(runner.config)
        self.config = cfg
        self.registrations = self._registrations()
        self.on_unit: Callable[[str, int, Any], None] | None = None  # (phase, actor pid, record): tests, scripts
        self.pids: list[int] = []

    def _registrations(self) -> dict[str, dict[str, Any]]:
        """What the driver's registries hold that a fresh worker process would not (plugins registered
        at run time, e.g. by tests): shipped by import path or by value."""
        from bench.api.catalog import METHODS, METRICS
        from bench.running.runner import parse_metric_spec

        out: dict[str, dict[str, Any]] = {"methods": {}, "metrics": {}}
        for key, reg, names in (("methods", METHODS, self.runner.config.methods),
                                ("metrics", METRICS, [parse_metric_spec(m)[0] for m in self.runner.config.metrics])):
            for n in names:
                target = reg.entry(n).target
                out[key][n] = target if isinstance(target, str) else reg.get(n)
        return out

    # --- phases ---------------------------------------------------------------------------------------
    def run(self, do_edits: bool = True, do_metrics: bool = True):
        from bench.running.runner import code_version, environment_info

        r = self.runner
        t0 = time.perf_counter()
        r.store.add_invocation({**r._config_record(), "executor": "ray", "workers": self.workers},
                               code_version(), environment_info(r.device))
        if do_edits:
            for name in r.config.methods:
                self._run_method(name)
        if do_metrics:
            for spec in r.config.metrics:
                self._run_metric(spec)
        r.summary.seconds = time.perf_counter() - t0
        r._tally()
        return r.summary

    def _run_method(self, name: str) -> None:
        r = self.runner
        plan = r.begin_method(name)
        if plan is None:
            return
        groups: dict[str, list] = {}
        for u in plan.units:
            groups.setdefault(u.source, []).append(u)

        def make():
            return ray.remote(**self.actor_options)(EditActor).remote(self.config, self.registrations, name)

        def failed_row(u, status: str, msg: str):
            return r._edit_row(r._sample(u.sample_uid), plan.label, u.method_key, u.method_config, status, message=msg)

        def persist(u, out, retries: list[str]):
            row, logs = out
            for m in logs:
                r.log(m)
            if retries and row.status == "ok":
                row.message = f"ok after {len(retries)} retr{'y' if len(retries) == 1 else 'ies'}: " + "; ".join(retries)
            r.put_edit_record(row, u)
            return row.status in ("ok", "not_applicable")

        self._drive(f"edit {plan.label}", list(groups.values()), make, lambda a, u: a.edit.remote(u), persist,
                    failed_row, expect_key=plan.method_key)

    def _run_metric(self, spec: str) -> None:
        r = self.runner
        from bench.running.runner import parse_metric_spec

        name = parse_metric_spec(spec)[0]
        from bench.api.catalog import METRICS

        try:
            stateful = callable(getattr(METRICS.get(name), "bind_run", None))
        except Exception:  # noqa: BLE001  (not importable: the local path writes the rows that say so)
            stateful = True
        if stateful:
            r._run_metric(spec)
            return
        planned = r.prepare_metric(spec, check_ready=False)
        if planned is None:
            return
        metric, kind, units = planned
        if kind == "set":
            groups = [[u] for u in units]
        else:
            by_source: dict[str, list] = {}
            for u in units:
                by_source.setdefault(r._sample(u.sample_uid).source, []).append(u)
            groups = list(by_source.values())

        def make():
            return ray.remote(**self.actor_options)(MetricActor).remote(self.config, self.registrations, spec)

        def failed_row(u, status: str, msg: str):
            if kind == "set":
                return r._score_rows(metric, u.row0, u.set_key, u.set_uid, status, message=msg)
            return r._score_rows(metric, u.row, u.row["edit_key"], u.sample_uid, status, message=msg)

        def persist(u, out, retries: list[str]):
            (rows, ok), logs = out
            for m in logs:
                r.log(m)
            r.put_score_records(rows, ok)
            return all(x.status != "error" for x in rows)

        # an actor gets its group's prefetch first, then the units one by one (as the local runner's chunks)
        on_group = (lambda a, us: a.prefetch.remote(us)) \
            if kind == "sample" and r.config.cross_batch and metric.prefetches() else None
        self._drive(f"score {metric.name}", groups, make, lambda a, u: a.score.remote(u), persist, failed_row,
                    expect_key=metric.variant_id(), max_actors=1 if kind == "set" else None, on_group=on_group)

    # --- the queue -----------------------------------------------------------------------------------
    def _drive(self, label: str, groups: list[list], make, submit, persist, failed_row, expect_key: str,
               max_actors: int | None = None, on_group: Callable[[Any, list], Any] | None = None) -> None:
        """Feed groups of units to a pool of set-up actors; one unit in flight per actor, an actor keeps
        its group (same source video) until it is empty, then takes the next group."""
        r = self.runner
        total = sum(len(g) for g in groups)
        stats = PhaseStats(label, total)
        queue: deque[deque] = deque(deque(g) for g in groups)
        n = min(self.workers, len(groups), max_actors or self.workers)
        actors: list[dict] = []
        inflight: dict[Any, tuple[dict, Any]] = {}
        retries: dict[int, list[str]] = {}
        side_refs: list[Any] = []  # fire-and-forget calls (prefetch): kept so Ray holds their results
        last_line = 0.0

        def write_all_failed(status: str, msg: str) -> None:
            for g in queue:
                for u in g:
                    self._write_failed(failed_row(u, status, msg))
                    stats.failed += 1
                    stats.done += 1
            queue.clear()

        def started(handle, setup_ref) -> dict:
            try:
                pid, key, failed = ray.get(setup_ref)
            except Exception as e:  # noqa: BLE001
                ray.kill(handle)
                if _died(e):
                    return {"dead": True, "error": f"worker died during setup ({type(e).__name__})"}
                from bench.running.common import describe_exception

                cause = getattr(e, "cause", None) or e  # RayTaskError carries the worker's exception
                return {"dead": True, "failed": ("error", f"worker could not set up: {describe_exception(cause)}", "setup")}
            if key != expect_key:  # the worker resolved another config: never write under the wrong key
                ray.kill(handle)
                raise RuntimeError(f"{label}: worker key {key} differs from the driver's {expect_key}")
            if failed:
                ray.kill(handle)
                return {"dead": True, "failed": failed}
            self.pids.append(pid)
            r.log(f"{label}: actor pid {pid} ready")
            return {"handle": handle, "pid": pid, "group": deque(), "dead": False}

        def spawn_many(k: int) -> list[dict]:
            """k actors created together (their model loads overlap), then each one's setup result."""
            handles = [make() for _ in range(k)]
            refs = [h.setup.remote() for h in handles]
            return [started(h, ref) for h, ref in zip(handles, refs)]

        def spawn() -> dict:
            return spawn_many(1)[0]

        def feed(a: dict) -> None:
            if not a["group"]:
                if not queue:
                    return
                a["group"] = queue.popleft()
                if on_group is not None:
                    side_refs.append(on_group(a["handle"], list(a["group"])))
            u = a["group"].popleft()
            inflight[submit(a["handle"], u)] = (a, u)

        def pump() -> None:
            nonlocal last_line
            setup_deaths = 0
            while len(actors) < n:
                for a in spawn_many(n - len(actors)):
                    if a.get("failed"):
                        status, msg, phase = a["failed"]
                        r.log(f"{label}: {'skipped' if phase == 'weights' else 'setup failed'} — {msg}")
                        write_all_failed(status, msg)
                        return
                    if a["dead"]:
                        setup_deaths += 1
                        if setup_deaths > self.max_retries:
                            write_all_failed("error", f"{a['error']} {setup_deaths} times")
                            return
                        continue
                    actors.append(a)
                    feed(a)
            while inflight:
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=self.poll_s)
                for ref in ready:
                    a, u = inflight.pop(ref)
                    key = id(u)
                    try:
                        out = ray.get(ref)
                    except Exception as e:  # noqa: BLE001
                        if not _died(e):  # a bug outside the unit's own guard: its error row, no retry
                            from bench.running.common import describe_exception

                            self._write_failed(failed_row(u, "error", f"worker error: {describe_exception(e)}"))
                            stats.failed += 1
                            stats.done += 1
                            feed(a)
                            continue
                        why = f"worker pid {a['pid']} died ({type(e).__name__})"
                        r.log(f"{label}: {why}")
                        a["dead"] = True
                        actors.remove(a)
                        for g_unit in reversed(a["group"]):  # its group goes back, whole, to the front
                            queue.appendleft(deque([g_unit]))
                        a["group"] = deque()
                        retries.setdefault(key, []).append(why)
                        if len(retries[key]) > self.max_retries:
                            self._write_failed(failed_row(
                                u, "error", f"{why}; gave up after {self.max_retries} retries: " + "; ".join(retries[key])))
                            stats.failed += 1
                            stats.done += 1
                        else:
                            stats.retried += 1
                            queue.appendleft(deque([u]))
                        if queue:
                            b = spawn()
                            if b is not None and not b["dead"]:
                                actors.append(b)
                                feed(b)
                            elif not actors:
                                write_all_failed("error", b.get("error", "worker could not start") if b else "no worker")
                        continue
                    ok = persist(u, out, retries.get(key, []))
                    stats.done += 1
                    stats.failed += 0 if ok else 1
                    r.progress(label, stats.done, total)
                    feed(a)
                    if self.on_unit is not None:  # after the next unit is in flight (tests kill workers here)
                        self.on_unit(label, a["pid"], out)
                if not inflight and queue:  # every actor died and none could be replaced in the loop
                    a = spawn()
                    if a is None or a["dead"]:
                        write_all_failed("error", (a or {}).get("error", "no worker"))
                        break
                    actors.append(a)
                    feed(a)
                now = time.perf_counter()
                if now - last_line > 5.0:
                    last_line = now
                    r.log(stats.line(len(inflight)))
            r.log(stats.line(0))

        try:
            pump()
        except BaseException:  # Ctrl-C, SIGTERM, a driver bug: actors go at once (their units are redone on resume)
            for a in actors:
                ray.kill(a["handle"])
            raise
        for a in actors:  # idle now: teardown, then the actor (and its GPU) is released
            try:
                ray.get(a["handle"].close.remote(), timeout=60)
            except Exception:  # noqa: BLE001
                pass
            ray.kill(a["handle"])

    def _write_failed(self, row) -> None:
        if isinstance(row, list):
            self.runner.put_score_records(row, False)
        else:
            self.runner.put_edit_record(row)


def run_on_ray(config: RunConfig, progress=None, log=None, do_edits: bool = True, do_metrics: bool = True,
               address: str | None = None, workers: int | None = None, gpus_per_edit: float = 1.0,
               max_retries: int = 2, num_cpus: int | None = None, on_unit=None):
    """`run_benchmark` with the units on Ray (same lock, same interrupt handling, same store)."""
    from bench.running.guard import interruptible
    from bench.running.locking import RunLock
    from bench.store.runpaths import clean_stale_temp

    started = start_ray(address, num_cpus=num_cpus)
    try:
        with RunLock(config.run_dir), interruptible():
            clean_stale_temp(config.run_dir)
            runner = Runner(config, progress=progress, log=log)
            try:
                ex = RayExecutor(runner, workers=workers, gpus_per_edit=gpus_per_edit, max_retries=max_retries)
                ex.on_unit = on_unit
                return ex.run(do_edits=do_edits, do_metrics=do_metrics)
            finally:
                runner.store.close()
    finally:
        if started:
            ray.shutdown()
