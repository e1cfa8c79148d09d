"""A real browser (headless Debian Chromium via selenium) takes a study end to end: opens a rater
link, the three clips play in step, it answers every pair (one answer "not sure"), and the votes are
read back from the run's store. CI installs chromium + chromium-driver (.ci/run); elsewhere the test
skips only when they are genuinely absent, and it fails instead when CI=true."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from conftest import import_or_skip, missing_requirement
from study_fixtures import XSS_PROMPT, make_study_run

import_or_skip("fastapi")
import_or_skip("uvicorn")


def _chromium() -> tuple[str | None, str | None]:
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None)
    return browser, driver


def _need_browser():
    browser, driver = _chromium()
    missing = [n for n, p in (("chromium", browser), ("chromium-driver", driver)) if p is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        msg = f"real-browser study test needs {', '.join(missing)} (apt-get install -y chromium chromium-driver)"
        missing_requirement(msg)
    return browser, driver


@pytest.fixture
def driver():
    browser, chromedriver = _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
              "--autoplay-policy=no-user-gesture-required", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--window-size=1400,1000"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(chromedriver), options=opts)
    d.set_page_load_timeout(30)
    yield d
    d.quit()


def _wait(cond, timeout: float = 20.0, what: str = "condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_rater_takes_the_study_in_a_real_browser(tmp_path, driver):
    from selenium.webdriver.common.by import By

    from bench.study.builder import create_study
    from bench.study.design import StudyDesign
    from bench.study.server import running
    from bench.study.storage import StudyStore

    run = make_study_run(tmp_path)
    info = create_study(run, "browser", StudyDesign(methods=[], pairs_per_rater=3, raters=2, attention_checks=1, seed=3))
    rater, token = info["raters"][0]
    with StudyStore(run) as s:
        pairs = s.pairs(token)
    with running(run, "browser") as url:
        driver.get(f"{url}/r/{token}")
        assert "Study browser" in driver.title
        _wait(lambda: driver.execute_script("return document.body.dataset.pair"), what="the first pair")
        # the clips are decodable VP9 and actually advance
        assert driver.execute_script("return document.createElement('video').canPlayType('video/webm; codecs=\"vp9\"')")
        times = "return [...document.querySelectorAll('video')].map(v => v.currentTime)"
        t0 = driver.execute_script(times)
        _wait(lambda: all(t > a + 0.2 for t, a in zip(driver.execute_script(times), t0)), what="videos to play")
        states = driver.execute_script("return [...document.querySelectorAll('video')].map(v => [v.readyState, v.videoWidth, v.loop, v.paused])")
        assert all(rs >= 2 and w == 64 and loop and not paused for rs, w, loop, paused in states), states
        # the clips are 1 s long (8 frames at 8 fps): after 1.5 s they have looped, and they stay in step
        time.sleep(1.5)
        now = driver.execute_script(times)
        assert all(0 <= t <= 1.05 for t in now) and max(now) - min(now) < 0.35, now
        answered: list[tuple[str, dict[str, str]]] = []
        questions = list(StudyDesign(methods=[]).questions)
        for k in range(len(pairs)):
            pid = _wait(lambda: driver.execute_script("return document.body.dataset.pair"), what="a pair")
            progress = driver.find_element(By.ID, "progress-text").text
            assert progress == f"{k} / {len(pairs)} pairs done"
            if any(p["pair_id"] == pid and p["sample_uid"].endswith("vid0/e0") for p in pairs):
                shown = driver.find_element(By.ID, "prompt").text
                assert shown == XSS_PROMPT  # the <script> is shown as text…
            choice = {q: ("tie" if k == 0 and i == 1 else ("left" if (k + i) % 2 else "right"))
                      for i, q in enumerate(questions)}
            for q, c in choice.items():
                driver.find_element(By.ID, f"q-{q}-{c}").click()
            driver.find_element(By.ID, "submit").click()
            answered.append((pid, choice))
            if k == 0:  # stop and come back: the link resumes at the first unanswered pair
                _wait(lambda: driver.find_element(By.ID, "progress-text").text.startswith("1 /"), what="the vote")
                driver.get(f"{url}/r/{token}")
                _wait(lambda: driver.execute_script("return document.body.dataset.pair") not in (None, pid),
                      what="the resumed pair")
                assert driver.find_element(By.ID, "progress-text").text == f"1 / {len(pairs)} pairs done"
                continue
            _wait(lambda: driver.execute_script("return document.body.dataset.pair") != pid
                  or driver.find_element(By.ID, "finished").is_displayed(),
                  what=f"the next pair after {k} (page says: {driver.find_element(By.ID, 'status').text!r})")
        assert driver.find_element(By.ID, "finished").is_displayed()
        assert driver.find_element(By.ID, "progress-text").text == f"{len(pairs)} / {len(pairs)} pairs done"
        assert driver.execute_script("return window.__pwned") is None  # …and never ran
        driver.get(f"{url}/r/not-a-valid-token-xyz")
        assert "403" in driver.title
    assert [p["pair_id"] for p in pairs] == [pid for pid, _ in answered]  # shown in the stored order
    with StudyStore(run) as s:
        stored = s.votes_of(token)
        frame = s.votes_frame("browser")
    assert stored == {pid: ans for pid, ans in answered}
    assert (frame["choice"] == "tie").sum() == 1 and len(frame) == len(pairs) * len(questions)
