"""Expand the packed random weights of `goldens/vbench_viclip/models/` into the files VBench loads, in
the official checkpoints' formats, so our metrics read them through their real loaders.

The unpacking itself is the recipe's own `scripts/qweights.py`, imported from the goldens folder at
test time (it is not part of this repository). The recipe's TorchScript writer for the CLIP files is
not shipped with the goldens, so the CLIP state dicts are written here as OpenAI ships CLIP: a
TorchScript archive of the model, traced once on a dummy image and text (the loaders only read the
archive's state dict).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

FOLDER = "vbench_viclip"
#: packed model -> (file name written, format)
FILES: dict[str, tuple[str, str]] = {
    "dino_vitb16_random": ("dino_vitbase16_pretrain.pth", "plain"),
    "clip_vitb32_random": ("ViT-B-32.pt", "jit"),
    "clip_l14proxy_random": ("ViT-L-14.pt", "jit"),
    "aesthetic_head_random": ("sa_0_4_vit_l_14_linear.pth", "plain"),
    "amt_s_random": ("amt-s.pth", "state_dict"),
    "raft_things_random": ("raft-things.pth", "module"),
    "musiq_spaq_random": ("musiq_spaq_ckpt-358bb6af.pth", "plain"),
}


def _qweights(folder: Path) -> Any:
    spec = importlib.util.spec_from_file_location("vbench_golden_qweights", folder / "scripts" / "qweights.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def save_openai_torchscript(sd: dict, path: Path) -> None:
    import open_clip
    import torch

    model = open_clip.model.build_model_from_openai_state_dict(dict(sd)).float().eval()
    # OpenAI's archives hold exactly the state-dict tensors: open_clip's causal-mask buffer becomes a
    # trace constant instead of an extra key
    mask = model._buffers.pop("attn_mask", None)
    if mask is not None:
        object.__setattr__(model, "attn_mask", mask)
    res = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    img = torch.zeros(1, 3, res, res)
    txt = torch.zeros(1, model.context_length, dtype=torch.long)
    with torch.no_grad():
        traced = torch.jit.trace(model, (img, txt), check_trace=False, strict=False)
    traced.save(str(path))


class GoldenModels:
    """Expands each packed model on first use into `out` and returns its file path."""

    def __init__(self, folder: Path, out: Path):
        self.folder, self.out = Path(folder), Path(out)
        self._q = _qweights(self.folder)
        import json

        self._manifest = json.loads((self.folder / "models" / "manifest.json").read_text())
        self._done: dict[str, Path] = {}

    def state_dict(self, name: str) -> dict:
        sd = self._q.unpack(self.folder / "models" / f"{name}.npz")
        assert self._q.sd_sha256(sd) == self._manifest[name]["state_dict_sha256"], f"{name}: tensor hash mismatch"
        return sd

    def path(self, name: str) -> Path:
        import torch

        if name in self._done:
            return self._done[name]
        filename, kind = FILES[name]
        p = self.out / name / filename
        p.parent.mkdir(parents=True, exist_ok=True)
        sd = self.state_dict(name)
        if kind == "plain":
            torch.save(sd, p)
        elif kind == "state_dict":
            torch.save({"state_dict": sd}, p)
        elif kind == "module":
            torch.save({"module." + k: v for k, v in sd.items()}, p)
        elif kind == "jit":
            save_openai_torchscript(sd, p)
        self._done[name] = p
        return p
