"""The TokenFlow method goldens (../shared/goldens/methods/tokenflow, RECIPE.md) as the adapter consumes them:
inputs, settings, the golden inversion in `prepare` format, and the adapter in official mode with the golden's
models and settings. Used by tests/test_method_goldens_tokenflow.py and scripts/bench_methods.py --goldens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.types import Video

SUBDIR = "methods/tokenflow"


def png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


@dataclass
class Golden:
    root: Path
    expected: dict[str, Any]
    video: Video

    @classmethod
    def load(cls, root: Path) -> "Golden":
        expected = json.loads((root / "expected.json").read_text())
        n = int(expected["settings"]["config_pnp.yaml"]["n_frames"])
        frames = np.stack([png(root / "inputs" / "frames" / f"{i:05d}.png") for i in range(n)])
        return cls(root, expected, Video(frames, fps=25.0))

    @property
    def settings(self) -> dict[str, Any]:
        return self.expected["settings"]["config_pnp.yaml"]

    @property
    def prompt(self) -> str:
        return str(self.settings["prompt"])

    def npy(self, name: str) -> np.ndarray:
        return np.load(self.root / "expected" / name)

    def frames(self) -> np.ndarray:
        """The official uint8 output frames."""
        return np.stack([png(p) for p in sorted((self.root / "expected" / "frames").glob("*.png"))])

    def prepared(self) -> dict[str, np.ndarray]:
        """The golden's inversion in the adapter's `prepare` format (the tight checks' seam)."""
        inv = np.load(self.root / "expected" / "inverted_latents.npz")
        ts = self.expected["timesteps"]["editing"]
        noisiest = max(self.expected["timesteps"]["inverted_saved"])
        return {"latents": np.stack([inv[f"t{t}"] for t in ts]), "timesteps": np.asarray(ts, np.int64),
                "x0": self.npy("vae_latents.npy"), "noisiest": inv[f"t{noisiest}"],
                "noisiest_t": np.asarray(noisiest, np.int64)}

    def official(self, **extra: Any) -> Any:
        """`tokenflow` with preset `official`, the golden's models and settings (RECIPE §0, §2); the inversion
        prompt given literally (not `{source_prompt}`), so `prepare` inverts and `edit` takes `prepared`."""
        from methods.tokenflow import TokenFlow

        cfg = self.settings
        return TokenFlow(device="cpu", seed=int(cfg["seed"]), preset="official",
                         weights=str(self.root / "models" / "sd15-tokenflow-tiny"), resolution=None,
                         num_inference_steps=int(cfg["n_timesteps"]), num_inversion_steps=int(cfg["n_inversion_steps"]),
                         batch_size=int(cfg["batch_size"]), inversion_prompt=self.expected["inversion_prompt"], **extra)
