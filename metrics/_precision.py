"""The `precision` option of the model metrics: fp32 (default), fp16 or bf16 weights and inputs.

Half precision changes the numbers, so it is part of the variant: a metric run with
`precision=fp16` stores its values under another variant id than the fp32 default. The fp32
variant leaves `precision` out of `variant()`, so ids of results stored before the option existed
stay valid. fp16 is refused on CPU (many CPU kernels lack it and those that exist are slower than
fp32); bf16 runs on CPU and CUDA.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.errors import VidEditBenchError

if TYPE_CHECKING:
    import torch

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")
DEFAULT_PRECISION = "fp32"


def torch_dtype(precision: str) -> "torch.dtype":
    import torch

    try:
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    except KeyError:
        raise VidEditBenchError(f"bad precision '{precision}'; valid choices: {', '.join(PRECISIONS)}") from None


def check_precision(metric: str, precision: str, device: str) -> None:
    """One clear line when the precision cannot run on the device."""
    if precision not in PRECISIONS:
        raise VidEditBenchError(f"metric '{metric}': bad precision '{precision}'; valid choices: {', '.join(PRECISIONS)}")
    if precision == "fp16" and not str(device).startswith("cuda"):
        raise VidEditBenchError(
            f"metric '{metric}': precision=fp16 needs a CUDA device (got device '{device}'); "
            f"use precision=fp32 (default) or bf16 on CPU"
        )


def cast_model(model: Any, precision: str) -> Any:
    """`model.to(dtype)` for half precisions; fp32 models are returned untouched."""
    if precision == DEFAULT_PRECISION:
        return model
    return model.to(torch_dtype(precision))


class PrecisionOption:
    """Mixin (before `Metric` in the bases) for metrics whose `defaults` carry `precision`.

    Checks the precision against the device when the metric is created and keeps the fp32
    default out of the variant (see the module docstring).
    """

    name: str
    options: dict[str, Any]
    device: str

    def __init__(self, device: str = "cpu", batch_size: int | None = None, **options: Any):
        super().__init__(device=device, batch_size=batch_size, **options)  # type: ignore[call-arg]
        check_precision(self.name, self.precision, self.device)

    @property
    def precision(self) -> str:
        return str(self.options.get("precision", DEFAULT_PRECISION))

    def variant(self) -> dict[str, Any]:
        v = super().variant()  # type: ignore[misc]
        if v.get("precision") == DEFAULT_PRECISION:
            v.pop("precision")
        return v


__all__ = ["PRECISIONS", "DEFAULT_PRECISION", "PrecisionOption", "cast_model", "check_precision", "torch_dtype"]
