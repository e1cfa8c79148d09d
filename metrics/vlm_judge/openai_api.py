"""API judge: any OpenAI-compatible chat endpoint (GPT-4o, or a local vLLM / SGLang server).

POST `{base_url}/chat/completions` with the frames as base64 JPEG `image_url` parts, temperature 0.
The API key is read from the environment variable named by `api_key_env` at request time; it is
never stored, put in a variant, cache key or message. HTTP 429 and 5xx answers and timeouts are
retried up to `http_retries` times with exponential backoff (a 429's `Retry-After` wins, capped);
`requests_per_minute` > 0 spaces requests out. Only the standard library is used.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np

from metrics.vlm_judge.backends import JudgeReply, JudgeRequest, JudgeTransportError


def _opener_for(url: str) -> urllib.request.OpenerDirector:
    """A local server (a vLLM on 127.0.0.1 / localhost / ::1) is reached directly, never through the
    environment's http(s)_proxy; a remote API keeps the user's proxy settings."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host in ("localhost", "::1") or host.startswith("127."):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()

MAX_WAIT_S = 60.0


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
        body = self._body(r)
        last = ""
        for attempt in range(self.http_retries + 1):
            self._throttle()
            req = urllib.request.Request(self.url, data=body, headers=self._headers(), method="POST")
            try:
                with _opener_for(self.url).open(req, timeout=self.timeout) as resp:  # noqa: S310 (user-chosen endpoint)
                    payload = resp.read()
            except urllib.error.HTTPError as e:
                detail = e.read()[:200].decode("utf-8", "replace") if e.fp else ""
                last = f"HTTP {e.code} {detail}".strip()
                if e.code == 429 or e.code >= 500:
                    wait = self._wait(attempt, e.headers.get("Retry-After") if e.headers else None)
                    self.log(f"vlm_judge: {self.url} answered HTTP {e.code}; retrying in {wait:.1f}s")
                    if attempt < self.http_retries:
                        time.sleep(wait)
                    continue
                raise JudgeTransportError(f"vlm_judge: {self.url} answered {last}") from None
            except (TimeoutError, socket.timeout, urllib.error.URLError, ConnectionError) as e:
                reason = getattr(e, "reason", e)
                last = f"timed out after {self.timeout:g}s" if isinstance(reason, (TimeoutError, socket.timeout)) \
                    else f"connection failed ({reason})"
                self.log(f"vlm_judge: {self.url} {last}; retrying")
                if attempt < self.http_retries:
                    time.sleep(self._wait(attempt, None))
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
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise JudgeTransportError(
                f"vlm_judge: {self.url} returned a response that is not an OpenAI chat completion: "
                f"{payload[:200].decode('utf-8', 'replace')!r}"
            ) from None
        return JudgeReply(text=str(text or "").strip(), prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          completion_tokens=int(usage.get("completion_tokens") or 0), calls=calls)
