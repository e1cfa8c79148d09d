"""LPIPS outside the edit mask (Zhang et al., CVPR 2018), through the `lpips` package.

Per frame, the masked (edited) region is set to the same values in the source and the edited frame
before LPIPS sees them, so only the background can differ: `fill="zero"` blacks it out in both
(the masked-metric convention of PIE-Bench / FiVE-Bench: both images multiplied by the background
mask), `fill="source"` copies the source pixels into the edit. LPIPS v0.1 (`lpips.LPIPS`, inputs
scaled to [-1, 1], spatial average) then compares the full frames; the value is the mean over
frames with any background. A video against itself gives 0.

Weights: the linear calibration layers ship inside the `lpips` package (`weights/v0.1/<net>.pth`);
the ImageNet backbone is torchvision's checkpoint, resolved as a weights spec (`alexnet-imagenet`
for `net="alex"`, the default, `vgg16-imagenet` for `net="vgg"`) or a local path given as the
`backbone` option, and copied into the LPIPS trunk with strict key matching. torchvision is never
asked to download anything.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.errors import VidEditBenchError
from bench.metric import Metric
from bench.types import EvalItem
from metrics._embed import OptionalDependencyMissing, iter_batches, registry_weight_names
from metrics.background import _check_and_background

BACKBONE_WEIGHTS = {"alex": "alexnet-imagenet", "vgg": "vgg16-imagenet"}
_SLICE_KEY = re.compile(r"^slice\d+\.(\d+)\.(.+)$")


def equalise_masked(src: np.ndarray, edt: np.ndarray, mask: np.ndarray, fill: str) -> tuple[np.ndarray, np.ndarray]:
    """Copies of one (H,W,3) frame pair whose masked pixels (mask (H,W) True) hold the same values."""
    a, b = src.copy(), edt.copy()
    if fill == "zero":
        a[mask] = 0
        b[mask] = 0
    elif fill == "source":
        b[mask] = src[mask]
    else:
        raise VidEditBenchError(f"lpips: bad fill '{fill}'; valid choices: zero, source")
    return a, b


def load_backbone_into(trunk: Any, state_dict: dict, file: str) -> None:
    """Copy torchvision `features.<i>.*` tensors into lpips' sliced trunk (`slice<k>.<i>.*`), strictly."""
    mapping = {}
    for key in trunk.state_dict():
        m = _SLICE_KEY.match(key)
        if m is None:
            raise VidEditBenchError(f"unexpected LPIPS trunk parameter {key}")
        mapping[key] = f"features.{m.group(1)}.{m.group(2)}"
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    missing = [src for src in mapping.values() if src not in sd]
    unused = [k for k in sd if k.startswith("features.") and k not in set(mapping.values())]
    wrong = [f"{src} {tuple(sd[src].shape)} != {tuple(v.shape)}" for key, v in trunk.state_dict().items()
             if (src := mapping[key]) in sd and sd[src].shape != v.shape]
    if missing or unused or wrong:
        raise VidEditBenchError(
            f"{file}: not the torchvision backbone this LPIPS net expects (missing {missing[:4]}, "
            f"unexpected {unused[:4]}, wrong shapes {wrong[:4]}); use the torchvision ImageNet checkpoint"
        )
    trunk.load_state_dict({key: sd[src] for key, src in mapping.items()}, strict=True)


def load_lpips(path: str | os.PathLike, device: str = "cpu", net: str = "alex") -> Any:
    """Loader for `bench.models.create_model`: the backbone file at `path` + the package's linear layers."""
    import torch

    try:
        import lpips
    except ImportError:
        raise OptionalDependencyMissing("lpips", 'pip install lpips', "the lpips metric") from None
    file = Path(path)
    if file.is_dir():
        found = sorted(file.glob("*.pth"))
        if not found:
            raise VidEditBenchError(f"{file}: no .pth backbone file in this folder")
        file = found[0]
    try:
        sd = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise VidEditBenchError(f"{file}: cannot read the LPIPS backbone ({type(e).__name__}: {e})") from None
    # pnet_rand=True: build the trunk without torchvision's download; its tensors are replaced just below
    with warnings.catch_warnings():  # lpips passes torchvision the deprecated `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True, verbose=False)
    load_backbone_into(model.net, sd, str(file))
    return model.eval().requires_grad_(False).to(device)


class LPIPSBackground(Metric):
    name: ClassVar[str] = "lpips"
    description: ClassVar[str] = (
        "LPIPS v0.1 between source and edited frames with the masked region made equal, mean over frames"
    )
    higher_is_better: ClassVar[bool] = False
    value_range: ClassVar[tuple[float, float]] = (0.0, float("inf"))
    needs: ClassVar[frozenset[str]] = frozenset({"source", "mask"})
    defaults: ClassVar[dict[str, Any]] = {"net": "alex", "backbone": "auto", "fill": "zero", "dilate": 0}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"net": ("alex", "vgg"), "fill": ("zero", "source")}

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        super().__init__(device=device, batch_size=batch_size, **options)
        self.model: Any = None

    def backbone(self) -> str:
        ref = str(self.options["backbone"])
        return BACKBONE_WEIGHTS[self.options["net"]] if ref == "auto" else ref

    def variant(self) -> dict[str, Any]:
        return {**super().variant(), "backbone": self.backbone()}

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.backbone())

    def setup(self) -> None:
        from bench.models import create_model

        self.model = create_model(self.backbone(), load_lpips, self.device, net=self.options["net"])

    def distances(self, src: np.ndarray, edt: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Per-frame LPIPS of (T,H,W,3) uint8 frames after equalising the masked region (mask (T,H,W) bool)."""
        import torch

        if self.model is None:
            self.setup()
        pairs = [equalise_masked(src[t], edt[t], mask[t], self.options["fill"]) for t in range(len(src))]
        out = []
        with torch.inference_mode():
            for sl in iter_batches(len(pairs), self.batch_size):
                a = torch.from_numpy(np.stack([p[0] for p in pairs[sl]])).permute(0, 3, 1, 2).float() / 255.0
                b = torch.from_numpy(np.stack([p[1] for p in pairs[sl]])).permute(0, 3, 1, 2).float() / 255.0
                d = self.model(a.to(self.device), b.to(self.device), normalize=True)
                out.append(d.reshape(-1).double().cpu().numpy())
        return np.concatenate(out)

    def compute(self, item: EvalItem) -> dict[str, float]:
        src, edt, bg = _check_and_background(item, self.name, int(self.options["dilate"]))
        keep = [t for t in range(len(src)) if bg[t].any()]
        d = self.distances(src[keep], edt[keep], ~bg[keep])
        return {self.name: float(np.mean(d))}

    def teardown(self) -> None:
        self.model = None
