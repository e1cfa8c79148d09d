"""Which samples a fair comparison uses, shared by the runner (set-level metrics) and the leaderboard.

* A *reference* method (class attribute `reference = True`, e.g. `source`) is shown but never
  compared: it does not restrict the paired set and is never ranked.
* The *paired set* of a task is the samples that every compared method finished (an `ok` edit).
  Methods that finished none of the task's samples are not compared (they would empty the set).
* A set-level value (FID) is stored under `set_uid(sample uids)`, so values computed on different
  sample sets (a `--limit 2` re-run, one shard) live side by side and never replace each other.
"""

from __future__ import annotations

import json
from typing import Iterable, Mapping

from bench.api.hashing import hash_obj

SET_PREFIX = "__set__"

TASK_TITLES = {"text": "text-guided", "image": "image-guided", "subject": "subject-driven"}


def set_uid(sample_uids: Iterable[str]) -> str:
    """The sample_uid a set-level score is stored under: `__set__:<hash of the sorted uids>`."""
    return f"{SET_PREFIX}:{hash_obj(sorted(set(map(str, sample_uids))), 12)}"


def is_set_uid(uid: str) -> bool:
    return str(uid) == SET_PREFIX or str(uid).startswith(SET_PREFIX + ":")


def is_reference_config(method_config: str | Mapping | None) -> bool:
    """True when a stored method config (JSON text or dict) marks the method as a reference row."""
    if not method_config:
        return False
    if isinstance(method_config, str):
        try:
            method_config = json.loads(method_config)
        except ValueError:
            return False
    return bool(isinstance(method_config, Mapping) and method_config.get("reference"))


def compared_methods(finished: Mapping[str, set[str]], references: Iterable[str]) -> list[str]:
    refs = set(references)
    return sorted(m for m, uids in finished.items() if m not in refs and uids)


def paired_set(finished: Mapping[str, set[str]], references: Iterable[str]) -> set[str]:
    """Samples every compared method finished; with no compared method, those of the references."""
    compared = compared_methods(finished, references)
    if not compared:
        return set().union(*finished.values()) if finished else set()
    out = set(finished[compared[0]])
    for m in compared[1:]:
        out &= finished[m]
    return out


def task_title(task: str) -> str:
    return TASK_TITLES.get(task, f"{task}-guided" if task else "all samples")
