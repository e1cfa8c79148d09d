#!/usr/bin/env python3
"""Render an HTML report in headless Chromium and save a PNG screenshot.

Usage: python scripts/screenshot_report.py results/<run>/report/report.html report.png [--width 1400 --height 3000]

Needs Chromium (Debian: `apt-get install -y chromium`, found as chromium / chromium-browser /
google-chrome on PATH, or set CHROMIUM=/path/to/binary). Nothing is fetched: networking,
component updates and sync are switched off, and a fresh temporary profile is used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def screenshot(report: Path, png: Path, width: int = 1400, height: int = 3000, timeout: float = 120.0) -> Path:
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError(
            "Chromium not found (looked for " + ", ".join(CANDIDATES) + " and $CHROMIUM). "
            "Install it with: apt-get update && apt-get install -y chromium"
        )
    report = report.resolve()
    if not report.is_file():
        raise FileNotFoundError(f"report not found: {report}")
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
            f"--window-size={width},{height}", report.as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium exited with {proc.returncode} and wrote no screenshot:\n{proc.stderr[-2000:]}")
    return png


_PROBE = """
<script>
window.addEventListener('load', () => {
  const box = el => ({scroll: el.scrollWidth, client: el.clientWidth});
  const facts = {
    page: box(document.documentElement),
    tables: [...document.querySelectorAll('.lb')].map(box),
    cut_messages: [...document.querySelectorAll('td.msg')].filter(td => td.scrollWidth > td.clientWidth + 1).length,
    images: [...document.querySelectorAll('.plots img')].map(im => ({src: im.getAttribute('src'),
      natural: im.naturalWidth, shown: im.clientWidth})),
  };
  const pre = document.createElement('pre');
  pre.id = 'layout-probe';
  pre.textContent = JSON.stringify(facts);
  document.body.appendChild(pre);
});
</script>
"""


def measure_layout(report: Path, width: int = 1400, height: int = 1000, timeout: float = 120.0) -> dict:
    """Layout facts of the report rendered at `width` px: page and leaderboard-table scroll widths,
    status messages cut off, plot images' natural vs shown widths (for tests)."""
    import json
    import re

    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("Chromium not found; install it with: apt-get update && apt-get install -y chromium")
    report = report.resolve()
    probe = report.with_name(f".layout-probe-{os.getpid()}.html")
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                   "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    finally:
        probe.unlink(missing_ok=True)
    m = re.search(r'<pre id="layout-probe">(.*?)</pre>', proc.stdout, flags=re.S)
    if not m:
        raise RuntimeError(f"chromium printed no layout facts (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    import html as _html

    return json.loads(_html.unescape(m.group(1)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="path of report.html")
    ap.add_argument("png", type=Path, help="where to write the screenshot (PNG)")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=3000)
    args = ap.parse_args(argv)
    try:
        out = screenshot(args.report, args.png, args.width, args.height)
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"screenshot written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
