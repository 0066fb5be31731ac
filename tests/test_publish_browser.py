"""The published site in headless Chromium: the issue page and the index on a phone and a desktop.

Set up as tests/test_browser.py does (Debian's chromium and chromedriver, offline); the site
is made by real `digest send` and `digest publish` processes in a copy of the repository's
workspace, with one illustrated item so the alt-text check has an image to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import test_browser
from selenium import webdriver
from test_browser import (
    IMAGE_ALT,
    IMAGE_URL,
    assert_no_sideways_scroll,
    digest,
    js,
    open_at,
    png_size,
    screenshot,
)

from harness.workspaces import copy_workspace

# The same module-scoped headless Chromium fixture as the email's browser test.
browser = test_browser.browser
PHONE = 375
DESKTOP = 1280


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example issue, plus an illustrated item, sent to one reader and published."""
    root = copy_workspace(tmp_path_factory.mktemp("publish-browser") / "ws")
    digest(
        root, "add", "Alt text, measured", "--body", "One chart.", "--image", IMAGE_URL,
        "--alt", IMAGE_ALT,
    )  # fmt: skip
    digest(root, "subscribers", "add", "reader@example.org", "--name", "Reader")
    digest(root, "send", "--yes")
    digest(root, "publish")
    return root / "site"


def pages(site: Path) -> dict[str, Path]:
    (issue,) = (site / "issues").glob("*/index.html")
    return {"issue": issue, "index": site / "index.html"}


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
@pytest.mark.parametrize("which", ["issue", "index"])
def test_the_published_pages_fit_the_screen_and_every_image_has_alt_text(
    browser: webdriver.Chrome, site: Path, tmp_path: Path, which: str, width: int
) -> None:
    open_at(browser, pages(site)[which], width)
    assert_no_sideways_scroll(browser)
    images: list[dict[str, Any]] = js(
        browser,
        "return Array.from(document.images, img => ({src: img.getAttribute('src'),"
        " alt: img.getAttribute('alt'), computed: img.getBoundingClientRect().width}));",
    )
    for image in images:
        assert (image["alt"] or "").strip(), image
        assert image["computed"] <= width, image
    if which == "issue":
        assert {"src": IMAGE_URL, "alt": IMAGE_ALT} in [
            {"src": i["src"], "alt": i["alt"]} for i in images
        ]
        headlines = js(browser, "return document.querySelectorAll('h2.headline').length")
        assert headlines >= 10
    else:
        titles = js(
            browser,
            "return Array.from(document.querySelectorAll('.issue-title a'), a => a.textContent);",
        )
        assert titles == ["The Terminal Dispatch, week 48"]
    shot = tmp_path / f"{which}-{width}.png"
    screenshot(browser, shot)
    assert png_size(shot)[0] == width
