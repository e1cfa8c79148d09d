"""The two-branch DOVER model, its checkpoint loader, and architecture inference from a state dict.

`DoverModel` has exactly the official module tree (`technical_backbone`, `aesthetic_backbone`,
`technical_head`, `aesthetic_head`), so the official `DOVER.pth` loads with strict=True. The
loader reads the architecture from the tensor shapes (`infer_config`), which gives the official
DOVER for the official file and lets tests save a tiny model through the very same path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from bench.errors import VidEditBenchError
from metrics.dover.convnext3d import ConvNeXt3D, ConvNeXtConfig
from metrics.dover.heads import VQAHead
from metrics.dover.swin3d import SwinConfig, VideoSwin3D

BRANCHES = ("technical", "aesthetic")


@dataclass(frozen=True)
class DoverConfig:
    technical: SwinConfig = field(default_factory=SwinConfig)
    aesthetic: ConvNeXtConfig = field(default_factory=ConvNeXtConfig)
    head_hidden: int = 64


class DoverModel(nn.Module):
    def __init__(self, cfg: DoverConfig = DoverConfig()):
        super().__init__()
        self.cfg = cfg
        self.technical_backbone = VideoSwin3D(cfg.technical)
        self.aesthetic_backbone = ConvNeXt3D(cfg.aesthetic)
        self.technical_head = VQAHead(cfg.technical.num_features, cfg.head_hidden)
        self.aesthetic_head = VQAHead(cfg.aesthetic.num_features, cfg.head_hidden)

    def branch_map(self, branch: str, clips: torch.Tensor, clips_per_batch: int | None = None) -> torch.Tensor:
        """Head output (num_clips, 1, t, h, w) of one branch for normalised clips (num_clips, 3, T, H, W).

        By default all clips go through in one batch: the attention biases are then built once per
        block for all of them (the attention itself runs clip by clip, which bounds memory)."""
        if branch not in BRANCHES:
            raise ValueError(f"unknown DOVER branch {branch!r}; valid: {BRANCHES}")
        backbone = getattr(self, f"{branch}_backbone")
        head = getattr(self, f"{branch}_head")
        param = next(self.parameters())
        clips = clips.to(param.device, param.dtype)
        step = max(1, int(clips_per_batch or clips.shape[0]))
        with torch.inference_mode():
            outs = [head(backbone(clips[i : i + step])) for i in range(0, clips.shape[0], step)]
        return torch.cat(outs, 0)

    def branch_score(self, branch: str, clips: torch.Tensor, clips_per_batch: int | None = None) -> float:
        """Raw branch score: the mean of the head map over all clips and positions (as the reference)."""
        return float(self.branch_map(branch, clips, clips_per_batch).float().mean().item())


# --- checkpoint handling ----------------------------------------------------------------------------

_WRAPPERS = ("state_dict", "model", "model_state_dict", "module", "net", "params")
_PREFIXES = ("module.", "model.", "_orig_mod.")


def extract_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The DOVER tensors of a loaded checkpoint: unwrap {'state_dict': ...}-style containers and strip
    DataParallel/Lightning/compile prefixes. The official DOVER.pth is a bare state dict."""
    for _ in range(4):
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise VidEditBenchError(f"{source}: not a DOVER checkpoint (expected a state dict of tensors)")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if sd and all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix) :]: v for k, v in sd.items()}
                changed = True
    return sd


def _need(sd: Mapping[str, torch.Tensor], key: str, source: str) -> torch.Tensor:
    if key not in sd:
        raise VidEditBenchError(
            f"{source}: not a DOVER checkpoint, key '{key}' is missing "
            "(expected the official DOVER.pth from github.com/VQAssessment/DOVER)"
        )
    return sd[key]


def _count(sd: Mapping[str, torch.Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.match(k))})


def _window_from_index(n: int, table_len: int, source: str) -> tuple[int, int, int]:
    for wd in range(1, n + 1):
        if n % wd:
            continue
        w = round((n // wd) ** 0.5)
        if w * w * wd == n and (2 * wd - 1) * (2 * w - 1) ** 2 == table_len:
            return (wd, w, w)
    raise VidEditBenchError(f"{source}: cannot infer the Swin window size from a {n}x{n} index and {table_len} biases")


def infer_config(sd: Mapping[str, torch.Tensor], source: str = "checkpoint") -> DoverConfig:
    """Read the architecture off the tensor shapes (the official file gives `DoverConfig()`)."""
    t = "technical_backbone."
    patch = _need(sd, t + "patch_embed.proj.weight", source)
    embed = int(patch.shape[0])
    n_layers = _count(sd, re.escape(t) + r"layers\.(\d+)\.")
    depths = tuple(_count(sd, re.escape(t) + rf"layers\.{i}\.blocks\.(\d+)\.") for i in range(n_layers))
    heads = tuple(int(_need(sd, f"{t}layers.{i}.blocks.0.attn.relative_position_bias_table", source).shape[1])
                  for i in range(n_layers))
    index = _need(sd, t + "layers.0.blocks.0.attn.relative_position_index", source)
    table = sd[t + "layers.0.blocks.0.attn.relative_position_bias_table"]
    fc1 = _need(sd, t + "layers.0.blocks.0.mlp.fc1.weight", source)
    swin = SwinConfig(
        patch_size=tuple(int(s) for s in patch.shape[2:]),  # type: ignore[arg-type]
        in_chans=int(patch.shape[1]),
        embed_dim=embed,
        depths=depths,
        num_heads=heads,
        window_size=_window_from_index(int(index.shape[0]), int(table.shape[0]), source),
        mlp_ratio=float(fc1.shape[0]) / embed,
        qkv_bias=(t + "layers.0.blocks.0.attn.qkv.bias") in sd,
        patch_norm=(t + "patch_embed.norm.weight") in sd,
        frag_biases=tuple((f"{t}layers.{i}.blocks.0.attn.fragment_position_bias_table") in sd for i in range(n_layers)),
    )
    a = "aesthetic_backbone."
    stem = _need(sd, a + "downsample_layers.0.0.weight", source)
    n_stages = _count(sd, re.escape(a) + r"stages\.(\d+)\.")
    dims = (int(stem.shape[0]),) + tuple(
        int(_need(sd, f"{a}downsample_layers.{i}.1.weight", source).shape[0]) for i in range(1, n_stages)
    )
    conv_depths = tuple(_count(sd, re.escape(a) + rf"stages\.{i}\.(\d+)\.") for i in range(n_stages))
    kernels = tuple(
        tuple(int(_need(sd, f"{a}stages.{i}.{j}.dwconv.weight", source).shape[2]) for j in range(conv_depths[i]))
        for i in range(n_stages)
    )
    conv = ConvNeXtConfig(in_chans=int(stem.shape[1]), dims=dims, depths=conv_depths,
                          stem_kernel=tuple(int(s) for s in stem.shape[2:]),  # type: ignore[arg-type]
                          temporal_kernels=kernels)
    hidden = {int(_need(sd, f"{b}_head.fc_hid.weight", source).shape[0]) for b in BRANCHES}
    if len(hidden) != 1:
        raise VidEditBenchError(f"{source}: the technical and aesthetic heads have different widths {sorted(hidden)}")
    return DoverConfig(technical=swin, aesthetic=conv, head_hidden=hidden.pop())


def _checkpoint_file(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        if (path / "DOVER.pth").is_file():
            return path / "DOVER.pth"
        found = sorted(p for p in path.iterdir() if p.suffix in (".pth", ".pt", ".bin", ".ckpt"))
        if len(found) == 1:
            return found[0]
        raise VidEditBenchError(
            f"{path}: expected DOVER.pth (or exactly one .pth/.pt file) in this folder, found {[p.name for p in found]}"
        )
    raise VidEditBenchError(f"{path}: DOVER weights not found")


def load_dover(path: str | os.PathLike, device: str = "cpu") -> DoverModel:
    """Loader for `bench.models.create_model`: DOVER.pth (any wrapper/prefix) -> eval-mode DoverModel."""
    file = _checkpoint_file(Path(path))
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt / truncated / not a torch file
        raise VidEditBenchError(f"{file}: cannot read the DOVER checkpoint ({type(e).__name__}: {e}); "
                                "re-download it with: videditbench weights download dover") from None
    sd = extract_state_dict(obj, str(file))
    cfg = infer_config(sd, str(file))
    with torch.device("meta"):
        model = DoverModel(cfg)
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [f"{k} {tuple(sd[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in sd and sd[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise VidEditBenchError(
            f"{file}: the DOVER state dict does not match the model "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}); "
            "use the official DOVER.pth (videditbench weights download dover)"
        )
    model.load_state_dict(sd, strict=True, assign=True)
    return model.float().eval().requires_grad_(False).to(device)
