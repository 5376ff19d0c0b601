"""The browser view in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright; Playwright's
own browsers are never downloaded) opens the page served on 127.0.0.1 by a run of the bundled clip, sees the video
update, moves the band control and sees the table follow, switches the layout, uploads a photo (a frame of the clip)
and sees the result, and checks a screenshot of it all.

Under ``make test`` (DEPTHSTREAM_REQUIRE_BROWSER=1) a missing browser or Playwright fails these tests instead of
skipping them; ``.ci/run`` installs the browser. ``DEPTHSTREAM_WEB_SCREENSHOT=docs/web-view.png`` also writes the
screenshot there, 1000 pixels wide (the README's picture).
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import DEMO
from served import ServedRun, wait_for

CHROMIUM = Path(os.environ.get("DEPTHSTREAM_CHROMIUM", "/usr/bin/chromium"))
REQUIRED = bool(os.environ.get("DEPTHSTREAM_REQUIRE_BROWSER"))  # set by make test
SCREENSHOT_TO = os.environ.get("DEPTHSTREAM_WEB_SCREENSHOT")
WAIT_MS = 30_000

# A small picture of the video element's pixels (drawn into a canvas): changes when a new frame is shown.
VIDEO_PIXELS = """() => {
  const img = document.getElementById('video');
  if (!img.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = 96; c.height = 72;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0, 96, 72);
  return Array.from(g.getImageData(0, 0, 96, 72).data);
}"""
ROW_DISTANCES = """() => Array.from(document.querySelectorAll('#objects tbody tr'))
  .map((tr) => tr.dataset.distance).filter((d) => d !== '').map(Number)"""


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[test]'"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: apt-get install chromium (.ci/run installs it)"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"the browser tests must run under make test: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield b
        finally:
            b.close()


def _demo_frame(path: Path, index: int = 60) -> Path:
    with av.open(str(DEMO)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == index:
                cv2.imwrite(str(path), frame.to_ndarray(format="bgr24"))
                return path
    raise ValueError(f"the clip has fewer than {index + 1} frames")


def _video_updates(page) -> None:
    first = wait_for(lambda: page.evaluate(VIDEO_PIXELS), 30, what="the video element showing a frame")
    assert np.asarray(first).reshape(72, 96, 4)[..., :3].std() > 10  # a picture, not a blank
    wait_for(lambda: page.evaluate(VIDEO_PIXELS) != first, 15, what="the video element showing a newer frame")


@pytest.mark.timeout(240)
def test_the_page_shows_the_live_run_follows_the_band_and_tries_a_photo(browser, tmp_path):
    with ServedRun(closer_than=30.0) as run:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        page.goto(run.url + "/")
        _video_updates(page)

        # The table: objects in the band, closer than 30 m, some of them farther than 20 m (people walk at 16-58 m).
        wide = wait_for(lambda: (lambda d: d if d and max(d) >= 20 else None)(page.evaluate(ROW_DISTANCES)), 60,
                        what="a table row farther than 20 m")
        assert all(d < 30 for d in wide)
        assert page.inner_text("#band-text") == "closer than 30 m"
        assert page.inner_text("#depth-source") == "ground-plane" and page.inner_text("#depth-kind") == "geometric"

        # Move the band control: the slider to 20 m. The next frames are processed with it and the table follows.
        page.locator("#closer").fill("20")
        page.wait_for_function("() => document.getElementById('band-text').textContent === 'closer than 20 m'")
        near = wait_for(lambda: page.evaluate(ROW_DISTANCES), 30, what="table rows in the new band")
        assert all(d < 20 for d in near), near
        assert page.inner_text("#control-error") == ""

        # The layout switch: the running pipeline rebuilds its stage graph between two frames.
        page.check("#layout-serial")
        page.wait_for_function("() => document.getElementById('layout-text').textContent === 'serial'")
        _video_updates(page)

        # Back to 30 m, then try a photo: a frame of the bundled clip, in the band the page shows.
        page.locator("#closer").fill("30")
        page.wait_for_function("() => document.getElementById('band-text').textContent === 'closer than 30 m'")
        page.set_input_files("#upload-file", str(_demo_frame(tmp_path / "walkway.png")))
        page.click("#upload-go")
        page.wait_for_function("() => { const m = document.getElementById('upload-media');"
                               " return m && m.complete && m.naturalWidth === 768; }", timeout=90_000)
        rows = page.locator("#upload-objects tbody tr")
        assert rows.count() > 0 and "person" in rows.first.inner_text()
        assert page.inner_text("#upload-error") == ""
        # A picture file is not the clip: the clip's camera profile is not applied to it, so it gets the depth source
        # python -m stream would give it (the bundled network), its distances shown as estimates (~) out of its domain.
        result = page.inner_text("#upload-result")
        assert "walkway.png: 1 frame(s), depth from fastdepth-224-nyu (metric), closer than 30 m" in result, result
        assert "~" in rows.first.inner_text()

        shot = tmp_path / "web-view.png"
        page.screenshot(path=str(shot), full_page=True)
        video_box = page.locator("#video").bounding_box()
        page.close()
    image = cv2.imread(str(shot))
    assert image is not None and image.std() > 20  # not blank
    x, y, w, h = (int(round(v)) for v in (video_box["x"], video_box["y"], video_box["width"], video_box["height"]))
    assert w >= 600 and h >= 400, video_box
    video = image[y:y + h, x:x + w]
    assert video.std() > 30 and video.mean() > 40, (video.mean(), video.std())  # the video area shows the scene
    if SCREENSHOT_TO:  # the README's picture: scaled to 1000 pixels wide, PNG
        small = cv2.resize(image, (1000, round(image.shape[0] * 1000 / image.shape[1])), interpolation=cv2.INTER_AREA)
        assert cv2.imwrite(SCREENSHOT_TO, small, [cv2.IMWRITE_PNG_COMPRESSION, 9])


@pytest.mark.timeout(120)
def test_with_a_token_the_page_carries_it_to_the_video_and_the_api(browser):
    token = "a-long-token-for-the-browser-test"
    with ServedRun(token=token) as run:
        page = browser.new_page()
        page.set_default_timeout(WAIT_MS)
        denied = page.goto(run.url + "/")
        assert denied.status == 401
        page.goto(run.url + f"/?token={token}")
        _video_updates(page)
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('running')")
        page.close()
