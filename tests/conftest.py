"""Test environment: never touch the network, keep caches in temp dirs, keep CPU threads modest."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Must be set before huggingface_hub / transformers / diffusers are imported anywhere.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def goldens_path() -> Path:
    return Path(os.environ.get("VIDEDITBENCH_GOLDENS", REPO_ROOT.parent / "shared" / "goldens"))


def in_ci() -> bool:
    """`.ci/run` exports CI=true: there a missing fixture or system tool is a broken setup, not a skip."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_requirement(msg: str) -> None:
    """Skip locally, fail under CI: a test whose requirement CI provides must never pass by skipping there."""
    if in_ci():
        pytest.fail(msg + " (CI=true: CI must provide it)", pytrace=False)
    pytest.skip(msg, allow_module_level=True)


def import_or_skip(module: str, install: str = "pip install -e '.[test]'"):
    """`pytest.importorskip` for what CI's `.[test]` installs: skips locally, fails under CI=true."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        missing_requirement(f"{module} is not installed ({install})")


def require_goldens(subdir: str = "") -> Path:
    """The shared goldens folder (or one of its sub-folders); skips locally, fails in CI when absent."""
    path = goldens_path() / subdir if subdir else goldens_path()
    if not (path / "expected.json").is_file():
        where = "../shared/goldens" + (f"/{subdir}" if subdir else "")
        missing_requirement(f"golden fixtures not found at {path} (expected {where} beside the repo, "
                            "or VIDEDITBENCH_GOLDENS)")
    return path


def require_chromium() -> str:
    """Path of Debian's Chromium; skips locally, fails in CI (.ci/run installs it) when absent."""
    import shutil

    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    if browser is None and Path("/usr/bin/chromium").is_file():
        browser = "/usr/bin/chromium"
    if browser is None:
        missing_requirement("chromium not installed (apt-get install -y chromium)")
    return str(browser)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Every test gets an empty project cache and HF cache, so nothing real is ever found or fetched."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("VIDEDITBENCH_CACHE", str(root / "videditbench"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hf" / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    for key in list(os.environ):
        if key.startswith("VIDEDITBENCH_WEIGHT_"):
            monkeypatch.delenv(key)
    yield


@pytest.fixture(scope="session")
def goldens_dir() -> Path:
    return require_goldens()


@pytest.fixture(scope="session")
def golden_expected(goldens_dir) -> dict:
    import json

    return json.loads((goldens_dir / "expected.json").read_text())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def small_video(rng):
    """A 6-frame 64x64 clip: a textured background translating by 2 px/frame plus a moving square."""
    from bench.api.types import Video

    h = w = 64
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for t in range(6):
        bg = 128 + 60 * np.sin(2 * np.pi * (x - 2 * t) / 23.0)[..., None] * np.array([1.0, 0.6, -0.4])
        f = bg.copy()
        f[20 + t : 36 + t, 10 + 3 * t : 26 + 3 * t] = (220, 40, 40)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return Video(np.stack(frames), fps=8.0)
