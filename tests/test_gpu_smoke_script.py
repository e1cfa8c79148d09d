"""scripts/gpu_smoke.py: finds every registered diffusion adapter and skips cleanly without CUDA."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_smoke_lists_the_diffusion_adapters_and_skips_without_cuda():
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gpu_smoke
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    names = gpu_smoke.diffusion_method_names()
    assert {"tokenflow", "vidtome", "rave", "text2video-zero", "framewise-paint-by-example"} <= set(names)
    assert not {"source", "color-transfer", "flow-propagate", "external", "precomputed"} & set(names)
    from bench_methods import tiny_components  # noqa: F401  (the builders the script uses import)

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: run `python scripts/gpu_smoke.py` itself")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_smoke.py")], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "skipped — no CUDA device" in proc.stdout
