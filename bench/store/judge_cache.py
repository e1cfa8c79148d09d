"""Cache of judge (VLM) answers and per-run usage, as two tables in the run's results.sqlite.

An answer is keyed by (backend, model, protocol, prompt, hashes of the frames sent, generation
settings), so a re-run, a `--retry-errors`, or another metric asking the same question never
pays for it twice. `judge_usage` records, per metric run, the calls made, the cache hits and the
tokens spent. Nothing secret is stored: requests are not logged, only the answer text and counts.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from bench.api.hashing import hash_obj

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_cache (
    cache_key TEXT PRIMARY KEY,
    backend TEXT NOT NULL, model TEXT NOT NULL, protocol TEXT NOT NULL,
    prompt TEXT NOT NULL, frames TEXT NOT NULL,
    response TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS judge_usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL, finished REAL NOT NULL,
    metric TEXT NOT NULL, variant_id TEXT NOT NULL, backend TEXT NOT NULL, model TEXT NOT NULL, protocol TEXT NOT NULL,
    samples INTEGER NOT NULL, calls INTEGER NOT NULL, cache_hits INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, unparseable INTEGER NOT NULL
);
"""


@dataclass
class CachedAnswer:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Usage:
    """What one metric run spent (calls = requests sent, including rate-limited and timed-out ones)."""

    samples: int = 0
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    unparseable: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def cache_key(backend: str, model: str, protocol: str, prompt: str, frame_hashes: list[str],
              generation: dict[str, Any]) -> str:
    return hash_obj({"backend": backend, "model": model, "protocol": protocol, "prompt": prompt,
                     "frames": list(frame_hashes), "generation": generation}, 32)


class JudgeCache:
    """On a store's SQLite connection (same file, own tables), or in memory when there is none."""

    def __init__(self, conn: sqlite3.Connection | None = None):
        self.conn = conn if conn is not None else sqlite3.connect(":memory:", isolation_level=None)
        self.conn.executescript(_SCHEMA)

    def get(self, key: str) -> CachedAnswer | None:
        row = self.conn.execute(
            "SELECT response, prompt_tokens, completion_tokens FROM judge_cache WHERE cache_key = ?", (key,)
        ).fetchone()
        return CachedAnswer(row[0], int(row[1] or 0), int(row[2] or 0)) if row else None

    def put(self, key: str, *, backend: str, model: str, protocol: str, prompt: str, frame_hashes: list[str],
            answer: CachedAnswer) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO judge_cache VALUES (?,?,?,?,?,?,?,?,?,?)",
            (key, backend, model, protocol, prompt, ",".join(frame_hashes), answer.text, answer.prompt_tokens,
             answer.completion_tokens, time.time()),
        )

    def record_usage(self, *, started: float, metric: str, variant_id: str, backend: str, model: str, protocol: str,
                     usage: Usage) -> None:
        self.conn.execute(
            "INSERT INTO judge_usage (started, finished, metric, variant_id, backend, model, protocol, samples, calls, "
            "cache_hits, prompt_tokens, completion_tokens, unparseable) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (started, time.time(), metric, variant_id, backend, model, protocol, usage.samples, usage.calls,
             usage.cache_hits, usage.prompt_tokens, usage.completion_tokens, usage.unparseable),
        )

    def usage_rows(self) -> list[dict[str, Any]]:
        cur = self.conn.execute("SELECT * FROM judge_usage ORDER BY id")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r)) for r in cur]

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0])
