"""Issue 7: the result store refuses what is not ours, never hangs on itself, keeps paths in the run."""

from __future__ import annotations

import sqlite3
import time

import pytest

from bench.api.errors import VidEditBenchError
from bench.store.runpaths import check_name, remove_run, resolve_stored, to_stored
from bench.store.results import EditRow, ResultStore


def _edit(key: str, out=None, src=None) -> EditRow:
    return EditRow(edit_key=key, method="m", method_key="mk", method_config="{}", sample_uid=f"s/{key}",
                   sample_key=f"sk{key}", suite="t", video_id="v", edit_id=key, edit_type="style", category="c",
                   task="text", prompt="p", status="ok", output_dir=out, source_dir=src)


def test_corrupt_foreign_and_other_schema_stores_are_one_line(tmp_path):
    bad = tmp_path / "corrupt"
    bad.mkdir()
    (bad / "results.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(VidEditBenchError, match=r"corrupt/results.sqlite: not a readable videditbench results store"):
        ResultStore(bad)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    con = sqlite3.connect(foreign / "results.sqlite")
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit(), con.close()
    with pytest.raises(VidEditBenchError, match="not a videditbench results store"):
        ResultStore(foreign)
    con = sqlite3.connect(foreign / "results.sqlite")  # and it was not altered
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["users"]
    con.close()
    future = tmp_path / "future"
    ResultStore(future).close()
    con = sqlite3.connect(future / "results.sqlite")
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit(), con.close()
    with pytest.raises(VidEditBenchError, match="schema_version 99 is not 1"):
        ResultStore(future)


def test_merging_a_store_into_itself_is_refused_at_once(tmp_path):
    st = ResultStore(tmp_path / "run")
    st.put_edit(_edit("k1"))
    t0 = time.perf_counter()
    with pytest.raises(VidEditBenchError, match="into itself"):
        st.merge_from(tmp_path / "run")
    with pytest.raises(VidEditBenchError, match="into itself"):
        st.merge_from(tmp_path / "run" / "results.sqlite")
    assert time.perf_counter() - t0 < 5
    assert st.counts()["edits"] == 1


def test_paths_are_stored_relative_and_paths_leaving_the_run_are_refused(tmp_path):
    run = tmp_path / "run"
    st = ResultStore(run)
    (run / "edits" / "a").mkdir(parents=True)
    st.put_edit(_edit("k1", out=str(run / "edits" / "a")))
    assert st.conn.execute("SELECT output_dir FROM edits").fetchone()[0] == "edits/a"
    assert st.get_edit("k1")["output_dir"] == str((run / "edits" / "a").resolve())
    for outside in ("/etc", str(tmp_path / "other"), "../x", "edits/../../x"):
        with pytest.raises(VidEditBenchError, match="outside the run folder"):
            st.put_edit(_edit("k2", out=outside))
    # a foreign store's absolute / escaping paths read as None (never resolved outside the run)
    st.conn.execute("UPDATE edits SET output_dir='/etc', source_dir='../../secret' WHERE edit_key='k1'")
    row = st.get_edit("k1")
    assert row["output_dir"] is None and row["source_dir"] is None
    df = st.edits_frame()
    assert df.output_dir.isna().all() and df.source_dir.isna().all()
    assert resolve_stored(run, "edits/a") and resolve_stored(run, "/etc/passwd") is None
    assert to_stored(run, run / "x") == "x"


def test_merge_copies_frames_and_keeps_paths_inside_the_destination(tmp_path):
    a = ResultStore(tmp_path / "a")
    (tmp_path / "a" / "edits" / "e1").mkdir(parents=True)
    (tmp_path / "a" / "edits" / "e1" / "00000.png").write_bytes(b"png")
    a.put_edit(_edit("k1", out=str(tmp_path / "a" / "edits" / "e1")))
    a.close()
    dest = ResultStore(tmp_path / "dest")
    dest.merge_from(tmp_path / "a")
    row = dest.get_edit("k1")
    assert row["output_dir"] == str((tmp_path / "dest" / "edits" / "e1").resolve())
    assert (tmp_path / "dest" / "edits" / "e1" / "00000.png").read_bytes() == b"png"


def test_run_names_are_one_safe_component_and_only_our_runs_are_deleted(tmp_path):
    for bad in (".", "..", "a/b", "/abs", "x\0y", "", " lead", "a" * 500, "tab\there"):
        with pytest.raises(VidEditBenchError, match="single folder name"):
            check_name(bad)
    assert check_name("mini-2024_v1.2") == "mini-2024_v1.2"
    results = tmp_path / "results"
    (results / "notours").mkdir(parents=True)
    (results / "notours" / "keep.txt").write_text("precious")
    with pytest.raises(VidEditBenchError, match="not a videditbench run"):
        remove_run(results, "notours")
    assert (results / "notours" / "keep.txt").exists()
    ResultStore(results / "ours").close()
    remove_run(results, "ours")
    assert not (results / "ours").exists()


def test_a_store_being_created_is_never_seen_without_its_tables(tmp_path):
    """A process polling a run folder (a test, a second command) opens results.sqlite as soon as it
    exists: it must never find a database file whose tables are not there yet."""
    import threading

    paths = [tmp_path / f"run{i}" / "results.sqlite" for i in range(30)]
    seen: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for p in paths:
                if p.is_file() and p.stat().st_size > 0:
                    try:
                        with ResultStore(p):
                            pass
                    except VidEditBenchError as e:
                        seen.append(str(e))
                        return

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        for p in paths:
            with ResultStore(p.parent):
                pass
    finally:
        stop.set()
        poller.join()
    assert seen == []
    assert all(sorted(f.name for f in p.parent.iterdir() if f.name.startswith(".")) == [] for p in paths)


def test_two_creators_of_one_store_both_open_it(tmp_path):
    from bench.store.results import _create_with_schema

    path = tmp_path / "results.sqlite"
    assert _create_with_schema(path) is True
    assert _create_with_schema(path) is False  # the second creator opens the first one's file
    with ResultStore(tmp_path) as st:
        assert st.counts()["edits"] == 0
