"""docs/suites.md stays correct: its manifest and prompts file load as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from bench.suites import load_suite
from bench.media.video_io import write_frames, write_mp4

DOC = Path(__file__).resolve().parents[1] / "docs" / "suites.md"
T, H, W = 12, 48, 64


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def _clip(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (1, H, W, 3))
    return np.clip(base + 4 * np.arange(T)[:, None, None, None], 0, 255).astype(np.uint8)


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_worked_example_manifest_loads(tmp_path):
    manifest = next(b for b in _blocks("yaml") if b.startswith("name: my-suite"))
    root = tmp_path / "my-suite"
    (root / "videos").mkdir(parents=True)
    (root / "suite.yaml").write_text(manifest)
    write_mp4(root / "videos" / "dog.mp4", _clip(1))
    write_frames(root / "videos" / "cat", _clip(2))
    mask = np.zeros((H, W), np.uint8)
    mask[10:30, 20:44] = 255
    for i in range(T):
        _png(root / "masks" / "dog" / f"{i:05d}.png", np.roll(mask, i, axis=1))
    _png(root / "refs" / "zebra.png", np.tile((np.arange(32) % 8 < 4)[None, :, None] * 255, (32, 1, 3)).astype(np.uint8))
    _png(root / "refs" / "hat.png", np.full((24, 24, 3), 90, np.uint8))
    suite = load_suite(str(root / "suite.yaml"), num_frames=8, size=32)
    tasks = sorted(s.task for s in suite.samples)
    assert tasks == ["image", "image", "text"]
    for s in suite.samples:
        loaded = suite.load(s)
        assert loaded.video.frames.shape == (8, 32, 32, 3)
        if s.task == "image":
            assert loaded.reference is not None and loaded.mask is not None and loaded.mask.any()
    zebra = next(s for s in suite.samples if s.edit_id == "zebra-fur")
    assert suite.load(zebra).mask.shape == (8, 32, 32)


def test_quickest_folder_example_loads(tmp_path):
    prompts = next(b for b in _blocks("yaml") if b.startswith("# clips/prompts.yaml"))
    root = tmp_path / "clips"
    root.mkdir()
    (root / "prompts.yaml").write_text(prompts)
    write_mp4(root / "dog.mp4", _clip(3))
    write_frames(root / "cat", _clip(4))
    suite = load_suite(f"folder:{root}", num_frames=8, size=32)
    assert sorted(s.edit_type for s in suite.samples) == ["background", "composite", "style"]
