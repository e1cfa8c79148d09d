"""Issue 25, items 6 and 9: untrusted text is escaped in every Markdown output (headings too), and
Rich markup in user text never crashes a command."""

from __future__ import annotations

import sqlite3

from typer.testing import CliRunner

from bench.cli import app
from bench.study.design import BROKEN, StudyDesign
from bench.study.storage import StudyStore
from study_fixtures import make_study_run

HOSTILE = "<img src=x onerror=alert(1)>x[/]"


def _hostile_run(tmp_path):
    run = make_study_run(tmp_path)
    con = sqlite3.connect(run / "results.sqlite")
    with con:
        con.execute("UPDATE edits SET method = ? WHERE method = 'alpha'", (HOSTILE,))
        con.execute("UPDATE scores SET method = ? WHERE method = 'alpha'", (HOSTILE,))
        con.execute("UPDATE scores SET metric = ?, variant_label = ?", ("quality" + HOSTILE, "model=" + HOSTILE))
    con.close()
    return run


def test_leaderboard_markdown_escapes_headings_and_cells(tmp_path):
    run = _hostile_run(tmp_path)
    res = CliRunner().invoke(app, ["leaderboard", str(run), "--no-report"])
    assert res.exit_code == 0, res.output
    md = (run / "leaderboard" / "leaderboard.md").read_text()
    assert "### " in md and "onerror" in md  # the text is there, as text
    assert "<img" not in md, [ln for ln in md.splitlines() if "<img" in ln][:3]


def test_study_markdown_escapes_labels_and_commands_survive_markup(tmp_path):
    run = _hostile_run(tmp_path)
    cli = CliRunner()
    r = cli.invoke(app, ["study", "create", str(run), "--name", "pilot", "--pairs-per-rater", "6", "--raters", "2"])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    with StudyStore(run) as s:
        for rt in s.raters("pilot"):
            for p in s.pairs(rt["token"]):
                side = "right" if p["left_method"] == BROKEN else "left"
                s.put_votes(rt["token"], p["pair_id"], {q: side for q in StudyDesign(methods=[]).questions})
    r = cli.invoke(app, ["study", "results", f"{run}:pilot", "--boot", "20"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert HOSTILE in r.output  # printed as text, not parsed as markup
    md = (run / "study" / "pilot" / "results.md").read_text()
    assert "onerror" in md and "<img" not in md
    r = cli.invoke(app, ["study", "results", "pilot[/]", "--results-dir", str(run.parent)])
    assert r.exit_code == 2 and "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    assert "pilot[/]" in r.output
    for cmd in (["study", "links", f"{run}:pilot"], ["study", "status", f"{run}:pilot"]):
        r = cli.invoke(app, cmd)
        assert r.exception is None or isinstance(r.exception, SystemExit), (cmd, repr(r.exception))


# --- item 8: the study server checks the token and the body size before reading a body ---------------
def _post_headers_only(base: str, path: str, length: int) -> bytes:
    """Send a POST's headers announcing `length` bytes, never the body; the server's answer (or b'')."""
    import socket
    import urllib.parse

    u = urllib.parse.urlsplit(base)
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {length}\r\n\r\n".encode() + b'{"pair_id": "')
        s.settimeout(3)
        try:
            return s.recv(4096)
        except (TimeoutError, OSError):
            return b""


def test_study_server_answers_before_reading_a_body(tmp_path):
    import pytest

    pytest.importorskip("uvicorn")
    from bench.study.builder import create_study
    from bench.study.server import running

    run = make_study_run(tmp_path)
    info = create_study(run, "s1", StudyDesign(methods=[], pairs_per_rater=4, raters=1, attention_checks=1, seed=1))
    token = info["raters"][0][1]
    with running(run, "s1") as base:
        wrong = _post_headers_only(base, "/api/r/WRONGTOKEN123/vote", 200 * 2**20)
        assert wrong.startswith(b"HTTP/1.1 403"), wrong[:80]
        big = _post_headers_only(base, f"/api/r/{token}/vote", 200 * 2**20)
        assert big.startswith(b"HTTP/1.1 413"), big[:80]
