"""Our plain-torch RAFT (`metrics/flow/raft/`) against ptlflow's, the `raft` flow backend (ptlflow's is
`raft-ptlflow`) and dynamic_degree on our network.

ptlflow's RAFT is built, its weights re-drawn with a fixed seed (batch-norm statistics too, so the context
encoder's frozen statistics matter), and saved in the original repository's format (a bare state dict with
DataParallel's `module.` prefix, as raft-things.pth) and in ptlflow's (`{'state_dict': sd}`); both networks
load them through their real loaders. Random weights at 128x128 and 125x130 (padded unevenly to 128x136): the
flows must agree to float noise (measured: 0.0 px, bit-identical).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.api.errors import VidEditBenchError
from tiny_models import textured_frames

ROOT = Path(__file__).resolve().parents[1]
TOL_PX = 1e-4


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    import torch

    from metrics.flow.ptlflow_models import ptlflow_model_class
    from tiny_models import spread_weights

    root = tmp_path_factory.mktemp("raft_own")
    model = spread_weights(ptlflow_model_class("raft")(), seed=5)
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.1 * torch.randn(buf.shape, generator=g))
            elif name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand(buf.shape, generator=g))
    sd = model.state_dict()
    torch.save({"module." + k: v for k, v in sd.items()}, root / "raft-original.pth")
    torch.save({"state_dict": sd}, root / "raft-ptlflow.ckpt")
    return root




def test_network_matches_ptlflow_on_the_same_inputs(weights):
    import torch

    from metrics.flow.ptlflow_models import load_ptlflow_model
    from metrics.flow.raft import load_raft

    path = weights / "raft-original.pth"
    ref = load_ptlflow_model(path, model_name="raft", input_norm="raft", iters=6)
    ours = load_raft(path, iters=6)
    assert set(ours.state_dict()) == set(ref.state_dict())
    torch.manual_seed(1)
    for h, w in ((128, 128), (125, 130)):
        x0, x1 = torch.rand(1, 3, h, w) * 2 - 1, torch.rand(1, 3, h, w) * 2 - 1
        with torch.inference_mode():
            want = ref({"images": torch.stack([x0.flip(1), x1.flip(1)], 1)})["flows"][:, 0]
            got = ours(x0, x1)
        assert got.shape == want.shape == (1, 2, h, w)
        assert want.abs().mean() > 0.5  # random RAFT still moves pixels: not a trivially equal zero field
        diff = (got - want).abs().max().item()
        assert diff <= TOL_PX, f"{h}x{w}: max |ours - ptlflow| = {diff} px"


def test_correlation_window_is_x_major():
    """The 81 features of a level are ordered with the x offset varying slowest (the checkpoints' order): on a
    correlation volume that is the target x coordinate, feature k of the window equals x + (k // 9 - 4)."""
    import torch

    from metrics.flow.raft.model import lookup

    h, w = 16, 16
    xs = torch.arange(w, dtype=torch.float32).expand(h, w)
    pyramid = [xs.expand(h * w, 1, h, w).contiguous()]  # corr(p, q) = x of q, for every source pixel p
    coords = torch.zeros(1, 2, h, w)
    coords[:, 0], coords[:, 1] = 8.0, 7.0
    feats = lookup(pyramid, coords)[0, :, 0, 0]  # (81,)
    want = torch.tensor([8.0 + (k // 9 - 4) for k in range(81)])
    assert torch.equal(feats, want)


def test_backend_gives_the_ptlflow_backend_flows_and_keeps_the_raft_variant(weights, monkeypatch):
    from metrics.flow import create_flow_model, flow_weight_names

    assert flow_weight_names("raft") == flow_weight_names("raft-ptlflow") == ["raft-sintel"]
    monkeypatch.setenv("VIDEDITBENCH_WEIGHT_RAFT_SINTEL", str(weights / "raft-ptlflow.ckpt"))
    native = create_flow_model("raft", batch_size=2)
    ptl = create_flow_model("raft-ptlflow", batch_size=2)
    a, b = textured_frames(1, 128, 136, 0), textured_frames(1, 128, 136, 1)
    got, want = native.estimate(a, b), ptl.estimate(a, b)
    assert got.shape == (1, 128, 136, 2) and got.dtype == np.float32
    assert np.abs(want).mean() > 0.5
    assert np.abs(got - want).max() <= TOL_PX
    small = textured_frames(3, 40, 56, 2)  # under 128 px: both edge-pad bottom/right first
    np.testing.assert_allclose(native.consecutive(small), ptl.consecutive(small), rtol=0, atol=TOL_PX)
    # the variant `raft` had when ptlflow ran it: scores stored before stay valid
    assert native.variant() == {"flow": "raft", "flow_weights": "raft-sintel", "flow_config": "iters=32"}
    assert ptl.variant()["flow"] == "raft-ptlflow" and native.cache_tag() != ptl.cache_tag()


def test_scoring_imports_neither_lightning_nor_ptlflow(weights):
    """A `raft` flow and a dynamic_degree score in a fresh process."""
    code = (
        "import sys, numpy as np\n"
        "from metrics.flow import create_flow_model\n"
        "m = create_flow_model('raft', batch_size=1)\n"
        "f = m.estimate(np.zeros((1, 128, 128, 3), np.uint8), np.full((1, 128, 128, 3), 9, np.uint8))\n"
        "assert f.shape == (1, 128, 128, 2), f.shape\n"
        "from bench.api.types import EvalItem, Sample, Video\n"
        "from metrics.vbench_motion import DynamicDegree\n"
        "v = Video(np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8), fps=8.0)\n"
        "item = EvalItem(sample=Sample(suite='t', video_id='v', edit_id='0', source='v'), source=v, edited=v, "
        "source_key='v', method='m')\n"
        f"dd = DynamicDegree(weights={str(weights / 'raft-original.pth')!r}).compute(item)['dynamic_degree']\n"
        "assert dd in (0.0, 1.0), dd\n"
        "import json\n"
        "print(json.dumps({k: k in sys.modules for k in "
        "('torch', 'lightning', 'pytorch_lightning', 'torchmetrics', 'ptlflow')}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "VIDEDITBENCH_WEIGHT_RAFT_SINTEL": str(weights / "raft-original.pth")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"torch": True, "lightning": False, "pytorch_lightning": False, "torchmetrics": False,
                   "ptlflow": False}


def test_both_checkpoint_formats_load_the_same_network(weights):
    import torch

    from metrics.flow.raft import load_raft

    a = load_raft(weights / "raft-original.pth", iters=3)
    b = load_raft(weights / "raft-ptlflow.ckpt", iters=3)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ref = torch.load(weights / "raft-ptlflow.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], ref[k]) for k in ref)  # the file's tensors, not a fresh initialisation
    assert not a.training and not any(p.requires_grad for p in a.parameters()) and a.iters == 3


def test_wrong_or_missing_keys_are_one_line_naming_the_file(weights, tmp_path):
    import torch

    from metrics.flow.raft import load_raft

    sd = torch.load(weights / "raft-original.pth", weights_only=True)
    missing = {k: v for k, v in sd.items() if k != "module.update_block.mask.2.bias"}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(VidEditBenchError) as e:
        load_raft(tmp_path / "missing.pth")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "missing.pth") in msg and "update_block.mask.2.bias" in msg

    torch.save(dict(sd, **{"module.extra.weight": torch.zeros(1)}), tmp_path / "extra.pth")
    with pytest.raises(VidEditBenchError, match=r"extra\.pth: not a RAFT checkpoint.*unexpected \['extra\.weight'\]"):
        load_raft(tmp_path / "extra.pth")

    reshaped = dict(sd, **{"module.fnet.conv2.weight": torch.zeros(128, 128, 1, 1)})  # a 128-d feature RAFT
    torch.save(reshaped, tmp_path / "shape.pth")
    with pytest.raises(VidEditBenchError, match=r"shape\.pth: tensor shapes differ from RAFT at \['fnet\.conv2\.weight'\]"):
        load_raft(tmp_path / "shape.pth")

    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(VidEditBenchError, match=r"list\.pth"):
        load_raft(tmp_path / "list.pth")


def test_dynamic_degree_flows_are_those_of_ptlflow_on_vbench_inputs(weights):
    """dynamic_degree's pair flows (our RAFT, 20 iterations, padded 2x/255-1 RGB) equal ptlflow's RAFT fed the
    same tensor in its BGR convention with its own normalisation off (the path dynamic_degree used before)."""
    import torch
    import torch.nn.functional as F

    from metrics.flow.ptlflow_models import load_ptlflow_model
    from metrics.vbench_motion import DynamicDegree, raft_pair_flows, sintel_pad

    frames = textured_frames(2, 128, 132, 7)  # 132: padded to 136 (2 px each side)
    metric = DynamicDegree(weights=str(weights / "raft-original.pth"))
    metric.setup()
    got = raft_pair_flows(metric._model, frames)
    assert len(got) == 1 and got[0].shape == (128, 136, 2)

    ref = load_ptlflow_model(weights / "raft-original.pth", model_name="raft", input_norm="raft", iters=20)
    left, right, top, bottom = sintel_pad(128, 132)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = 2 * (F.pad(x, [left, right, top, bottom], mode="replicate") / 255.0) - 1.0
    with torch.inference_mode():
        want = ref({"images": x.flip(1)[None]})["flows"][0, 0].permute(1, 2, 0).numpy()
    assert np.abs(want).mean() > 0.5
    assert np.abs(got[0] - want).max() <= TOL_PX
