"""`videditbench weights list|download|verify`: the weights registry from the command line."""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape as _esc
from rich.table import Table

from bench.api.errors import VidEditBenchError
from bench.cli.common import _fail, _split, console

weights_app = typer.Typer(rich_markup_mode=None, help="Model weights: list, download, verify.", no_args_is_help=True)


@weights_app.command("list")
def weights_list() -> None:
    """Every weight spec: present or missing, size, licence, source, what uses it."""
    from bench.weights import all_specs, locate, size_on_disk

    t = Table(title="weights")
    for c in ("name", "status", "size", "licence", "source", "used by"):
        t.add_column(c, overflow="fold")
    for spec in all_specs():
        path = locate(spec.name)
        status = "[green]present[/]" if path else "[red]missing[/]"
        size = f"{size_on_disk(path) / 2**20:.0f} MB" if path else (f"~{spec.size_mb:.0f} MB" if spec.size_mb else "?")
        t.add_row(spec.name, status, size, spec.licence, f"{spec.kind}:{spec.source}", ", ".join(spec.used_by))
    console.print(t)
    console.print("Get one with: videditbench weights download NAME   (or --for METRIC_OR_METHOD); "
                  "override with $VIDEDITBENCH_WEIGHT_<NAME>=/local/path")


@weights_app.command("download")
def weights_download(
    names: Optional[list[str]] = typer.Argument(None, help="Weight names (see `weights list`)."),
    for_: Optional[list[str]] = typer.Option(None, "--for", help="Everything a metric or method uses."),
    offline: bool = typer.Option(False, "--offline"),
) -> None:
    """Download weights into the standard caches (HF cache for hub repos, the project cache for files)."""
    from bench.weights import all_specs, download, get_spec

    wanted = _split(names)
    for target in _split(for_):
        users = [s.name for s in all_specs() if target in s.used_by]
        if not users:
            _fail(f"nothing in the weights registry is used by '{target}'")
        wanted += users
    if not wanted:
        _fail("name weights to download, or use --for METRIC_OR_METHOD; see `videditbench weights list`")
    try:
        for n in dict.fromkeys(wanted):
            get_spec(n)
    except VidEditBenchError as e:
        _fail(str(e))
    for n in dict.fromkeys(wanted):
        spec = get_spec(n)
        try:
            console.print(f"{n}: {download(n, offline=True if offline else None)}", soft_wrap=True, highlight=False, markup=False)
        except VidEditBenchError as e:
            _fail(str(e))
        except Exception as e:  # noqa: BLE001  (network errors)
            first = (str(e).splitlines() or [""])[0]
            _fail(f"download of '{n}' from {spec.source} failed: {type(e).__name__}: {first}; or get the file/folder "
                  f"another way and point ${spec.env_var} at its local path")


@weights_app.command("verify")
def weights_verify(names: Optional[list[str]] = typer.Argument(None)) -> None:
    """Check presence (and sha256 where known) of weights."""
    from bench.weights import all_specs, verify

    names = _split(names) or [s.name for s in all_specs()]
    bad = 0
    try:
        for n in names:
            ok, msg = verify(n)
            bad += not ok
            console.print(f"{'[green]ok[/]' if ok else '[red]!![/]'} {_esc(n)}: {_esc(str(msg))}", highlight=False)
    except VidEditBenchError as e:
        _fail(str(e))
    raise typer.Exit(1 if bad else 0)
