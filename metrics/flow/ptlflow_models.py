"""ptlflow-backed estimators: GMFlow (V2VBench's motion-alignment model) and RAFT (`gmflow-ptlflow`, `raft-ptlflow`).

Both load through `bench.models.create_model(weights, load_ptlflow_model, device, ...)`, which takes
a weights-registry name or a local checkpoint path. Two checkpoint formats are accepted:

* ptlflow's Lightning format `{'state_dict': sd, 'hyper_parameters': ...}` (the registry's
  `gmflow-sintel` / `raft-sintel` files) is restored as `ptlflow.get_model(name, ckpt_path=path)`
  does (hyper-parameters it reads, then a strict `load_state_dict`);
* the original repositories' format `{'model': sd}` (e.g. V2VBench's `gmflow_sintel-0c07dcb3.pth`)
  is loaded with a strict `load_state_dict` into the default-constructed model. For GMFlow the two
  state dicts have identical keys (RECIPE §2), so no key mapping is needed.

Start-up: only the model's own ptlflow module is imported (not `ptlflow/__init__`, which pulls in
jsonargparse and all ~45 model families); see `_import_narrow`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.errors import VidEditBenchError
from metrics.flow.base import FlowModel, check_pairs

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Constructor facts of each ptlflow model, checked against the instance after construction so a
#: ptlflow release with other defaults fails loudly instead of computing a different flow.
#: GMFlow: V2VBench's `third_party/gmflow/config.yaml` + the call-time arguments of its
#: `motion_alignment.py` (1 scale, attn splits [2], global matching corr/prop radius [-1]).
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "gmflow": dict(num_scales=1, upsample_factor=8, feature_channels=128, attention_type="swin",
                   num_transformer_layers=6, ffn_dim_expansion=4, num_head=1),
    "raft": dict(corr_levels=4, corr_radius=4),
}
CALL_ARGS: dict[str, dict[str, Any]] = {
    "gmflow": dict(attn_splits_list=[2], corr_radius_list=[-1], prop_radius_list=[-1], pred_bidir_flow=False),
    # RAFT's Sintel evaluation setting (32 refinement iterations), ptlflow's default.
    "raft": dict(iters=32),
}

_IMPORT_LOCK = threading.Lock()
#: the ptlflow module that registers each model name (imported alone: see `ptlflow_model_class`)
MODEL_MODULES: dict[str, str] = {
    "gmflow": "ptlflow.models.gmflow.gmflow",
    "raft": "ptlflow.models.raft.raft",
}
_NARROW_PARENTS = ("ptlflow", "ptlflow.models")
_NARROW_MODULES: dict[str, Any] = {}


def _import_narrow(module: str) -> Any:
    """Import one ptlflow model module without running `ptlflow/__init__.py` (jsonargparse,
    requests, hub) or `ptlflow/models/__init__.py` (all ~45 model families).

    The two parent packages are stood in for by bare package modules with the real `__path__`
    while the submodule is imported; afterwards every `ptlflow.*` entry this import added to
    `sys.modules` is removed again, so a later `import ptlflow` elsewhere runs the real package
    from scratch (with its full registry). The model class itself still imports lightning:
    ptlflow's BaseModel is a LightningModule.
    """
    import importlib
    import importlib.util
    import sys
    import types

    if module in _NARROW_MODULES:
        return _NARROW_MODULES[module]
    if "ptlflow.models" in sys.modules:
        return importlib.import_module(module)  # the real package is already imported
    before = set(sys.modules)
    try:
        for name in _NARROW_PARENTS:
            if name in sys.modules:
                continue
            spec = importlib.util.find_spec(name)
            if spec is None or not spec.submodule_search_locations:
                raise ImportError(f"no module named '{name}'")
            stub = types.ModuleType(name)
            stub.__path__ = list(spec.submodule_search_locations)
            stub.__spec__ = spec
            sys.modules[name] = stub
        mod = importlib.import_module(module)
    finally:
        for name in set(sys.modules) - before:
            if name == "ptlflow" or name.startswith("ptlflow."):
                del sys.modules[name]
    _NARROW_MODULES[module] = mod
    return mod


def require_ptlflow(model_name: str) -> None:
    """One line naming the extra when the optional ptlflow package (or the lightning it needs) is absent."""
    import importlib.util

    missing = [m for m in ("ptlflow", "lightning") if importlib.util.find_spec(m) is None]
    if missing:
        raise VidEditBenchError(
            f"flow backend '{model_name}-ptlflow' needs the optional package(s) {', '.join(missing)}: "
            f"pip install 'videditbench[ptlflow]' (or use flow={model_name}, our own network, the same flows)")


def ptlflow_model_class(model_name: str) -> Any:
    """The class `ptlflow.get_model(model_name)` instantiates (the module attribute of that name,
    which jsonargparse resolves), importing only the module that defines it."""
    if model_name not in MODEL_MODULES:
        raise VidEditBenchError(f"unknown ptlflow model '{model_name}'; valid: {', '.join(MODEL_MODULES)}")
    require_ptlflow(model_name)
    with _IMPORT_LOCK:
        module = _import_narrow(MODEL_MODULES[model_name])
    return getattr(module, model_name)


def _build_ptlflow_model(model_name: str) -> Any:
    """`ptlflow.get_model(model_name)` without a checkpoint: the class with its default arguments."""
    return ptlflow_model_class(model_name)()


def _read_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise VidEditBenchError(f"cannot read flow checkpoint {path}: {e}") from e
    if isinstance(ckpt, dict) and ckpt and all(hasattr(v, "shape") for v in ckpt.values()):
        # a bare state dict, e.g. the original RAFT's raft-things.pth (saved from DataParallel: 'module.' keys)
        return {"model": {k[len("module."):] if k.startswith("module.") else k: v for k, v in ckpt.items()}}
    if not isinstance(ckpt, dict) or not ({"state_dict", "model"} & set(ckpt)):
        keys = sorted(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise VidEditBenchError(
            f"flow checkpoint {path} has neither 'state_dict' (ptlflow) nor 'model' (original GMFlow/RAFT) "
            f"at its top level (found {keys}); pass a ptlflow .ckpt or an original {{'model': state_dict}} .pth"
        )
    return ckpt


def flow_state_dict(path: Path) -> dict[str, Any]:
    """The state dict of a flow checkpoint in any accepted format (ptlflow's `state_dict`, the original
    `{'model': sd}`, a bare dict with or without 'module.' prefixes); imports torch, not ptlflow."""
    ckpt = _read_checkpoint(path)
    sd = ckpt["state_dict"] if "state_dict" in ckpt else ckpt["model"]
    if not isinstance(sd, dict):
        raise VidEditBenchError(f"{path}: the checkpoint's state dict is a {type(sd).__name__}, not a dict of tensors")
    return sd

def load_ptlflow_model(path: Path, device: str = "cpu", model_name: str = "gmflow", input_norm: str = "ptlflow",
                       iters: int | None = None, precision: str = "fp32"):
    """Build ptlflow's `model_name` with the weights at `path`, in eval mode on `device`.

    `iters` overrides the refinement iterations of RAFT-style models (a loader option, so instances
    with different iteration counts are cached separately). A bare state dict (keys optionally
    prefixed 'module.', as the original raft-things.pth) loads like `{'model': ...}`.

    `input_norm="gmflow"` makes the model take inputs that are already ImageNet-normalised (see
    `GMFlowEstimator`); it is a loader option so differently-fed instances are cached separately.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        found = sorted([*path.glob("*.ckpt"), *path.glob("*.pth"), *path.glob("*.pt")])
        if len(found) != 1:
            raise VidEditBenchError(f"{path}: expected exactly one .ckpt/.pth checkpoint in the folder, found {len(found)}")
        path = found[0]
    ckpt = _read_checkpoint(path)
    model = _build_ptlflow_model(model_name)
    if "state_dict" in ckpt:
        _restore_ptlflow_checkpoint(model, ckpt)
    else:
        missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
        if missing or unexpected:
            raise VidEditBenchError(
                f"{path}: state dict does not fit ptlflow '{model_name}': missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
    for key, want in ARCHITECTURES.get(model_name, {}).items():
        got = getattr(model, key)
        if got != want:
            raise VidEditBenchError(f"ptlflow '{model_name}' has {key}={got!r}, expected {want!r}; check the ptlflow version")
    for key, value in CALL_ARGS.get(model_name, {}).items():
        setattr(model, key, value)
    if iters is not None:
        model.iters = int(iters)
    if input_norm in ("gmflow", "raft"):  # the caller feeds the original repository's normalisation
        _take_normalised_inputs(model)
    elif input_norm != "ptlflow":
        raise VidEditBenchError(f"unknown input_norm '{input_norm}'; valid: gmflow, raft, ptlflow")
    from metrics._precision import cast_model

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return cast_model(model, precision).to(torch.device(device))


def _restore_ptlflow_checkpoint(model: Any, ckpt: dict[str, Any]) -> None:
    """What `ptlflow.restore_model` does with a Lightning checkpoint: the hyper-parameters it
    reads (train_size, train_avg_length, extra_params), then a strict `load_state_dict`."""
    hp = ckpt.get("hyper_parameters") or {}
    if "train_size" in hp:
        model.train_size = hp["train_size"]
    if "train_avg_length" in hp:
        model.train_avg_length = hp["train_avg_length"]
    for name, value in (hp.get("extra_params") or {}).items():
        model.add_extra_param(name, value)
    model.load_state_dict(ckpt["state_dict"])


def _take_normalised_inputs(model) -> None:
    """Make ptlflow skip its own (x + add) * mult step: the caller feeds normalised BGR.

    ptlflow's GMFlow computes (bgr01 - mean) * (1/std); the original GMFlow (V2VBench) computes
    (rgb255 / 255 - mean) / std. The two differ by float rounding only (~1e-7), but random or
    real GMFlow's global softmax matching amplifies that to ~0.02 px (RECIPE §2). Feeding the
    original normalisation and an identity add/mult reproduces V2VBench bit for bit at the input.
    Padding, the BGR->RGB flip and un-padding stay ptlflow's.
    """
    base = model.preprocess_images

    def preprocess_images(images, *args, **kwargs):
        kwargs["bgr_add"] = 0.0
        kwargs["bgr_mult"] = 1.0
        return base(images, *args, **kwargs)

    model.preprocess_images = preprocess_images


class PtlflowEstimator(FlowModel):
    model_name: ClassVar[str] = ""
    default_weights: ClassVar[str] = ""
    input_norm: ClassVar[str] = "ptlflow"
    #: smallest frame side the network handles (smaller frames are padded)
    min_size: ClassVar[int] = 32

    def __init__(self, device: str = "cpu", batch_size: int = 4, weights: str | None = None, precision: str = "fp32"):
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.weights = weights or self.default_weights
        self.precision = precision
        self.model = self._load_model()

    def _load_model(self) -> Any:
        """The network for `self.weights` (cached per process by `bench.models.create_model`)."""
        from bench.models import create_model

        return create_model(self.weights, load_ptlflow_model, self.device,
                            model_name=self.model_name, input_norm=self.input_norm, precision=self.precision)

    def variant(self) -> dict[str, Any]:
        v = super().variant()
        return v if self.precision == "fp32" else {**v, "flow_precision": self.precision}

    def _inputs(self, frames) -> Any:
        """uint8 RGB (N,H,W,3) -> what ptlflow's `images` expects per frame: (N,3,H,W) float BGR."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float()
        return torch.flip(x / 255.0, [1])  # ptlflow convention: BGR in [0, 1]

    def estimate(self, frames_a: np.ndarray, frames_b: np.ndarray) -> np.ndarray:
        import torch

        a, b = check_pairs(frames_a, frames_b)
        h, w = a.shape[1:3]
        if h < self.min_size or w < self.min_size:
            # below the model's coarsest pyramid level: replicate-pad (bottom/right), crop the flow back
            pad = ((0, 0), (0, max(0, self.min_size - h)), (0, max(0, self.min_size - w)), (0, 0))
            return self.estimate(np.pad(a, pad, mode="edge"), np.pad(b, pad, mode="edge"))[:, :h, :w]
        out = []
        with torch.inference_mode():
            for i in range(0, a.shape[0], self.batch_size):
                flows = self._batch_flows(a[i:i + self.batch_size], b[i:i + self.batch_size])  # (B, 2, H, W)
                out.append(flows.permute(0, 2, 3, 1).float().cpu().numpy())
        return np.concatenate(out, 0).astype(np.float32, copy=False)

    def _batch_flows(self, a: np.ndarray, b: np.ndarray) -> Any:
        """One forward pass over aligned uint8 batches -> (B, 2, H, W) torch flow."""
        import torch

        images = torch.stack([self._inputs(a), self._inputs(b)], dim=1).contiguous()  # (B, 2, 3, H, W)
        images = images.to(next(self.model.parameters()).dtype)
        return self.model({"images": images})["flows"][:, 0]


class GMFlowEstimator(PtlflowEstimator):
    """GMFlow as V2VBench runs it: 1 scale, attention splits 2, global matching, Sintel weights.

    Input convention (why `input_norm = "gmflow"`): V2VBench feeds uint8 RGB as float [0, 255]
    and the original GMFlow normalises with (x/255 - mean)/std. ptlflow's GMFlow expects BGR in
    [0, 1] and normalises with (x - mean) * (1/std), which rounds differently and moves random
    GMFlow's flow by up to 0.023 px. We compute the original normalisation ourselves, hand ptlflow
    the normalised image in BGR order and make its own add/mult the identity, so the network sees
    exactly V2VBench's tensor. ptlflow pads to a multiple of 32 (replicate, both sides) and crops
    the flow back; V2VBench's padder is fixed to 512x512, i.e. a no-op on its 512x512 frames.
    """

    name = "gmflow-ptlflow"
    model_name = "gmflow"
    default_weights = "gmflow-sintel"
    input_norm = "gmflow"

    def _normalised_rgb(self, frames) -> Any:
        """uint8 RGB (N,H,W,3) -> the original GMFlow's input, (x/255 - mean)/std, (N,3,H,W) RGB."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float()
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return (x / 255.0 - mean) / std

    def _inputs(self, frames) -> Any:
        import torch

        return torch.flip(self._normalised_rgb(frames), [1])  # ptlflow flips BGR -> RGB inside

    def variant(self) -> dict[str, Any]:
        return {**super().variant(), "flow_input": "rgb255/255-imagenet (GMFlow original)",
                "flow_config": "scales=1,attn_splits=2,corr_radius=-1,prop_radius=-1"}


class RAFTEstimator(PtlflowEstimator):
    """RAFT (Teed & Deng 2020) from ptlflow, Sintel-finetuned weights, 32 iterations: the `raft-ptlflow`
    backend (`raft` runs the same weights and inputs through our own network, `metrics/flow/raft/`)."""

    name = "raft-ptlflow"
    model_name = "raft"
    default_weights = "raft-sintel"
    min_size = 128  # the coarsest of the 4 correlation levels (1/64 scale) must be >= 2 px for its sampler

    def variant(self) -> dict[str, Any]:
        return {**super().variant(), "flow_config": "iters=32"}
