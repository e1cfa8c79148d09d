"""`videditbench new-method NAME`: commands for plug-in authors."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape as _esc

from bench.api.errors import VidEditBenchError
from bench.cli.common import _fail, app, console


@app.command("new-method")
def new_method(
    name: str = typer.Argument(..., help="Method name, e.g. my-editor."),
    dest: Path = typer.Option(Path("."), "--dest", help="Project root to write methods/ and tests/ into."),
) -> None:
    """Write a working adapter skeleton (methods/<name>.py) and its test."""
    from bench.cli.scaffold import write_method_scaffold

    try:
        for p in write_method_scaffold(name, dest):
            console.print(f"wrote {_esc(str(p))}", highlight=False)
    except VidEditBenchError as e:
        _fail(str(e))
