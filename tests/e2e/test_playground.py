"""The playground in a real browser: Debian's Chromium driven by Playwright against a live
server. Screenshots of the main states go to the test's output directory (printed)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from support import LiveServer, encode_image, picture

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
VIDEO_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    live = LiveServer(home=tmp_path_factory.mktemp("playground"), env={"REELFORGE_WORKERS": "2"})
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("playground-screenshots")
    print(f"playground screenshots in {folder}")
    return folder


class Console:
    """Errors the page logs (a CSP violation or a script error shows up here)."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on(
            "console", lambda message: message.type == "error" and self.errors.append(message.text)
        )
        page.on("pageerror", lambda error: self.errors.append(str(error)))


def open_page(browser: Browser, server: LiveServer, **context: object) -> tuple[Page, Console]:
    page = browser.new_context(**context).new_page()
    console = Console(page)
    page.goto(server.url + "/")
    expect(page.locator("body[data-ready=true]")).to_be_attached(timeout=30_000)
    return page, console


def use_key(page: Page, key: str) -> None:
    page.fill("#api-key", key)
    page.click("#key-form button[type=submit]")
    expect(page.locator("#key-state")).to_have_text("A key is saved.")


def wait_for_playing_video(page: Page, seconds: int) -> None:
    video = page.locator("#result video")
    expect(video).to_be_visible(timeout=VIDEO_TIMEOUT_MS)
    page.wait_for_function(
        """seconds => { const v = document.querySelector('#result video');
            return v && v.readyState >= 2 && Math.abs(v.duration - seconds) < 0.1; }""",
        arg=seconds,
        timeout=30_000,
    )


def test_generate_play_copy_and_find_it_in_the_gallery_after_reload(
    browser: Browser, server: LiveServer, screenshots: Path
) -> None:
    page, console = open_page(browser, server)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    assert page.title() == "reelforge playground"
    assert page.get_attribute("a[href='/docs']", "href") == "/docs"
    expect(page.locator("#submit")).to_be_disabled()  # no key yet
    use_key(page, server.key)
    page.select_option("#model", "veo2")
    page.fill("#f-prompt", "a lighthouse at dusk, waves")
    page.select_option("#f-duration", "6")
    expect(page.locator("#cost")).to_contain_text("630,000 credits")  # 105,000 x 6 s
    page.screenshot(path=screenshots / "1-form.png", full_page=True)
    page.click("#submit")
    expect(page.locator("#progress-text")).not_to_have_text("Submitted…", timeout=30_000)
    wait_for_playing_video(page, 6)
    assert page.eval_on_selector("#result video", "v => v.muted && v.loop && v.controls")
    assert page.get_attribute("#download", "href").startswith(server.url + "/files/videos/")
    page.screenshot(path=screenshots / "2-playing.png", full_page=True)
    # Progress came over live events, not by falling back to long-polling.
    assert any("/v2/video/generations/events?" in url for url in requested)
    assert not any("wait=" in url for url in requested)

    snippet = page.locator("#snippet")
    page.click("#copy-as summary")
    page.click("[data-copy=python]")
    expect(snippet).to_contain_text('client.generate(\n        "veo2",')
    expect(snippet).to_contain_text("duration=6,")
    page.click("[data-copy=cli]")
    expect(snippet).to_contain_text(
        "reelforge generate 'a lighthouse at dusk, waves' --model 'veo2'"
    )
    page.click("[data-copy=curl]")
    expect(snippet).to_contain_text('"duration":6')

    page.click("#reuse")
    expect(page.locator("#f-duration")).to_have_value("6")
    expect(page.locator("#f-prompt")).to_have_value("a lighthouse at dusk, waves")

    generation = page.locator("#gallery li").first.get_attribute("data-id")
    page.reload()
    expect(page.locator("#key-state")).to_have_text("A key is saved.")  # kept in local storage
    entry = page.locator(f"#gallery li[data-id='{generation}']")
    expect(entry).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(entry.locator("img")).to_have_js_property("complete", True)
    assert entry.locator("img").evaluate("img => img.naturalWidth") > 0  # the thumbnail
    # The gallery shows what was typed, not the enhanced prompt the engine got.
    expect(entry.locator(".prompt")).to_have_text("a lighthouse at dusk, waves")
    page.screenshot(path=screenshots / "3-gallery.png", full_page=True)
    assert console.errors == []


def test_image_to_video_from_an_uploaded_file(
    browser: Browser, server: LiveServer, screenshots: Path, tmp_path: Path
) -> None:
    big = tmp_path / "start.png"
    big.write_bytes(encode_image(picture((3000, 1700), seed=3), "PNG"))  # scaled down in the page
    page, console = open_page(browser, server)
    use_key(page, server.key)
    page.select_option("#model", "veo2/image-to-video")
    expect(page.locator("#f-image_url")).to_be_attached()
    page.set_input_files("#f-image_url", str(big))
    preview = page.locator("#box-image_url .previews img")
    expect(preview).to_have_count(1)
    assert preview.get_attribute("src").startswith("data:image/jpeg")  # re-encoded smaller
    assert preview.evaluate("img => img.decode().then(() => img.naturalWidth)") == 2048
    page.fill("#f-prompt", "slow zoom into the picture")
    page.click("#submit")
    wait_for_playing_video(page, 5)
    page.screenshot(path=screenshots / "4-image-to-video.png", full_page=True)
    assert console.errors == []


def test_a_validation_error_is_shown_at_its_field(
    browser: Browser, server: LiveServer, screenshots: Path
) -> None:
    page, _ = open_page(browser, server)
    use_key(page, server.key)
    page.select_option("#model", "veo2")
    page.fill("#f-prompt", "a kite")
    page.fill("#f-seed", "-4")
    page.click("#submit")
    error = page.locator("#err-seed")
    expect(error).to_be_visible()
    # In words for a person under the field; the validator's own text is the tooltip.
    expect(error).to_have_text("Must be between 0 and 4294967295 (you gave -4)")
    assert "seed" in (error.get_attribute("title") or "")
    expect(page.locator("#f-seed")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-seed")).to_be_focused()
    expect(page.locator("#current")).to_be_hidden()  # nothing was created
    page.screenshot(path=screenshots / "5-field-error.png", full_page=True)


def test_forgetting_the_key(browser: Browser, server: LiveServer) -> None:
    page, _ = open_page(browser, server)
    use_key(page, server.key)
    page.click("#forget-key")
    expect(page.locator("#key-state")).to_contain_text("No key yet")
    assert page.evaluate("localStorage.length") == 0
    expect(page.locator("#submit")).to_be_disabled()


def test_labelled_and_usable_on_a_phone_in_the_dark(
    browser: Browser, server: LiveServer, screenshots: Path
) -> None:
    page, console = open_page(
        browser, server, viewport={"width": 375, "height": 740}, color_scheme="dark"
    )
    use_key(page, server.key)
    for model in ("veo2", "google/veo-3.1-reference-to-video", "google/veo3-1-extend-video"):
        page.select_option("#model", model)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')].filter(
                   el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
               ).map(el => el.id || el.name)"""
        )
        assert unlabelled == [], (model, unlabelled)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 18, 22)"  # the dark palette
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") in ("A", "INPUT", "BUTTON")
    page.screenshot(path=screenshots / "6-phone-dark.png", full_page=True)
    assert console.errors == []


def test_cancel_a_slow_job_from_the_page(
    browser: Browser, tmp_path: Path, screenshots: Path
) -> None:
    slow = LiveServer(home=tmp_path / "slow", env={"REELFORGE_PREVIEW_LATENCY_SECONDS": "60"})
    slow.start()
    try:
        page, console = open_page(browser, slow)
        use_key(page, slow.key)
        page.select_option("#model", "veo2")
        page.fill("#f-prompt", "a very slow sunrise")
        page.click("#submit")
        expect(page.locator("#progress-text")).to_contain_text("generating", timeout=30_000)
        page.click("#cancel-current")
        expect(page.locator("#result .error")).to_contain_text("Cancelled", timeout=30_000)
        expect(page.locator("#progress-text")).to_contain_text("error")
        entry = page.locator("#gallery li").first
        expect(entry).to_have_attribute("data-status", "error", timeout=30_000)
        expect(entry.locator(".error")).to_contain_text("Cancelled")
        page.screenshot(path=screenshots / "7-cancelled.png", full_page=True)
        assert console.errors == []
        page.context.close()
    finally:
        slow.stop()


def test_served_offline_from_the_package_with_a_strict_policy(server: LiveServer) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for asset in re.findall(r'(?:src|href)="(/ui/[^"]+)"', page.text):
        assert httpx.get(server.url + asset).status_code == 200, asset
    assert "http" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', page.text))  # no CDN
    assert httpx.get(server.url + "/docs").status_code == 200  # the docs stay


def test_on_a_wide_screen_the_form_and_the_generation_sit_side_by_side(
    browser: Browser, server: LiveServer, screenshots: Path
) -> None:
    page, console = open_page(browser, server, viewport={"width": 1600, "height": 1000})
    use_key(page, server.key)
    page.select_option("#model", "veo2")
    note = page.locator("#engine-note")
    expect(note).to_be_visible()  # preview serves veo2 here: say what it makes
    expect(note).to_contain_text("placeholder clips")
    expect(note).to_contain_text("REELFORGE_ENGINE")
    form = page.locator("#create").bounding_box()
    waiting = page.locator("#stage-empty").bounding_box()
    assert form and waiting and waiting["x"] >= form["x"] + form["width"]  # a column saved
    page.screenshot(path=screenshots / "8-wide-empty.png")
    page.fill("#f-prompt", "a lighthouse on a cliff at night")
    page.click("#submit")
    wait_for_playing_video(page, 5)
    expect(page.locator("#stage-empty")).to_be_hidden()
    # Where the user is (the click on Generate may have scrolled): the video is in view.
    video = page.locator("#result video").bounding_box()
    assert video and video["y"] >= 0 and video["y"] + video["height"] <= 1000
    page.evaluate("window.scrollTo(0, 0)")
    form = page.locator("#create").bounding_box()
    current = page.locator("#current").bounding_box()
    video = page.locator("#result video").bounding_box()
    gallery = page.locator("#gallery-panel").bounding_box()
    assert form and current and video and gallery
    assert current["x"] >= form["x"] + form["width"]  # beside the form, not below it
    assert abs(current["y"] - form["y"]) < 2  # top-aligned
    assert video["y"] + video["height"] <= 1000  # above the fold on a fresh page too
    assert gallery["y"] >= max(form["y"] + form["height"], current["y"] + current["height"])
    assert gallery["width"] > form["width"] + current["width"]  # across both columns
    page.screenshot(path=screenshots / "9-wide.png")
    assert console.errors == []


def test_on_a_phone_the_generation_stays_below_the_form(
    browser: Browser, server: LiveServer
) -> None:
    page, _ = open_page(browser, server, viewport={"width": 375, "height": 740})
    use_key(page, server.key)
    page.select_option("#model", "veo2")
    expect(page.locator("#stage-empty")).to_be_hidden()  # no empty column on a phone
    page.fill("#f-prompt", "a kite over a beach")
    page.click("#submit")
    expect(page.locator("#current")).to_be_visible()
    form = page.locator("#create").bounding_box()
    current = page.locator("#current").bounding_box()
    assert form and current and current["y"] >= form["y"] + form["height"]
