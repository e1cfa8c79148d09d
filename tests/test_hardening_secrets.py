"""Issue 25, items 2 and 5: the judge's API key never leaves for another host and never lands in a
message, row or file; `timeout` is a total deadline; replies and stored answers are capped. Fake
OpenAI-compatible servers on 127.0.0.1."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

import bench.cli as cli
from metrics.vlm_judge.backends import JudgeRequest, JudgeTransportError
from metrics.vlm_judge.openai_api import MAX_ANSWER_CHARS, OpenAIJudge


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 whose POST handler is `respond(handler, body)`."""

    def __init__(self, respond):
        self.seen: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.seen.append({"auth": self.headers.get("Authorization"), "path": self.path})
                try:
                    respond(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    made: list[_Server] = []
    yield lambda respond: made.append(_Server(respond)) or made[-1]
    for s in made:
        s.close()


def _reply(h, status: int, text: bytes, headers: dict | None = None):
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(text)))
    h.end_headers()
    h.wfile.write(text)


def _chat(answer: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()


@pytest.fixture
def key(monkeypatch):
    k = "sk-test-" + secrets.token_hex(12)
    monkeypatch.setenv("VEB_TEST_JUDGE_KEY", k)
    return k


def test_redirects_to_another_host_never_carry_the_key(servers, key):
    other = servers(lambda h, b: _reply(h, 200, _chat("YES")))
    for code in (301, 302, 303, 307, 308):
        first = servers(lambda h, b, c=code: _reply(h, c, b"", {"Location": f"http://localhost:{other.port}/v1/chat/completions"}))
        judge = OpenAIJudge(f"http://127.0.0.1:{first.port}/v1", "m", api_key_env="VEB_TEST_JUDGE_KEY", timeout=5,
                            http_retries=0)
        with pytest.raises(JudgeTransportError, match="redirect") as e:
            judge.generate([JudgeRequest("hi")])
        assert "\n" not in str(e.value) and key not in str(e.value)
        assert first.seen[0]["auth"] == f"Bearer {key}"
    assert other.seen == [], "the API key went to another host"


def test_a_server_echoing_the_key_never_puts_it_into_rows_files_or_the_console(servers, key, tmp_path):
    def echo(h, body):
        text = f"bad request; you sent Authorization: {h.headers.get('Authorization')}".encode()
        if b"Is there a dog" in body:  # a 200 answer echoing it too
            return _reply(h, 200, _chat(text.decode() + " YES"))
        _reply(h, 400, text)

    srv = servers(echo)
    clip = tmp_path / "clip"
    clip.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(clip / f"{i:03d}.png")
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "videos": [{"id": "v", "source": "clip", "source_prompt": "a [cat]",
                                                               "edits": [{"id": "e", "edit_type": "foreground", "target_prompt": "a [dog]"}]}]}))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"metric_options": {"vlm_judge": {
        "backend": "openai", "base_url": f"http://127.0.0.1:{srv.port}/v1", "model": "j", "http_retries": 0,
        "api_key_env": "VEB_TEST_JUDGE_KEY", "parse_retries": 0}}}))
    res = CliRunner().invoke(cli.app, ["run", "--suite", str(suite), "--config", str(cfg), "--methods", "source",
                                       "--metrics", "vlm_judge", "--num-frames", "4", "--size", "32", "--device", "cpu",
                                       "--results-dir", str(tmp_path / "results"), "--name", "r"])
    assert res.exit_code in (0, 1), res.output
    assert srv.seen and all(s["auth"] == f"Bearer {key}" for s in srv.seen)
    assert key not in res.output
    run = tmp_path / "results" / "r"
    files = [p for p in run.rglob("*") if p.is_file()]
    assert any(p.name == "leaderboard.md" for p in files) and any(p.name.startswith("results.sqlite") for p in files)
    for p in files:
        assert key.encode() not in p.read_bytes(), f"the key is in {p}"
    assert b"***" in (run / "results.sqlite").read_bytes() or any(b"***" in p.read_bytes() for p in files)


def test_external_env_secrets_are_not_stored_or_printed(tmp_path):
    import sys

    from bench.api.catalog import METHODS
    from bench.running.runner import describe_exception
    from bench.types import Video

    token = "tok-" + secrets.token_hex(10)
    script = tmp_path / "leak.py"
    script.write_text("import os, sys\nprint('using', os.environ['MY_SERVICE_TOKEN'])\nsys.exit(3)\n")
    m = METHODS.get("external")(command=[sys.executable, str(script), "{output}"], env={"MY_SERVICE_TOKEN": token,
                                "CUDA_VISIBLE_DEVICES": "0"}, log_dir=str(tmp_path / "logs"))
    assert token not in json.dumps(m.config()) and m.config()["env"] == {"CUDA_VISIBLE_DEVICES": "0"}
    with pytest.raises(Exception) as e:
        m.edit(Video(np.zeros((2, 8, 8, 3), np.uint8), fps=8.0))
    assert token not in describe_exception(e.value) and "***" in describe_exception(e.value)


# --- item 5: deadlines and caps --------------------------------------------------------------------
def test_timeout_is_a_total_deadline_against_a_trickling_server(servers):
    def trickle(h, body):
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(30):  # one header byte per 0.2 s: a per-read timeout never fires
            h.wfile.write(b"X")
            h.wfile.flush()
            time.sleep(0.2)

    srv = servers(trickle)
    judge = OpenAIJudge(f"http://127.0.0.1:{srv.port}/v1", "m", api_key_env="", timeout=1.0, http_retries=0)
    t0 = time.monotonic()
    with pytest.raises(JudgeTransportError, match="timed out after 1s"):
        judge.generate([JudgeRequest("hi")])
    assert time.monotonic() - t0 < 3.0


def test_huge_replies_are_refused_and_long_answers_cut(servers):
    def huge(h, body):
        h.send_response(200)
        h.end_headers()  # no Content-Length: streamed until the client stops
        chunk = b"x" * 2**20
        for _ in range(64):
            h.wfile.write(chunk)

    srv = servers(huge)
    judge = OpenAIJudge(f"http://127.0.0.1:{srv.port}/v1", "m", api_key_env="", timeout=10, http_retries=0)
    with pytest.raises(JudgeTransportError, match="limit"):
        judge.generate([JudgeRequest("hi")])
    long = servers(lambda h, b: _reply(h, 200, _chat("Y" * 500_000)))
    judge = OpenAIJudge(f"http://127.0.0.1:{long.port}/v1", "m", api_key_env="", timeout=10, http_retries=0)
    text = judge.generate([JudgeRequest("hi")])[0].text
    assert MAX_ANSWER_CHARS <= len(text) < MAX_ANSWER_CHARS + 100


def test_adapter_error_messages_are_capped_when_stored_and_printed():
    from bench.api.redaction import MAX_TEXT_CHARS
    from bench.running.runner import describe_exception

    msg = describe_exception(RuntimeError("boom " * 1_000_000))
    assert len(msg) < MAX_TEXT_CHARS + 200


def test_what_counts_as_a_secret():
    from bench.api.redaction import is_secret

    assert is_secret("MY_API_KEY", "abc123456") and is_secret("X", "sk-abcdef0123") and is_secret("HF_TOKEN", "hf_x")
    assert not is_secret("HF_TOKEN_PATH", "/home/me/.token") and not is_secret("CUDA_VISIBLE_DEVICES", "0")
