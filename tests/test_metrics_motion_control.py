"""DreamVideo-2 motion control (box_miou, centroid_distance): exact box arithmetic, the manifest's box
track, and a tiny random Grounding DINO built from its config, saved as a Hugging Face folder and
loaded through the metric's real loader (AutoProcessor + AutoModelForZeroShotObjectDetection).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.store.feature_cache import FeatureCache
from bench.api.errors import ManifestError, NotApplicable, VideoReadError
from bench.api.types import EvalItem, Sample, Video

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "a", "red", "ball", "cat", "dog", "blue", "square"]


def build_tiny_grounding_dino(path: Path) -> Path:
    """A random Grounding DINO (Swin + BERT of a few thousand parameters each) with its processor."""
    import torch
    from transformers import (BertConfig, BertTokenizerFast, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}), tokenizer=tokenizer)
    cfg = GroundingDinoConfig(
        backbone_config=SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                                   image_size=64, out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4]),
        text_config=BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=37, max_position_embeddings=64),
        d_model=32, num_queries=12, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, num_feature_levels=4, encoder_n_points=2,
        decoder_n_points=2, max_text_len=64)
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(cfg).eval().save_pretrained(str(path))
    processor.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def tiny_gdino(tmp_path_factory) -> Path:
    return build_tiny_grounding_dino(tmp_path_factory.mktemp("gdino") / "grounding-dino-tiny-random")


def _video(t: int = 3, h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (t, h, w, 3), dtype=np.uint8)
    for i in range(t):
        frames[i, 10:30, 8 + 6 * i : 28 + 6 * i] = (220, 30, 30)
    return frames


def _item(frames: np.ndarray, prompt: str | None = "a red square moving right", boxes=None, mask=None,
          subject: str | None = None, cache=None) -> EvalItem:
    meta = (("subject", subject),) if subject else ()
    v = Video(frames)
    return EvalItem(Sample("t", "v", "e", "src", target_prompt=prompt, meta=meta), source=v, edited=v,
                    prompt=prompt, boxes=boxes, mask=mask, cache=cache)


# ------------------------------------------------------------------------------------ box arithmetic
def test_iou_centroid_and_missed_detections_on_exact_boxes():
    from metrics.motion_control import box_iou, centroid_distance, track_scores

    a, b = (0.0, 0.0, 10.0, 10.0), (5.0, 0.0, 15.0, 10.0)
    assert box_iou(a, b) == pytest.approx(50 / 150, abs=1e-15)
    assert box_iou(a, a) == 1.0 and box_iou(a, (20.0, 20.0, 30.0, 30.0)) == 0.0
    assert box_iou(a, (2.0, 2.0, 4.0, 6.0)) == pytest.approx(8 / 100, abs=1e-15)  # contained
    # centres (5, 5) and (10, 5); a 30x40 frame has diagonal 50
    assert centroid_distance(a, b, 30, 40) == pytest.approx(0.1, abs=1e-15)
    detected = [a, None, b, a]
    target = [b, a, b, None]  # frame 3 has no target and is left out
    miou, cd = track_scores(detected, target, 30, 40)
    assert miou == pytest.approx((1 / 3 + 0.0 + 1.0) / 3, abs=1e-15)  # the miss counts IoU 0
    assert cd == pytest.approx((0.1 + 1.0 + 0.0) / 3, abs=1e-15)  # ... and distance 1
    with pytest.raises(NotApplicable):
        track_scores([a], [None], 30, 40)


def test_targets_from_the_box_track_or_the_mask_and_the_subject_phrase():
    from metrics.motion_control import prompt_noun_phrase, subject_phrase, target_boxes

    frames = _video(t=2)
    mask = np.zeros((2, 48, 64), bool)
    mask[0, 2:5, 3:8] = True  # rows 2..4, columns 3..7 -> [x0, y0, x1, y1) = [3, 2, 8, 5)
    assert target_boxes(_item(frames, mask=mask)) == [(3.0, 2.0, 8.0, 5.0), None]
    track = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], float)
    assert target_boxes(_item(frames, boxes=track, mask=mask)) == [(1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0)]
    with pytest.raises(NotApplicable, match="boxes"):
        target_boxes(_item(frames))
    assert prompt_noun_phrase("a red ball rolling across a colorful striped background") == "red ball"
    assert prompt_noun_phrase("A dog jumps over the fence") == "dog"
    assert prompt_noun_phrase("The cat in a hat, oil painting") == "cat"
    assert subject_phrase(_item(frames, subject="blue square")) == ("blue square", None)
    phrase, note = subject_phrase(_item(frames, prompt="A red square moving right"))
    assert phrase == "red square" and "taken from the target prompt" in note


# ------------------------------------------------------------------------------------ tiny detector
def test_tiny_grounding_dino_best_box_matches_transformers_post_processing(tiny_gdino):
    import torch

    from metrics.detection import load_detector

    det = load_detector(tiny_gdino)
    assert det.kind == "grounding-dino"
    frames = _video(t=2)
    best = det.best_boxes(frames, "red square", threshold=0.0)
    inputs = det.processor(images=list(frames), text=["red square."] * 2, return_tensors="pt")
    with torch.inference_mode():
        out = det.model(**inputs)
    ref = det.processor.post_process_grounded_object_detection(
        out, inputs["input_ids"], threshold=0.0, text_threshold=0.0, target_sizes=[(48, 64)] * 2)
    for got, r in zip(best, ref):
        i = int(torch.argmax(r["scores"]))
        assert got == pytest.approx(tuple(float(v) for v in r["boxes"][i]), abs=1e-4)


def test_box_metrics_through_the_tiny_detector_and_missed_frames(tiny_gdino):
    from metrics.motion_control import BoxMIoU, CentroidDistance, box_iou, centroid_distance

    frames = _video()
    track = np.array([[8 + 6 * i, 10, 28 + 6 * i, 30] for i in range(3)], float)
    cache = FeatureCache()
    miou_m = BoxMIoU(detector=str(tiny_gdino), threshold=0.0)
    cd_m = CentroidDistance(detector=str(tiny_gdino), threshold=0.0)
    item = _item(frames, boxes=track, subject="red square", cache=cache)
    miou = miou_m.compute(item)["box_miou"]
    cd = cd_m.compute(item)["centroid_distance"]
    assert miou_m.row_note() is None
    detected = miou_m.detections(frames, "red square", cache)
    assert all(d is not None for d in detected)
    assert miou == pytest.approx(np.mean([box_iou(d, tuple(t)) for d, t in zip(detected, track)]), abs=1e-12)
    assert cd == pytest.approx(np.mean([centroid_distance(d, tuple(t), 48, 64) for d, t in zip(detected, track)]),
                               abs=1e-12)
    assert 0.0 <= miou <= 1.0 and 0.0 <= cd <= 1.0
    # nothing passes a threshold of 1: every frame is a miss -> IoU 0 and distance 1, exactly
    strict_item = _item(frames, boxes=track, prompt="a red square moving right")
    assert BoxMIoU(detector=str(tiny_gdino), threshold=1.0).compute(strict_item)["box_miou"] == 0.0
    cd_strict = CentroidDistance(detector=str(tiny_gdino), threshold=1.0)
    assert cd_strict.compute(strict_item)["centroid_distance"] == 1.0
    assert "red square" in cd_strict.row_note()


def test_missing_detector_weights_name_the_download_command():
    from bench.api.errors import WeightsMissing
    from metrics.motion_control import BoxMIoU

    m = BoxMIoU()
    assert m.required_weights() == ["grounding-dino-base"]
    assert BoxMIoU(detector="owlv2-base").required_weights() == ["owlv2-base"]
    assert m.applicable({"source", "text"}) and m.applicable({"source", "boxes"}) is None
    with pytest.raises(WeightsMissing, match="videditbench weights download grounding-dino-base"):
        m.setup()


# ------------------------------------------------------------------------------------ manifest boxes
def _frames_dir(root: Path, n: int, h: int = 48, w: int = 64) -> Path:
    from PIL import Image

    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((h, w, 3), 20 * i, np.uint8)).save(root / f"{i:02d}.png")
    return root


def _manifest(tmp_path: Path, edit_extra: dict, n: int = 10) -> Path:
    _frames_dir(tmp_path / "clip", n)
    data = {"name": "boxes", "preprocess": {"num_frames": 4, "size": 32, "max_stride": 2}, "videos": [
        {"id": "v1", "source": "clip", "source_prompt": "a box", "subject": "grey box",
         "edits": [{"id": "e0", "edit_type": "style", "target_prompt": "a red box", **edit_extra}]}]}
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(data))
    return path


def test_manifest_box_track_is_validated_sampled_and_mapped_to_preprocessed_pixels(tmp_path):
    from bench.suites import load_suite

    track = [[2 * i, 6, 20 + 2 * i, 30] for i in range(10)]  # one box per source frame, 64x48 source
    suite = load_suite(str(_manifest(tmp_path, {"boxes": track})))
    sample = suite.samples[0]
    assert sample.meta_dict()["subject"] == "grey box"  # inherited from the video
    loaded = suite.load(sample)
    # 10 frames -> stride 2 from 0: frames 0, 2, 4, 6; 48x64 -> 32x43 (scale 2/3), centre crop from x = 5
    idx = [0, 2, 4, 6]
    expect = np.array([[2 * i * 43 / 64 - 5, 6 * 32 / 48, (20 + 2 * i) * 43 / 64 - 5, 30 * 32 / 48] for i in idx])
    np.testing.assert_allclose(loaded.boxes, np.clip(expect, 0, 32), atol=1e-12)

    with pytest.raises(ManifestError, match=r"field 'boxes'.*frame 1"):
        load_suite(str(_manifest(tmp_path / "bad", {"boxes": [[0, 0, 5, 5], [5, 5, 1, 1]]})))
    with pytest.raises(ManifestError, match="field 'boxes'"):
        load_suite(str(_manifest(tmp_path / "bad2", {"boxes": "0,0,5,5"})))
    few = load_suite(str(_manifest(tmp_path / "few", {"boxes": [[0, 0, 5, 5]] * 3})))
    with pytest.raises(VideoReadError, match="has 3 boxes but the video"):
        few.load(few.samples[0])
    wide = load_suite(str(_manifest(tmp_path / "wide", {"boxes": [[0, 0, 100, 5]] * 4})))
    with pytest.raises(VideoReadError, match="beyond the video's 64x48"):
        wide.load(wide.samples[0])


def test_run_stores_both_metrics_and_the_subject_fallback_note(tmp_path, tiny_gdino):
    from bench.running.runner import RunConfig, run_benchmark
    from bench.store.results import ResultStore

    path = _manifest(tmp_path, {"boxes": [[4, 4, 30, 30]] * 10})
    data = json.loads(path.read_text())
    del data["videos"][0]["subject"]  # -> the target prompt's noun phrase, stated in the row
    path.write_text(json.dumps(data))
    opts = {"detector": str(tiny_gdino), "threshold": 0.0}
    cfg = RunConfig(suite=str(path), methods=["source"], metrics=["box_miou", "centroid_distance"],
                    results_dir=str(tmp_path / "results"), run_name="mc", device="cpu",
                    metric_options={"box_miou": opts, "centroid_distance": opts})
    run_benchmark(cfg)
    scores = ResultStore(cfg.run_dir).scores_frame()
    ok = scores[scores.status == "ok"].set_index("metric")
    assert set(ok.index) == {"box_miou", "centroid_distance"}
    assert 0.0 <= ok.loc["box_miou", "value"] <= 1.0 and 0.0 <= ok.loc["centroid_distance", "value"] <= 1.0
    assert all("subject 'red box' taken from the target prompt" in m for m in ok.message)


def build_tiny_owlv2(path: Path) -> Path:
    """A random OWLv2 (CLIP-style towers of 32 / 64 widths) with the real CLIP BPE tokenizer."""
    import torch
    from transformers import (AutoTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor,
                              Owlv2Processor)

    from tiny_models import CLIP_VOCAB_SIZE, write_clip_tokenizer

    write_clip_tokenizer(path)
    processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}),
                               tokenizer=AutoTokenizer.from_pretrained(str(path)))
    cfg = Owlv2Config(
        text_config={"vocab_size": CLIP_VOCAB_SIZE, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 64, "patch_size": 16},
        projection_dim=32)
    torch.manual_seed(0)
    Owlv2ForObjectDetection(cfg).eval().save_pretrained(str(path))
    processor.save_pretrained(str(path))
    return path


@pytest.mark.slow  # writing the real CLIP BPE tokenizer takes several seconds
def test_tiny_owlv2_boxes_are_scaled_to_the_padded_square_like_transformers(tmp_path):
    import torch

    from metrics.detection import load_detector
    from metrics.motion_control import BoxMIoU

    folder = build_tiny_owlv2(tmp_path / "owlv2-random")
    det = load_detector(folder)
    assert det.kind == "owlv2"
    frames = _video(t=2)  # 48x64: OWLv2 pads to 64x64
    best = det.best_boxes(frames, "a red square", threshold=0.0)
    inputs = det.processor(images=list(frames), text=[["a red square"]] * 2, return_tensors="pt")
    with torch.inference_mode():
        out = det.model(**inputs)
    ref = det.processor.post_process_grounded_object_detection(out, threshold=0.0, target_sizes=[(48, 64)] * 2)
    for got, r in zip(best, ref):
        i = int(torch.argmax(r["scores"]))
        assert got == pytest.approx(tuple(float(v) for v in r["boxes"][i]), abs=1e-4)
    track = np.array([[8, 10, 28, 30]] * 3, float)
    value = BoxMIoU(detector=str(folder), threshold=0.0).compute(_item(_video(), boxes=track, subject="red square"))
    assert 0.0 <= value["box_miou"] <= 1.0
