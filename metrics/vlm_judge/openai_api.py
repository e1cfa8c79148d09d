"""API judge: any OpenAI-compatible chat endpoint (GPT-4o, or a local vLLM / SGLang server).

POST `{base_url}/chat/completions` with the frames as base64 JPEG `image_url` parts, temperature 0.
The API key is read from the environment variable named by `api_key_env` at request time; it is
never stored, put in a variant, cache key or message (it is redacted from anything the server echoes),
and it never leaves for another host: redirects are refused. `timeout` is a total deadline per
request (connect, headers and body), replies over 4 MiB are refused and answers are cut at 8,000
characters before they are parsed or stored. HTTP 429 and 5xx answers and timeouts are
retried up to `http_retries` times with exponential backoff (a 429's `Retry-After` wins, capped);
`requests_per_minute` > 0 spaces requests out. Only the standard library is used.
"""

from __future__ import annotations

import base64
import io
import json
import os
import http.client
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np

from bench.api.redaction import MASK, MAX_TEXT_CHARS, clip_text, redact, register_secret
from metrics.vlm_judge.backends import JudgeReply, JudgeRequest, JudgeTransportError


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The API is never followed to another address: a redirect would carry the Authorization header
    (urllib keeps it) to whatever host the server names."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 (urllib's signature)
        target = urllib.parse.urlsplit(newurl)
        raise JudgeTransportError(
            f"vlm_judge: {req.full_url} answered HTTP {code}, a redirect to {target.scheme}://{target.netloc}{target.path}; "
            "redirects are not followed (the API key would go along): set base_url to the final address"
        )


class _Deadline:
    """Every connection a request opens, so a timer can cut them all at the total deadline (a socket
    timeout alone restarts with each byte a slow server sends)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.conns: list[http.client.HTTPConnection] = []
        self.expired = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def factory(self, cls: type) -> Any:
        def make(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
            conn = cls(*args, **kwargs)
            self.conns.append(conn)
            return conn
        return make

    def _cut(self) -> None:
        self.expired = True
        for c in self.conns:
            sock = getattr(c, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._timer.cancel()


def _opener_for(url: str, deadline: _Deadline) -> urllib.request.OpenerDirector:
    """A local server (a vLLM on 127.0.0.1 / localhost / ::1) is reached directly, never through the
    environment's http(s)_proxy; a remote API keeps the user's proxy settings. No redirects; every
    connection is registered with the deadline."""

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):  # noqa: ANN001
            return self.do_open(deadline.factory(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):  # noqa: ANN001
            return self.do_open(deadline.factory(http.client.HTTPSConnection), req,
                                context=self._context)

    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    handlers: list[Any] = [HTTP(), HTTPS(), _NoRedirect()]
    if host in ("localhost", "::1") or host.startswith("127."):
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)


def read_capped(resp: Any, limit: int, what: str) -> bytes:
    """The body, refusing one larger than `limit` bytes without reading the rest."""
    length = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
    if length and length.isdigit() and int(length) > limit:
        raise JudgeTransportError(f"vlm_judge: {what} sent a reply of {int(length)} bytes, over the {limit}-byte limit")
    chunks, total = [], 0
    while True:
        chunk = resp.read(min(65536, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise JudgeTransportError(f"vlm_judge: {what} sent a reply over the {limit}-byte limit; refused")


MAX_WAIT_S = 60.0
#: a chat completion for a judge is a few kB; anything near this is a broken or hostile server
MAX_REPLY_BYTES = 4 * 2**20
#: answers longer than this are cut before they are parsed, cached or stored
MAX_ANSWER_CHARS = MAX_TEXT_CHARS


def jpeg_data_url(image: np.ndarray, quality: int = 95) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=int(quality))
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class OpenAIJudge:
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0,
                 http_retries: int = 4, backoff: float = 2.0, requests_per_minute: float = 0.0,
                 max_new_tokens: int = 512, jpeg_quality: int = 95, log: Any = None):
        self.url = str(base_url).rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.http_retries = max(0, int(http_retries))
        self.backoff = float(backoff)
        self.min_interval = 60.0 / float(requests_per_minute) if requests_per_minute else 0.0
        self.max_new_tokens = int(max_new_tokens)
        self.jpeg_quality = int(jpeg_quality)
        self.log = log or (lambda msg: None)
        self._last_request = 0.0

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            register_secret(key)
            headers["Authorization"] = "Bearer " + key
        return headers

    def _body(self, r: JudgeRequest) -> bytes:
        content: list[dict[str, Any]] = [{"type": "text", "text": r.prompt}]
        content += [{"type": "image_url", "image_url": {"url": jpeg_data_url(im, self.jpeg_quality)}} for im in r.images]
        return json.dumps({"model": self.model, "messages": [{"role": "user", "content": content}],
                           "temperature": 0, "max_tokens": self.max_new_tokens}).encode()

    def _throttle(self) -> None:
        if self.min_interval:
            wait = self._last_request + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last_request = time.monotonic()

    def _wait(self, attempt: int, retry_after: str | None) -> float:
        try:
            if retry_after is not None:
                return min(MAX_WAIT_S, max(0.0, float(retry_after)))
        except ValueError:
            pass
        return min(MAX_WAIT_S, self.backoff * (2 ** attempt))

    def generate(self, requests: list[JudgeRequest]) -> list[JudgeReply]:
        return [self._one(r) for r in requests]

    def _one(self, r: JudgeRequest) -> JudgeReply:
        try:
            return self._attempts(r)
        except JudgeTransportError as e:  # a server that echoes the request puts the key into its answer
            raise JudgeTransportError(self._redact(str(e))) from None

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return redact(text.replace(key, MASK) if key else text)

    def _attempts(self, r: JudgeRequest) -> JudgeReply:
        body = self._body(r)
        last = ""
        for attempt in range(self.http_retries + 1):
            self._throttle()
            req = urllib.request.Request(self.url, data=body, headers=self._headers(), method="POST")
            deadline = _Deadline(self.timeout)
            try:
                with deadline, _opener_for(self.url, deadline).open(req, timeout=self.timeout) as resp:  # noqa: S310
                    payload = read_capped(resp, MAX_REPLY_BYTES, self.url)
            except urllib.error.HTTPError as e:
                detail = e.read(200).decode("utf-8", "replace") if e.fp else ""
                last = self._redact(f"HTTP {e.code} {detail}".strip())
                if e.code == 429 or e.code >= 500:
                    wait = self._wait(attempt, e.headers.get("Retry-After") if e.headers else None)
                    self.log(f"vlm_judge: {self.url} answered HTTP {e.code}; retrying in {wait:.1f}s")
                    if attempt < self.http_retries:
                        time.sleep(wait)
                    continue
                raise JudgeTransportError(f"vlm_judge: {self.url} answered {last}") from None
            except (TimeoutError, socket.timeout, urllib.error.URLError, ConnectionError, http.client.HTTPException,
                    OSError) as e:
                reason = getattr(e, "reason", e)
                last = f"timed out after {self.timeout:g}s" if deadline.expired or isinstance(
                    reason, (TimeoutError, socket.timeout)) else f"connection failed ({self._redact(str(reason))})"
                self.log(f"vlm_judge: {self.url} {last}; retrying")
                if attempt < self.http_retries:
                    time.sleep(self._wait(attempt, None))
                continue
            if deadline.expired:
                last = f"timed out after {self.timeout:g}s"
                continue
            return self._reply(payload, attempt + 1)
        raise JudgeTransportError(
            f"vlm_judge: {self.url} gave no answer after {self.http_retries + 1} tries (last: {last}); "
            "raise --metric-opt vlm_judge.http_retries / timeout or check the server"
        )

    def _reply(self, payload: bytes, calls: int) -> JudgeReply:
        try:
            data = json.loads(payload)
            text = data["choices"][0]["message"]["content"]
            if isinstance(text, list):  # content parts
                text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
            usage = data.get("usage") or {}
            tokens = (int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError, RecursionError):
            raise JudgeTransportError(
                f"vlm_judge: {self.url} returned a response that is not an OpenAI chat completion: "
                f"{payload[:200].decode('utf-8', 'replace')!r}"
            ) from None
        return JudgeReply(text=self._redact(clip_text(str(text or "").strip(), MAX_ANSWER_CHARS)), prompt_tokens=tokens[0],
                          completion_tokens=tokens[1], calls=calls)
