"""Weight-free methods: source, color-transfer, flow-propagate."""

from __future__ import annotations

import numpy as np
import pytest

from bench.api.catalog import METHODS
from bench.api.errors import NotApplicable, VidEditBenchError
from bench.api.types import Video


def _smooth_texture(rng, h, w, sigma, gain):
    import cv2

    x = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.float32), (0, 0), sigma)
    return np.clip((x - x.mean()) * gain + 128, 0, 255).astype(np.uint8)


@pytest.fixture
def moving_patch(rng):
    """Static textured background, a 20x20 textured patch moving (+2, +1) px per frame; exact masks."""
    h = w = 64
    bg = _smooth_texture(rng, h, w, 1.5, 3)
    obj = _smooth_texture(rng, 20, 20, 1.0, 3)
    frames, masks = [], []
    for t in range(6):
        f = bg.copy()
        y, x = 16 + t, 12 + 2 * t
        f[y : y + 20, x : x + 20] = obj
        m = np.zeros((h, w), bool)
        m[y : y + 20, x : x + 20] = True
        frames.append(f)
        masks.append(m)
    return Video(np.stack(frames)), np.stack(masks)


def _gradient_reference(n=30):
    yy, xx = np.mgrid[0:n, 0:n]
    return np.stack([40 + yy * 5, 40 + xx * 5, 200 - (yy + xx) * 2], -1).astype(np.uint8)


# --- source ---------------------------------------------------------------------------------------------
def test_source_returns_source_copy(small_video):
    cls = METHODS.get("source")
    m = cls()
    assert m.applicable("text", True, False, False) is None and m.applicable("image", False, True, True) is None
    out = m.edit(small_video, prompt="anything")
    assert out is not small_video.frames and np.array_equal(out, small_video.frames)


# --- color transfer ---------------------------------------------------------------------------------------
def _lab(rgb):
    from methods.color_transfer import rgb_to_lab

    return rgb_to_lab(rgb).reshape(-1, 3).astype(np.float64)


def test_color_transfer_matches_reference_statistics(moving_patch, rng):
    video, mask = moving_patch
    ref = np.clip(rng.normal((90, 150, 110), 18, size=(24, 24, 3)), 0, 255).astype(np.uint8)
    m = METHODS.get("color-transfer")()
    assert m.applicable("image", False, True, False) is None
    assert "reference" in m.applicable("image", False, False, True)
    out = m.edit(video, reference=ref, mask=mask)
    assert out.shape == video.frames.shape and out.dtype == np.uint8
    # outside the mask: untouched, bit for bit
    assert np.array_equal(out[~mask], video.frames[~mask])
    # inside: Lab mean / std pooled over all frames match the reference (up to uint8 rounding)
    got, want = _lab(out[mask]), _lab(ref)
    np.testing.assert_allclose(got.mean(0), want.mean(0), atol=0.6)
    np.testing.assert_allclose(got.std(0), want.std(0), rtol=0.05, atol=0.6)
    # and the region really changed
    assert np.abs(out[mask].astype(int) - video.frames[mask].astype(int)).mean() > 20


def test_color_transfer_one_transform_for_all_frames(rng):
    frames = rng.integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    frames[2, :8] = frames[0, :8]  # same pixels in frames 0 and 2, different content elsewhere
    ref = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    out = METHODS.get("color-transfer")().edit(Video(frames), reference=ref)  # no mask: whole frame
    assert np.array_equal(out[2, :8], out[0, :8])
    assert not np.array_equal(out[1], frames[1])


def test_color_transfer_options(moving_patch, rng):
    video, mask = moving_patch
    ref = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    cls = METHODS.get("color-transfer")
    assert np.array_equal(cls(strength=0.0).edit(video, reference=ref, mask=mask), video.frames)
    keep_l = cls(transfer_luminance=False).edit(video, reference=ref, mask=mask)
    assert _lab(keep_l[mask])[:, 0].mean() == pytest.approx(_lab(video.frames[mask])[:, 0].mean(), abs=0.6)
    feathered = cls(feather=2.0).edit(video, reference=ref, mask=mask)
    ring = (~mask) & (np.abs(feathered.astype(int) - video.frames.astype(int)).sum(-1) > 0)
    assert ring.any()  # feathering blends a little across the mask edge
    with pytest.raises(NotApplicable):
        cls().edit(video, mask=mask)
    with pytest.raises(VidEditBenchError, match="mask shape"):
        cls().edit(video, reference=ref, mask=mask[:, :10])
    with pytest.raises(VidEditBenchError, match="strength"):
        cls(strength=2)


# --- flow propagate -----------------------------------------------------------------------------------------
def test_flow_propagate_composites_and_follows_motion(moving_patch):
    from methods.flow_propagate import fit_reference

    video, mask = moving_patch
    ref = _gradient_reference()
    m = METHODS.get("flow-propagate")(flow="farneback")
    assert m.applicable("image", False, True, True) is None
    assert m.applicable("text", True, False, False) is not None
    prepared = m.prepare(video)
    assert prepared.flows.shape == (5, 64, 64, 2)
    out = m.edit(video, reference=ref, mask=mask, prepared=prepared)
    assert out.shape == video.frames.shape and out.dtype == np.uint8
    for t in range(6):  # re-masked per frame: outside each frame's mask the source is untouched
        assert np.array_equal(out[t][~mask[t]], video.frames[t][~mask[t]])
    layer, _ = fit_reference(ref, mask[0], "cover")
    np.testing.assert_array_equal(out[0, 16:36, 12:32], np.rint(layer[16:36, 12:32]).astype(np.uint8))
    # later frames carry the pasted content along the patch's motion (+2, +1 per frame)
    for t in (1, 2, 3):
        got = out[t, 16 + t : 36 + t, 12 + 2 * t : 32 + 2 * t].astype(np.float32)
        err = np.abs(got - layer[16:36, 12:32])[2:-2, 2:-2].mean()
        assert err < 3.0 * t, (t, err)


def test_flow_propagate_uses_flow_not_refit(moving_patch):
    """Later masks cover only the left half of the patch: the propagated left half must appear there
    (a per-frame re-fit would squeeze the whole reference into the half box instead)."""
    from methods.flow_propagate import fit_reference

    video, mask = moving_patch
    half = mask.copy()
    for t in range(1, 6):
        half[t, :, 12 + 2 * t + 10 :] = False
    ref = _gradient_reference()
    out = METHODS.get("flow-propagate")(flow="farneback").edit(video, reference=ref, mask=half)
    layer, _ = fit_reference(ref, mask[0], "cover")
    refit, _ = fit_reference(ref, half[2], "cover")
    got = out[2, 18:38, 16:26].astype(np.float32)
    err_prop = np.abs(got - layer[16:36, 12:22])[2:-2, 2:-2].mean()
    err_refit = np.abs(got - refit[18:38, 16:26])[2:-2, 2:-2].mean()
    assert err_prop < 6 and err_refit > 3 * err_prop, (err_prop, err_refit)


def test_flow_propagate_options_and_errors(moving_patch):
    video, mask = moving_patch
    ref = _gradient_reference()
    cls = METHODS.get("flow-propagate")
    dis = cls().edit(video, reference=ref, mask=mask)  # default DIS flow
    assert dis.shape == video.frames.shape and not np.array_equal(dis[mask], video.frames[mask])
    # anchor = first frame with a non-empty mask; earlier frames untouched
    late = mask.copy()
    late[:2] = False
    out = cls(fit="contain", feather=1.5).edit(video, reference=ref, mask=late)
    assert np.array_equal(out[:2], video.frames[:2])
    assert not np.array_equal(out[2], video.frames[2])
    with pytest.raises(NotApplicable, match="empty"):
        cls().edit(video, reference=ref, mask=np.zeros_like(mask))
    with pytest.raises(NotApplicable):
        cls().edit(video, reference=ref)
    with pytest.raises(VidEditBenchError, match="flow"):
        cls(flow="raft")
    with pytest.raises(VidEditBenchError, match="unknown option"):
        cls(steps=3)


@pytest.mark.parametrize("fit", ["cover", "contain", "stretch"])
def test_fit_reference_stays_in_box(fit):
    from methods.flow_propagate import fit_reference

    mask = np.zeros((40, 50), bool)
    mask[5:25, 10:40] = True  # 20 x 30 box
    ref = np.full((10, 40, 3), 200, np.uint8)  # wide reference
    layer, cover = fit_reference(ref, mask, fit)
    assert cover[~mask].sum() == 0 and layer[~mask].sum() == 0
    if fit == "contain":  # aspect kept: 30 x 7.5 -> letterboxed, box not fully covered
        assert 0 < cover[mask].mean() < 1
    else:
        assert cover[mask].min() == 1.0
