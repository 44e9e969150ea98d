"""The image-search web page in headless Chromium (Debian's chromium package, driven by Playwright): a person
picks a catalogue image or uploads one and sees the similar images as a grid of thumbnails. The page talks to a
real server (uvicorn on a free loopback port) over the tiny world trained once for this module; a screenshot
of each state is written to test-output/ (its path is in the test's report)."""

import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from common.images.files import encode_png
from common.serving.app import create_app
from systems.imagesearch.pipeline import raw_dir

SYSTEM = "imagesearch"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a container, without the sandbox; no background traffic to hosts this machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-output"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(url: str) -> bool:
    """Whether the server answers and serves image search; a refused connection is "not yet"."""
    try:
        return httpx.get(f"{url}/healthz").json()["systems"][SYSTEM] == "ready"
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server(trained):
    port = _free_port()
    config = uvicorn.Config(create_app([SYSTEM], "tiny"), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _ready(url):
        if time.monotonic() > deadline:
            pytest.fail("the server did not become ready in 60 s")
        time.sleep(0.2)
    yield url
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server}/imagesearch/")
        yield page
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def _screenshot(page, name: str, record_property) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"imagesearch-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    record_property(f"screenshot_{name}", str(path))
    print(f"screenshot: {path}")


def _loaded_images(page, selector: str) -> int:
    """How many of the matching <img> elements the browser decoded (a broken thumbnail has no width)."""
    return page.eval_on_selector_all(selector, "images => images.filter(i => i.complete && i.naturalWidth > 0).length")


def test_picking_a_catalogue_image_shows_a_grid_of_similar_images(page, record_property):
    page.wait_for_selector("#picks figure img")
    assert page.locator("#picks figure").count() == 12
    picked = page.locator("#picks figure").first.get_attribute("data-image-id")
    page.locator("#picks figure img").first.click()
    page.wait_for_selector("#results figure.result")
    page.wait_for_function(
        "document.querySelectorAll('#results img').length > 0 && "
        "[...document.querySelectorAll('#results img')].every(i => i.complete)"
    )
    results = page.locator("#results figure.result")
    assert 0 < results.count() <= 20
    assert picked not in [results.nth(i).get_attribute("data-image-id") for i in range(results.count())]
    assert _loaded_images(page, "#results img") == results.count()
    assert "nearest_neighbours" in page.locator("#status").inner_text()
    _screenshot(page, "picked", record_property)


def test_uploading_an_image_searches_by_it(page, tmp_path, record_property):
    import numpy as np

    photo = tmp_path / "photo.png"
    photo.write_bytes(encode_png(np.load(raw_dir() / "pixels.npy", mmap_mode="r")[3]))
    page.set_input_files("#file", str(photo))
    page.wait_for_function(
        "document.querySelector('#query img') && document.querySelector('#query img').src.startsWith('blob:')"
    )
    page.wait_for_function("document.querySelector('#status').textContent.includes('decode')")
    assert page.locator("#results figure.result").count() > 0
    _screenshot(page, "uploaded", record_property)


def test_uploading_a_file_that_is_no_image_shows_the_reason(page, tmp_path, record_property):
    text = tmp_path / "notes.txt"
    text.write_text("not an image at all")
    page.set_input_files("#file", str(text))
    page.wait_for_selector("#status.error")
    assert "not an image" in page.locator("#status").inner_text()
    assert page.locator("#results figure").count() == 0
    _screenshot(page, "refused", record_property)
