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


def settle(page, timeout_s: float = 60.0) -> None:
    """Wait until Streamlit has finished running the page's script (its status widget gone) and the charts of
    the page are in the DOM; then let Vega paint."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout_s * 1000)  # every page has a title
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = page.locator('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]').count()
        if not busy:
            break
        time.sleep(0.1)
    page.wait_for_timeout(800)  # Vega draws after the element mounts


def charts_drawn(page) -> list[bool]:
    return page.evaluate(CHARTS_JS)


def error_boxes(page) -> list[str]:
    """The text of every exception or error box on the page."""
    out = []
    for sel in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]'):
        out.extend(page.locator(sel).all_inner_texts())
    return out
