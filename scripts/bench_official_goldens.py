#!/usr/bin/env python
"""Benchmark (not a test): CPU seconds per edit of the official-mode adapters on their method goldens'
tiny models (../shared/goldens/methods/<method>/, RECIPE.md there), beside the figure the RECIPE gives
for the official code on the same inputs. Each edit runs in this process with `--threads` torch threads
(the goldens used 1); the first run also loads the models, so `--repeats` > 1 reports the median of the
later ones. AnyV2V (case `main`): inversion (`prepare`) and editing (`edit` with the golden's edited
first frame) separately.
Usage: python scripts/bench_official_goldens.py [--threads 1] [--repeats 2] [--goldens ../shared/goldens]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: the RECIPE's run time of the official code on its 2-core machine, 1 thread (AnyV2V RECIPE §10)
OFFICIAL = {"anyv2v": {"prepare": 53.0, "edit": 76.0}}


def _png(path: Path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def time_anyv2v(golden: Path, repeats: int) -> dict[str, list[float]]:
    import numpy as np

    from bench.api.catalog import METHODS
    from bench.api.types import Video

    s = json.loads((golden / "expected.json").read_text())["cases"]["main"]["settings"]
    frames = np.stack([_png(p) for p in sorted((golden / "inputs" / "source_frames").glob("*.png"))])
    video, edited = Video(frames, fps=8.0), _png(golden / "inputs" / "edited_first_frame.png")
    m = METHODS.get("anyv2v")(device="cpu", seed=s["seed"], preset="official", vae_sampling="mean",
                              weights=str(golden / "models" / "i2vgen-xl-tiny"), height=128, width=128,
                              num_frames=s["n_frames"], num_inversion_steps=s["inverse_n_steps"],
                              num_inference_steps=s["n_steps"], init_step=s["ddim_init_latents_t_idx"])
    m.setup()
    out: dict[str, list[float]] = {"prepare": [], "edit": []}
    for _ in range(repeats):
        t0 = time.process_time()
        prepared = m.prepare(video)
        t1 = time.process_time()
        m.edit(video, prompt=s["editing_prompt"], prepared=prepared, edited_first_frame=edited)
        out["prepare"].append(t1 - t0)
        out["edit"].append(time.process_time() - t1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--goldens", type=Path, default=Path(os.environ.get("VIDEDITBENCH_GOLDENS", ROOT.parent / "shared" / "goldens")))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    golden = args.goldens / "methods" / "anyv2v"
    if not (golden / "expected.json").is_file():
        sys.exit(f"no AnyV2V method goldens at {golden} (give --goldens or set VIDEDITBENCH_GOLDENS)")
    times = time_anyv2v(golden, max(1, args.repeats))
    print(f"method   phase     CPU s (median of {len(times['edit'][1:]) or 1})   official code (RECIPE: wall s, 1 thread)")
    for phase, values in times.items():
        later = values[1:] or values
        print(f"anyv2v   {phase:8s}  {statistics.median(later):8.1f}                {OFFICIAL['anyv2v'][phase]:6.1f}")


if __name__ == "__main__":
    main()
