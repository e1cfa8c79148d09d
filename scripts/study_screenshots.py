#!/usr/bin/env python3
"""Screenshots of a human study: the rater page and the study section of the report.

Usage: python scripts/study_screenshots.py results/<run> OUT_DIR [--pairs-per-rater 6 --raters 3]

Works on a copy of the run's store (OUT_DIR/run/results.sqlite; the frames are read where they are),
so the run itself is left untouched. It creates a study, serves it on a free loopback port, opens a
rater link in headless Chromium (selenium + Debian's chromium-driver), saves OUT_DIR/rater.png while
the clips play, then answers every pair of every rater with seeded random choices (demo votes, not
people), builds the report and saves its study section as OUT_DIR/report_study.png.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _driver(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
              "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
              "--disable-component-update", "--hide-scrollbars", f"--window-size={width},{height}"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--pairs-per-rater", type=int, default=6)
    ap.add_argument("--raters", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from selenium.webdriver.common.by import By  # noqa: F401  (used below)

    from bench.cli.run import _export
    from bench.study.builder import create_study
    from bench.study.design import StudyDesign
    from bench.study.server import running
    from bench.study.storage import StudyStore

    src = args.run_dir / "results.sqlite"
    if not src.is_file():
        print(f"error: {src} not found: give a run folder made by `videditbench run`", file=sys.stderr)
        return 2
    run = args.out_dir / "run"
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    shutil.copy2(src, run / "results.sqlite")
    info = create_study(run, "demo", StudyDesign(methods=[], pairs_per_rater=args.pairs_per_rater,
                                                 raters=args.raters, attention_checks=1, seed=args.seed))
    rng = np.random.default_rng(args.seed)
    with StudyStore(run) as s:
        questions = list(s.study("demo")["config"]["questions"])
        pairs = {p["pair_id"]: p for _, t in info["raters"] for p in s.pairs(t)}
    d = _driver(1400, 1000)
    try:
        with running(run, "demo") as url:
            for n, (rater, token) in enumerate(info["raters"]):
                d.get(f"{url}/r/{token}")
                for _ in range(100):
                    if d.execute_script("return document.body.dataset.pair"):
                        break
                    time.sleep(0.1)
                if n == 0:
                    time.sleep(1.5)  # let the clips play a little
                    d.save_screenshot(str(args.out_dir / "rater.png"))
                while not d.find_element(By.ID, "finished").is_displayed():
                    pid = d.execute_script("return document.body.dataset.pair")
                    for q in questions:
                        d.find_element(By.ID, f"q-{q}-{demo_choice(pairs[pid], rng)}").click()
                    d.find_element(By.ID, "submit").click()
                    for _ in range(100):
                        if d.execute_script("return document.body.dataset.pair") != pid or \
                                d.find_element(By.ID, "finished").is_displayed():
                            break
                        time.sleep(0.05)
        paths = _export(run)
        d.get(Path(paths["report"]).resolve().as_uri())
        rect = d.execute_script("const r = document.getElementById('study').getBoundingClientRect();"
                                "return [r.left + scrollX, r.top + scrollY, r.width, r.height];")
        shot = d.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": rect[0], "y": rect[1], "width": rect[2], "height": rect[3], "scale": 1}})
        (args.out_dir / "report_study.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        d.quit()
    print(f"rater page: {args.out_dir / 'rater.png'}\nreport study section: {args.out_dir / 'report_study.png'}")
    return 0


def demo_choice(pair: dict, rng: np.random.Generator) -> str:
    """Demo answers: attention checks answered for the source; otherwise random, leaning to the
    method whose name sorts first (so the demo ranking is not flat). Not human data."""
    from bench.study.design import BROKEN

    if pair["kind"] == "attention":
        return "right" if pair["left_method"] == BROKEN else "left"
    lean = "left" if pair["left_method"] < pair["right_method"] else "right"
    other = "right" if lean == "left" else "left"
    return str(rng.choice([lean, other, "tie"], p=[0.6, 0.28, 0.12]))


if __name__ == "__main__":
    raise SystemExit(main())
