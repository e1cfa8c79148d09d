"""`videditbench study …`: create a study from a run, serve it to raters, analyse the votes.

Only typer and rich are imported here; the server, numpy/pandas analysis and video encoding load
inside the commands, so `videditbench --help` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape as _esc
from rich.table import Table

study_app = typer.Typer(rich_markup_mode=None, help="Human preference studies: create from a run, serve to raters, analyse the votes.",
                        no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)
DEFAULT_URL = "http://127.0.0.1:8765"


def _fail(msg: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {_esc(str(msg))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _names(values: list[str] | None) -> list[str]:
    return [x.strip() for v in values or [] for x in v.split(",") if x.strip()]


def _questions(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    out: dict[str, str] = {}
    for v in values:
        qid, sep, text = v.partition("=")
        if not sep or not qid.strip().isidentifier() or not text.strip():
            _fail(f"bad --question '{v}'; expected ID=TEXT, e.g. --question realism='Which edit looks more real?'")
        out[qid.strip()] = text.strip()
    return out


def _locate(name: str, results_dir: Path) -> tuple[Path, str]:
    from bench.study.storage import StudyError, find_study, study_name

    try:
        return find_study(name, results_dir), study_name(name)
    except StudyError as e:
        _fail(str(e))
        raise


def _print_links(links: list[tuple[str, str]]) -> None:
    t = Table(title="Rater links (one per person; keep them private)")
    t.add_column("rater")
    t.add_column("link")
    for rater, url in links:
        t.add_row(_esc(str(rater)), _esc(str(url)))
    console.print(t)


@study_app.command("create")
def create(
    run_dir: Path = typer.Argument(..., help="A finished run folder, e.g. results/mini."),
    name: str = typer.Option(..., "--name", "-n", help="Study name (letters, digits, _ - .)."),
    methods: Optional[list[str]] = typer.Option(None, "--methods", "-m", help="Comma-separated methods (default: all with finished edits)."),
    pairs_per_rater: int = typer.Option(20, "--pairs-per-rater", help="Method pairs each rater judges (plus attention checks)."),
    raters: int = typer.Option(3, "--raters", help="Number of rater links to make."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Fixed-baseline mode: every pair is this method vs another."),
    attention_checks: int = typer.Option(2, "--attention-checks", help="Attention-check pairs per rater (source vs a broken clip)."),
    shared_pairs: int = typer.Option(4, "--shared-pairs", help="Of those, pairs every rater judges (for inter-rater agreement)."),
    question: Optional[list[str]] = typer.Option(None, "--question", help="ID=TEXT, repeatable; replaces the three default questions."),
    seed: int = typer.Option(0, "--seed", help="Seed of the pair draw and the left/right order."),
    base_url: str = typer.Option(DEFAULT_URL, "--base-url", help="Server address used in the printed links."),
) -> None:
    """Build a study from the finished edits of a run: random pairs, rater links, browser-playable clips."""
    from bench.study.builder import create_study
    from bench.study.design import DEFAULT_QUESTIONS, DesignError, StudyDesign
    from bench.study.storage import StudyError

    design = StudyDesign(methods=_names(methods), questions=_questions(question) or dict(DEFAULT_QUESTIONS),
                         pairs_per_rater=pairs_per_rater, raters=raters, baseline=baseline,
                         attention_checks=attention_checks, shared_pairs=shared_pairs, seed=seed)
    try:
        info = create_study(run_dir, name, design)
    except (StudyError, DesignError) as e:
        _fail(str(e))
        return
    console.print(f"study [bold]{_esc(name)}[/] in {_esc(str(run_dir / 'results.sqlite'))}: {len(info['raters'])} rater(s), "
                  f"{info['pairs']} pair(s) incl. attention checks; methods: {_esc(', '.join(design.methods))}")
    _print_links([(r, f"{base_url.rstrip('/')}/r/{t}") for r, t in info["raters"]])
    console.print(f"next: videditbench study serve {_esc(name)}")


@study_app.command("serve")
def serve_cmd(
    name: str = typer.Argument(..., help="Study name (or <run_dir>:<name>)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default loopback only)."),
    port: int = typer.Option(8765, "--port", help="TCP port."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Where to look for the study's run."),
) -> None:
    """Serve the study's rater pages until Ctrl-C (votes are saved as they come in)."""
    try:
        from bench.study.server import is_loopback, serve
    except ImportError as e:
        _fail(f"the study server needs FastAPI and uvicorn ({e}); install them with: pip install -e '.[study]'")

    from bench.study.storage import rater_links

    run_dir, study = _locate(name, results_dir)
    if not 0 <= port <= 65535:
        _fail(f"bad --port {port}; expected 0–65535")
    if not is_loopback(host):
        err_console.print(f"[yellow]warning:[/] binding {_esc(host)}: anyone who can reach this address and has a link can vote")

    def ready(url: str) -> None:
        _print_links(rater_links(run_dir, study, url))
        console.print(f"serving study {_esc(study)} of {_esc(str(run_dir))} at {_esc(url)} (Ctrl-C to stop)")

    try:
        serve(run_dir, study, host=host, port=port, on_ready=ready)
    except OSError as e:
        _fail(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port")


@study_app.command("links")
def links_cmd(
    name: str = typer.Argument(...),
    base_url: str = typer.Option(DEFAULT_URL, "--base-url"),
    results_dir: Path = typer.Option(Path("results"), "--results-dir"),
) -> None:
    """Print the rater links of a study again."""
    from bench.study.storage import rater_links

    run_dir, study = _locate(name, results_dir)
    _print_links(rater_links(run_dir, study, base_url))


@study_app.command("results")
def results_cmd(
    name: str = typer.Argument(..., help="Study name (or <run_dir>:<name>)."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir"),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for results.md, votes.csv, votes.jsonl (default <run>/study/<name>)."),
    boot: int = typer.Option(1000, "--boot", help="Bootstrap resamples over raters."),
    level: float = typer.Option(0.95, "--level", help="Confidence level of the intervals."),
) -> None:
    """Per question: Bradley–Terry ranking with CIs, win rates, agreement, and which metrics agree with people."""
    from bench.study.analysis import analyse_store
    from bench.study.export import export_votes
    from bench.study.report import NO_VOTES, _alpha, _f, render_markdown

    run_dir, study = _locate(name, results_dir)
    if not 0.5 <= level < 1:
        _fail(f"bad --level {level}; expected e.g. 0.95")
    res = analyse_store(run_dir, study, n_boot=boot, level=level)
    out = out or run_dir / "study" / study
    paths = export_votes(run_dir, study, out)
    md = out / "results.md"
    md.write_text(render_markdown(res) + "\n", encoding="utf-8")
    console.print(f"study {_esc(study)}: {res.n_votes} votes from {res.n_raters} rater(s)")
    for note in res.notes:
        console.print(f"[yellow]{_esc(note)}[/]")
    for q in res.questions if res.n_votes else []:
        t = Table(title=_esc(f"{q.text}  (Krippendorff α = {_alpha(q)})"))
        for c in ("rank", "method", "θ", f"{int(level * 100)}% CI"):
            t.add_column(c)
        for i, row in q.ranking().iterrows():
            t.add_row(str(i + 1), _esc(str(row["method"])), _f(row["theta"]), _esc(f"[{_f(row['low'])}, {_f(row['high'])}]"))
        console.print(t)
        if q.metrics:
            m = Table(title="metrics vs people")
            for c in ("metric", "Kendall τ", "τ CI", "pairwise agreement", "n"):
                m.add_column(c)
            for a in q.metrics:
                m.add_row(_esc(str(a.metric)), _f(a.tau), _esc(f"[{_f(a.tau_low)}, {_f(a.tau_high)}]"), _f(a.pair_agreement),
                          str(a.pair_n))
            console.print(m)
    if not res.n_votes:
        console.print(NO_VOTES)
    for kind, p in {**paths, "md": md}.items():
        console.print(f"{_esc(str(kind))}: {_esc(str(p))}")
