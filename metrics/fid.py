"""Set-level Frechet Inception Distance between all source frames and all edited frames of a method.

Model: pytorch-fid's `InceptionV3(use_fid_inception=True)` - the TensorFlow FID Inception
(`pt_inception-2015-12-05`) with its patched blocks - returning the 2048-d final average pool.
pytorch-fid's own constructor downloads the weights; here the same network is built from
pytorch-fid's blocks, loaded strictly from the weights registry's local file (`fid-inception`,
or any path), and handed to `InceptionV3`. Inputs follow pytorch-fid: RGB in [0, 1], bilinearly
resized to 299x299 (align_corners=False), scaled to [-1, 1] inside the model.

FID = ||mu_s - mu_e||^2 + Tr(S_s + S_e - 2 (S_s S_e)^(1/2)); lower is better. Default
(`formula=pytorch-fid`): pytorch-fid's `calculate_frechet_distance` formula on the same features
(scipy `sqrtm` of the product, eps retry, imaginary round-off dropped) whatever the frame count, so
the number reproduces pytorch-fid. Variant `formula=exact-lowrank`: with fewer frames than feature
dimensions (covariances of rank < d, where `sqrtm` of a singular 2048x2048 product is slow and
inexact) the exact identity Tr((S1 S2)^(1/2)) = nuclear norm of A^T B. `fid_frames` stores the
number of edited frames each value was computed on (it differs between methods when edits failed).
Source-frame features are computed once per run per source video (FeatureCache).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable
from unittest import mock

import numpy as np

from bench.errors import NotApplicable, VidEditBenchError
from bench.metric import Metric, OutputInfo
from bench.types import EvalItem

#: pytorch-fid output block per feature dimensionality
BLOCK_BY_DIMS = {64: 0, 192: 1, 768: 2, 2048: 3}


def build_fid_inception_v3():
    """pytorch-fid's FID Inception (as `fid_inception_v3()` builds it), without loading weights."""
    import pytorch_fid.inception as pfi

    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


def load_fid_inception(path: Path, device: str = "cpu", dims: int = 2048):
    """pytorch-fid `InceptionV3` (FID variant) with the state dict at `path` (a file or a folder with one .pth)."""
    import pytorch_fid.inception as pfi
    import torch

    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.pth")) + sorted(path.glob("*.pt"))
        if len(found) != 1:
            raise VidEditBenchError(f"{path}: expected exactly one .pth file with the FID Inception weights, found {len(found)}")
        path = found[0]
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise VidEditBenchError(f"cannot read FID Inception weights {path}: {e}") from e
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    net = build_fid_inception_v3()
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise VidEditBenchError(
            f"{path} is not a pt_inception-2015-12-05 state dict: missing {sorted(missing)[:4]}, "
            f"unexpected {sorted(unexpected)[:4]}"
        )
    # InceptionV3 builds its blocks from fid_inception_v3(), which would download: give it ours.
    with mock.patch.object(pfi, "fid_inception_v3", lambda: net):
        model = pfi.InceptionV3([BLOCK_BY_DIMS[dims]], resize_input=True, normalize_input=True,
                                use_fid_inception=True)
    model.eval()
    return model.to(torch.device(device))


def inception_features(model, frames: np.ndarray, device: str = "cpu", batch_size: int = 16) -> np.ndarray:
    """(N, dims) float64 pool features of uint8 RGB frames (N, H, W, 3)."""
    import torch

    frames = np.asarray(frames)
    feats = []
    with torch.inference_mode():
        for i in range(0, frames.shape[0], batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[i:i + batch_size])).to(device)
            x = x.permute(0, 3, 1, 2).float() / 255.0
            out = model(x)[0]
            if out.shape[2] != 1 or out.shape[3] != 1:  # blocks 0-2 are spatial maps: pool them like pytorch-fid
                out = torch.nn.functional.adaptive_avg_pool2d(out, (1, 1))
            feats.append(out[:, :, 0, 0].double().cpu().numpy())
    return np.concatenate(feats, 0)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, np.float64)
    if features.shape[0] < 2:
        raise NotApplicable(f"FID needs at least 2 frames per set, got {features.shape[0]}")
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), with scipy's matrix square root.

    A near-singular product (fewer samples than dimensions) whose root is not finite is retried with
    `eps` on the diagonals; a small imaginary part from round-off is dropped.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise VidEditBenchError(f"FID: statistics of different dimensionality {mu1.shape} vs {mu2.shape}")
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise VidEditBenchError(f"FID: matrix square root has a large imaginary part {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def trace_sqrt_product_lowrank(features1: np.ndarray, features2: np.ndarray) -> float:
    """Tr((S1 S2)^(1/2)) for the sample covariances of two feature sets, exactly, via an SVD.

    With S1 = A A^T and S2 = B B^T (A = centred features1^T / sqrt(n1 - 1), likewise B), the
    non-zero eigenvalues of S1 S2 are the squared singular values of A^T B (n1 x n2), so the trace
    of the principal square root is the sum of those singular values. For fewer samples than
    dimensions this is both exact and far cheaper than `sqrtm` of a singular d x d matrix.
    """
    x1 = np.asarray(features1, np.float64)
    x2 = np.asarray(features2, np.float64)
    a = (x1 - x1.mean(0)) / np.sqrt(x1.shape[0] - 1)
    b = (x2 - x2.mean(0)) / np.sqrt(x2.shape[0] - 1)
    return float(np.linalg.svd(a @ b.T, compute_uv=False).sum())


def fid_from_features(features1: np.ndarray, features2: np.ndarray, formula: str = "pytorch-fid") -> float:
    """FID of two (N, d) feature sets. `pytorch-fid`: pytorch-fid's formula (scipy `sqrtm`) always;
    `exact-lowrank`: `sqrtm` when both sets have more than d samples, otherwise the exact low-rank
    form of the same trace (`trace_sqrt_product_lowrank`)."""
    mu1, sigma1 = feature_statistics(features1)
    mu2, sigma2 = feature_statistics(features2)
    d = mu1.shape[0]
    if formula == "pytorch-fid" or min(len(features1), len(features2)) > d:
        return frechet_distance(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
                 - 2.0 * trace_sqrt_product_lowrank(features1, features2))


class FrechetInceptionDistance(Metric):
    name = "fid"
    description = "FID between all source frames and all edited frames of a method (Inception-v3 FID weights, pool3)"
    higher_is_better = False
    value_range = (0.0, float("inf"))
    level = "set"
    needs = frozenset({"source"})
    defaults = {"dims": 2048, "formula": "pytorch-fid"}
    choices = {"dims": tuple(BLOCK_BY_DIMS), "formula": ("pytorch-fid", "exact-lowrank")}
    extra_outputs = (OutputInfo("fid_frames", True, (0.0, float("inf")), "frames",
                                "number of edited frames the FID was computed on"),)
    weights_name = "fid-inception"

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        super().__init__(device=device, batch_size=batch_size, **options)
        self._model = None

    def required_weights(self) -> list[str]:
        return [self.weights_name]

    def variant(self) -> dict[str, Any]:
        return {**super().variant(), "weights": self.weights_name, "resize": "bilinear-299"}

    def setup(self) -> None:
        if self._model is None:
            from bench.models import create_model

            self._model = create_model(self.weights_name, load_fid_inception, self.device, dims=int(self.options["dims"]))

    def features(self, frames: np.ndarray) -> np.ndarray:
        self.setup()
        return inception_features(self._model, frames, self.device, self.batch_size)

    def compute_set(self, items: Iterable[EvalItem]) -> dict[str, float]:
        # Each edited video is paired with its own source, so a source with k edits counts k times
        # and both sets have the same composition (the `source` method scores exactly 0); the
        # source features themselves are computed once per run.
        src_feats: list[np.ndarray] = []
        edit_feats: list[np.ndarray] = []
        namespace = f"fid-inception:{self.options['dims']}"
        for item in items:
            if item.cache is not None:
                src_feats.append(item.cache.get_or_compute(namespace, item.source_key,
                                                           lambda it=item: self.features(it.source.frames)))
            else:
                src_feats.append(self.features(item.source.frames))
            edit_feats.append(self.features(item.edited.frames))
        if not edit_feats:
            raise NotApplicable(f"{self.name}: no samples")
        edited = np.concatenate(edit_feats, 0)
        return {self.name: fid_from_features(np.concatenate(src_feats, 0), edited, str(self.options["formula"])),
                "fid_frames": float(edited.shape[0])}

    def compute(self, item: EvalItem) -> dict[str, float]:
        return self.compute_set([item])

    def teardown(self) -> None:
        self._model = None
