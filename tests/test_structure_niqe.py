"""structure_distance with a tiny random ViT (saved, loaded via ViTModel.from_pretrained); niqe's skip without pyiqa."""

from __future__ import annotations

import numpy as np
import pytest

from bench.api.types import EvalItem, Sample, Video


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    """A tiny DINO-style ViT with 8-px patches (the ViT-B/8 layout), loaded like facebook/dino-vitb8."""
    from tiny_models import build_tiny_dino_vit

    return build_tiny_dino_vit(tmp_path_factory.mktemp("tiny-vit-b8"), image_size=224, patch_size=8)


def _frames(t: int = 2, size: int = 224) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    out = []
    for k in range(t):
        img = np.stack([(x + 7 * k) % 256, (y * 2) % 256, ((x - y) * 3 + 40 * k) % 256], -1).astype(np.uint8)
        img[40 + 8 * k:120 + 8 * k, 60:150] = (250, 30, 30)
        out.append(img)
    return np.stack(out)


def _shuffle_patches(frames: np.ndarray, fraction: float, seed: int = 0, p: int = 8) -> np.ndarray:
    """Swap a fraction of the 8x8 patches (on the ViT's grid) among themselves."""
    t, h, w, c = frames.shape
    grid = frames.reshape(t, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(t, -1, p, p, c).copy()
    rng = np.random.default_rng(seed)
    n = grid.shape[1]
    chosen = rng.choice(n, int(fraction * n), replace=False)
    grid[:, chosen] = grid[:, rng.permutation(chosen)]
    return grid.reshape(t, h // p, w // p, p, p, c).transpose(0, 1, 3, 2, 4, 5).reshape(t, h, w, c)


def _item(src: np.ndarray, edit: np.ndarray) -> EvalItem:
    return EvalItem(sample=Sample("t", "v", "e", "x"), source=Video(src), edited=Video(edit))


def test_structure_distance_is_zero_on_itself_and_grows_with_patch_shuffles(tiny_vit):
    from metrics.structure import StructureDistance

    m = StructureDistance(weights=str(tiny_vit), batch_size=4)
    m.setup()
    src = _frames()
    same = m.compute(_item(src, src.copy()))["structure_distance"]
    some = m.compute(_item(src, _shuffle_patches(src, 0.25)))["structure_distance"]
    most = m.compute(_item(src, _shuffle_patches(src, 1.0)))["structure_distance"]
    assert same == 0.0
    assert 0.0 < some < most


def test_structure_distance_preprocessing_and_token_count(tiny_vit):
    import torch

    from metrics.structure import dino_input, key_self_similarity, load_vit, resized_size

    assert resized_size(480, 640) == (224, 298) and resized_size(224, 1000) == (107, 480)
    assert resized_size(512, 512) == (224, 224)
    x = dino_input(_frames(1, 256))
    assert tuple(x.shape) == (1, 3, 224, 224)
    # [0, 255] values normalised as FiVE-Bench does (no division by 255 first)
    white = dino_input(np.full((1, 224, 224, 3), 255, np.uint8))
    assert torch.allclose(white[0, 0], torch.full((224, 224), (255 - 0.485) / 0.229))
    sim = key_self_similarity(load_vit(tiny_vit), dino_input(_frames(1, 224)))
    assert tuple(sim.shape) == (1, 1 + 28 * 28, 1 + 28 * 28)  # the CLS token is included
    assert torch.allclose(torch.diagonal(sim[0]), torch.ones(785), atol=1e-5)


def test_structure_distance_weights_are_registered_and_missing_offline():
    from bench.running.runner import missing_weights_message
    from metrics.structure import StructureDistance

    msg = missing_weights_message(StructureDistance().required_weights())
    assert msg and "facebook/dino-vitb8" in msg and "videditbench weights download dino-vitb8" in msg


def test_niqe_is_skipped_with_the_install_hint_without_pyiqa(tmp_path, monkeypatch):
    import builtins

    from bench.running.runner import RunConfig, run_benchmark
    from bench.store.results import ResultStore
    from metrics.niqe import NIQE

    real_import = builtins.__import__

    def no_pyiqa(name, *a, **k):  # pyiqa is an optional extra: behave as if it is not installed
        if name == "pyiqa" or name.startswith("pyiqa."):
            raise ImportError("No module named 'pyiqa'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pyiqa)
    assert not NIQE.is_available() and NIQE().required_weights() == []
    cfg = RunConfig(suite="mini", methods=["source"], metrics=["niqe"], results_dir=str(tmp_path), run_name="n",
                    device="cpu", limit=1, suite_overrides={"num_frames": 4, "size": 32})
    run_benchmark(cfg)
    rows = ResultStore(cfg.run_dir).conn.execute("SELECT status, message FROM scores WHERE metric='niqe'").fetchall()
    assert rows and {r[0] for r in rows} == {"skipped"}
    assert "niqe needs the optional package 'pyiqa'" in rows[0][1] and "pip install 'videditbench[iqa]'" in rows[0][1]
