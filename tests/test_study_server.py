"""The study server over real HTTP on a loopback port: links gate everything (403), a rater cannot
reach another rater's pairs or votes, bad input is rejected, a replayed vote counts once, votes
survive the server, text is escaped; plus the CLI round trip and the report's study section."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import import_or_skip
from study_fixtures import METHODS, XSS_PROMPT, make_study_run

import_or_skip("fastapi")
import_or_skip("uvicorn")

from bench.study.builder import create_study  # noqa: E402
from bench.study.design import BROKEN, SOURCE, StudyDesign  # noqa: E402
from bench.study.storage import StudyError, StudyStore  # noqa: E402


# Loopback only, and never through a proxy from the environment (http_proxy would route 127.0.0.1 out).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _open(req, timeout: float = 10):
    url = req.full_url if isinstance(req, urllib.request.Request) else req
    assert urllib.parse.urlsplit(url).hostname == "127.0.0.1", f"test client may only reach 127.0.0.1, not {url}"
    return _OPENER.open(req, timeout=timeout)


def _get(url: str) -> tuple[int, bytes, dict]:
    try:
        with _open(url) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _post(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with _open(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    run = make_study_run(tmp_path_factory.mktemp("study"))
    info = create_study(run, "s1", StudyDesign(methods=[], pairs_per_rater=4, raters=2, attention_checks=1, seed=1))
    return run, info


def test_design_in_the_store(study):
    run, info = study
    with StudyStore(run) as s:
        pairs = [s.pairs(t) for _, t in info["raters"]]
    for ps in pairs:
        assert len(ps) == 5 and [p["position"] for p in ps] == list(range(5))
        att = [p for p in ps if p["kind"] == "attention"]
        assert len(att) == 1 and {att[0]["left_method"], att[0]["right_method"]} == {SOURCE, BROKEN}
        for p in ps:
            assert (run / p["left_media"]).stat().st_size > 0 and (run / p["source_media"]).is_file()
            if p["kind"] == "pair":
                assert p["left_method"] != p["right_method"] and {p["left_method"], p["right_method"]} <= set(METHODS)


def test_links_gate_everything_and_tokens_stay_apart(study):
    from bench.study.server import running

    run, info = study
    (_, tok1), (_, tok2) = info["raters"]
    with StudyStore(run) as s:
        p1, p2 = s.pairs(tok1), s.pairs(tok2)
    questions = list(StudyDesign(methods=[]).questions)
    answers = {q: "left" for q in questions}
    with running(run, "s1") as url:
        assert url.startswith("http://127.0.0.1:")
        for path in ("/", "/r/", "/r/wrong-token-123456", f"/api/r/wrong-token-123456/state",
                     f"/media/wrong-token-123456/{p1[0]['pair_id']}/left", "/r/<script>"):
            assert _get(url + path)[0] == 403, path
        status, body, headers = _get(f"{url}/r/{tok1}")
        assert status == 200 and "script-src 'self'" in headers["content-security-policy"]
        assert b"<script>window" not in body and headers["referrer-policy"] == "no-referrer"
        # a rater's clip is served, another rater's pair is not
        status, clip, headers = _get(f"{url}/media/{tok1}/{p1[0]['pair_id']}/left")
        assert status == 200 and clip[:4] == b"\x1a\x45\xdf\xa3" and headers["content-type"] == "video/webm"
        assert _get(f"{url}/media/{tok1}/{p2[0]['pair_id']}/left")[0] == 403
        assert _post(f"{url}/api/r/{tok1}/vote", {"pair_id": p2[0]["pair_id"], "answers": answers})[0] == 403
        # validation: unknown choice, missing question, extra field, junk body
        assert _post(f"{url}/api/r/{tok1}/vote", {"pair_id": p1[0]["pair_id"], "answers": {**answers, questions[0]: "both"}})[0] == 422
        assert _post(f"{url}/api/r/{tok1}/vote", {"pair_id": p1[0]["pair_id"], "answers": {questions[0]: "left"}})[0] == 422
        assert _post(f"{url}/api/r/{tok1}/vote", {"pair_id": p1[0]["pair_id"], "answers": answers, "x": 1})[0] == 422
        assert _post(f"{url}/api/r/{tok1}/vote", b"not json")[0] == 422
        # the state carries the prompt as data (the page puts it in with textContent)
        status, state = _post(f"{url}/api/r/{tok1}/vote", {"pair_id": p1[0]["pair_id"], "answers": answers})
        assert status == 200 and state["done"] == 1 and state["total"] == 5
        status, again = _post(f"{url}/api/r/{tok1}/vote", {"pair_id": p1[0]["pair_id"], "answers": answers})
        assert status == 200 and again["done"] == 1  # replayed: counted once
        assert "left_method" not in json.dumps(state)  # raters never see which method is which
        # each token reads only its own votes
        assert json.loads(_get(f"{url}/api/r/{tok1}/votes")[1]) == {p1[0]["pair_id"]: answers}
        assert json.loads(_get(f"{url}/api/r/{tok2}/votes")[1]) == {}
        # resume: the next pair is the first unanswered one
        assert json.loads(_get(f"{url}/api/r/{tok1}/state")[1])["next"]["position"] == 1
    with StudyStore(run) as s:  # acknowledged votes are in the store after the server has gone
        frame = s.votes_frame("s1")
    assert len(frame) == len(questions) and set(frame["pair_id"]) == {p1[0]["pair_id"]}


def test_xss_prompt_is_data_not_markup(study):
    from bench.study.pages import rater_page

    run, info = study
    with StudyStore(run) as s:
        prompts = {p["prompt"] for _, t in info["raters"] for p in s.pairs(t)}
    assert XSS_PROMPT in prompts  # stored verbatim
    page = rater_page('Study <b>"x"</b>', info["raters"][0][1])
    assert "<b>" not in page and "&lt;b&gt;" in page and "innerHTML" not in page


def test_bad_input_is_one_clear_line(tmp_path, study):
    run, _ = study
    with pytest.raises(StudyError, match="already exists"):
        create_study(run, "s1", StudyDesign(methods=[]))
    with pytest.raises(StudyError, match="not in this run"):
        create_study(run, "s2", StudyDesign(methods=["nope"]))
    with pytest.raises(StudyError, match="bad study --name"):
        create_study(run, "../x", StudyDesign(methods=[]))
    with pytest.raises(ValueError, match="--baseline"):
        create_study(run, "s3", StudyDesign(methods=["alpha", "beta"], baseline="gamma"))
    with pytest.raises(StudyError, match="no results.sqlite"):
        create_study(tmp_path, "s4", StudyDesign(methods=[]))


def test_cli_create_results_export_and_report(tmp_path):
    from typer.testing import CliRunner

    from bench.cli.run import _export
    from bench.cli import app

    run = make_study_run(tmp_path, metric_order=("gamma", "beta", "alpha"))
    cli = CliRunner()
    r = cli.invoke(app, ["study", "create", str(run), "--name", "base", "--pairs-per-rater", "6", "--baseline", "alpha"])
    assert r.exit_code == 0, r.output
    with StudyStore(run) as s:  # fixed-baseline mode: every method pair includes the baseline
        pairs = [p for rt in s.raters("base") for p in s.pairs(rt["token"]) if p["kind"] == "pair"]
    assert len(pairs) == 18 and all("alpha" in (p["left_method"], p["right_method"]) for p in pairs)
    r = cli.invoke(app, ["study", "create", str(run), "--name", "pilot", "--pairs-per-rater", "6", "--raters", "3"])
    assert r.exit_code == 0, r.output
    assert r.output.count("http://127.0.0.1:8765/r/") == 3
    with StudyStore(run) as s:
        raters = s.raters("pilot")
        # raters prefer the higher-quality method (gamma > beta > alpha), as the metric does
        rank = {"gamma": 2, "beta": 1, "alpha": 0, SOURCE: 5, BROKEN: -5}
        for rt in raters:
            for p in s.pairs(rt["token"]):
                better = "left" if rank[p["left_method"]] > rank[p["right_method"]] else "right"
                s.put_votes(rt["token"], p["pair_id"], {q: better for q in StudyDesign(methods=[]).questions})
    r = cli.invoke(app, ["study", "results", "pilot", "--results-dir", str(run.parent), "--boot", "100"])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["study", "results", f"{run}:pilot", "--boot", "100"])
    assert r.exit_code == 0, r.output
    out = run / "study" / "pilot"
    md = (out / "results.md").read_text()
    assert md.index("follows the instruction") < md.index("temporally consistent") < md.index("preserves the source")
    assert "| 1 | gamma |" in md and "| 2 | beta |" in md
    # shared pairs were rated by all three raters; alpha is undefined when every answer is the same
    assert md.count("Krippendorff's α = – (undefined: every answer the same)") == 3
    assert len((out / "votes.csv").read_text().splitlines()) == 1 + 3 * 8 * 3  # header + raters×pairs×questions
    rec = [json.loads(x) for x in (out / "votes.jsonl").read_text().splitlines()]
    assert len(rec) == 72 and {x["choice"] for x in rec} <= {"left", "right"}
    # the report gets the study section, and the metric that agrees with the votes shows 1.00
    paths = _export(run)
    html = Path(paths["report"]).read_text()
    assert "id='study'" in html and "Study pilot" in html and "quality ↑" in html
    study_md = (Path(paths["report"]).parent / "study.md").read_text()
    assert "No votes yet" in study_md[:study_md.index("## Human study: pilot")]  # the baseline study
    pilot = study_md[study_md.index("## Human study: pilot"):]
    assert "| quality ↑ | 1.00 |" in pilot and "| 1.00 | 18 |" in pilot  # tau 1, agreement 1 over 18 votes
    r = cli.invoke(app, ["study", "results", "nosuch", "--results-dir", str(run.parent)])
    assert r.exit_code == 2 and "no study named 'nosuch'" in r.output


def test_report_without_a_study_is_unchanged(tmp_path):
    from bench.study.report import study_section

    run = make_study_run(tmp_path)
    assert study_section(run) == ("", "")
    import sqlite3

    tables = {r[0] for r in sqlite3.connect(run / "results.sqlite").execute("SELECT name FROM sqlite_master")}
    assert "studies" not in tables  # reading for the report never adds tables


def test_serve_command_binds_loopback_and_a_kill_loses_no_acknowledged_vote(tmp_path):
    """`videditbench study serve` in its own process; after the vote is acknowledged the server is
    killed with SIGKILL, and the vote is in the store."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from bench.study.server import bind

    run = make_study_run(tmp_path)
    info = create_study(run, "durable", StudyDesign(methods=[], pairs_per_rater=2, raters=1, attention_checks=0))
    token = info["raters"][0][1]
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "study", "serve", "durable", "--results-dir",
                             str(run.parent), "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        while not _listening(port):
            assert proc.poll() is None and time.monotonic() - t0 < 30, "server did not start"
            time.sleep(0.1)
        assert _get(url + "/")[0] == 403
        with StudyStore(run) as s:
            pid = s.pairs(token)[0]["pair_id"]
        answers = {q: "right" for q in StudyDesign(methods=[]).questions}
        status, state = _post(f"{url}/api/r/{token}/vote", {"pair_id": pid, "answers": answers})
        assert status == 200 and state["done"] == 1
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        out = proc.communicate(timeout=10)[0]
    assert f"http://127.0.0.1:{port}/r/{token}" in out  # the links were printed
    with StudyStore(run) as s:
        assert s.votes_of(token) == {pid: answers}
