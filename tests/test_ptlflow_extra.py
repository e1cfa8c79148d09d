"""ptlflow (and the lightning it needs) is an optional extra: only the `*-ptlflow` flow cross-checks use it."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

from bench.api.errors import VidEditBenchError

REPO = Path(__file__).resolve().parents[1]


def test_ptlflow_is_an_extra_not_a_default_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith(("ptlflow", "lightning"))]
    assert [d for d in project["optional-dependencies"]["ptlflow"] if d.startswith("ptlflow")]
    assert [d for d in project["optional-dependencies"]["test"] if d.startswith("ptlflow")]  # CI tests the cross-checks


@pytest.mark.parametrize("hidden", ["ptlflow", "lightning"])
def test_a_ptlflow_variant_without_the_extra_is_one_line_naming_it(monkeypatch, hidden):
    from metrics.flow.ptlflow_models import ptlflow_model_class

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **kw: None if name == hidden else real(name, *a, **kw))
    with pytest.raises(VidEditBenchError) as e:
        ptlflow_model_class("raft")
    msg = str(e.value)
    assert "\n" not in msg and "videditbench[ptlflow]" in msg and hidden in msg and "'raft-ptlflow'" in msg
    assert "flow=raft" in msg
