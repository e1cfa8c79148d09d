"""VBench-style quality dimensions (as reported by COVE): subject / background consistency and
imaging quality.

* subject_consistency: DINO ViT-B/16 (v1) CLS features; VBench's tensor transform (shorter side
  resized to 224, bilinear, antialias=False, no crop; /255; ImageNet mean/std); per frame t >= 1,
  (max(0, cos(f_t, f_{t-1})) + max(0, cos(f_t, f_0))) / 2, mean (pairing `prev_first`).
* background_consistency: CLIP ViT-B/32 projected image embeddings (`encode_image`); VBench's
  transform (Resize 224 bicubic antialias=False, CenterCrop 224, /255, CLIP mean/std); same pairing.
  Weights: a transformers CLIP folder (default `openai/clip-vit-base-patch32`), an open_clip folder
  (`open_clip_config.json` + weights), or an open_clip checkpoint file with option `arch`.
* imaging_quality: MUSIQ (KonIQ-10k) from pyiqa per frame on [0, 1] RGB, frames whose longer side
  exceeds 512 resized to 512 first (VBench's default "longer" mode); mean over frames / 100.
  pyiqa is an optional extra: `pip install 'videditbench[iqa]'`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.metric import Metric
from bench.types import EvalItem
from metrics._precision import DEFAULT_PRECISION, PRECISIONS, PrecisionOption, cast_model
from metrics._embed import (
    PAIRINGS,
    EncoderPrefetch,
    FrameEncoder,
    OptionalDependencyMissing,
    consistency_score,
    dino_cls_features,
    l2_normalize,
    load_clip_model,
    load_dino_model,
    registry_weight_names,
    vbench_pixels,
    weights_path,
)

IQA_INSTALL = "pip install 'videditbench[iqa]'"


class _VBenchConsistency(EncoderPrefetch, PrecisionOption, Metric):
    higher_is_better = True
    value_range = (0.0, 1.0)
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"pairing": PAIRINGS, "precision": PRECISIONS}
    transform: ClassVar[str] = ""

    _encoder: FrameEncoder | None = None

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"])

    def _make_encoder(self, path: Path) -> FrameEncoder:
        raise NotImplementedError

    def setup(self) -> None:
        self._encoder = self._make_encoder(weights_path(self.options["weights"]))

    def compute(self, item: EvalItem) -> dict[str, float]:
        if self._encoder is None:
            self.setup()
        assert self._encoder is not None
        feats = l2_normalize(self._encoder.encode(item.edited.frames, item.cache)).double().numpy()
        return {self.name: consistency_score(feats, self.options["pairing"])}

    def encode_requests(self, item: EvalItem) -> list[tuple[FrameEncoder, Any]]:
        if self._encoder is None:
            self.setup()
        assert self._encoder is not None
        return [(self._encoder, item.edited.frames)]

    def teardown(self) -> None:
        self._encoder = None


class SubjectConsistency(_VBenchConsistency):
    name = "subject_consistency"
    description = "VBench subject consistency: DINO ViT-B/16 CLS features, mean of max(0,cos) to previous and first frame"
    defaults: ClassVar[dict[str, Any]] = {"weights": "dino-vitb16", "pairing": "prev_first", "size": 224,
                                          "precision": DEFAULT_PRECISION}

    def _make_encoder(self, path: Path) -> FrameEncoder:
        from bench.models import create_model

        model = create_model(path, load_dino_model, self.device, precision=self.precision)
        size = int(self.options["size"])
        return FrameEncoder(
            namespace=f"vbench-dino|{path}|{size}",
            preprocess=lambda ims: vbench_pixels(ims, size, "dino"),
            forward=lambda pv: dino_cls_features(model, pv),
            device=self.device,
            batch_size=self.batch_size,
            precision=self.precision,
        )


def is_torchscript_archive(path: Path) -> bool:
    """True for a TorchScript zip (OpenAI's CLIP `.pt` files, e.g. VBench's clip_model/ViT-B-32.pt)."""
    import zipfile

    p = Path(path)
    if not p.is_file() or not zipfile.is_zipfile(p):
        return False
    with zipfile.ZipFile(p) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def load_open_clip_visual(path: Path, device: str = "cpu", arch: str = "ViT-B-32-quickgelu",
                          precision: str = DEFAULT_PRECISION) -> Any:
    """An open_clip model from a local folder (open_clip_config.json), an OpenAI CLIP checkpoint
    (TorchScript `.pt` as OpenAI ships it, or arch "openai" for its state dict; open_clip's OpenAI
    loader infers the architecture from the tensors), or any other checkpoint file + arch."""
    import open_clip

    p = Path(path)
    if p.is_dir():
        model = open_clip.create_model(f"local-dir:{p}", device=device)
    elif arch == "openai" or is_torchscript_archive(p):
        model = open_clip.load_openai_model(str(p), precision="fp32", device=device)
    else:
        model = open_clip.create_model(arch, pretrained=str(p), device=device)
    return cast_model(model, precision).eval()


class BackgroundConsistency(_VBenchConsistency):
    name = "background_consistency"
    description = "VBench background consistency: CLIP ViT-B/32 image embeddings, mean of max(0,cos) to previous and first frame"
    defaults: ClassVar[dict[str, Any]] = {
        "weights": "clip-vit-base-patch32",
        "pairing": "prev_first",
        "arch": "ViT-B-32-quickgelu",
        "size": 224,
        "precision": DEFAULT_PRECISION,
    }

    def _make_encoder(self, path: Path) -> FrameEncoder:
        from bench.models import create_model

        size = int(self.options["size"])
        if path.is_dir() and (path / "config.json").is_file() and not (path / "open_clip_config.json").is_file():
            model = create_model(path, load_clip_model, self.device, precision=self.precision)

            def forward(pv: Any) -> Any:
                return model.visual_projection(model.vision_model(pixel_values=pv).pooler_output)

            kind = "transformers"
        else:
            model = create_model(path, load_open_clip_visual, self.device, arch=str(self.options["arch"]),
                                 precision=self.precision)

            def forward(pv: Any) -> Any:
                return model.encode_image(pv)

            kind = f"open_clip:{self.options['arch']}"
        return FrameEncoder(
            namespace=f"vbench-clip|{path}|{kind}|{size}",
            preprocess=lambda ims: vbench_pixels(ims, size, "clip"),
            forward=forward,
            device=self.device,
            batch_size=self.batch_size,
            precision=self.precision,
        )


def _import_musiq() -> Any:
    try:
        from pyiqa.archs.musiq_arch import MUSIQ
    except ImportError as e:
        raise OptionalDependencyMissing("pyiqa", IQA_INSTALL, "imaging_quality (MUSIQ)") from e
    return MUSIQ


def load_musiq(path: Path, device: str = "cpu") -> Any:
    """pyiqa's MUSIQ with a local KonIQ-10k checkpoint (num_class 1: the head outputs the MOS, 0-100)."""
    MUSIQ = _import_musiq()
    model = MUSIQ(pretrained_model_path=str(path))
    return model.to(device).eval()


def musiq_input(frames: np.ndarray, mode: str = "longer") -> Any:
    """VBench's imaging-quality transform: float (T, 3, H, W) in [0, 1], resized when over 512 px."""
    import torch
    from torchvision import transforms

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    _, _, h, w = x.shape
    if mode in ("shorter", "shorter_centercrop") and min(h, w) > 512:
        scale = 512.0 / min(h, w)
        x = transforms.Resize(size=(int(scale * h), int(scale * w)))(x)
        if mode == "shorter_centercrop":
            x = transforms.CenterCrop(512)(x)
    elif mode == "longer" and max(h, w) > 512:
        scale = 512.0 / max(h, w)
        x = transforms.Resize(size=(int(scale * h), int(scale * w)))(x)
    return x.float() / 255.0


class ImagingQuality(Metric):
    name = "imaging_quality"
    description = "VBench imaging quality: MUSIQ (KonIQ-10k, pyiqa) per frame, mean, divided by 100"
    higher_is_better = True
    value_range = (0.0, 1.0)
    defaults: ClassVar[dict[str, Any]] = {"weights": "musiq-koniq", "preprocess": "longer"}
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"preprocess": ("longer", "shorter", "shorter_centercrop", "none")}

    _model: Any = None

    @staticmethod
    def is_available() -> bool:
        try:
            _import_musiq()
        except OptionalDependencyMissing:
            return False
        return True

    def required_weights(self) -> list[str]:
        return registry_weight_names(self.options["weights"])

    def setup(self) -> None:
        from bench.models import create_model

        _import_musiq()  # say "install pyiqa" before anything else
        self._model = create_model(weights_path(self.options["weights"]), load_musiq, self.device)

    def compute(self, item: EvalItem) -> dict[str, float]:
        import torch

        if self._model is None:
            self.setup()
        x = musiq_input(item.edited.frames, self.options["preprocess"])
        scores = []
        with torch.inference_mode():
            for t in range(x.shape[0]):  # MUSIQ's multi-scale patching is per image
                scores.append(float(self._model(x[t : t + 1].to(self.device))))
        return {self.name: float(np.mean(scores)) / 100.0}

    def teardown(self) -> None:
        self._model = None


__all__ = ["SubjectConsistency", "BackgroundConsistency", "ImagingQuality", "IQA_INSTALL"]
