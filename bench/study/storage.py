"""Study tables in the run's own SQLite store (`results/<run>/results.sqlite`), created additively
beside the result tables: studies, study_raters, study_pairs, study_votes.

Every write is one transaction with `synchronous=FULL`, so a vote the server has acknowledged
survives a crash of the server (and of the machine). A vote is keyed by (pair, question): the same
vote sent twice is stored once, and a changed answer replaces the earlier one.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.store.results import ResultStore
from bench.study.design import CHOICES

STUDY_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS study_raters (
    token TEXT PRIMARY KEY,
    study TEXT NOT NULL REFERENCES studies(name),
    rater TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (study, rater)
);
CREATE TABLE IF NOT EXISTS study_pairs (
    pair_id TEXT PRIMARY KEY,
    study TEXT NOT NULL,
    token TEXT NOT NULL REFERENCES study_raters(token),
    position INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('pair', 'attention')),
    sample_uid TEXT NOT NULL,
    task TEXT, prompt TEXT, reference_media TEXT, source_media TEXT NOT NULL,
    left_method TEXT NOT NULL, left_edit_key TEXT, left_media TEXT NOT NULL,
    right_method TEXT NOT NULL, right_edit_key TEXT, right_media TEXT NOT NULL,
    UNIQUE (token, position)
);
CREATE TABLE IF NOT EXISTS study_votes (
    pair_id TEXT NOT NULL REFERENCES study_pairs(pair_id),
    question TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie')),
    token TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (pair_id, question)
);
CREATE INDEX IF NOT EXISTS study_pairs_by_token ON study_pairs(token, position);
"""

PAIR_COLUMNS = (
    "pair_id", "study", "token", "position", "kind", "sample_uid", "task", "prompt", "reference_media",
    "source_media", "left_method", "left_edit_key", "left_media", "right_method", "right_edit_key", "right_media",
)


class StudyError(ValueError):
    """A study that does not exist, a duplicate name, a bad vote: one line naming the fix."""


@dataclass
class PairRow:
    pair_id: str
    study: str
    token: str
    position: int
    kind: str
    sample_uid: str
    task: str | None
    prompt: str | None
    reference_media: str | None  # paths relative to the run folder
    source_media: str
    left_method: str
    left_edit_key: str | None
    left_media: str
    right_method: str
    right_edit_key: str | None
    right_media: str


def new_token() -> str:
    return secrets.token_urlsafe(18)


def store_path(run_dir: str | Path) -> Path:
    p = Path(run_dir)
    return p if p.suffix == ".sqlite" else p / "results.sqlite"


class StudyStore(ResultStore):
    """The run's store with its study tables (added if missing). The result-store connection and its
    transactions are reused; `synchronous=FULL` so an acknowledged vote survives a machine crash too."""

    def __init__(self, run_dir: str | Path, create: bool = True):
        path = store_path(run_dir)
        if not path.is_file() and not create:
            raise StudyError(f"{path} does not exist: give a run folder made by `videditbench run`")
        super().__init__(path)
        self.run_dir = path.parent
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(STUDY_SCHEMA)

    # --- writes --------------------------------------------------------------------------------------
    def create_study(self, name: str, config: dict, raters: list[tuple[str, list[PairRow]]]) -> None:
        """The study, its raters (token, pairs) and their pairs, all in one transaction."""
        now = time.time()
        with self._tx() as c:
            if c.execute("SELECT 1 FROM studies WHERE name = ?", (name,)).fetchone():
                raise StudyError(f"a study named {name!r} already exists in {self.path}; choose another --name")
            c.execute("INSERT INTO studies VALUES (?,?,?)", (name, json.dumps(config), now))  # keeps question order
            marks = ",".join("?" for _ in PAIR_COLUMNS)
            for i, (token, pairs) in enumerate(raters):
                c.execute("INSERT INTO study_raters VALUES (?,?,?,?)", (token, name, f"rater{i + 1}", now))
                c.executemany(f"INSERT INTO study_pairs ({','.join(PAIR_COLUMNS)}) VALUES ({marks})",
                              [[asdict(p)[k] for k in PAIR_COLUMNS] for p in pairs])

    def put_votes(self, token: str, pair_id: str, answers: dict[str, str]) -> int:
        """Store one rater's answers to one pair (all questions together). Returns the pair's position.

        Raises StudyError when the pair is not this rater's or a question/choice is unknown."""
        pair = self.pair_for(token, pair_id)
        if pair is None:
            raise StudyError("this pair does not belong to this rater link")
        questions = self.study(pair["study"])["config"]["questions"]
        unknown = sorted(set(answers) - set(questions))
        missing = sorted(set(questions) - set(answers))
        if unknown or missing:
            raise StudyError(f"answers must cover exactly the questions {sorted(questions)} "
                             f"(unknown: {unknown}, missing: {missing})")
        bad = {q: v for q, v in answers.items() if v not in CHOICES}
        if bad:
            raise StudyError(f"choices must be one of {list(CHOICES)}; got {bad}")
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "INSERT INTO study_votes VALUES (?,?,?,?,?,?) ON CONFLICT(pair_id, question) "
                "DO UPDATE SET choice = excluded.choice, updated = excluded.updated",
                [(pair_id, q, v, token, now, now) for q, v in answers.items()],
            )
        return int(pair["position"])

    # --- reads ---------------------------------------------------------------------------------------
    def studies(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM studies ORDER BY created, name")]

    def study(self, name: str) -> dict:
        row = self.conn.execute("SELECT name, config, created FROM studies WHERE name = ?", (name,)).fetchone()
        if row is None:
            have = ", ".join(self.studies()) or "(none)"
            raise StudyError(f"no study named {name!r} in {self.path} (studies there: {have}); "
                             f"create it with `videditbench study create <run> --name {name}`")
        return {"name": row[0], "config": json.loads(row[1]), "created": row[2]}

    def raters(self, name: str) -> list[dict]:
        cur = self.conn.execute("SELECT token, rater, created FROM study_raters WHERE study = ? ORDER BY rater", (name,))
        return [{"token": t, "rater": r, "created": c} for t, r, c in cur]

    def rater(self, token: str) -> dict | None:
        row = self.conn.execute("SELECT token, study, rater FROM study_raters WHERE token = ?", (token,)).fetchone()
        return {"token": row[0], "study": row[1], "rater": row[2]} if row else None

    def pairs(self, token: str) -> list[dict]:
        cur = self.conn.execute(f"SELECT {','.join(PAIR_COLUMNS)} FROM study_pairs WHERE token = ? ORDER BY position",
                                (token,))
        return [dict(zip(PAIR_COLUMNS, r)) for r in cur]

    def pair_for(self, token: str, pair_id: str) -> dict | None:
        """The pair only when it is this token's (a token never reaches another rater's pairs)."""
        row = self.conn.execute(f"SELECT {','.join(PAIR_COLUMNS)} FROM study_pairs WHERE pair_id = ? AND token = ?",
                                (pair_id, token)).fetchone()
        return dict(zip(PAIR_COLUMNS, row)) if row else None

    def votes_of(self, token: str) -> dict[str, dict[str, str]]:
        """{pair_id: {question: choice}} of this rater only."""
        out: dict[str, dict[str, str]] = {}
        for pid, q, ch in self.conn.execute("SELECT pair_id, question, choice FROM study_votes WHERE token = ?", (token,)):
            out.setdefault(pid, {})[q] = ch
        return out

    def votes_frame(self, name: str):
        """Every vote of a study joined with its pair and rater (analysis and export input)."""
        import pandas as pd

        q = """
        SELECT r.rater, p.pair_id, p.position, p.kind, p.sample_uid, p.prompt, p.left_method, p.right_method,
               p.left_edit_key, p.right_edit_key, v.question, v.choice, v.created, v.updated
        FROM study_votes v JOIN study_pairs p ON v.pair_id = p.pair_id JOIN study_raters r ON p.token = r.token
        WHERE p.study = ? ORDER BY r.rater, p.position, v.question
        """
        return pd.read_sql_query(q, self.conn, params=(name,))

    def study_counts(self, name: str) -> dict[str, int]:
        pairs = self.conn.execute("SELECT COUNT(*) FROM study_pairs WHERE study = ?", (name,)).fetchone()[0]
        votes = self.conn.execute("SELECT COUNT(*) FROM study_votes v JOIN study_pairs p ON v.pair_id = p.pair_id "
                                  "WHERE p.study = ?", (name,)).fetchone()[0]
        return {"raters": len(self.raters(name)), "pairs": int(pairs), "votes": int(votes)}


def rater_links(run_dir: str | Path, study: str, base_url: str) -> list[tuple[str, str]]:
    """(rater, link) of every rater of a study, for a server at `base_url`."""
    with StudyStore(run_dir, create=False) as s:
        s.study(study)
        return [(r["rater"], f"{base_url.rstrip('/')}/r/{r['token']}") for r in s.raters(study)]


def find_study(name: str, results_dir: str | Path = "results") -> Path:
    """The run folder holding study `name` (a `run_dir:name` or a run folder path is accepted too)."""
    if ":" in name and Path(name.rsplit(":", 1)[0]).is_dir():
        return Path(name.rsplit(":", 1)[0])
    root = Path(results_dir)
    hits = []
    for db in sorted(root.glob("*/results.sqlite")) if root.is_dir() else []:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            try:
                found = conn.execute("SELECT 1 FROM studies WHERE name = ?", (name,)).fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            continue
        if found:
            hits.append(db.parent)
    if not hits:
        raise StudyError(f"no study named {name!r} under {root}/ (create one with "
                         f"`videditbench study create {root}/<run> --name {name}`, or pass --results-dir)")
    if len(hits) > 1:
        raise StudyError(f"study {name!r} exists in several runs ({', '.join(map(str, hits))}); "
                         f"name one as <run_dir>:{name}")
    return hits[0]


def study_name(name: str) -> str:
    return name.rsplit(":", 1)[1] if ":" in name and Path(name.rsplit(":", 1)[0]).is_dir() else name
