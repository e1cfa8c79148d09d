"""`study serve`: the local rating web app (FastAPI on uvicorn), bound to 127.0.0.1 by default.

A rater reaches the study only through their link `/r/<token>`; without a valid token of this study
every page, API call and clip answers 403. A token only ever reads and writes its own pairs and votes.
Votes are acknowledged only after their transaction has committed (see storage.py).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from bench.study.pages import RATER_JS, message_page, rater_page
from bench.study.storage import StudyError, StudyStore

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PAIR_RE = r"^[0-9a-f]{16}$"
SLOTS = ("source", "left", "right", "reference")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; media-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Vote(BaseModel):
    """One rater's answers to one pair: {question id: left | right | tie}."""

    model_config = ConfigDict(extra="forbid")
    pair_id: str = Field(pattern=PAIR_RE)
    answers: dict[str, str] = Field(max_length=32)


#: a vote is a few hundred bytes; no POST body may be larger
MAX_BODY_BYTES = 64 * 1024
_API_TOKEN = re.compile(r"^/api/r/([^/]*)/")


class BodyGuard:
    """ASGI middleware run before any body is read: a POST must name a valid rater token of this study
    (403) and declare a Content-Length of at most MAX_BODY_BYTES (411/413); the body is then read
    only up to that length."""

    def __init__(self, app, is_rater) -> None:  # noqa: ANN001
        self.app = app
        self.is_rater = is_rater

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        from starlette.concurrency import run_in_threadpool

        m = _API_TOKEN.match(scope["path"])
        if not m or not await run_in_threadpool(self.is_rater, m.group(1)):
            return await JSONResponse({"detail": "unknown rater link"}, status_code=403,
                                      headers={"Connection": "close"})(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is None or not length.isdigit():
            return await JSONResponse({"detail": "a Content-Length is required"}, status_code=411,
                                      headers={"Connection": "close"})(scope, receive, send)
        if int(length) > MAX_BODY_BYTES:
            return await JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413,
                                      headers={"Connection": "close"})(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(run_dir: str | Path, study: str):
    """The ASGI app serving study `study` of the run in `run_dir`."""
    run_dir = Path(run_dir).resolve()
    with StudyStore(run_dir, create=False) as s:
        info = s.study(study)
    questions: dict[str, str] = info["config"]["questions"]

    app = FastAPI(title=f"VidEditBench study {study}", docs_url=None, redoc_url=None, openapi_url=None)

    def is_rater(token: str) -> bool:
        if not TOKEN_RE.match(token or ""):
            return False
        with StudyStore(run_dir, create=False) as store:
            rater = store.rater(token)
        return rater is not None and rater["study"] == study

    app.add_middleware(BodyGuard, is_rater=is_rater)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": "invalid request: expected {pair_id: <16 hex>, answers: {question: "
                                       "left|right|tie}}"}, status_code=422)

    def forbidden(text: str = "A personal rater link is needed to take part in this study.") -> HTMLResponse:
        return HTMLResponse(message_page("403 Forbidden", text), status_code=403)

    def rater_store(token: str) -> StudyStore:
        """The store, once the token is checked to be one of this study's raters (403 otherwise)."""
        if not TOKEN_RE.match(token or ""):
            raise HTTPException(403, "unknown rater link")
        store = StudyStore(run_dir, create=False)
        rater = store.rater(token)
        if rater is None or rater["study"] != study:
            store.close()
            raise HTTPException(403, "unknown rater link")
        return store

    def pair_payload(token: str, pair: dict) -> dict:
        base = f"/media/{token}/{pair['pair_id']}"
        return {
            "pair_id": pair["pair_id"], "position": pair["position"], "prompt": pair["prompt"], "task": pair["task"],
            "source_url": f"{base}/source", "left_url": f"{base}/left", "right_url": f"{base}/right",
            "reference_url": f"{base}/reference" if pair["reference_media"] else None,
        }

    def state(store: StudyStore, token: str) -> dict:
        pairs = store.pairs(token)
        votes = store.votes_of(token)
        done = [p for p in pairs if set(votes.get(p["pair_id"], {})) >= set(questions)]
        todo = [p for p in pairs if set(votes.get(p["pair_id"], {})) < set(questions)]
        return {"study": study, "questions": questions, "total": len(pairs), "done": len(done),
                "next": pair_payload(token, todo[0]) if todo else None}

    @app.get("/", response_class=HTMLResponse)
    def root():
        return forbidden()

    @app.get("/r/", response_class=HTMLResponse)
    @app.get("/r", response_class=HTMLResponse)
    def no_token():
        return forbidden()

    @app.get("/r/{token}", response_class=HTMLResponse)
    def page(token: str):
        try:
            rater_store(token).close()
        except HTTPException:
            return forbidden("This rater link is not valid for this study. Ask the study organiser for your link.")
        return HTMLResponse(rater_page(f"Study {study}", token))

    @app.get("/static/rater.js")
    def script():
        return Response(RATER_JS, media_type="text/javascript; charset=utf-8")

    @app.get("/api/r/{token}/state")
    def get_state(token: str):
        store = rater_store(token)
        try:
            return state(store, token)
        finally:
            store.close()

    @app.get("/api/r/{token}/votes")
    def get_votes(token: str):
        store = rater_store(token)
        try:
            return store.votes_of(token)
        finally:
            store.close()

    @app.post("/api/r/{token}/vote")
    def post_vote(token: str, vote: Vote):
        store = rater_store(token)
        try:
            if store.pair_for(token, vote.pair_id) is None:
                raise HTTPException(403, "this pair belongs to another rater link")
            try:
                store.put_votes(token, vote.pair_id, vote.answers)
            except StudyError as e:
                raise HTTPException(422, str(e)) from None
            return state(store, token)  # sent only after the votes' transaction committed
        finally:
            store.close()

    @app.get("/media/{token}/{pair_id}/{slot}")
    def media(token: str, pair_id: str, slot: str):
        if slot not in SLOTS or not re.match(PAIR_RE, pair_id):
            raise HTTPException(404, "no such clip")
        store = rater_store(token)
        try:
            pair = store.pair_for(token, pair_id)
        finally:
            store.close()
        if pair is None:
            raise HTTPException(403, "this pair belongs to another rater link")
        rel = pair[f"{slot}_media"]
        if not rel:
            raise HTTPException(404, "no such clip")
        path = (run_dir / rel).resolve()
        if run_dir not in path.parents or not path.is_file():
            raise HTTPException(404, "clip file missing: re-create the study")
        kind = "image/png" if path.suffix == ".png" else "video/webm"
        return FileResponse(path, media_type=kind, headers={"Cache-Control": "private, max-age=3600"})

    return app


def _server(app, sock: socket.socket):
    import uvicorn

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def serve(run_dir: str | Path, study: str, host: str = "127.0.0.1", port: int = 8765,
          on_ready=None) -> None:
    """Serve until interrupted (Ctrl-C)."""
    app = create_app(run_dir, study)
    sock = bind(host, port)
    server = _server(app, sock)
    if on_ready:
        on_ready(f"http://{host if ':' not in host else '[' + host + ']'}:{sock.getsockname()[1]}")
    server.run(sockets=[sock])


@contextmanager
def running(run_dir: str | Path, study: str, host: str = "127.0.0.1", port: int = 0,
            timeout: float = 20.0) -> Iterator[str]:
    """Serve in a background thread (a free port by default); yields the base URL; stops on exit."""
    import time

    app = create_app(run_dir, study)
    sock = bind(host, port)
    server = _server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    t0 = time.monotonic()
    while not server.started:
        if not thread.is_alive() or time.monotonic() - t0 > timeout:
            raise RuntimeError("the study server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
