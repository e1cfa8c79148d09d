"""The `videditbench` command line (same as `python run_bench.py`), one module per command group.

`run` (run, eval, leaderboard, merge), `listing` (list …, suite validate), `weights` (weights …),
`develop` (new-method), and the study's own group from `bench.study.cli`; `common` holds the root
app, the consoles and one-line failures. The CLI is the top room: it may import every other room,
and nothing imports it. Only typer, rich and the lazy registries are imported at start-up: `--help`
and `list` never import torch. Errors a user can fix are one line, exit code 2.
"""

from __future__ import annotations

import sys

from rich.markup import escape as _esc

from bench.api.errors import VidEditBenchError
from bench.api.redaction import clip_text, redact
from bench.cli import run  # noqa: F401,I001  (commands register on `app` in import order: --help lists them so)
from bench.cli import develop  # noqa: F401,I001
from bench.cli.common import app, err_console
from bench.cli.listing import list_app, suite_app
from bench.cli.weights import weights_app
from bench.study.cli import study_app

app.add_typer(list_app, name="list")
app.add_typer(suite_app, name="suite")
app.add_typer(weights_app, name="weights")
app.add_typer(study_app, name="study")


def main() -> None:
    try:
        app()
    except VidEditBenchError as e:
        err_console.print(f"[bold red]error:[/] {_esc(clip_text(redact(str(e))))}", highlight=False, soft_wrap=True)
        sys.exit(2)
