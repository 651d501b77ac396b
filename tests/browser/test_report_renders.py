"""The report in a real browser: headless Chromium loads the page and its script counts the plot images that
decoded; every plot must display. The negative control breaks one image and sees the count drop by one."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from assets.evaluate import report
from tests.report_data import build_data, build_meta, build_real

BROKEN = "data:image/png;base64,AAAA"


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.skip(
            "chromium is not installed (make test installs Debian's chromium where apt-get can): "
            "neither `chromium` on PATH nor /usr/bin/chromium"
        )
    return found


def _body_attrs(page: Path, tmp_path: Path) -> dict[str, str]:
    """Load the page in headless Chromium and return the attributes of the dumped DOM's <body>."""
    cmd = [
        _chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body is not None, f"no <body> in the dumped DOM: {done.stdout[:500]!r} / {done.stderr[-1000:]}"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


@pytest.fixture(scope="module")
def page_html() -> str:
    return report.render_report(build_data(), build_meta(), build_real())


def test_every_plot_renders_in_chromium(page_html, tmp_path):
    page = report.write_report(page_html, tmp_path / "report.html")
    attrs = _body_attrs(page, tmp_path)
    expected = int(attrs["data-plots-expected"])
    assert expected > 0
    assert attrs.get("data-plots-rendered") == str(expected)


def test_a_broken_image_is_counted_out(page_html, tmp_path):
    broken, n = re.subn(r'src="data:image/png;base64,[^"]*"', f'src="{BROKEN}"', page_html, count=1)
    assert n == 1
    page = report.write_report(broken, tmp_path / "broken.html")
    attrs = _body_attrs(page, tmp_path)
    expected = int(attrs["data-plots-expected"])
    assert expected > 1
    assert attrs.get("data-plots-rendered") == str(expected - 1)
