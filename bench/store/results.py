"""The result store: one SQLite database per run (`results/<run>/results.sqlite`).

Rows are keyed by content hashes, so re-running the same command skips finished work and never
duplicates it; every write is one transaction (WAL journal), so a `kill -9` loses at most the row
being written. Stores from shards of one run merge with `merge_into`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator

from bench.api.errors import VidEditBenchError
from bench.api.redaction import clip_text, redact, scrub_env_secrets
from bench.store.runpaths import resolve_stored, to_stored

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    config TEXT NOT NULL,
    code_version TEXT NOT NULL,
    environment TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS edits (
    edit_key TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    method_key TEXT NOT NULL,
    method_config TEXT NOT NULL,
    sample_uid TEXT NOT NULL,
    sample_key TEXT NOT NULL,
    suite TEXT, video_id TEXT, edit_id TEXT, edit_type TEXT, category TEXT, task TEXT, prompt TEXT,
    status TEXT NOT NULL,
    message TEXT,
    output_dir TEXT,
    source_dir TEXT,
    preprocess_s REAL, generate_s REAL, peak_memory_mb REAL, memory_device TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    score_key TEXT PRIMARY KEY,
    edit_key TEXT,
    method TEXT NOT NULL,
    method_key TEXT NOT NULL,
    sample_uid TEXT NOT NULL,
    metric TEXT NOT NULL,
    metric_family TEXT NOT NULL,
    variant_id TEXT NOT NULL,
    variant_label TEXT NOT NULL,
    value REAL,
    status TEXT NOT NULL,
    message TEXT,
    higher_is_better INTEGER NOT NULL,
    value_min REAL, value_max REAL,
    level TEXT NOT NULL,
    created REAL NOT NULL,
    details TEXT
);
CREATE INDEX IF NOT EXISTS scores_by_edit ON scores(edit_key);
CREATE INDEX IF NOT EXISTS scores_by_family ON scores(metric_family, variant_id);
"""

EDIT_COLUMNS = (
    "edit_key", "method", "method_key", "method_config", "sample_uid", "sample_key", "suite", "video_id",
    "edit_id", "edit_type", "category", "task", "prompt", "status", "message", "output_dir", "source_dir",
    "preprocess_s", "generate_s", "peak_memory_mb", "memory_device", "created",
)
SCORE_COLUMNS = (
    "score_key", "edit_key", "method", "method_key", "sample_uid", "metric", "metric_family", "variant_id",
    "variant_label", "value", "status", "message", "higher_is_better", "value_min", "value_max", "level", "created",
    "details",
)


@dataclass
class EditRow:
    edit_key: str
    method: str
    method_key: str
    method_config: str
    sample_uid: str
    sample_key: str
    suite: str
    video_id: str
    edit_id: str
    edit_type: str
    category: str
    task: str
    prompt: str | None
    status: str  # ok | error | skipped | not_applicable
    message: str | None = None
    output_dir: str | None = None
    source_dir: str | None = None
    preprocess_s: float | None = None
    generate_s: float | None = None
    peak_memory_mb: float | None = None
    memory_device: str | None = None
    created: float = 0.0


@dataclass
class ScoreRow:
    score_key: str
    edit_key: str | None
    method: str
    method_key: str
    sample_uid: str
    metric: str
    metric_family: str
    variant_id: str
    variant_label: str
    value: float | None
    status: str
    message: str | None
    higher_is_better: bool
    value_min: float | None
    value_max: float | None
    level: str
    created: float = 0.0
    details: str | None = None  # JSON, e.g. a judge's questions and raw answers


def _finite_or_none(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if x == x and abs(x) != float("inf") else None


_FREE_TEXT = ("message", "details", "method_config")


def _safe_text(d: dict[str, Any]) -> dict[str, Any]:
    """No registered secret in the free-text columns; messages cut at the common length limit."""
    d = {k: redact(v) if k in _FREE_TEXT and isinstance(v, str) else v for k, v in d.items()}
    if isinstance(d.get("message"), str):
        d["message"] = clip_text(d["message"])
    return d


def _check_ours(conn: sqlite3.Connection, path: Path) -> None:
    """An existing database must be a store of ours, of this schema version (never silently adapted)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    fix = "move it away or choose another --name"
    if "meta" not in tables or "edits" not in tables or "scores" not in tables:
        raise VidEditBenchError(f"{path}: not a videditbench results store (tables: {', '.join(sorted(tables)) or 'none'}); {fix}")
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None or str(row[0]) != str(SCHEMA_VERSION):
        raise VidEditBenchError(
            f"{path}: store schema_version {row[0] if row else 'missing'} is not {SCHEMA_VERSION} (written by another "
            f"version of videditbench); use that version, or {fix}"
        )
    for table, cols in (("edits", EDIT_COLUMNS), ("scores", SCORE_COLUMNS)):
        have = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        if have != list(cols) and not (table == "scores" and have + ["details"] == list(cols)):
            raise VidEditBenchError(f"{path}: table '{table}' has columns {have}, not videditbench's; {fix}")


def _create_with_schema(path: Path) -> bool:
    """Create the store with its schema beside `path`, then hard-link it into place.

    A reader (another process polling the run folder) never sees the file before its tables exist, and
    two creators never clobber each other: the link fails for the loser, who opens the winner's file.
    Returns False when another process created it first."""
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


class ResultStore:
    FILENAME = "results.sqlite"

    def __init__(self, path: str | Path):
        path = Path(path)
        if path.is_dir() or path.suffix == "":
            path.mkdir(parents=True, exist_ok=True)
            path = path / self.FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.run_dir = path.parent.resolve()
        existed = path.is_file() and path.stat().st_size > 0
        try:
            if not existed:
                existed = not _create_with_schema(path)
            self.conn = sqlite3.connect(str(path), timeout=60, isolation_level=None)
            if existed:
                _check_ours(self.conn, path)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
            if "details" not in {r[1] for r in self.conn.execute("PRAGMA table_info(scores)")}:
                self.conn.execute("ALTER TABLE scores ADD COLUMN details TEXT")  # our stores made before the column
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as e:
            raise VidEditBenchError(
                f"{path}: not a readable videditbench results store ({e}); move it away or choose another --name"
            ) from None

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One explicit transaction: all rows of a write land together or not at all."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- writes (each one atomic) ------------------------------------------------------------------
    def add_invocation(self, config: dict, code_version: str, environment: dict) -> None:
        with self._tx():
            self.conn.execute(
                "INSERT INTO invocations (started, config, code_version, environment) VALUES (?,?,?,?)",
                (time.time(), redact(json.dumps(scrub_env_secrets(config), default=str)), code_version,
             redact(json.dumps(environment, default=str))),
            )

    def put_edit(self, row: EditRow) -> None:
        """Store a (re)made edit. Its old scores, and the set-level scores of its method, go with the
        old row: a regenerated edit is never paired with numbers computed on other frames."""
        row.created = row.created or time.time()
        d = asdict(row)
        for k in ("preprocess_s", "generate_s", "peak_memory_mb"):
            d[k] = _finite_or_none(d[k])
        d["output_dir"], d["source_dir"] = to_stored(self.run_dir, d["output_dir"]), to_stored(self.run_dir, d["source_dir"])
        d = _safe_text(d)
        cols = ",".join(EDIT_COLUMNS)
        marks = ",".join("?" for _ in EDIT_COLUMNS)
        with self._tx():
            old = self.conn.execute("SELECT created FROM edits WHERE edit_key = ?", (d["edit_key"],)).fetchone()
            if old is not None:
                self.conn.execute("DELETE FROM scores WHERE edit_key = ?", (d["edit_key"],))
                self.conn.execute("DELETE FROM scores WHERE level = 'set' AND method_key = ?", (d["method_key"],))
            self.conn.execute(f"INSERT OR REPLACE INTO edits ({cols}) VALUES ({marks})", [d[c] for c in EDIT_COLUMNS])

    def put_scores(self, rows: list[ScoreRow]) -> None:
        if not rows:
            return
        cols = ",".join(SCORE_COLUMNS)
        marks = ",".join("?" for _ in SCORE_COLUMNS)
        now = time.time()
        values = []
        for r in rows:
            d = asdict(r)
            d["created"] = d["created"] or now
            d["higher_is_better"] = int(bool(d["higher_is_better"]))
            d["value_min"] = _finite_or_none(d["value_min"])
            d["value_max"] = _finite_or_none(d["value_max"])
            if d["value"] is not None:
                v = float(d["value"])
                d["value"] = v if v == v else None
            d = _safe_text(d)
            values.append([d[c] for c in SCORE_COLUMNS])
        with self._tx():
            self.conn.executemany(f"INSERT OR REPLACE INTO scores ({cols}) VALUES ({marks})", values)

    def delete_scores(self, score_keys: list[str]) -> None:
        with self._tx():
            self.conn.executemany("DELETE FROM scores WHERE score_key = ?", [(k,) for k in score_keys])

    # --- reads ---------------------------------------------------------------------------------------
    def get_edit(self, edit_key: str) -> dict | None:
        cur = self.conn.execute(f"SELECT {','.join(EDIT_COLUMNS)} FROM edits WHERE edit_key = ?", (edit_key,))
        row = cur.fetchone()
        return self._edit_dict(row) if row else None

    def _edit_dict(self, row) -> dict:
        """A row with its stored (run-relative) paths resolved; a path leaving the run reads as None."""
        d = dict(zip(EDIT_COLUMNS, row))
        d["output_dir"] = resolve_stored(self.run_dir, d["output_dir"])
        d["source_dir"] = resolve_stored(self.run_dir, d["source_dir"])
        return d

    def iter_edits(self, status: str | None = None) -> Iterator[dict]:
        q = f"SELECT {','.join(EDIT_COLUMNS)} FROM edits"
        args: tuple = ()
        if status:
            q += " WHERE status = ?"
            args = (status,)
        for row in self.conn.execute(q + " ORDER BY method, sample_uid", args):
            yield self._edit_dict(row)

    def score_status(self, score_key: str) -> str | None:
        row = self.conn.execute("SELECT status FROM scores WHERE score_key = ?", (score_key,)).fetchone()
        return row[0] if row else None

    def score_statuses(self) -> Iterator[tuple[str, str, str, str, str | None]]:
        """(metric, method, sample_uid, status, message) of every score row (run summaries)."""
        yield from self.conn.execute("SELECT metric, method, sample_uid, status, message FROM scores")

    def existing_score_keys(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT score_key, status FROM scores"))

    def counts(self) -> dict[str, int]:
        e = self.conn.execute("SELECT COUNT(*) FROM edits").fetchone()[0]
        s = self.conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        return {"edits": int(e), "scores": int(s)}

    def invocations(self) -> list[dict]:
        cur = self.conn.execute("SELECT id, started, config, code_version, environment FROM invocations ORDER BY id")
        return [
            {"id": i, "started": s, "config": json.loads(c), "code_version": v, "environment": json.loads(e)}
            for i, s, c, v, e in cur
        ]

    def edits_frame(self):
        import pandas as pd

        df = pd.read_sql_query(f"SELECT {','.join(EDIT_COLUMNS)} FROM edits ORDER BY method, sample_uid", self.conn)
        for c in ("output_dir", "source_dir"):
            df[c] = [resolve_stored(self.run_dir, v) for v in df[c]]
        return df

    def scores_frame(self):
        """Scores joined with their sample's metadata (the leaderboard's input)."""
        import pandas as pd

        q = f"""
        SELECT s.{', s.'.join(c for c in SCORE_COLUMNS)},
               COALESCE(e.suite, '') AS suite, COALESCE(e.video_id, '') AS video_id,
               COALESCE(e.edit_id, '') AS edit_id, COALESCE(e.edit_type, '') AS edit_type,
               COALESCE(e.category, '') AS category, COALESCE(e.task, '') AS task
        FROM scores s LEFT JOIN edits e ON s.edit_key = e.edit_key
        ORDER BY s.method, s.metric, s.sample_uid
        """
        df = pd.read_sql_query(q, self.conn)
        df["higher_is_better"] = df["higher_is_better"].astype(bool)
        df["value"] = df["value"].astype(float)
        df["value_min"] = df["value_min"].astype(float).fillna(float("-inf"))
        df["value_max"] = df["value_max"].astype(float).fillna(float("inf"))
        return df

    # --- sharding ------------------------------------------------------------------------------------
    def merge_from(self, other: str | Path) -> dict[str, int]:
        """Copy rows from another store (e.g. a shard of the same run); the newer row wins per key.

        The other run's edit and source frame folders are copied along (paths are run-relative); a
        row whose path leaves the other run is taken without its path (the edit is redone on resume)."""
        import os

        from bench.media.safe_files import copy_tree_without_links

        other_path = Path(other)
        if other_path.is_dir():
            other_path = other_path / self.FILENAME
        if not other_path.is_file():
            raise VidEditBenchError(f"{other_path}: no results store to merge")
        if os.path.samefile(other_path, self.path):
            raise VidEditBenchError(f"{other_path}: cannot merge a store into itself; pass another run folder")
        src = ResultStore(other_path)  # validates that it is ours, of this schema version
        before = self.counts()
        try:
            mine = dict(self.conn.execute("SELECT edit_key, created FROM edits"))
            for r in src.iter_edits():
                if r["edit_key"] in mine and not r["created"] > mine[r["edit_key"]]:
                    continue
                for k in ("output_dir", "source_dir"):
                    if r[k] is None:
                        continue
                    rel = Path(r[k]).relative_to(src.run_dir.resolve())
                    dest = self.run_dir / rel
                    if Path(r[k]).is_dir() and not dest.is_dir():
                        copy_tree_without_links(r[k], dest)  # a link never brings outside files in
                    r[k] = str(dest)
                self.put_edit_row(r)
            cols = ",".join(SCORE_COLUMNS)
            mine_s = dict(self.conn.execute("SELECT score_key, created FROM scores"))
            created = SCORE_COLUMNS.index("created")
            rows = [row for row in src.conn.execute(f"SELECT {cols} FROM scores")
                    if row[0] not in mine_s or row[created] > mine_s[row[0]]]
            with self._tx():
                self.conn.executemany(f"INSERT OR REPLACE INTO scores ({cols}) VALUES ({','.join('?' for _ in SCORE_COLUMNS)})", rows)
                mine_inv = {(a, b) for a, b in self.conn.execute("SELECT started, config FROM invocations")}
                for started, config, ver, env in src.conn.execute(
                        "SELECT started, config, code_version, environment FROM invocations ORDER BY id"):
                    if (started, config) not in mine_inv:
                        self.conn.execute("INSERT INTO invocations (started, config, code_version, environment) "
                                          "VALUES (?,?,?,?)", (started, config, ver, env))
        finally:
            src.close()
        after = self.counts()
        return {k: after[k] - before[k] for k in after}

    def put_edit_row(self, d: dict) -> None:
        """Insert an edit row as read from a store (merge): keeps its `created`, and its scores."""
        d = dict(d)
        d["output_dir"], d["source_dir"] = to_stored(self.run_dir, d["output_dir"]), to_stored(self.run_dir, d["source_dir"])
        d = _safe_text(d)
        cols = ",".join(EDIT_COLUMNS)
        with self._tx():
            self.conn.execute(f"INSERT OR REPLACE INTO edits ({cols}) VALUES ({','.join('?' for _ in EDIT_COLUMNS)})",
                              [d[c] for c in EDIT_COLUMNS])
