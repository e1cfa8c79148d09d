#!/usr/bin/env python
"""Benchmark (not a test): our harness against the peers' own code, same inputs, same tiny models.

Two comparisons, each run in one go with the sides interleaved (peer, ours, peer, ours, ...; medians
of --repeats), each side a separate process so start-up counts on both:

* V2VBench (`v2vbench/` evaluators of wenhao728/awesome-diffusion-v2v, through its
  `EvaluatorWrapper`): clip_text_alignment + clip_consistency + dino_consistency (+ motion_alignment
  with --motion) against `videditbench eval` with clip_text, clip_consistency, dino_consistency
  (+ motion_alignment), on the first --edits edits of the mini suite (they share 3 source videos).
* VBench 0.1.5 (its `subject_consistency`, `background_consistency`, `temporal_flickering`
  functions) against `videditbench eval` with the same three metrics, on the same edits as .mp4.
* With a CUDA GPU (unless --no-gpu), the V2VBench set again on the GPU: V2VBench as shipped
  (fp32, one frame at a time) against our `precision=fp16` variant.

Both sides load the same random-weight models from the same folders (tiny CLIP, DINOv2, DINO-v1
ViT, open_clip, GMFlow built here), so the numbers must agree: the max relative difference per
metric is printed. Ratios are peer time / our time (> 1: we are faster), in wall seconds and in
CPU seconds (user + sys of the process and its children; CPU is the fairer figure on a shared box).

Getting the peers (nothing of theirs is committed here):

  V2VBench:  git clone https://github.com/wenhao728/awesome-diffusion-v2v /tmp/peers
             python scripts/bench_peers.py --v2vbench /tmp/peers
     (the folder that holds `v2vbench/` and `third_party/gmflow/`; its deps omegaconf, pandas,
     decord, tqdm are already in our environment)
  VBench:    a separate venv that reuses this environment's torch etc. instead of a 5 GB install:
             python -m venv --without-pip /tmp/vbench-venv
             pip install --no-deps --target /tmp/vbench-pkgs vbench==0.1.5
             printf '/tmp/vbench-pkgs\\n%s\\n' "$(python -c 'import site; print(site.getsitepackages()[0])')" \\
                 > /tmp/vbench-venv/lib/python3.*/site-packages/zz_shared.pth
             python scripts/bench_peers.py --vbench-python /tmp/vbench-venv/bin/python

Shims applied at run time inside the peer processes (they change no arithmetic):
* V2VBench on transformers 5: `CLIPModel.get_text_features` / `get_image_features` return the
  pooled tensor again (they return a ModelOutput now), and its `CLIPProcessor`, `CLIPImageProcessor`,
  `BitImageProcessor` resolve to the PIL backends (the transformers-4 "slow" processors it was
  written against; transformers 5 made the torchvision ones the default).
* VBench: the models are handed to its functions directly instead of through `torch.hub.load`
  (DINO) and OpenAI's `clip.load` (CLIP), which would fetch from the network; the DINO ViT is the
  transformers ViT our metric uses, called for its CLS token, the CLIP is the open_clip model.
  OpenAI's `clip` package is stubbed when it is not installed (only `clip.load` uses it).

Usage: python scripts/bench_peers.py [--v2vbench DIR] [--vbench-python PATH] [--edits 12]
       [--num-frames 8] [--size 256] [--motion] [--repeats 3] [--warmup 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

HOWTO_V2V = ("V2VBench not given: git clone https://github.com/wenhao728/awesome-diffusion-v2v /tmp/peers "
             "and pass --v2vbench /tmp/peers (the folder holding v2vbench/ and third_party/)")
HOWTO_VBENCH = ("VBench not given: make a venv with vbench==0.1.5 (see this script's docstring) and pass "
                "--vbench-python /tmp/vbench-venv/bin/python")

V2V_METRICS = {"clip_text_alignment": "clip_text", "clip_consistency": "clip_consistency",
               "dino_consistency": "dino_consistency", "motion_alignment": "motion_alignment"}
VBENCH_METRICS = ("subject_consistency", "background_consistency", "temporal_flickering")

# --------------------------------------------------------------------------------------------
# the peer sides: run as `python -c CODE CONFIG_JSON`, print {"scores": {metric: {key: value}}}
# --------------------------------------------------------------------------------------------
PEER_V2VBENCH = r'''
import json, os, sys
cfg = json.loads(sys.argv[1])
sys.path.insert(0, cfg["root"])
os.chdir(cfg["root"])
import torch
torch.set_num_threads(cfg["threads"])
from transformers import CLIPModel
from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.clip.processing_clip import CLIPProcessor
from transformers.models.clip.tokenization_clip import CLIPTokenizer

def pooled(fn):  # shim (a): transformers 5 returns a ModelOutput; 4.x returned the projected tensor
    def wrapper(self, *args, **kwargs):
        out = fn(self, *args, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output
    return wrapper
CLIPModel.get_text_features = pooled(CLIPModel.get_text_features)
CLIPModel.get_image_features = pooled(CLIPModel.get_image_features)

class PilCLIPProcessor:  # shim (b): the PIL image processor V2VBench was written against
    @staticmethod
    def from_pretrained(path, **kwargs):
        return CLIPProcessor(image_processor=CLIPImageProcessorPil.from_pretrained(path),
                             tokenizer=CLIPTokenizer.from_pretrained(path))

import v2vbench
import v2vbench.clip_consistency, v2vbench.clip_text_alignment, v2vbench.dino_consistency
v2vbench.clip_text_alignment.CLIPProcessor = PilCLIPProcessor
v2vbench.clip_consistency.CLIPImageProcessor = CLIPImageProcessorPil
v2vbench.dino_consistency.BitImageProcessor = BitImageProcessorPil
from pathlib import Path
kwargs = {"clip_text_alignment": {"pretrained_model_name": cfg["clip"]},
          "clip_consistency": {"pretrained_model_name": cfg["clip"]},
          "dino_consistency": {"pretrained_model_name": cfg["dino"]},
          "motion_alignment": {"pretrained_checkpoint": cfg["gmflow"]}}
wrapper = v2vbench.EvaluatorWrapper(device=torch.device(cfg.get("device", "cpu")), metrics=cfg["metrics"])
results = wrapper.evaluate(edit_video=Path(cfg["edits"]), reference_video=Path(cfg["sources"]),
                           index_file=Path(cfg["index"]), save_results=False, save_summary=False,
                           evaluator_kwargs=kwargs)
scores = {m: {f"{v}|{e}": float(s) for v, e, s in zip(r["video_id"], r["edit_id"], r["score"])}
          for m, r in results.items()}
print(json.dumps({"scores": scores}))
'''

PEER_VBENCH = r'''
import json, sys, types
cfg = json.loads(sys.argv[1])
import torch
torch.set_num_threads(cfg["threads"])
try:
    import clip  # noqa: F401  OpenAI's package; only clip.load (not used here) needs it
except ImportError:
    sys.modules["clip"] = types.ModuleType("clip")
from vbench.background_consistency import background_consistency
from vbench.subject_consistency import subject_consistency
from vbench.temporal_flickering import temporal_flickering
import open_clip
from transformers.models.vit.modeling_vit import ViTModel

class DinoCLS(torch.nn.Module):  # what torch.hub's DINO ViT returns: the final-norm CLS token
    def __init__(self, path):
        super().__init__()
        self.vit = ViTModel.from_pretrained(path, local_files_only=True, dtype=torch.float32).eval()
    def forward(self, x):
        return self.vit(pixel_values=x, interpolate_pos_encoding=True).last_hidden_state[:, 0]

videos = cfg["videos"]
scores = {}
if "subject_consistency" in cfg["metrics"]:
    _, per = subject_consistency(DinoCLS(cfg["dino_v1"]), videos, "cpu", False)
    scores["subject_consistency"] = {r["video_path"]: float(r["video_results"]) for r in per}
if "background_consistency" in cfg["metrics"]:
    model = open_clip.create_model("local-dir:" + cfg["open_clip"], device="cpu").eval()
    with torch.no_grad():
        _, per = background_consistency(model, None, videos, "cpu", False)
    scores["background_consistency"] = {r["video_path"]: float(r["video_results"]) for r in per}
if "temporal_flickering" in cfg["metrics"]:
    _, per = temporal_flickering(videos)
    scores["temporal_flickering"] = {r["video_path"]: float(r["video_results"]) for r in per}
print(json.dumps({"scores": scores}))
'''


# the model forwards alone, in one process on the same networks: our call pattern (frames batched
# across samples, one CLIP vision pass shared by clip_text and clip_consistency, one flow pass per
# source video) and the peer's (one frame per call, per metric, source flows per edit). Inputs are
# decoded and preprocessed before any timing; only the forward calls are timed (process CPU time).
PURE_FORWARDS = r"""
import json, statistics, sys, time
cfg = json.loads(sys.argv[1])
sys.path.insert(0, cfg["root"])
import numpy as np, torch
torch.set_num_threads(cfg["threads"])
from bench.media.video_io import read_video
from metrics._embed import (clip_text_embeds, clip_vision_pooler, dino_cls_features, hf_pixels, load_clip_model,
                            load_dino_model, load_image_processor, load_tokenizer, vbench_pixels)
from pathlib import Path
B, edits = cfg["batch_size"], cfg["edits"]
videos = [read_video(e["path"])[0] for e in edits]
sources = {e["source"]: read_video(e["source"])[0] for e in edits if e.get("source")}
def batches(x):
    return [x[i:i + B] for i in range(0, len(x), B)]
def timed(fn):
    t = time.process_time(); fn(); return time.process_time() - t
patterns = {}
with torch.inference_mode():
    if cfg["set"] == "v2v":
        clip, dino = load_clip_model(Path(cfg["clip"])), load_dino_model(Path(cfg["dino"]))
        tok = load_tokenizer(Path(cfg["clip"]))
        cpx = [hf_pixels(load_image_processor(Path(cfg["clip"])), list(v)) for v in videos]
        dpx = [hf_pixels(load_image_processor(Path(cfg["dino"])), list(v)) for v in videos]
        prompts = [e["prompt"] for e in edits]
        flow = None
        if cfg.get("motion"):
            from metrics.flow import create_flow_model
            flow, flow1 = create_flow_model("gmflow", batch_size=B), create_flow_model("gmflow", batch_size=1)
        def ours(per_video=False):
            for chunk in (cpx if per_video else batches(torch.cat(cpx))):
                clip.visual_projection(clip_vision_pooler(clip, chunk))
            for p in sorted(set(prompts)):
                clip_text_embeds(clip, tok, [p], "cpu")
            for chunk in (dpx if per_video else batches(torch.cat(dpx))):
                dino_cls_features(dino, chunk)
            if flow is not None:
                for s in sources.values():
                    flow.consecutive(s)
                for v in videos:
                    flow.consecutive(v)
        def peer():
            for k, e in enumerate(edits):
                clip_text_embeds(clip, tok, [prompts[k]], "cpu")
                for f in cpx[k].split(1):
                    clip.visual_projection(clip_vision_pooler(clip, f))  # clip_text_alignment
                for f in cpx[k].split(1):
                    clip_vision_pooler(clip, f)  # clip_consistency (its own CLIPVisionModel)
                for f in dpx[k].split(1):
                    dino_cls_features(dino, f)
                if flow is not None:
                    flow1.consecutive(videos[k]), flow1.consecutive(sources[e["source"]])
    else:
        import open_clip
        dino = load_dino_model(Path(cfg["dino_v1"]))
        oc = open_clip.create_model("local-dir:" + cfg["open_clip"], device="cpu").eval()
        dpx = [vbench_pixels(v, 224, "dino") for v in videos]
        cpx = [vbench_pixels(v, 224, "clip") for v in videos]
        def ours(per_video=False):
            for chunk in (dpx if per_video else batches(torch.cat(dpx))):
                dino_cls_features(dino, chunk)
            for chunk in (cpx if per_video else batches(torch.cat(cpx))):
                oc.encode_image(chunk)
        def peer():
            for k in range(len(edits)):
                for f in dpx[k].split(1):
                    dino_cls_features(dino, f)  # subject_consistency: one frame at a time
                oc.encode_image(cpx[k])  # background_consistency: the whole clip at once
    setup = time.process_time()  # start-up, imports, loads, decoding, preprocessing: a bare script's fixed cost
    ours(), peer()  # warm-up (allocator, lazy init)
    runs = {"ours": [], "peer": [], "ours_per_video": []}  # per video: one model batch per clip (no cross-sample batching)
    for _ in range(cfg["repeats"]):
        runs["ours"].append(timed(ours)), runs["peer"].append(timed(peer))
        runs["ours_per_video"].append(timed(lambda: ours(per_video=True)))
print(json.dumps({k: statistics.median(v) for k, v in runs.items()} | {"runs": runs, "setup": setup}))
"""

# --------------------------------------------------------------------------------------------
# running and timing a side
# --------------------------------------------------------------------------------------------
@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)


def run_timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the process tree, stdout); raises with the stderr tail on failure."""
    out_f, err_f = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out_f, stderr=err_f)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0), err_f.seek(0)
    out, err = out_f.read().decode(errors="replace"), err_f.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (rc {proc.returncode}):\n{err[-3000:]}")
    return wall, ru.ru_utime + ru.ru_stime, out


def side_env(threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TQDM_DISABLE": "1",
           "PYTHONWARNINGS": "ignore"}
    env.update(extra or {})
    return env


def read_our_scores(results_dir: Path, metrics: list[str]) -> dict[str, dict[str, float]]:
    db = next(results_dir.rglob("results.sqlite"))
    con = sqlite3.connect(db)
    rows = con.execute("SELECT s.metric, e.video_id, e.edit_id, s.value FROM scores s "
                       "JOIN edits e ON e.edit_key = s.edit_key WHERE s.value IS NOT NULL").fetchall()
    con.close()
    out: dict[str, dict[str, float]] = {m: {} for m in metrics}
    for metric, video_id, edit_id, value in rows:
        if metric in out:
            out[metric][f"{video_id}|{edit_id}"] = float(value)
    return out


def ours_cmd(edits: Path, results: Path, metrics: list[str], args: argparse.Namespace, n: int,
             device: str = "cpu", precision: str = "fp32") -> list[str]:
    opts = [] if precision == "fp32" else [x for m in metrics for x in ("--metric-opt", f"{m}.precision={precision}")]
    return [sys.executable, "-m", "bench.cli", "eval", str(edits), "--suite", "mini", "--metrics", ",".join(metrics),
            "--num-frames", str(args.num_frames), "--size", str(args.size), "--device", device,
            "--limit", str(n), "--results-dir", str(results), "--name", "bench", "--offline",
            *(["--batch-size", str(args.batch_size)] if args.batch_size else []), *opts]


def agreement(peer: dict[str, dict[str, float]], ours: dict[str, dict[str, float]],
              names: dict[str, str]) -> list[tuple[str, int, float]]:
    """(our metric, #matched values, max relative difference) per metric."""
    rows = []
    for peer_name, our_name in names.items():
        if peer_name not in peer:
            continue
        keys = sorted(set(peer[peer_name]) & set(ours.get(our_name, {})))
        diffs = [abs(peer[peer_name][k] - ours[our_name][k]) / max(abs(peer[peer_name][k]), 1e-12) for k in keys]
        rows.append((our_name, len(keys), max(diffs) if diffs else float("nan")))
    return rows


def print_table(title: str, peer_name: str, peer: Timing, ours: Timing, agree: list[tuple[str, int, float]],
                forwards: dict | None = None, scoring: Timing | None = None) -> None:
    pw, pc = statistics.median(peer.wall), statistics.median(peer.cpu)
    ow, oc = statistics.median(ours.wall), statistics.median(ours.cpu)
    print(f"\n{title}")
    print(f"| side | wall s (median) | CPU s (median) |\n|---|---:|---:|")
    print(f"| {peer_name} | {pw:.1f} | {pc:.1f} |\n| videditbench eval | {ow:.1f} | {oc:.1f} |")
    print(f"| ratio {peer_name} / ours | {pw / ow:.2f}x | {pc / oc:.2f}x |")
    if scoring is not None:
        sw, sc = statistics.median(scoring.wall), statistics.median(scoring.cpu)
        print(f"| videditbench eval --no-export (scores only) | {sw:.1f} | {sc:.1f} |")
        print(f"| ratio {peer_name} / ours, scores only | {pw / sw:.2f}x | {pc / sc:.2f}x |")
    print("agreement (max relative difference over edits): " +
          ", ".join(f"{m} {d:.1e} ({k} edits)" for m, k, d in agree))
    print(f"runs: wall {[round(x, 1) for x in peer.wall]} vs {[round(x, 1) for x in ours.wall]}; "
          f"CPU {[round(x, 1) for x in peer.cpu]} vs {[round(x, 1) for x in ours.cpu]}")
    if forwards:
        fo, fp = forwards["ours"], forwards["peer"]
        limit = fp / fo
        print(f"model forwards alone (same networks, one process, CPU s, median of {len(forwards['runs']['ours'])}): "
              f"our call pattern {fo:.2f}, {peer_name}'s {fp:.2f} -> forward-work ratio {limit:.2f}x; ours with one "
              f"batch per video instead of batches across samples {forwards['ours_per_video']:.2f}")
        bare = forwards["setup"] + fo
        print(f"harness overhead over the forwards of its own call pattern (whole process CPU / forwards - 1): "
              f"ours {oc / fo - 1:+.0%}, {peer_name} {pc / fp - 1:+.0%}; our CPU ratio is "
              f"{(pc / oc) / limit:.0%} of the forward-work ratio")
        print(f"a bare script doing our model work (interpreter, imports, model loads, decoding, preprocessing, "
              f"forwards; no store, no export) takes {bare:.2f} CPU s: the harness adds {oc / bare - 1:+.0%}")


# --------------------------------------------------------------------------------------------
# inputs and models
# --------------------------------------------------------------------------------------------
# Random-weight model shapes. "tiny": the test suite's 2-layer models (start-up and fixed costs
# dominate). "small": real compute shapes at a fraction of the size, with CLIP the costlier network as
# CLIP ViT-L/14 is beside DINOv2-base (model forwards dominate, as with real weights). "real": the
# image towers of the real checkpoints (CLIP ViT-L/14, DINOv2-base, DINO ViT-B/16, open_clip ViT-B/32);
# text towers stay tiny (one pass per prompt). Slow on a CPU: use few edits and frames.
MODEL_SHAPES: dict[str, dict[str, dict]] = {
    "tiny": {"clip": {}, "dino": {}, "dino_v1": {"image_size": 224, "patch_size": 16},
             "open_clip": {"image_size": 224, "patch_size": 32}},
    "small": {"clip": {"image_size": 224, "patch_size": 16, "vision_width": 384, "vision_layers": 6},
              "dino": {"image_size": 224, "patch_size": 14, "pos_grid": 518, "width": 256, "layers": 4},
              "dino_v1": {"image_size": 224, "patch_size": 16, "width": 384, "layers": 6},
              "open_clip": {"image_size": 224, "patch_size": 32, "width": 384, "layers": 6}},
    "real": {"clip": {"image_size": 224, "patch_size": 14, "vision_width": 1024, "vision_layers": 24},
             "dino": {"image_size": 224, "patch_size": 14, "pos_grid": 518, "width": 768, "layers": 12},
             "dino_v1": {"image_size": 224, "patch_size": 16, "width": 768, "layers": 12},
             "open_clip": {"image_size": 224, "patch_size": 32, "width": 768, "layers": 12}},
}


def build_models(root: Path, shape: str = "tiny") -> dict[str, Path]:
    import torch
    import tiny_models as tm

    from metrics.flow.ptlflow_models import ptlflow_model_class

    kw = MODEL_SHAPES[shape]
    out = {"clip": tm.build_tiny_clip(root / "clip", **kw["clip"]), "dino": tm.build_tiny_dinov2(root / "dinov2", **kw["dino"]),
           "dino_v1": tm.build_tiny_dino_vit(root / "dino_v1", **kw["dino_v1"]),
           "open_clip": tm.build_tiny_open_clip(root / "open_clip", **kw["open_clip"])}
    torch.manual_seed(0)
    gm = ptlflow_model_class("gmflow")()
    torch.save({"model": gm.state_dict()}, root / "gmflow-random.pth")  # the original repo's format, read by both
    out["gmflow"] = root / "gmflow-random.pth"
    return out


def our_weights_env(models: dict[str, Path]) -> dict[str, str]:
    return {"VIDEDITBENCH_WEIGHT_CLIP_VIT_LARGE_PATCH14": str(models["clip"]),
            "VIDEDITBENCH_WEIGHT_DINOV2_BASE": str(models["dino"]),
            "VIDEDITBENCH_WEIGHT_GMFLOW_SINTEL": str(models["gmflow"]),
            "VIDEDITBENCH_WEIGHT_DINO_VITB16": str(models["dino_v1"]),
            "VIDEDITBENCH_WEIGHT_CLIP_VIT_BASE_PATCH32": str(models["open_clip"])}


def fake_edit(frames, k: int):
    """A deterministic stand-in for an edit: a colour shift, a drift and noise (different per edit)."""
    import numpy as np

    rng = np.random.default_rng(k)
    x = frames.astype(np.int16)
    x = x + rng.integers(-40, 40, size=3)[None, None, None, :]
    x = np.roll(x, shift=(k % 3) - 1, axis=2)
    x = x + rng.integers(-12, 12, size=x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def build_inputs(root: Path, n: int, num_frames: int, size: int, mp4: bool) -> dict:
    """The first `n` samples of the mini suite: source frames and fake edits, in both layouts."""
    import cv2
    import numpy as np
    import yaml

    from bench.suites import load_suite

    suite = load_suite("mini", num_frames=num_frames, size=size)
    samples = suite.samples[:n]
    src_dir, ours_dir, v2v_dir = root / "sources", root / "ours", root / "v2v"
    index: dict[str, list[str]] = {}
    videos: list[str] = []
    edits: list[dict[str, str]] = []  # what the forward-only timing reads: edit, its source, its prompt
    key_of: dict[str, str] = {}
    for k, s in enumerate(samples):
        frames = suite.load(s).video.frames
        vsrc = src_dir / s.video_id
        if not vsrc.exists():
            vsrc.mkdir(parents=True)
            for t, f in enumerate(frames):
                cv2.imwrite(str(vsrc / f"{t:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        edited = fake_edit(frames, k)
        idx = len(index.setdefault(s.video_id, []))
        index[s.video_id].append(s.target_prompt or s.source_prompt or "")
        if mp4:
            (ours_dir / s.video_id).mkdir(parents=True, exist_ok=True)
            path = ours_dir / s.video_id / f"{s.edit_id}.mp4"
            w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 8.0, (frames.shape[2], frames.shape[1]))
            for f in edited:
                w.write(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR))
            w.release()
            videos.append(str(path))
            key_of[str(path)] = f"{s.video_id}|{s.edit_id}"
            edits.append({"path": str(path), "source": str(vsrc), "prompt": index[s.video_id][-1]})
        else:
            d = ours_dir / s.video_id / s.edit_id
            d.mkdir(parents=True)
            for t, f in enumerate(edited):
                cv2.imwrite(str(d / f"{t:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            (v2v_dir / s.video_id).mkdir(parents=True, exist_ok=True)
            (v2v_dir / s.video_id / str(idx)).symlink_to(d, target_is_directory=True)
            key_of[f"{s.video_id}|{idx}"] = f"{s.video_id}|{s.edit_id}"
            edits.append({"path": str(d), "source": str(vsrc), "prompt": index[s.video_id][-1]})
    data = {"data": [{"video_id": v, "edit": [{"prompt": p} for p in prompts]} for v, prompts in index.items()]}
    (root / "index.yaml").write_text(yaml.safe_dump(data))
    return {"sources": src_dir, "ours": ours_dir, "v2v": v2v_dir, "index": root / "index.yaml", "videos": videos, "edits": edits,
            "key_of": key_of, "n": len(samples), "n_sources": len(index)}


# --------------------------------------------------------------------------------------------
def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def compare(title: str, peer_name: str, peer_cmd: list[str], peer_cwd: Path, peer_env: dict[str, str],
            our_metrics: list[str], inputs: dict, work: Path, args: argparse.Namespace, models: dict[str, Path],
            names: dict[str, str], device: str = "cpu", precision: str = "fp32", pure: dict | None = None) -> None:
    peer, ours, scoring = Timing(), Timing(), Timing()
    env_ours = side_env(args.threads, {**our_weights_env(models), "PYTHONPATH": str(ROOT)})
    for r in range(-args.warmup, args.repeats):  # interleaved: machine noise hits both sides alike
        wall, cpu, out = run_timed(peer_cmd, peer_env, peer_cwd)
        if r >= 0:  # warm-up rounds (cold file cache, .pyc compilation) are not counted
            peer.wall.append(wall), peer.cpu.append(cpu)
        raw = json.loads(out.strip().splitlines()[-1])["scores"]
        peer.scores = {m: {inputs["key_of"].get(k, k): v for k, v in vals.items()} for m, vals in raw.items()}
        res = work / f"results-{title[:8].strip()}-{device}-{r + args.warmup}"
        wall, cpu, _ = run_timed(ours_cmd(inputs["ours"], res, our_metrics, args, inputs["n"], device, precision),
                                 env_ours, ROOT)
        if r >= 0:
            ours.wall.append(wall), ours.cpu.append(cpu)
        ours.scores = read_our_scores(res, our_metrics)
        if not args.no_scoring_only:  # the scores into the store only, as the peers do (no leaderboard, no report)
            wall, cpu, _ = run_timed(ours_cmd(inputs["ours"], res.with_name(res.name + "-noexport"), our_metrics, args,
                                              inputs["n"], device, precision) + ["--no-export"], env_ours, ROOT)
            if r >= 0:
                scoring.wall.append(wall), scoring.cpu.append(cpu)
    forwards = None
    if pure is not None:
        cfg = {"root": str(ROOT), "threads": args.threads, "batch_size": args.batch_size or 16,
               "repeats": args.repeats, "edits": inputs["edits"], **pure}
        forwards = json.loads(run_timed([sys.executable, "-c", PURE_FORWARDS, json.dumps(cfg)], env_ours, ROOT)[2]
                              .strip().splitlines()[-1])
    print_table(title, peer_name, peer, ours, agreement(peer.scores, ours.scores, names), forwards,
                scoring if scoring.cpu else None)
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--v2vbench", type=Path, help="folder holding V2VBench's v2vbench/ and third_party/")
    ap.add_argument("--vbench-python", type=Path, help="python of a venv where `import vbench` (0.1.5) works")
    ap.add_argument("--edits", type=int, default=12)
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--motion", action="store_true", help="add motion_alignment (GMFlow) to the V2VBench set")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds of both sides first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-gpu", action="store_true", help="skip the CUDA comparison even when a GPU is present")
    ap.add_argument("--models", choices=sorted(MODEL_SHAPES), default="tiny",
                    help="random-weight model shapes: tiny (fixed costs dominate), small (forwards dominate) or real "
                         "(the real checkpoints' image towers)")
    ap.add_argument("--batch-size", type=int, default=None, help="our --batch-size (default: ours per device)")
    ap.add_argument("--no-scoring-only", action="store_true",
                    help="do not also time `eval --no-export` (our scores into the store, no leaderboard or report)")
    ap.add_argument("--only", choices=["v2vbench", "vbench"], help="run one of the two comparisons")
    args = ap.parse_args()

    have_v2v = bool(args.v2vbench and (args.v2vbench / "v2vbench" / "base_evaluator.py").is_file())
    have_vbench = bool(args.vbench_python and args.vbench_python.exists())
    if not have_v2v:
        print(HOWTO_V2V)
    if not have_vbench:
        print(HOWTO_VBENCH)
    if not (have_v2v or have_vbench):
        return
    import platform

    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"{args.threads} threads per side; {args.edits} edits, {args.num_frames} frames at {args.size}px; "
          f"medians of {args.repeats} interleaved runs after {args.warmup} warm-up round(s); {args.models} "
          f"random-weight models on both sides", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as d:
        work = Path(d)
        models = build_models(work / "models", args.models)
        if have_v2v and args.only != "vbench":
            inputs = build_inputs(work / "v2v_inputs", args.edits, args.num_frames, args.size, mp4=False)
            peer_metrics = ["clip_text_alignment", "clip_consistency", "dino_consistency"] + (
                ["motion_alignment"] if args.motion else [])
            cfg = {"root": str(args.v2vbench.resolve()), "threads": args.threads, "metrics": peer_metrics,
                   "clip": str(models["clip"]), "dino": str(models["dino"]), "gmflow": str(models["gmflow"]),
                   "edits": str(inputs["v2v"]), "sources": str(inputs["sources"]), "index": str(inputs["index"])}
            title = (f"V2VBench set ({', '.join(V2V_METRICS[m] for m in peer_metrics)}; {inputs['n']} edits of "
                     f"{inputs['n_sources']} sources)")
            compare(title, "V2VBench", [sys.executable, "-c", PEER_V2VBENCH, json.dumps(cfg)], args.v2vbench,
                    side_env(args.threads), [V2V_METRICS[m] for m in peer_metrics], inputs, work, args, models,
                    {m: V2V_METRICS[m] for m in peer_metrics},
                    pure={"set": "v2v", "clip": str(models["clip"]), "dino": str(models["dino"]),
                          "motion": args.motion})
            if cuda_available() and not args.no_gpu:  # V2VBench fp32 frame by frame vs our fp16 variant
                gpu_cfg = json.dumps({**cfg, "device": "cuda"})
                compare(f"{title} on CUDA, ours with precision=fp16 (values differ by fp16 rounding)", "V2VBench",
                        [sys.executable, "-c", PEER_V2VBENCH, gpu_cfg], args.v2vbench, side_env(args.threads),
                        [V2V_METRICS[m] for m in peer_metrics], inputs, work, args, models,
                        {m: V2V_METRICS[m] for m in peer_metrics}, device="cuda", precision="fp16")
        if have_vbench and args.only != "v2vbench":
            inputs = build_inputs(work / "vbench_inputs", args.edits, args.num_frames, args.size, mp4=True)
            cfg = {"threads": args.threads, "metrics": list(VBENCH_METRICS), "videos": inputs["videos"],
                   "dino_v1": str(models["dino_v1"]), "open_clip": str(models["open_clip"])}
            compare(f"VBench set ({', '.join(VBENCH_METRICS)}; {inputs['n']} edits as .mp4)", "VBench 0.1.5",
                    [str(args.vbench_python), "-c", PEER_VBENCH, json.dumps(cfg)], work, side_env(args.threads),
                    list(VBENCH_METRICS), inputs, work, args, models, {m: m for m in VBENCH_METRICS},
                    pure={"set": "vbench", "dino_v1": str(models["dino_v1"]), "open_clip": str(models["open_clip"])})


if __name__ == "__main__":
    main()
