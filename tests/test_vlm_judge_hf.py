"""vlm_judge backend=hf with a tiny random Qwen2-VL saved to a temp dir and loaded by the auto classes.

The tokenizer is a small byte-level BPE trained offline with `tokenizers`, wrapped with the Qwen2-VL
image/video processors and a chat template. One copy of the model answers at random (so every answer
is unparseable: error rows after the bounded retries); another has a `sequence_bias` in its saved
generation config that makes greedy decoding write a chosen EditVerse answer, which is parsed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bench.api.types import EvalItem, Sample, Video

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
           "<|video_pad|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for c in message['content'] %}{% if c['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif c['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SCRIPTED = "Prompt Following: 2 - mostly\nEdit Quality: 1 - blurry\nBackground Consistency: 3 - kept"


def _build_tiny_qwen2vl(folder: Path, scripted_answer: str | None = None) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog while the video quality is judged"] * 8,
                            trainer)
    ids = {s: tok.token_to_id(s) for s in SPECIAL}
    ptok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL[1:])
    pix = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 16}
    Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(**pix), tokenizer=ptok,
                     video_processor=Qwen2VLVideoProcessor(**pix), chat_template=CHAT_TEMPLATE).save_pretrained(folder)
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         bos_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=1, embed_dim=16, hidden_size=32, num_heads=2, patch_size=14, spatial_merge_size=2,
                           temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config).eval()
    if scripted_answer is not None:
        # greedy decoding follows the longest matching prefix of the answer, then stops (EOS)
        seq = tok.encode(scripted_answer).ids + [ids["<|im_end|>"]]
        model.generation_config = GenerationConfig(
            eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
            sequence_bias=[[seq[:n], 20.0 * n] for n in range(1, len(seq) + 1)],
        )
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_vlms(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-qwen2vl")
    return {"random": _build_tiny_qwen2vl(root / "random"),
            "scripted": _build_tiny_qwen2vl(root / "scripted", SCRIPTED)}


def _item(n: int = 6) -> EvalItem:
    rng = np.random.default_rng(1)
    src = Video(rng.integers(0, 255, (n, 48, 64, 3), dtype=np.uint8))
    edit = Video(np.ascontiguousarray(src.frames[:, ::-1]))
    s = Sample("t", "v1", "swap", "x", "a [cat] sits on a sofa", "a [dog] sits on a sofa", edit_type="foreground")
    return EvalItem(sample=s, source=src, edited=edit, prompt=s.target_prompt)


def test_scripted_tiny_qwen2vl_answer_is_parsed_into_editverse_scores(tiny_vlms):
    from metrics.vlm_judge.metric import VlmJudge

    m = VlmJudge(protocol="editverse", backend="hf", model=str(tiny_vlms["scripted"]), max_new_tokens=80,
                 batch_size=2)
    m.setup()
    assert type(m._backend.model).__name__ == "Qwen2VLForConditionalGeneration"  # loaded via the auto class
    values = m.compute(_item())
    assert values == {"vlm_judge": 6.0, "vlm_judge_prompt_following": 2.0, "vlm_judge_edit_quality": 1.0,
                      "vlm_judge_background_consistency": 3.0}
    qs = values.details["questions"]
    assert [q["answers"] for q in qs] == [[SCRIPTED]] * 3 and values.details["frames"] == [0, 2, 4]
    assert values.details["usage"]["calls"] == 3 and values.details["usage"]["prompt_tokens"] > 3 * 20
    # a second sample with the same frames and prompt is answered from the cache
    again = m.compute(_item())
    assert again == values and again.details["usage"]["calls"] == 0 and again.details["usage"]["cache_hits"] == 3
    m.teardown()


def test_random_tiny_qwen2vl_answers_become_error_rows_after_bounded_retries(tiny_vlms, tmp_path):
    from bench.running.runner import RunConfig, run_benchmark
    from bench.store.results import ResultStore
    from bench.store.judge_cache import JudgeCache

    clip = tmp_path / "clip"
    clip.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(clip / f"{i:03d}.png")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump({"name": "m", "preprocess": {"num_frames": 4, "size": 32}, "videos": [
        {"id": "v1", "source": "clip", "source_prompt": "a [cat] sits on a sofa", "edits": [
            {"id": "swap", "edit_type": "foreground", "target_prompt": "a [dog] sits on a sofa"}]}]}))
    cfg = RunConfig(suite=str(manifest), methods=["source"], metrics=["vlm_judge"], results_dir=str(tmp_path / "r"),
                    run_name="hf", device="cpu",
                    metric_options={"vlm_judge": {"model": str(tiny_vlms["random"]), "max_new_tokens": 6}})
    run_benchmark(cfg)
    store = ResultStore(cfg.run_dir)
    rows = store.conn.execute("SELECT metric, status, message, details FROM scores WHERE metric_family='vlm_judge'").fetchall()
    labels = {r[0] for r in store.conn.execute("SELECT variant_label FROM scores WHERE metric_family='vlm_judge'")}
    assert len(labels) == 1 and "frames_as=video" in labels.pop()  # FiVE-Bench shows the 4 frames as a video
    assert {r[0] for r in rows} == {"vlm_judge", "vlm_judge_yes_no", "vlm_judge_multi_choice", "vlm_judge_union",
                                    "vlm_judge_inter"}
    assert {r[1] for r in rows} == {"error"}
    msg, details = rows[0][2], json.loads(rows[0][3])
    assert "unparseable answer to" in msg and "after 3 tries" in msg and "raw answer:" in msg
    tries = [q["answers"] for q in details["questions"]]
    assert all(len(t) == 3 for t in tries) and any(repr(t[-1]) in msg for t in tries)  # the raw text (repr: one line)
    usage = JudgeCache(store.conn).usage_rows()
    assert usage[0]["calls"] == 9 and usage[0]["unparseable"] == 9 and usage[0]["completion_tokens"] > 0
    store.close()
