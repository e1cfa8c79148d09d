"""vlm_judge backend=openai against a real OpenAI-compatible HTTP server on 127.0.0.1 (scripted answers).

The server answers by question: well-formed answers, malformed ones (retried, then error rows), one
HTTP 429 and one request that outlives the client's timeout. A re-run is answered from the cache.
"""

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

from bench.store.judge_cache import JudgeCache
from bench.running.runner import RunConfig, run_benchmark
from bench.store.results import ResultStore

GOOD_EV = "Prompt Following: 3 - good\nEdit Quality: 2 - fine\nBackground Consistency: 1 - changed\nTotal Score: 6"


class _Script:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # {"text", "images", "auth", "status"}
        self.timed_out_once = False

    def answer(self, text: str) -> tuple[int, str | None, float]:
        """(HTTP status, answer text, seconds to wait first)."""
        with self.lock:
            first = len(self.requests) == 1
        if first:
            return 429, None, 0.0
        if "Total Score" in text:  # editverse
            if "a dog sits on a sofa" in text:
                return 200, GOOD_EV, 0.0
            if "watercolor" in text:
                if "could not be read" in text:  # the retry with the format reminder
                    return 200, "Prompt Following: 1\nEdit Quality: 1\nBackground Consistency: 1\nTotal Score: 3", 0.0
                return 200, "Looks fine to me.", 0.0
            return 200, "I refuse.", 0.0
        if "style of watercolor" in text:
            with self.lock:
                slow, self.timed_out_once = not self.timed_out_once, True
            return 200, "NO", 2.0 if slow else 0.0
        if "Is there a dog" in text or "background of the video a beach?" in text:
            return 200, "YES", 0.0
        if "Is there a cat" in text or "background of the video a cat?" in text:
            return 200, "No.", 0.0
        if "a) a cat\nb) a dog" in text:
            return 200, "b) a dog", 0.0
        if "b) watercolor" in text:
            return 200, "B", 0.0
        return 200, "I cannot tell from these frames.", 0.0


def _handler(script: _Script):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):  # keep test output quiet
            pass

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            parts = body["messages"][0]["content"]
            text = "".join(p.get("text", "") for p in parts if p["type"] == "text")
            images = [p for p in parts if p["type"] == "image_url"]
            rec = {"text": text, "images": len(images), "auth": self.headers.get("Authorization"),
                   "path": self.path, "model": body["model"]}
            with script.lock:
                script.requests.append(rec)
            status, answer, wait = script.answer(text)
            rec["status"], rec["wait"] = status, wait
            time.sleep(wait)
            try:
                if status != 200:
                    self.send_response(status)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "rate limited"}}')
                    return
                out = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}],
                                  "usage": {"prompt_tokens": 100 + images.__len__(), "completion_tokens": 7}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (the timeout case)
                pass

    return H


@pytest.fixture
def judge_server():
    script = _Script()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", script
    server.shutdown()
    server.server_close()


def _suite(tmp_path: Path) -> Path:
    clip = tmp_path / "clip"
    clip.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(clip / f"{i:03d}.png")
    data = {"name": "judged", "preprocess": {"num_frames": 6, "size": 32}, "videos": [
        {"id": "v1", "source": "clip", "source_prompt": "a [cat] sits on a sofa", "edits": [
            {"id": "swap", "edit_type": "foreground", "target_prompt": "a [dog] sits on a sofa"},
            {"id": "style", "edit_type": "style", "target_prompt": "a cat sits on a sofa, [watercolor] painting"},
            {"id": "bg", "edit_type": "background", "target_prompt": "a cat sits on a [beach]"},
        ]}]}
    p = tmp_path / "judged.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _values(store: ResultStore) -> dict[tuple[str, str, str], tuple[str, float | None, str | None]]:
    df = store.scores_frame()
    df = df[df.metric_family == "vlm_judge"]
    proto = df.variant_label.str.extract(r"protocol=(\w+)")[0]
    return {(p, e, m): (s, None if v != v else v, msg)
            for p, e, m, s, v, msg in zip(proto, df.edit_id, df.metric, df.status, df.value, df.message)}


def test_openai_backend_scores_retries_errors_cache_and_never_stores_the_key(tmp_path, judge_server, monkeypatch):
    url, script = judge_server
    key = "sk-test-" + secrets.token_hex(12)
    monkeypatch.setenv("VEB_TEST_JUDGE_KEY", key)
    opts = {"backend": "openai", "base_url": url, "model": "judge-test", "api_key_env": "VEB_TEST_JUDGE_KEY",
            "timeout": 0.5, "backoff": 0.01, "http_retries": 2}
    cfg = RunConfig(suite=str(_suite(tmp_path)), methods=["source"], results_dir=str(tmp_path / "results"),
                    metrics=["vlm_judge@protocol=five_acc", "vlm_judge@protocol=editverse"], run_name="api",
                    device="cpu", metric_options={"vlm_judge": opts})
    logs: list[str] = []
    run_benchmark(cfg, log=logs.append)

    store = ResultStore(cfg.run_dir)
    v = _values(store)
    # FiVE-Acc: swap answered right everywhere; style: yes/no wrong, multiple choice right
    assert v[("five_acc", "swap", "vlm_judge")][:2] == ("ok", 1.0)
    assert [v[("five_acc", "style", m)][1] for m in ("vlm_judge_yes_no", "vlm_judge_multi_choice", "vlm_judge_union",
                                                     "vlm_judge_inter", "vlm_judge")] == [0.0, 1.0, 1.0, 0.0, 0.5]
    # EditVerse: 3 pairs with the same scores; a malformed first answer recovered on the retry
    assert [v[("editverse", "swap", m)][1] for m in ("vlm_judge", "vlm_judge_prompt_following", "vlm_judge_edit_quality",
                                                     "vlm_judge_background_consistency")] == [6.0, 3.0, 2.0, 1.0]
    assert v[("editverse", "style", "vlm_judge")][:2] == ("ok", 3.0)
    # never parseable: error rows carrying the raw text, after exactly 1 + 2 tries
    st, _, msg = v[("five_acc", "bg", "vlm_judge")]
    assert st == "error" and "multi_choice after 3 tries" in msg and "I cannot tell from these frames." in msg
    st, _, msg = v[("editverse", "bg", "vlm_judge")]
    assert st == "error" and "I refuse." in msg
    bg_mc = [r for r in script.requests if "b) a beach" in r["text"]]
    assert len(bg_mc) == 3 and "only one letter" not in bg_mc[0]["text"] and "exactly one letter" in bg_mc[1]["text"]
    assert len([r for r in script.requests if "Total Score" in r["text"] and "a cat sits on a beach" in r["text"]]) == 9
    # the 429 and the timeout were retried, not errors; frames went along (4 for FiVE, 2 per EditVerse pair)
    assert [r["status"] for r in script.requests].count(429) == 1 and script.timed_out_once
    assert len([r for r in script.requests if "style of watercolor" in r["text"]]) == 2  # timed out, then answered
    assert any("timed out after 0.5s" in line for line in logs) and any("HTTP 429" in line for line in logs)
    assert {r["images"] for r in script.requests if "Total Score" in r["text"]} == {2}
    assert {r["images"] for r in script.requests if "Total Score" not in r["text"]} == {4}
    assert {r["path"] for r in script.requests} == {"/v1/chat/completions"} and {r["model"] for r in script.requests} == {"judge-test"}
    assert {r["auth"] for r in script.requests} == {f"Bearer {key}"}

    # the generated questions and raw answers are stored with the score
    row = store.conn.execute("SELECT details FROM scores WHERE metric='vlm_judge' AND sample_uid LIKE '%/swap' "
                             "AND variant_label LIKE '%five_acc%'").fetchone()
    details = json.loads(row[0])
    qs = {q["qid"]: q for q in details["questions"]}
    assert qs["target_yes_no"]["question"] == "Is there a dog in the video?" and qs["target_yes_no"]["answers"] == ["YES"]
    assert details["frames"] == [0, 2, 3, 5] and details["usage"]["calls"] >= 3
    err = store.conn.execute("SELECT details FROM scores WHERE metric='vlm_judge' AND status='error' "
                             "AND variant_label LIKE '%five_acc%'").fetchone()
    assert json.loads(err[0])["questions"][-1]["answers"] == ["I cannot tell from these frames."] * 3

    # calls and tokens per run: every request the server saw is counted (the 429 and the timeout too)
    usage = JudgeCache(store.conn).usage_rows()
    assert len(usage) == 2 and sum(u["calls"] for u in usage) == len(script.requests)
    # tokens are the server's own usage figures of the answers that reached the client (not the 429, not
    # the timed-out one): 7 completion tokens each, 100 + frames prompt tokens
    answered = [r for r in script.requests if r["status"] == 200 and r["wait"] == 0]
    assert sum(u["completion_tokens"] for u in usage) == 7 * len(answered)
    assert sum(u["prompt_tokens"] for u in usage) == sum(100 + r["images"] for r in answered)
    assert any("calls" in line and "tokens" in line for line in logs)
    n_requests = len(script.requests)

    # a re-run from scratch of the scores pays nothing: every answer comes from the cache
    keys = [k for (k,) in store.conn.execute("SELECT score_key FROM scores WHERE metric_family='vlm_judge'")]
    store.delete_scores(keys)
    store.close()
    run_benchmark(cfg, log=logs.append)
    assert len(script.requests) == n_requests
    store = ResultStore(cfg.run_dir)
    assert _values(store) == v
    again = JudgeCache(store.conn).usage_rows()[2:]
    assert len(again) == 2 and all(u["calls"] == 0 for u in again)
    assert sum(u["cache_hits"] for u in again) == len(answered)  # every answer the first run paid for, once
    store.close()

    # the key is nowhere in the store (database, WAL) or the logs
    for f in cfg.run_dir.glob("results.sqlite*"):
        assert key.encode() not in f.read_bytes(), f
    assert not any(key in line for line in logs)


def test_http_errors_and_dead_servers_become_one_line_errors(tmp_path):
    from metrics.vlm_judge.backends import JudgeRequest, JudgeTransportError
    from metrics.vlm_judge.openai_api import OpenAIJudge

    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more
    judge = OpenAIJudge(f"http://127.0.0.1:{port}/v1", "m", timeout=0.5, http_retries=1, backoff=0.01)
    with pytest.raises(JudgeTransportError, match="gave no answer after 2 tries"):
        judge.generate([JudgeRequest("hi", [])])
