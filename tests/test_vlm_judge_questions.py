"""vlm_judge without a model: answer parsers and question generation (known answers), torch-free listing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.suites import load_suite
from bench.api.types import Sample
from metrics.vlm_judge.metric import VlmJudge, pair_indices, uniform_indices
from metrics.vlm_judge.parse import Unparseable, parse_editverse, parse_multi_choice, parse_yes_no
from metrics.vlm_judge.questions import (
    edited_words,
    editverse_questions,
    five_acc_questions,
    parse_options,
    retry_prompt,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text,want", [
    ("YES", "yes"), ("no.", "no"), ("Yes, there is a dog.", "yes"), ("**Answer:** No", "no"),
    ("  'NO'", "no"), ("Answer: yes", "yes"),
])
def test_yes_no_parser_known_answers(text, want):
    assert parse_yes_no(text) == want


@pytest.mark.parametrize("text", ["Maybe", "", "Nobody knows", "I think so", "Y"])
def test_yes_no_parser_rejects(text):
    with pytest.raises(Unparseable):
        parse_yes_no(text)


OPTS = (("a", "a cat"), ("b", "a dog"))


@pytest.mark.parametrize("text,want", [
    ("b", "b"), ("B) a dog", "b"), ("(a) a cat", "a"), ("a dog", "b"), ("a", "a"), ("Answer: b.", "b"),
    ("A cat", "a"),
])
def test_multiple_choice_parser_known_answers(text, want):
    assert parse_multi_choice(text, OPTS) == want


@pytest.mark.parametrize("text", ["c) a bird", "neither", "", "dogs and cats"])
def test_multiple_choice_parser_rejects(text):
    with pytest.raises(Unparseable):
        parse_multi_choice(text, OPTS)


def test_editverse_parser_known_answers():
    s = parse_editverse("Prompt Following: 2 - mostly done\nEdit Quality: [1] - blurry\n"
                        "Background Consistency: 3 - stable\nTotal Score: 6")
    assert (s.prompt_following, s.edit_quality, s.background_consistency, s.total, s.stated_total) == (2, 1, 3, 6, 6)
    s = parse_editverse("**Prompt Following:** 3\n**Edit Quality:** 3\n**Background Consistency:** 0\nTotal Score: 9")
    assert s.total == 6 and s.stated_total == 9  # the stated total is reported, the sum is used
    for bad in ("Prompt Following: 2\nEdit Quality: 1", "Prompt Following: 4\nEdit Quality: 1\nBackground Consistency: 1",
                "Prompt Following: 2.5\nEdit Quality: 1\nBackground Consistency: 1", "The edit looks great!"):
        with pytest.raises(Unparseable):
            parse_editverse(bad)


def test_edited_words_from_brackets_and_from_a_word_diff():
    assert edited_words("a [cat] sits on a sofa", "a [dog] sits on a sofa") == ("a cat", "a dog")
    assert edited_words("a cat sits on a sofa", "a dog sits on a sofa") == ("a cat", "a dog")
    assert edited_words("a red car drives", "a blue car drives") == ("a red", "a blue")  # the article comes along; brackets are precise
    assert edited_words("a man walks", "a man walks, in van gogh style") == ("", "in van gogh style")
    assert edited_words("a man walks", "an astronaut floats in space above the moon surface today") is None


def _manifest(tmp_path: Path) -> Path:
    frames = tmp_path / "clip"
    frames.mkdir()
    import numpy as np
    from PIL import Image

    for i in range(6):
        Image.fromarray(np.full((32, 32, 3), 20 * i, np.uint8)).save(frames / f"{i:03d}.png")
    data = {"name": "judged", "preprocess": {"num_frames": 4, "size": 32}, "videos": [
        {"id": "v1", "source": "clip", "source_prompt": "a [cat] sits on a sofa", "edits": [
            {"id": "swap", "edit_type": "foreground", "target_prompt": "a [dog] sits on a sofa"},
            {"id": "style", "edit_type": "style", "target_prompt": "a cat sits on a sofa, [watercolor] painting"},
            {"id": "bg", "edit_type": "background", "target_prompt": "a cat sits on a [beach]"},
            {"id": "free", "edit_type": "foreground", "target_prompt": "two robots dance under neon lights at night"},
        ]}]}
    p = tmp_path / "judged.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_five_acc_questions_generated_from_a_manifest(tmp_path):
    suite = load_suite(str(_manifest(tmp_path)))
    by_id = {s.edit_id: s for s in suite.samples}

    qs = {q.qid: q for q in five_acc_questions(by_id["swap"])}
    assert qs["target_yes_no"].question == "Is there a dog in the video?" and qs["target_yes_no"].expected == "yes"
    assert qs["source_yes_no"].question == "Is there a cat in the video?" and qs["source_yes_no"].expected == "no"
    assert qs["multi_choice"].question == "Which of the following appears in the video?\na) a cat\nb) a dog"
    assert qs["multi_choice"].options == (("a", "a cat"), ("b", "a dog")) and qs["multi_choice"].expected == "b"
    assert qs["target_yes_no"].prompt == ("Answer the following question using only 'YES' or 'NO':\n"
                                          "Is there a dog in the video?")
    assert qs["multi_choice"].prompt.startswith("Select the correct answer from the given choices")

    style = {q.qid: q for q in five_acc_questions(by_id["style"])}
    assert list(style) == ["target_yes_no", "multi_choice"]  # a style edit replaces no object
    assert style["target_yes_no"].question == "Is the video in the style of watercolor?"
    assert style["multi_choice"].options == (("a", "the original style"), ("b", "watercolor"))

    bg = {q.qid: q.question for q in five_acc_questions(by_id["bg"])}
    assert bg["target_yes_no"] == "Is the background of the video a beach?"

    free = {q.qid: q for q in five_acc_questions(by_id["free"])}  # nothing isolable: the whole prompts
    assert free["target_yes_no"].question == "Does the video show two robots dance under neon lights at night?"
    assert free["multi_choice"].options == (("a", "a cat sits on a sofa"), ("b", "two robots dance under neon lights at night"))


def test_annotated_questions_win_and_editverse_prompt():
    s = Sample("five", "v", "e", "x.mp4", "a cyclist with a helmet", "a cyclist without a helmet", meta=(
        ("multiple_choice_question", "Is the cyclist wearing a helmet? \na) Yes \nb) No"),
        ("source_yes_no_question", "Is the cyclist wearing a helmet in the image?"),
        ("target_yes_no_question", "Is the cyclist not wearing a helmet in the image?"),
    ))
    qs = {q.qid: q for q in five_acc_questions(s)}
    assert qs["target_yes_no"].question == "Is the cyclist not wearing a helmet in the image?"
    assert qs["multi_choice"].options == (("a", "Yes"), ("b", "No"))
    ev = editverse_questions(s, 3)
    assert [q.qid for q in ev] == ["pair0", "pair1", "pair2"]
    assert ev[0].question == ('Change the video described as "a cyclist with a helmet" so that it shows '
                              '"a cyclist without a helmet".')
    assert "Editing Prompt:\n" + ev[0].question in ev[0].prompt and "Total Score:" in ev[0].prompt
    assert retry_prompt(ev[0], 0) == ev[0].prompt and retry_prompt(ev[0], 1).startswith(ev[0].prompt)
    assert retry_prompt(ev[0], 1) != ev[0].prompt
    assert parse_options("Q?\na) x\nb) y\nc) z") == (("a", "x"), ("b", "y"), ("c", "z"))


def test_frame_selection():
    assert uniform_indices(24, 4) == [3, 9, 15, 21]
    assert uniform_indices(3, 4) == [0, 1, 2]
    assert pair_indices(24, 3) == [0, 8, 16]
    assert pair_indices(10, 3) == [0, 3, 6]


def test_variant_leaves_out_operational_options_and_protocol_picks_outputs():
    a = VlmJudge(protocol="editverse", backend="openai", model="m", base_url="http://x/v1", timeout=5)
    b = VlmJudge(protocol="editverse", backend="openai", model="m", base_url="http://y/v1", http_retries=9)
    assert a.variant_id() == b.variant_id()
    assert a.variant_id() != VlmJudge(protocol="five_acc", backend="openai", model="m").variant_id()
    assert [o.name for o in a.outputs()][0] == "vlm_judge" and a.outputs()[0].value_range == (0.0, 9.0)
    five = VlmJudge()
    assert five.variant()["model"] == "qwen2.5-vl-7b-instruct" and five.outputs()[0].value_range == (0.0, 1.0)
    assert "vlm_judge_prompt_following" in [o.name for o in VlmJudge.outputs()]
    with pytest.raises(Exception, match="bad protocol"):
        VlmJudge(protocol="gpt")
    assert five.frames_as == "video" and a.frames_as == "images"
    with pytest.raises(Exception, match="frames_as=video needs backend=hf"):
        VlmJudge(backend="openai", frames_as="video")


def test_list_metrics_details_shows_templates_without_torch():
    code = ("import sys; from typer.testing import CliRunner; from bench.cli import app; "
            "r = CliRunner().invoke(app, ['list', 'metrics', '--details']); print(r.output); "
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**__import__('os').environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}).stdout
    assert "vlm_judge" in out and "structure_distance" in out and "niqe" in out
    assert "yes_no_wrapper" in out and "Is there {target} in the video?" in out
    assert "TORCH False" in out
