"""Issue 25, items 11 and 12: `--suite` stored resolved; one line instead of tracebacks for a
decompression-bomb PNG header and a --results-dir that is a file."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

import bench.cli as cli
from bench.store.results import ResultStore
from bench.media.video_io import write_frames


def _suite(folder: Path, reference: str = "ref.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    write_frames(folder / "clip", rng.integers(0, 255, size=(4, 16, 16, 3)).astype(np.uint8))
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(folder / "ref.png")
    m = folder / "suite.yaml"
    m.write_text("name: local\npreprocess: {num_frames: 4, size: 16}\nvideos:\n  - id: v\n    source: clip\n    box: [2, 2, 10, 10]\n"
                 "    source_prompt: a thing\n    edits:\n      - {id: e, edit_type: object_modification, "
                 f"reference: {reference}, target_prompt: a crate}}\n")
    return m


def test_the_stored_suite_is_absolute_so_a_study_from_elsewhere_finds_references(tmp_path, monkeypatch):
    from bench.study.builder import _references

    _suite(tmp_path / "data")
    monkeypatch.chdir(tmp_path / "data")
    res = CliRunner().invoke(cli.app, ["run", "--suite", "suite.yaml", "--methods", "source", "--metrics",
                                       "temporal_flickering", "--device", "cpu", "--no-export", "--results-dir",
                                       str(tmp_path / "runs"), "--name", "r"])
    assert res.exit_code == 0, res.output
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with ResultStore(tmp_path / "runs" / "r") as st:
        conf = json.loads(st.conn.execute("SELECT config FROM invocations").fetchone()[0])
        assert Path(conf["suite"]).is_absolute() and Path(conf["suite"]) == (tmp_path / "data" / "suite.yaml").resolve()
        refs = _references(tmp_path / "runs" / "r", st)
    assert list(refs.values()) == [str((tmp_path / "data" / "ref.png").resolve())]


def _bomb_png(path: Path, side: int = 30000) -> None:
    """A valid PNG signature and IHDR claiming side×side RGB, with a tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def _one_line(res, code: int = 2) -> str:
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    err = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(err) == 1, res.output
    return err[0]


def test_suite_validate_load_on_a_decompression_bomb_is_one_line(tmp_path):
    m = _suite(tmp_path / "data", reference="bomb.png")
    _bomb_png(tmp_path / "data" / "bomb.png")
    line = _one_line(CliRunner().invoke(cli.app, ["suite", "validate", str(m), "--load"]))
    assert "bomb.png" in line


def test_results_dir_that_is_a_file_is_one_line(tmp_path):
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    line = _one_line(CliRunner().invoke(cli.app, ["run", "--suite", "mini", "--methods", "source", "--metrics",
                                                  "temporal_flickering", "--limit", "1", "--device", "cpu",
                                                  "--no-export", "--results-dir", str(f)]))
    assert "--results-dir" in line
