"""`videditbench list …` and `videditbench suite validate`: what is registered, shipped and valid."""

from __future__ import annotations

import typer
from rich.markup import escape as _esc
from rich.table import Table

from bench.api.errors import VidEditBenchError
from bench.cli.common import _fail, console

list_app = typer.Typer(rich_markup_mode=None, help="List registered methods, metrics, suites, shipped configs.", no_args_is_help=True)
suite_app = typer.Typer(rich_markup_mode=None, help="Inspect and validate suites.", no_args_is_help=True)


JSON_HELP = "Print JSON (one object per entry) instead of a table."


def _print_json(rows: list[dict]) -> None:
    import json

    typer.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))


@list_app.command("methods")
def list_methods(details: bool = typer.Option(False, "--details", help="Also show tasks, description and presets."),
                 as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Registered editing methods (no module is imported); --details shows tasks, description, presets."""
    from bench.api.catalog import METHODS

    if as_json:
        rows = []
        for n in METHODS.names():
            e = METHODS.entry(n)
            row = {"name": n, "target": e.target, "origin": e.origin}
            if details:
                row.update(zip(("tasks", "description", "presets"), _method_details(n)))
            rows.append(row)
        return _print_json(rows)
    t = Table(title="methods")
    for c in ("name",) + (("tasks", "description", "presets") if details else ("target", "origin")):
        t.add_column(c, overflow="fold")
    for n in METHODS.names():
        e = METHODS.entry(n)
        if not details:
            t.add_row(n, e.target, e.origin)
            continue
        t.add_row(n, *_method_details(n))
    console.print(t)


def _method_details(name: str) -> list[str]:
    """tasks, description, presets of a method; adapter modules import no torch at import time."""
    from bench.api.catalog import METHODS
    from bench.api.method import load_preset_file

    try:
        cls = METHODS.get(name)
        tasks, desc = "/".join(sorted(cls.tasks)), cls.description
        presets = cls.available_presets()
    except Exception as ex:  # noqa: BLE001
        tasks, desc = "?", f"unavailable: {type(ex).__name__}: {ex}"
        presets = load_preset_file(name)
    def short(v: object) -> str:
        text = repr(v)
        return text if len(text) <= 24 else text[:20] + "…'"

    shown = "\n".join(f"{p.name}: " + ", ".join(f"{k}={short(v)}" for k, v in p.options.items()) for p in presets.values())
    return [tasks, desc, shown or "-"]


@list_app.command("metrics")
def list_metrics(details: bool = typer.Option(False, "--details", help="Import each metric to show its metadata."),
                 as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Registered metrics; --details shows higher-is-better, range, needs and level."""
    from bench.api.catalog import METRICS

    if as_json:
        rows = []
        for n in METRICS.names():
            e = METRICS.entry(n)
            row: dict = {"name": n, "target": e.target, "origin": e.origin}
            if details:
                try:
                    cls = METRICS.get(n)
                    row.update(higher_is_better=bool(cls.higher_is_better), value_range=list(cls.value_range),
                               needs=sorted(cls.needs), level=cls.level, variant_options=dict(cls.defaults))
                except Exception as ex:  # noqa: BLE001
                    row["unavailable"] = f"{type(ex).__name__}: {ex}"
            rows.append(row)
        return _print_json(rows)
    t = Table(title="metrics")
    notes: list[tuple[str, str]] = []
    for c in ("name",) + (("↑/↓", "range", "needs", "level", "variant options") if details else ("target",)):
        t.add_column(c, overflow="fold")
    for n in METRICS.names():
        e = METRICS.entry(n)
        row = [n] if details else [n, e.target]
        if details:
            try:
                cls = METRICS.get(n)
                row += ["↑" if cls.higher_is_better else "↓", str(cls.value_range), ",".join(sorted(cls.needs)) or "-",
                        cls.level, ", ".join(f"{k}={v}" for k, v in cls.defaults.items())]
                more = getattr(cls, "details_text", None)  # e.g. the judge's question templates
                if callable(more):
                    notes.append((n, more()))
            except Exception as ex:  # noqa: BLE001
                row += ["?", "", "", "", f"unavailable: {type(ex).__name__}: {ex}"]
        t.add_row(*row)
    console.print(t)
    for n, text in notes:
        console.print(f"\n[bold]{n}[/bold]")
        console.print(text, markup=False, highlight=False, soft_wrap=True)


@list_app.command("configs")
def list_configs_cmd(details: bool = typer.Option(False, "--details", help="Also the method settings each config applies."),
                     as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Shipped run configs (`--config NAME`) reproducing the seed papers' tables."""
    from bench.presets import list_presets, method_preset_of

    if as_json:
        return _print_json([{"name": p.name, "reproduces": p.description, "method_preset": method_preset_of(p.path)}
                            for p in list_presets()])
    t = Table(title="configs")
    t.add_column("name")
    t.add_column("reproduces", overflow="fold")
    t.add_column("method presets")
    for p in list_presets():
        t.add_row(p.name, p.description, method_preset_of(p.path) or "–")
    console.print(t)
    if details:
        _config_method_details(list_presets())


def _config_method_details(presets) -> None:
    """Per config with method presets: each registered method's preset options, or the flag."""
    from bench.api.catalog import METHODS
    from bench.presets import flagged_label, method_preset_of, method_settings

    for p in presets:
        name = method_preset_of(p.path)
        if not name:
            continue
        console.print(f"\n[bold]{_esc(p.name)}[/bold]: method preset '{_esc(name)}'")
        for s in method_settings(name, list(METHODS.names())):
            if s.preset:
                opts = ", ".join(f"{k}={v}" for k, v in s.options.items())
                console.print(f"  {s.method}: preset {s.preset}: {opts}", markup=False, highlight=False, soft_wrap=True)
            elif s.flagged:
                console.print(f"  {s.method}: no '{name}' preset (FLAGGED: runs with its defaults as "
                              f"'{flagged_label(s.method, name)}')", markup=False, highlight=False, soft_wrap=True)


@list_app.command("suites")
def list_suites_cmd(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Embedded suites."""
    from bench.suites import list_suites

    if as_json:
        return _print_json([{"name": n} for n in list_suites()])
    for n in list_suites():
        console.print(n)


@suite_app.command("show")
def suite_show(suite: str = typer.Argument(..., help="Suite name or manifest path."),
               as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """The samples of a suite: ids (what `eval` folders are named after), task, edit type, prompt."""
    from bench.suites import load_suite

    try:
        s = load_suite(suite)
    except VidEditBenchError as e:
        _fail(str(e))
    rows = [{"sample_uid": x.uid, "video_id": x.video_id, "edit_id": x.edit_id, "task": x.task,
             "edit_type": x.edit_type, "category": x.category, "target_prompt": x.target_prompt,
             "reference": bool(x.reference), "mask": bool(x.mask)} for x in s.samples]
    if as_json:
        return _print_json(rows)
    t = Table(title=f"{s.name}: {len(rows)} samples (eval layout: <dir>/<video_id>/<edit_id>)")
    for c in ("video_id", "edit_id", "task", "edit_type", "category", "target_prompt"):
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(str(r[c] if r[c] is not None else "-") for c in ("video_id", "edit_id", "task", "edit_type",
                                                                       "category", "target_prompt")))
    console.print(t, markup=False, highlight=False)


@suite_app.command("validate")
def suite_validate(suite: str = typer.Argument(..., help="Suite name or manifest path."),
                   load: bool = typer.Option(False, "--load", help="Also decode every video and mask.")) -> None:
    """Validate a suite manifest (and optionally load every sample)."""
    from bench.suites import load_suite

    try:
        s = load_suite(suite)
        n_loaded = 0
        if load:
            for sample in s.samples:
                try:
                    s.load(sample)
                except VidEditBenchError:
                    raise
                except Exception as e:  # noqa: BLE001  (a file no reader handles: one line naming the sample)
                    _fail(f"sample {sample.uid}: cannot load it ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
                n_loaded += 1
    except VidEditBenchError as e:
        _fail(str(e))
    by_task: dict[str, int] = {}
    for sample in s.samples:
        by_task[sample.task] = by_task.get(sample.task, 0) + 1
    console.print(f"{_esc(s.name)}: {len(s.samples)} samples ({', '.join(f'{k}: {v}' for k, v in sorted(by_task.items()))}) — valid"
                  + (f"; loaded {n_loaded}" if load else ""))
