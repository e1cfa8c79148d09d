"""What every command group shares: the root `app`, the consoles, one-line failures, name lists.

Only typer and rich are imported here: `--help` and `list` never import torch.
"""

from __future__ import annotations

import os
import sys

import typer
import typer.core
from rich.console import Console
from rich.markup import escape as _esc

from bench.api.redaction import clip_text, redact


def _piped_width(stream: object) -> int | None:
    """A terminal keeps its width; piped or redirected output gets no folding (names and numbers
    must survive `| grep` and files), unless COLUMNS says otherwise."""
    if getattr(stream, "isatty", lambda: False)():
        return None
    return int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else 4000


def _flag_type(self: typer.core.TyperOption, ctx: object) -> str | None:
    """On/off flags take no value: show no `<bool>` type in --help."""
    return None if getattr(self, "is_bool_flag", False) else _option_type(self, ctx)


_option_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

#: help texts are plain text: `pip install -e '.[ray]'` must print its brackets
HELP_MARKUP = None

app = typer.Typer(
    name="videditbench",
    help="Benchmark and evaluation harness for diffusion-based video editing (V2VBench / IVE-Benchmark metrics).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=HELP_MARKUP,
)
console = Console(width=_piped_width(sys.stdout))
err_console = Console(stderr=True, width=_piped_width(sys.stderr))


def _version(value: bool) -> None:
    if value:
        import bench

        console.print(f"videditbench {bench.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Benchmark and evaluation harness for diffusion-based video editing (V2VBench / IVE-Benchmark metrics)."""

def _fail(msg: str, code: int = 2) -> None:
    """One line (untrusted text is escaped: rich markup in a path or message is printed as is)."""
    err_console.print(f"[bold red]error:[/] {_esc(clip_text(redact(str(msg))))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _split(values: list[str] | None) -> list[str]:
    """Comma-separated names; `name@k=v,k2=v2` keeps its options together."""
    out: list[str] = []
    for v in values or []:
        for x in (x.strip() for x in v.split(",")):
            if not x:
                continue
            if "=" in x and "@" not in x and out and "@" in out[-1]:
                out[-1] += "," + x
            else:
                out.append(x)
    return out
