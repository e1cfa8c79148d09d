"""Secrets never reach a message, a stored row or a file (issue 25).

Code that reads a secret (the judge's API key, an `external.env` value whose name or shape says it is
one) registers it here; everything that stores or prints text passes it through `redact`.
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "***"
#: the longest message, stored answer or adapter error text kept or printed (the rest is cut)
MAX_TEXT_CHARS = 8000
#: shorter values are too likely to occur in ordinary text to be masked everywhere
MIN_SECRET_LEN = 6
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASS|PWD|AUTH|CRED|COOKIE|SESSION|PRIVATE|SIGNATURE", re.IGNORECASE)
TOKEN_SHAPE = re.compile(r"^(sk-|sk_|hf_|ghp_|gho_|ghs_|github_pat_|glpat-|xox[abprs]-|AKIA|ASIA|AIza|Bearer\s)")

_lock = threading.Lock()
_secrets: set[str] = set()


def is_secret(name: str, value: Any) -> bool:
    """An environment entry to treat as a secret: its value looks like a token, or its name says so and
    the value is not a path (`HF_TOKEN_PATH=/home/me/.token` names a file, it is not the secret)."""
    text = str(value)
    if TOKEN_SHAPE.match(text):
        return True
    return bool(SECRET_NAME.search(str(name))) and not text.startswith(("/", "~", "./", "../"))


def register_secret(value: Any) -> None:
    text = "" if value is None else str(value)
    if len(text) >= MIN_SECRET_LEN:
        with _lock:
            _secrets.add(text)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    if not _secrets or not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for s in known:
        if s in text:
            text = text.replace(s, MASK)
    return text


def redact_any(value: Any) -> Any:
    """`redact` through strings, dicts, lists and tuples (keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_any(k): redact_any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_any(v) for v in value)
    return value


def scrub_env_secrets(value: Any) -> Any:
    """A copy of a config in which every secret entry of a mapping named `env` is ***."""
    if isinstance(value, dict):
        return {k: ({n: (MASK if is_secret(n, v) else v) for n, v in sub.items()} if k == "env" and isinstance(sub, dict)
                    else scrub_env_secrets(sub)) for k, sub in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_env_secrets(v) for v in value]
    return value


def clip_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """At most `limit` characters, saying how many were cut (messages and stored answers)."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters cut]"
