"""NIQE (FiVE-Bench): pyiqa's NIQE per edited frame, mean (lower is better).

pyiqa's NIQE arch with the published NIQE model parameters (`niqe_modelparameters.mat`), on the
Y channel (YIQ) of RGB frames in [0, 1], no border crop — pyiqa's defaults, which FiVE-Bench uses.
pyiqa is the optional extra `iqa`: without it the metric is skipped with the install command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.metric import Metric
from bench.types import EvalItem
from metrics._embed import OptionalDependencyMissing, registry_weight_names, weights_path
from metrics.vbench import IQA_INSTALL


def _import_niqe() -> Any:
    try:
        from pyiqa.archs.niqe_arch import NIQE as PyiqaNIQE
    except ImportError as e:
        raise OptionalDependencyMissing("pyiqa", IQA_INSTALL, "niqe") from e
    return PyiqaNIQE


def load_niqe(path: Path, device: str = "cpu") -> Any:
    arch = _import_niqe()
    return arch(pretrained_model_path=str(path)).to(device).eval()


class NIQE(Metric):
    name = "niqe"
    description = "NIQE (FiVE-Bench): pyiqa NIQE per edited frame, mean; lower is better"
    higher_is_better = False
    value_range = (0.0, float("inf"))
    defaults: ClassVar[dict[str, Any]] = {"weights": "niqe-pyiqa"}

    _model: Any = None

    @staticmethod
    def is_available() -> bool:
        try:
            _import_niqe()
        except OptionalDependencyMissing:
            return False
        return True

    def required_weights(self) -> list[str]:
        # without pyiqa, setup() says "install pyiqa" (the weights alone would not help)
        return registry_weight_names(self.options["weights"]) if self.is_available() else []

    def setup(self) -> None:
        from bench.models import create_model

        _import_niqe()
        self._model = create_model(weights_path(self.options["weights"]), load_niqe, self.device)

    def compute(self, item: EvalItem) -> dict[str, float]:
        import torch

        if self._model is None:
            self.setup()
        x = torch.from_numpy(np.ascontiguousarray(item.edited.frames)).permute(0, 3, 1, 2).float() / 255.0
        scores = []
        with torch.inference_mode():
            for t in range(x.shape[0]):
                scores.append(float(self._model(x[t : t + 1].to(self.device))))
        return {self.name: float(np.mean(scores))}

    def teardown(self) -> None:
        self._model = None


__all__ = ["NIQE"]
