"""Drive the dashboard in Debian's chromium through Playwright (no browser download): load a page, wait for the
app to settle, and count the charts that drew something."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run",
                 "--disable-extensions"]  # fmt: skip

#: per chart, whether it drew: a canvas with a painted pixel, or an SVG with marks of non-zero size
CHARTS_JS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map(el => {
  for (const c of el.querySelectorAll('canvas')) {
    if (!c.width || !c.height) continue;
    const ctx = c.getContext('2d');
    const px = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
  }
  for (const s of el.querySelectorAll('svg')) {
    const r = s.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && s.querySelectorAll('path, rect, line, circle').length > 0) return true;
  }
  return false;
})"""


def chromium_path() -> str | None:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    return found


#: the charts each page draws on a full warehouse without a live store (Vega's code loads lazily, so a page can
#: look finished before its first chart exists: waiting for the count is what makes a load a load)
CHARTS = {"overview": 4, "whales": 2, "signals": 1, "portfolio": 3, "evidence": 3}


def settle(page, min_charts: int = 0, timeout_s: float = 60.0) -> None:
    """Wait until Streamlit has run the page's script to its end (the app's ``data-test-script-state``) and at
    least ``min_charts`` charts are on the page, every one drawn (or ``timeout_s`` passed: the caller's checks
    then say what is missing)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"] [data-testid="stMain"] h1',
                           timeout=timeout_s * 1000)  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        drawn = charts_drawn(page)
        if len(drawn) >= min_charts and all(drawn):  # Vega draws after its element mounts
            break
        time.sleep(0.05)


def charts_drawn(page) -> list[bool]:
    return page.evaluate(CHARTS_JS)


def error_boxes(page) -> list[str]:
    """The text of every exception, error or warning box on the page (a busy source is a warning)."""
    out = []
    for sel in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]',
                '[data-testid="stAlertContentWarning"]'):  # fmt: skip
        out.extend(page.locator(sel).all_inner_texts())
    return out


def screenshot(page, path: Path, max_height: int = 5000) -> None:
    """The whole page: Streamlit scrolls inside its main block, so the viewport grows to the content's height for
    the picture (the charts redraw at the new size first), then shrinks back."""
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), max_height)})
    page.wait_for_timeout(500)
    deadline = time.monotonic() + 10
    while not all(charts_drawn(page)) and time.monotonic() < deadline:
        time.sleep(0.05)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def click_row(page, row: int, table: int = 0) -> None:
    """Click the selection cell of the ``row``-th data row of the ``table``-th table (a Glide grid drawn on a
    canvas: its header and rows are 35 px high, its selection column at the left edge)."""
    box = page.locator('[data-testid="stDataFrame"]').nth(table).bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 * row + 17)
