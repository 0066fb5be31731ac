"""The rendered example issue in a real browser: Debian's headless Chromium, driven by Selenium.

The draft in drafts/ is rendered by `digest render` in a copy of the repository's workspace,
as a user would, and issue.html is opened at a phone, a 600 px and a desktop viewport.
Only the system chromium and chromedriver are used, never a downloaded build: Selenium
Manager is bypassed by naming the driver, and the browser resolves no host names.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from harness.workspaces import copy_workspace, digest_env, run_digest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The example draft has no images, so one item with a remote image is added through the CLI:
# without it the alt-text and width checks would have nothing to look at.
IMAGE_URL = "https://example.org/dispatch/48/inbox-chart.png"
IMAGE_ALT = "Bar chart: share of newsletters by image alt-text quality"
# The sheet's designed width; at 620 px and below the template's @media rules make it full width.
SHEET_WIDTH = 600
PHONE = 375
DESKTOP = 800


def require_chromium() -> None:
    """Skip when Debian's chromium or chromedriver is missing; fail instead when CI is set."""
    missing = [path.name for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return
    reason = (
        f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: "
        ".ci/setup installs Debian's chromium and chromium-driver"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser test must run)", pytrace=False)
    pytest.skip(reason)


def digest(workspace: Path, *args: str) -> str:
    """Run the real `digest` command in the workspace and return its standard output."""
    result = run_digest(workspace, digest_env("browser-test-secret"), *args, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def issue_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example issue plus one illustrated item, rendered by `digest render --out`."""
    root = copy_workspace(tmp_path_factory.mktemp("browser") / "ws")
    digest(
        root,
        "add",
        "Alt text, measured",
        "--body",
        "How many newsletter images describe themselves, in one chart.",
        "--image",
        IMAGE_URL,
        "--alt",
        IMAGE_ALT,
    )
    out = root / "out"
    digest(root, "render", "--out", str(out))
    return out / "issue.html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless Debian Chromium with a fresh profile, offline, not waiting for images."""
    require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        # Phones draw overlay scrollbars; a desktop scrollbar would eat 15 px of the 375.
        "--hide-scrollbars",
        # Remote images fail at once instead of waiting on a network this machine lacks.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.page_load_strategy = "eager"
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def open_at(driver: webdriver.Chrome, page: Path, width: int, height: int = 800) -> None:
    """Load the page with a viewport (not a window) exactly `width` CSS pixels wide."""
    set_viewport(driver, width, height)
    driver.get(page.as_uri())
    assert js(driver, "return window.innerWidth") == width


def set_viewport(driver: webdriver.Chrome, width: int, height: int) -> None:
    """Emulate a viewport of width x height CSS pixels at a device scale factor of 1."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def js(driver: webdriver.Chrome, script: str, *args: object) -> Any:
    """Run a script in the page and return its result."""
    return driver.execute_script(script, *args)


def box(driver: webdriver.Chrome, selector: str) -> dict[str, float]:
    """The bounding rectangle of the first element matching the CSS selector."""
    rect: dict[str, float] = js(
        driver,
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {left: r.left, right: r.right, width: r.width};",
        selector,
    )
    return rect


def screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """Save the whole page, top to bottom, as a PNG at the current viewport width."""
    width: int = js(driver, "return window.innerWidth")
    height: int = js(driver, "return document.documentElement.scrollHeight")
    set_viewport(driver, width, height)
    path.write_bytes(driver.get_screenshot_as_png())


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file, read from its IHDR chunk."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_no_sideways_scroll(driver: webdriver.Chrome) -> None:
    """Nothing in the page is wider than the viewport."""
    widths = js(
        driver,
        "return [window.innerWidth, document.documentElement.scrollWidth,"
        " document.body.scrollWidth];",
    )
    viewport, document_width, body_width = widths
    assert document_width <= viewport, widths
    assert body_width <= viewport, widths


def test_on_a_phone_the_email_fits_the_screen_without_sideways_scrolling(
    browser: webdriver.Chrome, issue_html: Path, tmp_path: Path
) -> None:
    open_at(browser, issue_html, PHONE)
    assert_no_sideways_scroll(browser)
    for selector in ("table.sheet", "table.sheet-footer"):
        assert box(browser, selector) == {"left": 0, "right": PHONE, "width": PHONE}, selector
    screenshot(browser, tmp_path / "375.png")
    width, height = png_size(tmp_path / "375.png")
    assert width == PHONE
    assert height > 1000


def test_at_600px_the_sheet_fills_the_width_as_the_template_designs(
    browser: webdriver.Chrome, issue_html: Path, tmp_path: Path
) -> None:
    # 600 px is under the 620 px breakpoint: the sheet and footer go full width, square
    # corners, no grey canvas around them, and the narrow 22 px side padding.
    open_at(browser, issue_html, SHEET_WIDTH)
    assert_no_sideways_scroll(browser)
    for selector in ("table.sheet", "table.sheet-footer"):
        assert box(browser, selector) == {"left": 0, "right": 600, "width": 600}, selector
    styles = js(
        browser,
        "const sheet = getComputedStyle(document.querySelector('table.sheet'));"
        "const item = getComputedStyle(document.querySelector('td.item'));"
        "return [sheet.borderTopLeftRadius, item.paddingLeft, item.paddingRight];",
    )
    assert styles == ["0px", "22px", "22px"]
    screenshot(browser, tmp_path / "600.png")
    assert png_size(tmp_path / "600.png")[0] == SHEET_WIDTH


def test_on_a_desktop_the_sheet_is_600px_wide_and_centred(
    browser: webdriver.Chrome, issue_html: Path, tmp_path: Path
) -> None:
    open_at(browser, issue_html, DESKTOP)
    assert_no_sideways_scroll(browser)
    margin = (DESKTOP - SHEET_WIDTH) / 2
    expected = {"left": margin, "right": DESKTOP - margin, "width": SHEET_WIDTH}
    for selector in ("table.sheet", "table.sheet-footer"):
        assert box(browser, selector) == expected, selector
    styles = js(
        browser,
        "const sheet = getComputedStyle(document.querySelector('table.sheet'));"
        "const item = getComputedStyle(document.querySelector('td.item'));"
        "return [sheet.borderTopLeftRadius, item.paddingLeft, item.paddingRight];",
    )
    assert styles == ["6px", "44px", "44px"]
    screenshot(browser, tmp_path / f"{DESKTOP}.png")
    assert png_size(tmp_path / f"{DESKTOP}.png")[0] == DESKTOP


@pytest.mark.parametrize("width", [PHONE, SHEET_WIDTH])
def test_every_image_has_alt_text_and_a_width(
    browser: webdriver.Chrome, issue_html: Path, width: int
) -> None:
    open_at(browser, issue_html, width)
    images: list[dict[str, Any]] = js(
        browser,
        "return Array.from(document.images, img => ({"
        " src: img.getAttribute('src'), alt: img.getAttribute('alt'),"
        " width: img.getAttribute('width'), computed: img.getBoundingClientRect().width}));",
    )
    assert {"src": IMAGE_URL, "alt": IMAGE_ALT, "width": "512"} in [
        {key: image[key] for key in ("src", "alt", "width")} for image in images
    ]
    for image in images:
        assert (image["alt"] or "").strip(), image
        assert image["width"] or image["computed"] > 0, image
        assert 0 < image["computed"] <= width, image


@pytest.mark.parametrize("width", [PHONE, SHEET_WIDTH])
def test_body_text_of_the_intro_and_items_is_at_least_14px(
    browser: webdriver.Chrome, issue_html: Path, width: int
) -> None:
    open_at(browser, issue_html, width)
    sizes: dict[str, list[float]] = js(
        browser,
        "const size = p => parseFloat(getComputedStyle(p).fontSize);"
        "const all = s => Array.from(document.querySelectorAll(s), size);"
        "return {intro: all('td.intro p'), items: all('td.item .prose p'),"
        " closing: all('td.closing p')};",
    )
    assert len(sizes["intro"]) >= 1
    assert len(sizes["items"]) >= 10
    too_small = {part: [px for px in values if px < 14] for part, values in sizes.items()}
    assert too_small == {"intro": [], "items": [], "closing": []}, sizes
