"""What every command group shares: the root `app`, the consoles, one-line failures, name lists.

Only typer and rich are imported here: `--help` and `list` never import torch.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape as _esc

app = typer.Typer(
    name="videditbench",
    help="Benchmark and evaluation harness for diffusion-based video editing (V2VBench / IVE-Benchmark metrics).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

def _fail(msg: str, code: int = 2) -> None:
    """One line (untrusted text is escaped: rich markup in a path or message is printed as is)."""
    err_console.print(f"[bold red]error:[/] {_esc(str(msg))}", highlight=False, soft_wrap=True)
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
