"""Parsers and validators of judge answers: each returns the parsed value or raises `Unparseable`.

* yes/no: the first word is YES or NO (after quotes, markdown and an "Answer:" label); FiVE-Bench
  compares the first 3 (yes) / 2 (no) characters, so "Yes, there is a cat" is a YES.
* multiple choice: a leading option letter ("b", "B)", "(b) dog"), or the text of exactly one option.
* EditVerse: "Prompt Following: N", "Edit Quality: N", "Background Consistency: N", each an integer
  in 0..3; the total is their sum (a stated "Total Score" that disagrees is reported, not trusted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LEAD = re.compile(r"^[\s\"'`*_#>\-]*(?:(?:final\s+)?answer\s*(?:is)?\s*[:\-]?\s*)?[\s\"'`*_]*", re.IGNORECASE)
_YES_NO = re.compile(r"^(yes|no)\b", re.IGNORECASE)
_LETTER = re.compile(r"^\(?([a-z])(?:\s*[\)\.:]|\s|$)", re.IGNORECASE)
EDITVERSE_FIELDS = {
    "prompt_following": re.compile(r"prompt\s*following\s*(?:\(?score\)?)?\s*[:\-=]\s*\[?\s*(-?\d+(?:\.\d+)?)", re.I),
    "edit_quality": re.compile(r"edit(?:ing)?\s*quality\s*(?:\(?score\)?)?\s*[:\-=]\s*\[?\s*(-?\d+(?:\.\d+)?)", re.I),
    "background_consistency": re.compile(
        r"background\s*consistency\s*(?:\(?score\)?)?\s*[:\-=]\s*\[?\s*(-?\d+(?:\.\d+)?)", re.I),
}
_TOTAL = re.compile(r"total\s*(?:score)?\s*[:\-=]\s*\[?\s*(-?\d+(?:\.\d+)?)", re.I)
SCORE_MAX = 3


class Unparseable(ValueError):
    """The answer does not have the required form (the message says what was expected)."""


def _body(text: str) -> str:
    return _LEAD.sub("", (text or "").strip(), count=1).strip()


def parse_yes_no(text: str) -> str:
    m = _YES_NO.match(_body(text))
    if not m:
        raise Unparseable("expected YES or NO")
    return m.group(1).lower()


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9 ]+", "", s.lower()).strip()


def parse_multi_choice(text: str, options: tuple[tuple[str, str], ...]) -> str:
    letters = {letter for letter, _ in options}
    body = _body(text)
    exact = [letter for letter, opt in options if _norm(opt) and _norm(body) == _norm(opt)]
    if len(exact) == 1:  # "a dog" is option b's text, not the letter a
        return exact[0]
    m = _LETTER.match(body)
    if m and m.group(1).lower() in letters:
        return m.group(1).lower()
    hits = [letter for letter, opt in options if _norm(opt) and _norm(body).startswith(_norm(opt))]
    if len(hits) == 1:
        return hits[0]
    raise Unparseable(f"expected one of the options {', '.join(sorted(letters))}")


@dataclass(frozen=True)
class EditVerseScores:
    prompt_following: int
    edit_quality: int
    background_consistency: int
    stated_total: int | None = None

    @property
    def total(self) -> int:
        return self.prompt_following + self.edit_quality + self.background_consistency


def parse_editverse(text: str) -> EditVerseScores:
    text = re.sub(r"[*_`#]", "", text or "")  # markdown emphasis around the labels
    values: dict[str, int] = {}
    for name, rx in EDITVERSE_FIELDS.items():
        m = rx.search(text or "")
        if not m:
            raise Unparseable(f"missing '{name.replace('_', ' ').title()}: <0-3>'")
        v = float(m.group(1))
        if v != int(v) or not 0 <= v <= SCORE_MAX:
            raise Unparseable(f"{name.replace('_', ' ')} score {m.group(1)} is not an integer in 0..{SCORE_MAX}")
        values[name] = int(v)
    t = _TOTAL.search(text or "")
    stated = int(float(t.group(1))) if t else None
    return EditVerseScores(**values, stated_total=stated)


__all__ = ["Unparseable", "parse_yes_no", "parse_multi_choice", "parse_editverse", "EditVerseScores"]
