"""Questions of the VLM judge, generated from a sample (its prompts, edit type, or its own questions).

The templates are data (`templates.yaml`, package data). FiVE-Acc asks, per sample, a yes/no
question about the target (expected YES), one about the source when the edit replaces something
(expected NO) and a multiple-choice question between source and target (expected b); a sample
may carry FiVE's own annotated questions in its metadata (`target_yes_no_question`,
`source_yes_no_question`, `multiple_choice_question`). The edited words come from [brackets] in the
prompts (FiVE-Bench writes "a [cat] sits" / "a [dog] sits"), else from a word diff of the two
prompts, else the whole prompts are asked about. EditVerse asks for three 0-3 scores per frame pair.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from bench.errors import NotApplicable, VidEditBenchError
from bench.types import Sample

ARTICLES = ("a", "an", "the")
_BRACKET = re.compile(r"\[([^\[\]]+)\]")
_BRACKET_SPAN = re.compile(r"(?:\b(a|an|the)\s+)?\[([^\[\]]+)\]", re.IGNORECASE)
_OPTION_LINE = re.compile(r"^\s*\(?([A-Za-z])\s*[\)\.:]\s*(.+?)\s*$")
MAX_DIFF_WORDS = 4


@dataclass(frozen=True)
class Question:
    """One question put to the judge: `prompt` is the full text sent (wrapper included)."""

    qid: str  # target_yes_no | source_yes_no | multi_choice | pair0, pair1, ...
    kind: str  # yes_no | multi_choice | editverse
    question: str  # the bare question (as generated / annotated)
    prompt: str
    expected: str | None = None  # "yes" / "no" / an option letter; None for editverse scores
    options: tuple[tuple[str, str], ...] = ()  # multiple choice: ((letter, text), ...)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = [list(o) for o in self.options]
        return d


@lru_cache(maxsize=1)
def templates() -> dict[str, Any]:
    from bench.api import safe_yaml

    text = resources.files("metrics.vlm_judge").joinpath("templates.yaml").read_text(encoding="utf-8")
    return safe_yaml.load(text)


def templates_text() -> str:
    """The template file as shipped (for `list metrics --details`)."""
    return resources.files("metrics.vlm_judge").joinpath("templates.yaml").read_text(encoding="utf-8")


def clean_prompt(text: str | None) -> str:
    """A prompt without FiVE's [brackets]."""
    return _BRACKET.sub(lambda m: m.group(1), text or "").strip()


def _with_article(words: list[str], before: list[str], i: int) -> str:
    """The span `words`, with the article that precedes it in the prompt (a cat, not cat)."""
    if i > 0 and before[i - 1].lower() in ARTICLES and (not words or words[0].lower() not in ARTICLES):
        words = [before[i - 1], *words]
    return " ".join(words)


def edited_words(source_prompt: str | None, target_prompt: str | None) -> tuple[str, str] | None:
    """(source words, target words) that the edit changes, or None when they cannot be isolated."""
    src, tgt = source_prompt or "", target_prompt or ""
    span = lambda m: f"{m.group(1)} {m.group(2).strip()}" if m.group(1) else m.group(2).strip()  # noqa: E731
    sb, tb = [span(m) for m in _BRACKET_SPAN.finditer(src)], [span(m) for m in _BRACKET_SPAN.finditer(tgt)]
    if tb:
        return (" ".join(sb), " ".join(tb))
    a, b = src.split(), tgt.split()
    if not a or not b:
        return None
    strip = lambda w: w.lower().strip(".,;:!?\"'")  # noqa: E731
    ops = [op for op in difflib.SequenceMatcher(None, [strip(w) for w in a], [strip(w) for w in b],
                                                autojunk=False).get_opcodes() if op[0] != "equal"]
    if len(ops) != 1:
        return None
    _, i1, i2, j1, j2 = ops[0]
    if j2 - j1 == 0 or j2 - j1 > MAX_DIFF_WORDS or i2 - i1 > MAX_DIFF_WORDS:
        return None
    s_words = [w.strip(".,;:!?\"'") for w in a[i1:i2]]
    t_words = [w.strip(".,;:!?\"'") for w in b[j1:j2]]
    return (_with_article(s_words, a, i1) if s_words else "", _with_article(t_words, b, j1))


def parse_options(question: str) -> tuple[tuple[str, str], ...]:
    """The lettered options of a multiple-choice question ("a) Yes" lines)."""
    out = []
    for line in question.splitlines()[1:]:
        m = _OPTION_LINE.match(line)
        if m:
            out.append((m.group(1).lower(), m.group(2).strip()))
    return tuple(out)


def _yes_no(qid: str, question: str, expected: str, t: dict) -> Question:
    return Question(qid, "yes_no", question, t["yes_no_wrapper"].format(question=question), expected)


def _multi_choice(question: str, t: dict, expected: str = "b") -> Question:
    options = parse_options(question)
    if len(options) < 2:
        raise VidEditBenchError(f"multiple-choice question without lettered options ('a) ...' lines): {question!r}")
    return Question("multi_choice", "multi_choice", question, t["multi_choice_wrapper"].format(question=question),
                    expected, options)


def five_acc_questions(sample: Sample) -> list[Question]:
    """FiVE-Acc's questions for one sample (annotated ones win over generated ones)."""
    t = templates()["five_acc"]
    meta = sample.meta_dict()
    if meta.get("target_yes_no_question") and meta.get("multiple_choice_question"):
        qs = [_yes_no("target_yes_no", str(meta["target_yes_no_question"]), "yes", t)]
        if meta.get("source_yes_no_question"):
            qs.append(_yes_no("source_yes_no", str(meta["source_yes_no_question"]), "no", t))
        qs.append(_multi_choice(str(meta["multiple_choice_question"]), t, str(meta.get("multiple_choice_answer", "b")).lower()))
        return qs
    if not sample.target_prompt:
        raise NotApplicable("vlm_judge five_acc needs a target prompt (or annotated questions)")
    words = edited_words(sample.source_prompt, sample.target_prompt)
    family = t["edit_type_family"].get(sample.edit_type, "object")
    if words is None or not words[1] or (not words[0] and family != "style"):
        family = "caption"
    src, tgt = words if words else ("", "")
    fields = {"source": src, "target": tgt, "source_prompt": clean_prompt(sample.source_prompt),
              "target_prompt": clean_prompt(sample.target_prompt)}
    if family == "caption" and not fields["source_prompt"]:
        fields["source_prompt"] = "something else"
    if family == "style":  # the source prompt names content, not a style
        fields["source"] = "the original style"
    tpl = t["questions"][family]
    qs = [_yes_no("target_yes_no", tpl["target_yes_no"].format(**fields), "yes", t)]
    if tpl.get("source_yes_no") and src:
        qs.append(_yes_no("source_yes_no", tpl["source_yes_no"].format(**fields), "no", t))
    qs.append(_multi_choice(tpl["multi_choice"].format(**fields), t))
    return qs


def editverse_instruction(sample: Sample) -> str:
    t = templates()["editverse"]
    meta = sample.meta_dict()
    if meta.get("instruction"):
        return str(meta["instruction"])
    if not sample.target_prompt:
        raise NotApplicable("vlm_judge editverse needs a target prompt (or an instruction)")
    fields = {"source_prompt": clean_prompt(sample.source_prompt), "target_prompt": clean_prompt(sample.target_prompt)}
    key = "instruction_from_prompts" if fields["source_prompt"] else "instruction_from_target"
    return t[key].format(**fields)


def editverse_questions(sample: Sample, num_pairs: int) -> list[Question]:
    t = templates()["editverse"]
    instruction = editverse_instruction(sample)
    prompt = t["prompt"].format(instruction=instruction)
    return [Question(f"pair{i}", "editverse", instruction, prompt) for i in range(num_pairs)]


def retry_prompt(q: Question, attempt: int) -> str:
    """The prompt of try `attempt` (0 = first): later tries append the format reminder."""
    if attempt == 0:
        return q.prompt
    t = templates()
    suffix = t["editverse"]["retry_suffix"] if q.kind == "editverse" else t["five_acc"]["retry_suffix"][q.kind]
    return q.prompt + suffix


__all__ = ["Question", "templates", "templates_text", "edited_words", "five_acc_questions", "editverse_questions",
           "editverse_instruction", "parse_options", "clean_prompt", "retry_prompt"]
