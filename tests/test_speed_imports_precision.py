"""Start-up stays narrow (what a metric imports) and the `precision` variant of the model metrics.

Import checks run in fresh interpreters, so modules other tests imported do not hide an import.
No timing is asserted anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.store.feature_cache import FeatureCache
from bench.api.errors import VidEditBenchError
from bench.api.types import EvalItem, Sample, Video

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Sample("t", "v", "e", "src")


def _fresh_modules(code: str, *watch: str) -> dict[str, bool]:
    """Run `code` in a fresh interpreter; which of the `watch` modules ended up imported."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {list(watch)!r}}}))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    from tests import tiny_models as tm

    root = tmp_path_factory.mktemp("tiny_speed")
    return {"clip": tm.build_tiny_clip(root / "clip"), "dinov2": tm.build_tiny_dinov2(root / "dinov2")}


def _item(seed: int = 0, n: int = 4, cache=None) -> EvalItem:
    frames = np.random.default_rng(seed).integers(0, 256, (n, 48, 48, 3), dtype=np.uint8)
    v = Video(frames)
    return EvalItem(SAMPLE, source=v, edited=v, prompt="a red car", cache=cache)


# ---- narrow imports ------------------------------------------------------------------------------
def test_metric_modules_import_nothing_heavy():
    got = _fresh_modules("import metrics.clip, metrics.dino, metrics.vbench, metrics.motion, metrics.flow.ptlflow_models",
                         "torch", "transformers", "lightning", "ptlflow")
    assert got == {"torch": False, "transformers": False, "lightning": False, "ptlflow": False}


def test_clip_and_dino_scores_do_not_import_lightning_or_ptlflow(tiny):
    code = (
        "import numpy as np\n"
        "from bench.api.types import EvalItem, Sample, Video\n"
        "from metrics.clip import ClipTextAlignment\n"
        "from metrics.dino import DinoConsistency\n"
        "v = Video(np.random.default_rng(0).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8))\n"
        "item = EvalItem(Sample('t', 'v', 'e', 's'), source=v, edited=v, prompt='a cat')\n"
        f"ClipTextAlignment(weights={str(tiny['clip'])!r}).compute(item)\n"
        f"DinoConsistency(weights={str(tiny['dinov2'])!r}).compute(item)\n"
    )
    got = _fresh_modules(code, "transformers.models.clip.modeling_clip", "lightning", "ptlflow", "jsonargparse")
    assert got == {"transformers.models.clip.modeling_clip": True, "lightning": False, "ptlflow": False,
                   "jsonargparse": False}


def test_gmflow_loads_without_ptlflow_package_and_matches_get_model(tmp_path):
    """The narrow import skips ptlflow/__init__ (and its registry of ~45 models), leaves sys.modules
    free of stand-ins, and gives the same network and flow as ptlflow.get_model with the same weights."""
    code = (
        "import sys, torch, numpy as np\n"
        "torch.manual_seed(0)\n"
        "from metrics.flow.ptlflow_models import ptlflow_model_class, load_ptlflow_model\n"
        "cls = ptlflow_model_class('gmflow')\n"
        "assert not any(m == 'ptlflow' or m.startswith('ptlflow.') for m in sys.modules), 'stand-ins left behind'\n"
        "import ptlflow\n"  # the real package still imports afterwards, with its full registry
        "ref = ptlflow.get_model('gmflow')\n"
        "assert 'raft' in ptlflow.get_model_names() and 'flownets' in ptlflow.get_model_names()\n"
        "assert [c.__name__ for c in type(ref).__mro__] == [c.__name__ for c in cls.__mro__]\n"
        f"torch.save({{'state_dict': ref.state_dict()}}, {str(tmp_path / 'g.ckpt')!r})\n"
        "ours = load_ptlflow_model("
        f"{str(tmp_path / 'g.ckpt')!r}, 'cpu', model_name='gmflow')\n"
        "ref = ptlflow.get_model('gmflow', ckpt_path="
        f"{str(tmp_path / 'g.ckpt')!r})\n"
        "ref.attn_splits_list, ref.corr_radius_list, ref.prop_radius_list = [2], [-1], [-1]\n"
        "ref.eval()\n"
        "x = torch.rand(1, 2, 3, 64, 64, generator=torch.Generator().manual_seed(1))\n"
        "with torch.inference_mode():\n"
        "    a = ours({'images': x})['flows']; b = ref({'images': x})['flows']\n"
        "assert torch.equal(a, b), float((a - b).abs().max())\n"
    )
    got = _fresh_modules(code, "lightning")
    assert got["lightning"]  # ptlflow's BaseModel is a LightningModule: the one heavy import left


# ---- precision variant -------------------------------------------------------------------------
def test_precision_is_part_of_the_variant_and_fp32_ids_are_unchanged(tiny):
    from metrics.clip import ClipConsistency
    from metrics.dino import DinoConsistency
    from metrics.vbench import BackgroundConsistency, SubjectConsistency

    for cls, w in ((ClipConsistency, tiny["clip"]), (DinoConsistency, tiny["dinov2"]),
                   (SubjectConsistency, tiny["dinov2"]), (BackgroundConsistency, tiny["clip"])):
        fp32, bf16 = cls(weights=str(w)), cls(weights=str(w), precision="bf16")
        assert fp32.variant_id() != bf16.variant_id()
        assert "precision" not in fp32.variant() and bf16.variant()["precision"] == "bf16"
        # the fp32 id is the one computed before the option existed (options without precision)
        before = {k: v for k, v in fp32.options.items() if k != "precision"}
        blob = json.dumps(dict(sorted(before.items())), sort_keys=True, default=str)
        assert fp32.variant_id() == hashlib.sha256(blob.encode()).hexdigest()[:12]


def test_fp16_on_cpu_is_refused_with_one_line(tiny):
    from metrics.clip import ClipTextAlignment
    from metrics.vbench import SubjectConsistency

    for cls in (ClipTextAlignment, SubjectConsistency):
        with pytest.raises(VidEditBenchError) as e:
            cls(weights=str(tiny["clip"]), precision="fp16", device="cpu")
        msg = str(e.value)
        assert "\n" not in msg and "fp16" in msg and cls.name in msg and "precision=fp32" in msg
    with pytest.raises(VidEditBenchError, match="valid choices"):
        ClipTextAlignment(weights=str(tiny["clip"]), precision="fp8")


def test_bf16_runs_in_bf16_and_is_cached_apart_from_fp32(tiny):
    import torch

    from metrics.clip import ClipConsistency, ClipTextAlignment
    from metrics.dino import DinoConsistency

    cache = FeatureCache()
    item = _item(cache=cache)
    for cls, w in ((ClipConsistency, tiny["clip"]), (ClipTextAlignment, tiny["clip"]), (DinoConsistency, tiny["dinov2"])):
        fp32, bf16 = cls(weights=str(w)), cls(weights=str(w), precision="bf16")
        v32 = fp32.compute(item)[cls.name]
        v16 = bf16.compute(item)[cls.name]  # same cache: a shared namespace would return v32 again
        model = (bf16.clip if hasattr(bf16, "clip") else bf16.dino).model
        assert next(model.parameters()).dtype == torch.bfloat16
        assert next((fp32.clip if hasattr(fp32, "clip") else fp32.dino).model.parameters()).dtype == torch.float32
        assert v16 != v32
        scale = 100.0 if cls is ClipTextAlignment else 1.0
        assert abs(v16 - v32) < 0.05 * scale  # bf16 rounding, not a different computation


def test_motion_alignment_precision_variant_and_refusals(tmp_path):
    import torch

    from bench.api.types import Video
    from metrics.flow.ptlflow_models import GMFlowEstimator, ptlflow_model_class
    from metrics.motion import MotionAlignment

    base = MotionAlignment()
    assert "precision" not in base.variant()
    assert MotionAlignment(precision="bf16").variant_id() != base.variant_id()
    with pytest.raises(VidEditBenchError, match="needs a CUDA device"):
        MotionAlignment(precision="fp16")
    with pytest.raises(VidEditBenchError, match="network flows"):
        MotionAlignment(flow="dis", precision="bf16")
    # bf16 GMFlow really runs in bf16, and its flows are cached under another tag than fp32's
    torch.manual_seed(0)
    torch.save({"model": ptlflow_model_class("gmflow")().state_dict()}, tmp_path / "g.pth")
    fp32 = GMFlowEstimator(weights=str(tmp_path / "g.pth"))
    bf16 = GMFlowEstimator(weights=str(tmp_path / "g.pth"), precision="bf16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    assert fp32.cache_tag() != bf16.cache_tag()
    frames = Video(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)).frames
    f32, f16 = fp32.consecutive(frames), bf16.consecutive(frames)
    assert f16.dtype == np.float32 and f16.shape == f32.shape and not np.array_equal(f16, f32)


def test_bench_peers_without_peers_says_how_to_get_them(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_peers.py"), "--v2vbench", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "git clone https://github.com/wenhao728/awesome-diffusion-v2v" in out.stdout
    assert "vbench==0.1.5" in out.stdout and "--vbench-python" in out.stdout
    assert "ratio" not in out.stdout  # nothing was timed
