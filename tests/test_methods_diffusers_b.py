"""Depth conditioning, ControlNet-depth (cross-frame attention) and RAVE, on tiny random models (CPU)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


# ------------------------------------------------------------------------------------------------
# RAVE grid arrangement
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_frames,g", [(4, 2), (9, 3), (24, 3), (5, 2), (3, 3)])
def test_rave_grid_order_is_a_permutation_with_padding(num_frames, g):
    from methods.rave import first_cells, grid_order

    rng = np.random.default_rng(0)
    order = grid_order(num_frames, g, rng, shuffle=True)
    assert len(order) % (g * g) == 0 and len(order) - num_frames < g * g
    assert set(order.tolist()) == set(range(num_frames))
    first = first_cells(order, num_frames)
    assert np.array_equal(order[first], np.arange(num_frames))
    if len(order) == num_frames:  # no padding: a true permutation
        assert sorted(order.tolist()) == list(range(num_frames))
    plain = grid_order(num_frames, g, shuffle=False)
    assert np.array_equal(plain[:num_frames], np.arange(num_frames))


def test_rave_grid_round_trip_is_exact_and_shuffle_changes_grids():
    from methods.rave import frames_to_grids, grid_order, grids_to_frames

    gen = torch.Generator().manual_seed(0)
    frames = torch.randn(7, 4, 3, 5, generator=gen)  # 7 frames, non-square cells, padded 2x2 grids
    rng = np.random.default_rng(1)
    orders = [grid_order(7, 2, rng, shuffle=True) for _ in range(3)]
    assert not all(np.array_equal(orders[0], o) for o in orders[1:])  # a fresh permutation per step
    for order in orders + [grid_order(7, 2, shuffle=False)]:
        grids = frames_to_grids(frames, order, 2)
        assert grids.shape == (2, 4, 6, 10)
        # cell (row 0, col 1) of grid 0 is the second frame of the order
        assert torch.equal(grids[0, :, 0:3, 5:10], frames[order[1]])
        assert torch.equal(grids_to_frames(grids, order, 7, 2), frames)
    plain = frames_to_grids(frames, grid_order(7, 2, shuffle=False), 2)
    shuffled = frames_to_grids(frames, orders[0], 2)
    assert not torch.equal(plain, shuffled)


def test_rave_cell_size_keeps_area_and_multiple_of_8():
    from methods.rave import cell_size

    assert cell_size(512, 512, 512) == (512, 512)
    h, w = cell_size(240, 320, 512)
    assert h % 8 == 0 and w % 8 == 0 and abs(h * w - 512 * 512) / (512 * 512) < 0.05
    assert cell_size(64, 64, 32) == (32, 32)


# ------------------------------------------------------------------------------------------------
# depth conditioning
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    """Tiny SD 1.5, ControlNet (live zero-convs) and DPT folders in the hub layout, built once."""
    from tiny_control import build_tiny_controlnet, build_tiny_dpt
    from tiny_diffusers import build_sd15_dir

    root = tmp_path_factory.mktemp("tiny-b")
    return {
        "sd": str(build_sd15_dir(root / "sd15")),
        "controlnet": str(build_tiny_controlnet(root / "controlnet")),
        "dpt": str(build_tiny_dpt(root / "dpt")),
    }


def test_depth_maps_are_normalised_deterministic_plain_arrays(tiny_dirs, small_video):
    from bench.models import clear_model_cache
    from methods.depth import estimate_depth

    frames = small_video.frames[:4]
    d1 = estimate_depth(frames, tiny_dirs["dpt"], batch_size=3)
    assert isinstance(d1, np.ndarray) and d1.dtype == np.float32
    assert d1.shape == (4, 64, 64, 3)
    assert np.all(d1 >= 0) and np.all(d1 <= 1)
    assert np.allclose(d1.min(axis=(1, 2, 3)), 0) and np.allclose(d1.max(axis=(1, 2, 3)), 1)
    assert np.array_equal(d1[..., 0], d1[..., 2])
    clear_model_cache()  # a fresh load gives the same maps; batching does not change them
    d2 = estimate_depth(frames, tiny_dirs["dpt"], batch_size=4)
    np.testing.assert_allclose(d1, d2, atol=1e-5)
    assert not np.allclose(d1[0], d1[3])  # the moving square changes the depth map


def test_depth_weights_missing_names_the_download_command(small_video):
    from bench.errors import WeightsMissing
    from methods.depth import estimate_depth

    with pytest.raises(WeightsMissing, match="videditbench weights download dpt-hybrid-midas"):
        estimate_depth(small_video.frames[:2])
