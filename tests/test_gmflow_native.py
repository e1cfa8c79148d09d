"""Our plain-torch GMFlow (`metrics/flow/gmflow/`) against ptlflow's, and the `gmflow` flow backend (ptlflow's is `gmflow-ptlflow`).

ptlflow's GMFlow is built with a fixed seed, its state dict saved in the original repository's format
(`{'model': sd}`, as V2VBench's gmflow_sintel-0c07dcb3.pth) and in ptlflow's (`{'state_dict': sd}`), and both
networks load it through their real loaders. Random weights at 64x96: the flows must agree to float noise
(global softmax matching amplifies any difference in the order of operations, so this pins the architecture;
measured: 0.0 px, bit-identical). The golden test runs our network on RECIPE §2's first 512x512 pair.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tiny_models import textured_frames

from bench.api.errors import VidEditBenchError

ROOT = Path(__file__).resolve().parents[1]
TOL_PX = 1e-4


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    import torch

    from metrics.flow.ptlflow_models import ptlflow_model_class

    root = tmp_path_factory.mktemp("gmflow_native")
    torch.manual_seed(0)
    sd = ptlflow_model_class("gmflow")().state_dict()
    torch.save({"model": sd}, root / "gmflow-original.pth")
    torch.save({"state_dict": sd}, root / "gmflow-ptlflow.ckpt")
    return root




def test_network_matches_ptlflow_on_the_same_inputs(weights):
    import torch

    from metrics.flow.gmflow import load_gmflow
    from metrics.flow.ptlflow_models import load_ptlflow_model

    path = weights / "gmflow-original.pth"
    ref = load_ptlflow_model(path, model_name="gmflow", input_norm="gmflow")
    ours = load_gmflow(path)
    assert set(ours.state_dict()) == set(ref.state_dict())
    torch.manual_seed(1)
    for h, w in ((64, 96), (40, 72)):  # 40x72: padded to 64x96, split unevenly (the odd pixels right/bottom)
        x0, x1 = torch.randn(2, 3, h, w), torch.randn(2, 3, h, w)
        with torch.inference_mode():
            want = ref({"images": torch.stack([x0.flip(1), x1.flip(1)], 1)})["flows"][:, 0]
            got = ours(x0, x1)
        assert got.shape == want.shape == (2, 2, h, w)
        assert want.abs().mean() > 0.5  # random GMFlow still moves pixels: not a trivially equal zero field
        diff = (got - want).abs().max().item()
        assert diff <= TOL_PX, f"{h}x{w}: max |ours - ptlflow| = {diff} px"


def test_backend_gives_the_gmflow_backend_flows(weights, monkeypatch):
    from metrics.flow import create_flow_model, flow_weight_names

    assert flow_weight_names("gmflow") == ["gmflow-sintel"]
    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_GMFLOW_SINTEL", str(weights / "gmflow-ptlflow.ckpt"))
    native = create_flow_model("gmflow", batch_size=2)
    ptl = create_flow_model("gmflow-ptlflow", batch_size=2)
    a, b = textured_frames(2, 64, 96, 0), textured_frames(2, 64, 96, 1)
    got, want = native.estimate(a, b), ptl.estimate(a, b)
    assert got.shape == (2, 64, 96, 2) and got.dtype == np.float32
    assert np.abs(got - want).max() <= TOL_PX
    small = textured_frames(3, 24, 40, 2)  # under 32 px: both edge-pad bottom/right first
    np.testing.assert_allclose(native.consecutive(small), ptl.consecutive(small), rtol=0, atol=TOL_PX)
    assert native.variant()["flow"] == "gmflow" and native.cache_tag() != ptl.cache_tag()


def test_scoring_imports_neither_lightning_nor_ptlflow(weights):
    code = (
        "import sys, numpy as np\n"
        "from metrics.flow import create_flow_model\n"
        "m = create_flow_model('gmflow', batch_size=1)\n"
        "f = m.estimate(np.zeros((1, 64, 64, 3), np.uint8), np.full((1, 64, 64, 3), 9, np.uint8))\n"
        "assert f.shape == (1, 64, 64, 2), f.shape\n"
        "import json\n"
        "print(json.dumps({k: k in sys.modules for k in ('torch', 'lightning', 'torchmetrics', 'ptlflow')}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "VIDEDITBENCH_WEIGHT_GMFLOW_SINTEL": str(weights / "gmflow-original.pth")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"torch": True, "lightning": False, "torchmetrics": False, "ptlflow": False}


def test_wrong_or_missing_keys_are_one_line_naming_the_file(weights, tmp_path):
    import torch

    from metrics.flow.gmflow import load_gmflow

    sd = torch.load(weights / "gmflow-original.pth", weights_only=True)["model"]
    missing = {k: v for k, v in sd.items() if k != "upsampler.2.bias"}
    torch.save({"model": missing}, tmp_path / "missing.pth")
    with pytest.raises(VidEditBenchError) as e:
        load_gmflow(tmp_path / "missing.pth")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "missing.pth") in msg and "upsampler.2.bias" in msg

    renamed = {k.replace("backbone.", "encoder."): v for k, v in sd.items()}
    torch.save({"model": renamed}, tmp_path / "renamed.pth")
    with pytest.raises(VidEditBenchError, match=r"renamed\.pth: not a GMFlow checkpoint.*unexpected \['encoder\."):
        load_gmflow(tmp_path / "renamed.pth")

    reshaped = dict(sd, **{"upsampler.0.weight": torch.zeros(256, 66, 3, 3)})  # a 64-channel GMFlow
    torch.save({"model": reshaped}, tmp_path / "shape.pth")
    with pytest.raises(VidEditBenchError, match=r"shape\.pth: tensor shapes differ from GMFlow at \['upsampler\.0\.weight'\]"):
        load_gmflow(tmp_path / "shape.pth")

    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(VidEditBenchError, match=r"list\.pth"):
        load_gmflow(tmp_path / "list.pth")


def test_golden_first_pair_matches_v2vbench(goldens_dir, golden_expected, monkeypatch):
    """RECIPE §2 with our network: frames 00->01 of src_a and edit_a at 512x512, the recipe's random GMFlow
    (original format) through the weights registry; per-pair EPE within the golden tolerance (rel 1e-3)."""
    from PIL import Image

    from metrics.flow import create_flow_model
    from metrics.motion import per_pair_epe

    def frames(name: str) -> np.ndarray:
        return np.stack([np.array(Image.open(goldens_dir / "inputs" / name / f"{i:02d}.png").convert("RGB"))
                         for i in range(2)])

    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_GMFLOW_SINTEL", str(goldens_dir / "models" / "gmflow-random.pth"))
    flow = create_flow_model("gmflow", batch_size=1)
    src, edit = flow.consecutive(frames("src_a")), flow.consecutive(frames("edit_a"))
    detail = golden_expected["v2vbench"]["motion_alignment_detail"]["edit_a|src_a"]
    assert per_pair_epe(edit, src)[0] == pytest.approx(detail["per_pair_mean_epe"][0], rel=1e-3)
    np.testing.assert_allclose(src[0].reshape(-1, 2).mean(0), detail["ref_flow_mean_u_v_per_pair"][0], atol=0.02)
    np.testing.assert_allclose(edit[0].reshape(-1, 2).mean(0), detail["edit_flow_mean_u_v_per_pair"][0], atol=0.02)
    points = [edit[0, 0, 0], edit[0, 100, 200], edit[0, 511, 511]]
    np.testing.assert_allclose(points, detail["edit_flow_00_01_at_(y,x)=(0,0),(100,200),(511,511)"], atol=0.03)


def test_motion_alignment_with_native_flow_scores_as_with_gmflow(weights, monkeypatch):
    from bench.api.types import EvalItem, Sample, Video
    from metrics.motion import MotionAlignment

    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_GMFLOW_SINTEL", str(weights / "gmflow-original.pth"))
    src, edit = textured_frames(3, 48, 64, 3), textured_frames(3, 48, 64, 4)
    item = EvalItem(sample=Sample(suite="t", video_id="v", edit_id="0", source="v"), source=Video(src),
                    edited=Video(edit), source_key="v", method="m")
    scores = {}
    for flow in ("gmflow-ptlflow", "gmflow"):
        metric = MotionAlignment(flow=flow, batch_size=2)
        metric.setup()
        scores[flow] = metric.compute(item)["motion_alignment"]
    assert scores["gmflow-ptlflow"] < -0.1  # two unrelated random clips: a clearly non-zero motion difference
    assert scores["gmflow"] == pytest.approx(scores["gmflow-ptlflow"], abs=1e-5)
