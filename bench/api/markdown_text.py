"""Untrusted text (method labels, metric variants, prompts, study names and questions) in Markdown.

One escape for every Markdown file we write — table cells and headings alike: no raw HTML reaches a
renderer (`<`, `>`, `&` become entities), no table break, line break, link or image syntax survives.
"""

from __future__ import annotations

from typing import Any

_ESCAPES = {"|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;"}


def md_escape(x: Any) -> str:
    """Text safe anywhere in a Markdown line (a table cell, a heading, a paragraph)."""
    text = str(x).replace("\r", " ").replace("\n", " ")
    return "".join(_ESCAPES.get(ch, ch) for ch in text).replace("](", "\\](").replace("![", "!\\[")
