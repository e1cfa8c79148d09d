"""`videditbench run|eval|leaderboard|merge`: a run's config from flags and files, running it, exporting it.

Only typer, rich and the lazy registries are imported at start-up. Errors that a user can fix are
printed as one line with the valid choices, exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape as _esc
from rich.table import Table

from bench.api.errors import VidEditBenchError
from bench.api.redaction import clip_text, redact
from bench.cli.common import _fail, _split, app, console


def _parse_options(values: list[str] | None, kind: str) -> dict[str, dict[str, Any]]:
    """`NAME.KEY=VALUE` (VALUE parsed as YAML) -> {NAME: {KEY: VALUE}}."""
    import yaml

    from bench.api import safe_yaml

    out: dict[str, dict[str, Any]] = {}
    for item in values or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            _fail(f"bad --{kind}-opt '{item}'; expected NAME.KEY=VALUE, e.g. --{kind}-opt "
                  f"{'rave.num_inference_steps=20' if kind == 'method' else 'clip_consistency.pairing=all'}")
        lhs, value = item.split("=", 1)
        name, key = lhs.split(".", 1)
        try:
            parsed = safe_yaml.load(value)
        except yaml.YAMLError as e:
            _fail(f"bad --{kind}-opt '{item[:200]}': the value is not valid YAML ({str(e).splitlines()[0]}); quote it")
        out.setdefault(name.strip(), {})[key.strip()] = parsed
    return out


def _merge_options(file_opts: dict[str, dict[str, Any]], cli_opts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """--config first, then --method-opt / --metric-opt on top, per key (a block is merged, not replaced)."""
    out = {name: dict(opts) for name, opts in file_opts.items()}
    for name, opts in cli_opts.items():
        out.setdefault(name, {}).update(opts)
    return out


def _parse_shard(shard: str | None) -> tuple[int, int] | None:
    if not shard:
        return None
    try:
        i, n = (int(x) for x in shard.split("/"))
        assert n >= 1 and 0 <= i < n
    except Exception:  # noqa: BLE001
        _fail(f"bad --shard '{shard}'; expected i/n with 0 <= i < n, e.g. --shard 0/4")
    return i, n


def _load_config_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    from bench.api import safe_yaml

    if not path.is_file():
        from bench.presets import preset_path

        path = preset_path(str(path)) or path  # a shipped preset name (videditbench list configs)
    if not path.is_file():
        _fail(f"config file {path} does not exist")
    try:
        data = safe_yaml.load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:  # includes !!python/... tags, which safe_load refuses
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        _fail(f"{path}: invalid YAML{where}: {problem} (plain YAML only: no !!python tags)")
    except (OSError, UnicodeDecodeError) as e:
        _fail(f"{path}: cannot read the config file ({e})")
    if not isinstance(data, dict):
        _fail(f"{path}: expected a mapping with keys like methods, metrics, method_options, metric_options")
    return _check_config(data, path)


CONFIG_KEYS = ("methods", "metrics", "method_options", "metric_options", "method_preset")


def _check_config(data: dict, path: Path) -> dict[str, Any]:
    """Types of a --config file: names lists (a comma-separated string is accepted), options mappings."""
    for k in data:
        if k not in CONFIG_KEYS:
            _fail(f"{path}: unknown key '{k}'; valid keys: {', '.join(CONFIG_KEYS)}")
    out: dict[str, Any] = {}
    for k in ("methods", "metrics"):
        v = data.get(k)
        if v is None:
            continue
        if isinstance(v, str):
            v = _split([v])
        if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
            _fail(f"{path}, field '{k}': expected a list of names, e.g. {k}: [source, flow-propagate], got {v!r}"[:300])
        out[k] = _split(v)
    for k in ("method_options", "metric_options"):
        v = data.get(k)
        if v is None:
            continue
        if not isinstance(v, dict) or not all(isinstance(n, str) and isinstance(o, dict) for n, o in v.items()):
            _fail(f"{path}, field '{k}': expected NAME: {{KEY: VALUE}} mappings, got {v!r}"[:300])
        out[k] = {n: dict(o) for n, o in v.items()}
    if data.get("method_preset") is not None:
        if not isinstance(data["method_preset"], str) or not data["method_preset"].strip():
            _fail(f"{path}, field 'method_preset': expected a preset name, e.g. method_preset: v2vbench")
        out["method_preset"] = data["method_preset"].strip()
    return out


def _progress_and_log(interval: float = 5.0):
    """A rich progress bar on a terminal; otherwise plain `label: done/total` lines every `interval`
    seconds per phase (and at its end), so logs and CI still show progress. Log lines never wrap
    (paths stay whole); every message printed is remembered so the summary does not repeat it."""
    import time as _time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True, disable=not console.is_terminal)
    tasks: dict[str, int] = {}
    last: dict[str, float] = {}
    logged: set[str] = set()

    def on_progress(label: str, done: int, total: int) -> None:
        if console.is_terminal:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done, total=total)
            return
        now = _time.monotonic()
        if done >= total or now - last.get(label, -interval) >= interval:
            last[label] = now
            console.print(f"{label}: {done}/{total}", soft_wrap=True, highlight=False, markup=False)

    def on_log(msg: str) -> None:
        logged.add(msg)
        progress.console.print(clip_text(redact(msg)), style="dim", highlight=False, soft_wrap=True, markup=False)

    progress.logged = logged  # type: ignore[attr-defined]
    return progress, on_progress, on_log


def _print_summary(summary, already_logged: set[str] | None = None) -> None:
    statuses = ("ok", "error", "skipped", "not_applicable")
    for title, first, rows in (("Edits", "method", summary.edits), ("Scores", "metric", summary.scores)):
        t = Table(title=title)
        t.add_column(first)
        for s in statuses:
            t.add_column(s, justify="right")
        for name, counts in sorted(rows.items()):
            t.add_row(_esc(name), *[str(counts.get(s, 0) or "") for s in statuses])
        console.print(t)
    logged = " ".join(already_logged or ())
    lines: dict[tuple[str, str, str, str], int] = {}
    for kind, what, status, msg in summary.problems:
        key = (kind, what.split(" ")[0] if kind == "edit" else what, status, msg)
        lines[key] = lines.get(key, 0) + 1
    shown = 0
    for (kind, what, status, msg), n in lines.items():
        if msg and msg in logged:
            continue  # printed once already while running
        if shown == 0:
            console.print("Skipped and failed (with the reason or the fix):", style="bold")
        if shown >= 40:
            console.print("… more in the leaderboard's Status section", highlight=False)
            break
        count = f" ×{n}" if n > 1 else ""
        # one plain line each: long paths and commands are never folded mid-name
        console.print(f"  {kind} {what}{count} {status}: {clip_text(redact(str(msg)))}", soft_wrap=True, highlight=False,
                      markup=False)
        shown += 1
    console.print(
        f"new edits: {summary.edits_done} (already done: {summary.edits_skipped_existing}); "
        f"new scores: {summary.scores_done} (already done: {summary.scores_skipped_existing}); "
        f"source-feature cache hits: {summary.cache_hits}; time {summary.seconds:.1f}s", soft_wrap=True,
    )


def _select(scores: Any, edits: Any, methods: list[str] | None, exclude: list[str] | None,
            metrics: list[str] | None, task: str | None) -> tuple[Any, Any]:
    """The rows a leaderboard is built from, narrowed by `leaderboard --methods/--exclude-methods/
    --metrics/--task` (reference rows such as `source` stay unless excluded by name)."""
    from bench.store.pairing import is_reference_config

    def check(kind: str, asked: list[str], have: set[str]) -> None:
        unknown = [a for a in asked if a not in have]
        if unknown:
            _fail(f"{kind} {', '.join(unknown)} not in this run; valid: {', '.join(sorted(have)) or '(none)'}")

    all_methods = set(edits["method"]) | set(scores["method"])
    refs = set(edits.loc[[is_reference_config(c) for c in edits["method_config"]], "method"]) if len(edits) else set()
    if methods:
        check("method(s)", methods, all_methods)
        keep = (set(methods) | refs) - set(exclude or [])
    else:
        keep = all_methods - set(exclude or [])
    if exclude:
        check("method(s)", exclude, all_methods)
    scores, edits = scores[scores["method"].isin(keep)], edits[edits["method"].isin(keep)]
    if metrics:
        check("metric(s)", metrics, set(scores["metric"]) | set(scores["metric_family"]))
        scores = scores[scores["metric"].isin(metrics) | scores["metric_family"].isin(metrics)]
    if task:
        check("task", [task], set(edits["task"]))
        edits = edits[edits["task"] == task]
        scores = scores[scores["sample_uid"].isin(set(edits["sample_uid"])) | scores["edit_key"].isna()]
    return scores, edits


def signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _export(run_dir: Path, out_dir: Path | None = None, report: bool = True, **select: Any) -> dict[str, Path]:
    """Write the leaderboard and report; SIGTERM/Ctrl-C here is one line saying how to write them later."""
    from bench.running.guard import RunInterrupted, interruptible, received_signal

    try:
        with interruptible():
            return _write_exports(run_dir, out_dir, report, **select)
    except KeyboardInterrupt as e:
        signum = e.signum if isinstance(e, RunInterrupted) else (received_signal() or 2)
        _fail(f"interrupted ({signal_name(signum)}) while writing the leaderboard; the results are stored in "
              f"{run_dir}; write it with: videditbench leaderboard {run_dir}", 128 + signum)
        raise  # unreachable (_fail exits)


def _write_exports(run_dir: Path, out_dir: Path | None = None, report: bool = True, methods: list[str] | None = None,
                   exclude: list[str] | None = None, metrics: list[str] | None = None,
                   task: str | None = None) -> dict[str, Path]:
    from bench.report.table import build_leaderboard
    from bench.report.export import export_leaderboard
    from bench.store.results import ResultStore

    out = out_dir or (run_dir / "leaderboard")
    with ResultStore(run_dir) as store:
        scores, edits = store.scores_frame(), store.edits_frame()
        invocations = store.invocations()
    # a run made with a paper config (--config ive-benchmark) shows that paper's columns, in its order
    paper = (invocations[-1]["config"].get("export_metrics") if invocations else None) or None
    if metrics is None and paper:
        metrics = [m for m in paper if m in set(scores["metric"]) | set(scores["metric_family"])] or None
    if methods or exclude or metrics or task:
        scores, edits = _select(scores, edits, methods, exclude, metrics, task)
    lb = build_leaderboard(scores, edits, metric_order=metrics)
    paths = dict(export_leaderboard(lb, out))
    for task, sub in lb.sections.items():  # each task's paired comparison also gets files of its own
        paths[f"md:{task}-guided"] = dict(export_leaderboard(sub, out / f"task-{task}", plots=False))["md"]
    if report:
        from bench.report.html import write_report

        paths["report"] = write_report(lb, edits, out, scores=scores, run_dir=run_dir, suite=_run_suite(run_dir))
    return paths


def _run_suite(run_dir: Path):
    """The suite of the run's last invocation (for reference/mask previews), or None if it cannot load."""
    from bench.store.results import ResultStore
    from bench.suites import load_suite

    try:
        with ResultStore(run_dir) as store:
            cfg = store.invocations()[-1]["config"]
        return load_suite(cfg["suite"], **(cfg.get("suite_overrides") or {}))
    except Exception:  # noqa: BLE001 (imported results, a moved dataset: previews just lack the extras)
        return None


def _run(config, do_edits: bool = True, export: bool = True, executor: dict | None = None) -> None:
    from bench.running.guard import RunInterrupted

    progress, on_progress, on_log = _progress_and_log()
    try:
        with progress:
            if executor and executor.get("executor") == "ray":
                try:
                    from bench.running.ray_executor import run_on_ray
                except ImportError:
                    _fail('--executor ray needs Ray; install it with: pip install -e ".[ray]"')
                summary = run_on_ray(config, progress=on_progress, log=on_log, do_edits=do_edits,
                                     **{k: v for k, v in executor.items() if k != "executor"})
            else:
                from bench.running.runner import run_benchmark

                summary = run_benchmark(config, progress=on_progress, log=on_log, do_edits=do_edits)
    except KeyboardInterrupt as e:
        from bench.running.guard import received_signal

        # Ray re-raises a plain KeyboardInterrupt: the recorded signal says which one it was
        signum = e.signum if isinstance(e, RunInterrupted) else (received_signal() or 2)
        signame, code = signal_name(signum), 128 + signum
        _fail(f"interrupted ({signame}); finished edits and scores are stored in {config.run_dir}; "
              "run the same command again to resume", code)
    except VidEditBenchError as e:
        _fail(str(e))
    _print_summary(summary, progress.logged)
    console.print(f"results: {summary.run_dir / 'results.sqlite'}", soft_wrap=True, highlight=False, markup=False)
    if export:
        paths = _export(summary.run_dir)
        for kind, p in paths.items():
            console.print(f"{kind}: {p}", soft_wrap=True, highlight=False, markup=False)
    _exit_if_nothing_succeeded(summary, do_edits)


def _exit_if_nothing_succeeded(summary, do_edits: bool) -> None:
    """Exit 1 with one line when no edit (or, with metrics, no score) of this invocation succeeded."""
    n_edits = sum(sum(c.values()) for c in summary.edits.values())
    ok_edits = sum(c.get("ok", 0) for c in summary.edits.values())
    if do_edits and ok_edits == 0:
        _fail(f"nothing succeeded: none of the {n_edits} edits is ok (see the table above for why)", 1)
    n_scores = sum(sum(c.values()) for c in summary.scores.values())
    if n_scores and not any(c.get("ok", 0) for c in summary.scores.values()):
        _fail(f"nothing succeeded: none of the {n_scores} scores is ok (see the table above for why)", 1)


def _offline(offline: bool) -> None:
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["VIDEDITBENCH_OFFLINE"] = "1"


@app.command()
def run(
    suite: str = typer.Option("mini", "--suite", "-s", help="Embedded suite name or a manifest path."),
    methods: Optional[list[str]] = typer.Option(None, "--methods", "-m", help="Comma-separated method names (default: the weight-free baselines)."),
    metrics: Optional[list[str]] = typer.Option(None, "--metrics", "-k", help="Comma-separated metric names (default: all built-in); a variant inline as name@key=value, e.g. warp_error@flow=dis."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Run name: results go to <results-dir>/<name> (default: the suite name)."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Output root."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    seed: int = typer.Option(0, "--seed"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N samples."),
    shard: Optional[str] = typer.Option(None, "--shard", help="i/n: run only this shard of the samples (stores merge)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip work already in the store (default). --no-resume starts a fresh store."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Redo edits and scores that failed before."),
    method_opt: Optional[list[str]] = typer.Option(None, "--method-opt", help="NAME.KEY=VALUE option for a method."),
    metric_opt: Optional[list[str]] = typer.Option(None, "--metric-opt", help="NAME.KEY=VALUE variant option for a metric."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="YAML with methods, metrics, method_options, metric_options."),
    num_frames: Optional[int] = typer.Option(None, "--num-frames", help="Override the suite's frame count."),
    size: Optional[int] = typer.Option(None, "--size", help="Override the suite's square frame size."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Frames per model batch in metrics (default: 16 on CPU and MPS, 64 on CUDA); per metric: --metric-opt NAME.batch_size=N."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Untimed warm-up edits before each method's first timed edit (default: 1 on CUDA, 0 on CPU)."),
    no_source_cache: bool = typer.Option(False, "--no-source-cache", help="Recompute source features per edit (V2VBench behaviour)."),
    offline: bool = typer.Option(False, "--offline", help="Never try the network (sets HF_HUB_OFFLINE=1)."),
    no_export: bool = typer.Option(False, "--no-export", help="Do not write the leaderboard and report at the end."),
    force: bool = typer.Option(False, "--force", help="With --no-resume: delete the existing run store without asking."),
    timeout: float = typer.Option(3600.0, "--timeout", help="Seconds per edit (Python adapters) and per metric computation before it becomes an error row."),
    executor: str = typer.Option("local", "--executor", help="local (one process) or ray (model-holding actors on a Ray cluster; pip install -e '.[ray]')."),
    address: Optional[str] = typer.Option(None, "--address", help="With --executor ray: auto or ray://host:port of a running cluster (default: start a local Ray on 127.0.0.1)."),
    gpus_per_edit: float = typer.Option(1.0, "--gpus-per-edit", help="With --executor ray on CUDA: GPUs each actor reserves."),
    max_retries: int = typer.Option(2, "--max-retries", help="With --executor ray: re-runs of a unit whose worker died."),
    workers: Optional[int] = typer.Option(None, "--workers", help="With --executor ray: actors per method/metric (default: as many as the cluster fits)."),
) -> None:
    """Run methods on a suite, score the edits, and write the leaderboard and report."""
    _offline(offline)
    if executor not in ("local", "ray"):
        _fail(f"bad --executor '{executor}'; expected local or ray")
    if max_retries < 0 or max_retries > 100:
        _fail(f"bad --max-retries {max_retries}; expected 0..100")
    if not (0 < gpus_per_edit <= 64):
        _fail(f"bad --gpus-per-edit {gpus_per_edit:g}; expected a number in (0, 64]")
    if workers is not None and not (1 <= workers <= 4096):
        _fail(f"bad --workers {workers}; expected 1..4096")
    ex = {"executor": "ray", "address": address, "gpus_per_edit": gpus_per_edit, "max_retries": max_retries,
          "workers": workers} if executor == "ray" else None
    _run(_build_config(suite, methods, metrics, name, results_dir, device, seed, limit, shard, resume, retry_errors,
                       method_opt, metric_opt, config_file, num_frames, size, batch_size, warmup, no_source_cache,
                       force=force, timeout=timeout),
         export=not no_export, executor=ex)


def _check_numbers(seed, limit, batch_size, warmup, num_frames, size, timeout) -> None:
    """Numeric options, refused up front with the option's name (not a failure later in the run)."""
    checks = (
        ("--seed", seed, 0, 2**63 - 1), ("--limit", limit, 1, None), ("--batch-size", batch_size, 1, 4096),
        ("--warmup", warmup, 0, 100), ("--num-frames", num_frames, 1, 4096), ("--size", size, 1, 4096),
    )
    for flag, v, lo, hi in checks:
        if v is None:
            continue
        if v < lo or (hi is not None and v > hi):
            _fail(f"{flag} must be {'>= ' + str(lo) if hi is None else f'between {lo} and {hi}'}, got {v}")
    if timeout is not None and not (timeout > 0 and timeout < float("inf")):
        _fail(f"--timeout must be a positive number of seconds, got {timeout}")


def _check_text(flag: str, v: str | None, max_len: int = 4096) -> None:
    if v is None:
        return
    if "\0" in v:
        _fail(f"{flag} contains a NUL byte; remove it")
    if len(v) > max_len:
        _fail(f"{flag} is {len(v)} characters long; at most {max_len}")


def _suite_exists(suite: str) -> None:
    """A suite given as a path must exist (else 'file not found', not 'unknown suite')."""
    from bench.suites import list_suites

    looks_like_path = "/" in suite or os.sep in suite or suite.endswith((".yaml", ".yml", ".json", ".csv"))
    if looks_like_path and suite not in list_suites() and not Path(suite).expanduser().exists():
        _fail(f"suite file not found: {suite} (pass an existing manifest/folder, or a suite name from `videditbench list suites`)")


def _check_option_targets(opts: dict[str, dict[str, Any]], names: list[str], kind: str) -> None:
    """An option for a method/metric that is not in this run is a mistake (typo or forgotten --methods)."""
    for n, o in opts.items():
        if n not in names:
            _fail(f"--{kind}-opt / {kind}_options for '{n}', which is not in this run's {kind}s "
                  f"({', '.join(names)}); add it to --{kind}s or drop the option")
        if not isinstance(o, dict):
            _fail(f"{kind}_options for '{n}' must be a mapping of KEY: VALUE")


def _check_option_values(m_opts: dict, k_opts: dict, method_names: list[str], metric_specs: list[str]) -> None:
    """Unknown option keys and closed-choice values, checked on the classes before anything runs."""
    from bench.api.catalog import METHODS, METRICS
    from bench.running.runner import parse_metric_spec

    for n, o in m_opts.items():
        try:
            cls = METHODS.get(n)
        except Exception:  # noqa: BLE001  (an import error: reported by the run as error rows)
            continue
        unknown = sorted(set(o) - set(getattr(cls, "defaults", {}) or {}) - {"preset"})
        if unknown and not getattr(cls, "accepts_any_config", False):
            _fail(f"method '{n}' has no option(s) {unknown}; valid: {sorted(getattr(cls, 'defaults', {}) or {}) or '(none)'}")
        _try_create(lambda: cls(device="cpu", seed=0, **o), f"method '{n}'")
    for spec in metric_specs:
        n, inline = parse_metric_spec(spec)
        o = {**k_opts.get(n, {}), **inline}
        if not o:
            continue
        try:
            cls = METRICS.get(n)
        except Exception:  # noqa: BLE001
            continue
        unknown = sorted(set(o) - set(cls.defaults) - {"batch_size"})  # batch_size: any metric, not a variant option
        if unknown:
            _fail(f"metric '{n}' has no option(s) {unknown}; valid: {sorted(cls.defaults) or '(none)'}")
        for key, allowed in getattr(cls, "choices", {}).items():
            if key in o and o[key] not in allowed:
                _fail(f"metric '{n}': bad {key} {o[key]!r}; valid choices: {', '.join(map(str, allowed))}")
        _try_create(lambda: cls(device="cpu", **o), f"metric '{n}'")


def _try_create(make, what: str) -> None:
    """Constructors check option values (ranges, types) without loading models: a bad value is one
    line now, not error rows later. Other failures (imports, environment) are left to the run."""
    from bench.api.errors import WeightsMissing

    try:
        make()
    except WeightsMissing:
        pass  # a "skipped" row with the fix, as in the run
    except VidEditBenchError as e:
        _fail(str(e))
    except (TypeError, ValueError) as e:
        _fail(f"{what}: bad option value ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    except Exception:  # noqa: BLE001
        pass


def _fresh_store(run_dir: Path, results_dir: Path, name: str, force: bool) -> None:
    """--no-resume on an existing run: ask (on a terminal) or require --force; delete only our run store."""
    from bench.store.runpaths import is_run_store, remove_run

    if not run_dir.exists():
        return
    if not is_run_store(run_dir):
        _fail(f"{run_dir} exists and is not a videditbench run; refusing to delete it (choose another --name)")
    if not force:
        if not sys.stdin.isatty():
            _fail(f"--no-resume would delete the existing run {run_dir}; add --force to confirm")
        if not typer.confirm(f"Delete the existing run {run_dir} and start afresh?", default=False):
            _fail("kept the existing run; nothing done", 1)
    from bench.running.locking import RunLock

    try:
        with RunLock(run_dir):  # never delete a run another process is writing
            remove_run(results_dir, name)
    except VidEditBenchError as e:
        _fail(str(e))


def _apply_config_presets(preset: str | None, method_names: list[str], m_opts: dict, labels: dict) -> dict:
    """A paper config's `method_preset`: each method runs with its preset of that name (an explicit
    --method-opt NAME.preset wins); a method with none runs with its defaults under a flagged name."""
    if not preset:
        return labels
    from bench.presets import flagged_label, method_settings

    for s in method_settings(preset, method_names):
        if "preset" in m_opts.get(s.method, {}):
            continue
        if s.preset:
            m_opts.setdefault(s.method, {})["preset"] = s.preset
        elif s.flagged:
            labels.setdefault(s.method, flagged_label(s.method, preset))
            console.print(f"warning: method '{s.method}' has no '{preset}' preset: it runs with its own defaults, "
                          f"stored as '{labels[s.method]}'", soft_wrap=True, highlight=False, markup=False)
    return labels


def _build_config(suite, methods, metrics, name, results_dir, device, seed, limit, shard, resume, retry_errors,
                  method_opt, metric_opt, config_file, num_frames, size, batch_size, warmup, no_source_cache,
                  method_labels=None, force: bool = False, timeout: float | None = 3600.0):
    from bench.api.catalog import METHODS, METRICS
    from bench.api.device import resolve_device
    from bench.running.runner import DEFAULT_METHODS, DEFAULT_METRICS, RunConfig
    from bench.store.runpaths import check_name

    _check_numbers(seed, limit, batch_size, warmup, num_frames, size, timeout)
    _check_text("--suite", suite)
    existing = next((p for p in (Path(results_dir), *Path(results_dir).parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        _fail(f"--results-dir {results_dir}: {existing} is a file, not a folder; choose a folder (it is created if absent)")
    try:
        if name is not None:
            check_name(name)
    except VidEditBenchError as e:
        _fail(str(e))
    _suite_exists(suite)
    file_cfg = _load_config_file(config_file)
    method_names = _split(methods) or list(file_cfg.get("methods") or DEFAULT_METHODS)
    metric_names = _split(metrics) or list(file_cfg.get("metrics") or DEFAULT_METRICS)
    try:
        METHODS.validate(method_names)
        from bench.running.runner import parse_metric_spec

        METRICS.validate([parse_metric_spec(m)[0] for m in metric_names])
        resolve_device(device)
    except VidEditBenchError as e:
        _fail(str(e))
    m_opts = _merge_options(file_cfg.get("method_options") or {}, _parse_options(method_opt, "method"))
    k_opts = _merge_options(file_cfg.get("metric_options") or {}, _parse_options(metric_opt, "metric"))
    _check_option_targets(m_opts, method_names, "method")
    _check_option_targets(k_opts, [parse_metric_spec(m)[0] for m in metric_names], "metric")
    method_labels = _apply_config_presets(file_cfg.get("method_preset"), method_names, m_opts, dict(method_labels or {}))
    _check_option_values(m_opts, k_opts, method_names, metric_names)
    overrides = {k: v for k, v in {"num_frames": num_frames, "size": size}.items() if v is not None}
    cfg = RunConfig(
        suite=suite, methods=method_names, metrics=metric_names, run_name=name, results_dir=str(results_dir),
        device=device, seed=seed, limit=limit, shard=_parse_shard(shard), retry_errors=retry_errors,
        batch_size=batch_size, warmup=warmup, method_options=m_opts, metric_options=k_opts,
        method_labels=method_labels or {}, suite_overrides=overrides, source_cache=not no_source_cache,
        timeout_s=timeout,
    )
    if config_file is not None and not _split(metrics) and file_cfg.get("metrics"):
        cfg.export_metrics = list(dict.fromkeys(parse_metric_spec(m)[0] for m in metric_names))
    try:
        check_name(cfg.name, "run name (from the suite name)")
    except VidEditBenchError as e:
        _fail(str(e))
    try:
        from bench.suites import load_suite

        load_suite(suite, **overrides)
    except VidEditBenchError as e:
        _fail(str(e))
    if not resume:
        _fresh_store(cfg.run_dir, Path(results_dir), cfg.name, force)
    return cfg


@app.command("eval")
def eval_(
    edits: Path = typer.Argument(..., help="Edited videos as <dir>/<video_id>/<edit_id> (V2VBench's layout; the edit's index works too), <dir>/<suite>/<video_id>/<edit_id> or flat <dir>/<video_id>__<edit_id>: a frames folder, .mp4 or .gif each. `videditbench suite show SUITE` lists the ids."),
    suite: str = typer.Option("mini", "--suite", "-s", help="The suite the edits were made from (source videos, prompts)."),
    label: Optional[str] = typer.Option(None, "--label", help="Method name to store the scores under (default: the folder name)."),
    metrics: Optional[list[str]] = typer.Option(None, "--metrics", "-k"),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Run name (default: the suite's run, e.g. results/mini, so the scores sit beside the `source` reference row of `videditbench run`)."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir"),
    device: str = typer.Option("auto", "--device"),
    limit: Optional[int] = typer.Option(None, "--limit"),
    resize: bool = typer.Option(False, "--resize", help="Resample edits whose size or frame count differ from the suite's."),
    metric_opt: Optional[list[str]] = typer.Option(None, "--metric-opt"),
    num_frames: Optional[int] = typer.Option(None, "--num-frames"),
    size: Optional[int] = typer.Option(None, "--size"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Frames per model batch in metrics (default: 16 on CPU and MPS, 64 on CUDA)."),
    offline: bool = typer.Option(False, "--offline"),
    no_export: bool = typer.Option(False, "--no-export", help="Only store the scores; build the leaderboard and report later with `videditbench leaderboard`."),
) -> None:
    """Score edited videos that already exist on disk, without running any method."""
    _offline(offline)
    from methods.precomputed import LAYOUT

    if not edits.is_dir():
        _fail(f"{edits} is not a folder; expected {LAYOUT}: a frames folder, .mp4 or .gif each")
    label = label or edits.resolve().name
    from bench.store.runpaths import check_name

    try:
        check_name(label, "label", "--label")
    except VidEditBenchError as e:
        _fail(str(e))
    cfg = _build_config(suite, ["precomputed"], metrics, name, results_dir, device, 0, limit, None,
                        True, True, [f"precomputed.dir={json.dumps(str(edits.resolve()))}", f"precomputed.resize={str(resize).lower()}"],
                        metric_opt, None, num_frames, size, batch_size, 0, False, method_labels={"precomputed": label})
    cfg.samples = _samples_with_edits(cfg, edits)
    _run(cfg, export=not no_export)


def _samples_with_edits(cfg: Any, edits: Path) -> list[str]:
    """The suite's samples that have an edit in `edits`; the missing ones are one summary line and a
    list in `<run>/eval_missing.txt`, not an error row each."""
    from bench.suites import load_suite
    from methods.precomputed import LAYOUT, find_edit

    try:
        samples = list(load_suite(cfg.suite).samples)
    except VidEditBenchError as e:
        _fail(str(e))
    found, missing = [], []
    for s in samples:
        (found if find_edit(edits, s)[0] is not None else missing).append(s)
    if not found:
        first = samples[0] if samples else None
        example = f" (e.g. {edits / first.video_id / first.edit_id})" if first else ""
        _fail(f"{edits}: no edit of any of the {len(samples)} samples of suite '{cfg.suite}'; expected {LAYOUT}"
              f"{example}; `videditbench suite show {cfg.suite}` lists the ids")
    if missing:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        listing = cfg.run_dir / "eval_missing.txt"
        listing.write_text("".join(f"{s.uid}\t{edits / s.video_id / s.edit_id}\n" for s in missing))
        console.print(f"eval: {len(missing)} of {len(samples)} samples have no edit in {_esc(str(edits))}; scoring the "
                      f"{len(found)} found (missing ones listed in {_esc(str(listing))})", highlight=False)
    return [s.uid for s in found]


@app.command()
def leaderboard(
    run_dir: Path = typer.Argument(..., help="A run folder (results/<run>) or its results.sqlite."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: <run>/leaderboard)."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip the HTML report."),
    methods: Optional[list[str]] = typer.Option(None, "--methods", "-m", help="Only these methods (comma-separated stored names; reference rows stay)."),
    exclude_methods: Optional[list[str]] = typer.Option(None, "--exclude-methods", help="Leave these methods out (e.g. one that shrinks the paired set)."),
    metrics: Optional[list[str]] = typer.Option(None, "--metrics", "-k", help="Only these metrics (names or families, comma-separated)."),
    task: Optional[str] = typer.Option(None, "--task", help="Only this task: text, image or subject."),
) -> None:
    """Build the leaderboard (CSV, Markdown, JSON, plots) and the HTML report from a run's store."""
    path = run_dir.parent if run_dir.suffix == ".sqlite" else run_dir
    if not (path / "results.sqlite").is_file():
        _fail(f"{path} has no results.sqlite; pass a run folder like results/mini")
    if (methods or exclude_methods or metrics or task) and out is None:
        _fail("--methods/--exclude-methods/--metrics/--task write a narrowed leaderboard: give it its own --out folder "
              "(the run's leaderboard/ stays the full one)")
    try:
        exported = _export(path, out, report=not no_report, methods=_split(methods) or None,
                           exclude=_split(exclude_methods) or None, metrics=_split(metrics) or None, task=task)
    except VidEditBenchError as e:
        _fail(str(e))
    for kind, p in exported.items():
        console.print(f"{_esc(kind)}: {_esc(str(p))}", highlight=False)


@app.command()
def merge(
    dest: Path = typer.Argument(..., help="Run folder to merge into (created if absent)."),
    sources: list[Path] = typer.Argument(..., help="Run folders of shards to merge."),
    no_export: bool = typer.Option(False, "--no-export", help="Do not rebuild the leaderboard and report."),
) -> None:
    """Merge the stores of several shards (e.g. from --shard i/n on different nodes) into one run.

    Refuses runs whose config changes numbers (frame count, size, seed, options), copies the frames
    (the merged run is self-contained), recomputes set-level metrics (FID) over the merged edits and
    rebuilds the leaderboard; on failure nothing is created."""
    from bench.running.merge import merge_runs

    try:
        added = merge_runs(dest, sources, log=lambda m: console.print(_esc(m), highlight=False))
    except VidEditBenchError as e:
        _fail(str(e))
    for src, n in added:
        console.print(f"merged {_esc(str(src))}: +{n['edits']} edits, +{n['scores']} scores", highlight=False)
    if not no_export:
        try:
            exported = _export(dest)
        except VidEditBenchError as e:
            _fail(str(e))
        for kind, p in exported.items():
            console.print(f"{_esc(kind)}: {_esc(str(p))}", highlight=False)
