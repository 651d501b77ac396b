"""The dashboard's page loads on a built warehouse (not part of `make test`).

    python bench/bench_dashboard.py --warehouse data/warehouse.duckdb   # the demo's warehouse
    python bench/bench_dashboard.py --scale 10                          # data/bench/scale10.duckdb, built once

`whalecopy dashboard` serves the warehouse on 127.0.0.1; Debian's chromium (through Playwright) opens each page and
waits until Streamlit has finished its script and every chart has drawn. **Cold** is a page's first load after the
server started (its warehouse read, then the render); **warm** is the best of three loads after it (the read is
cached until the file changes: the render and the browser's work). The whale drill-down is timed apart: picking
the selectbox's last whale (the 1,000th, or the last one scored) until its page is drawn. One JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_backtest import build
from dashboard.views import PICK_LIMIT
from tests.dashboard import browser

PAGES = ("overview", "whales", "signals", "portfolio", "evidence")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument(
        "--warehouse", help="an existing warehouse (default: data/bench/scale<N>.duckdb, built once)"
    )
    args = p.parse_args()
    path = Path(args.warehouse) if args.warehouse else ROOT / "data" / "bench" / f"scale{args.scale:g}.duckdb"
    if args.warehouse and not path.exists():
        raise SystemExit(f"no warehouse at {path}: run `make demo` first (or give --scale to build one)")
    built_s = None if path.exists() else build(args.scale, path)  # the backtest bench's build, once
    with duckdb.connect(str(path), read_only=True) as con:
        fills = con.execute("SELECT count(*) FROM raw.trades").fetchone()[0]
        scored = con.execute(
            "SELECT count(*) FROM analytics.whale_scores WHERE as_of = (SELECT max(as_of) FROM "
            "analytics.whale_scores) AND wqs IS NOT NULL"
        ).fetchone()[0]
        (last_wallet,) = con.execute(  # the selectbox's last whale
            "SELECT wallet FROM analytics.whale_scores WHERE as_of = (SELECT max(as_of) FROM analytics.whale_scores) "
            "AND wqs IS NOT NULL ORDER BY rank LIMIT 1 OFFSET ?",
            [min(PICK_LIMIT, scored) - 1],
        ).fetchone()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "WAREHOUSE_PATH": str(path),
        "WHALECOPY_LIVE_DIR": str(path.parent / "live-bench-none"),
    }
    t0 = time.perf_counter()
    server = subprocess.Popen([str(Path(sys.executable).parent / "whalecopy"), "dashboard", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx
        from playwright.sync_api import sync_playwright

        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        server_s = time.perf_counter() - t0
        cold, warm = {}, {}
        with sync_playwright() as pw:
            b = pw.chromium.launch(
                executable_path=browser.chromium_path(), headless=True, args=browser.CHROMIUM_ARGS
            )
            page = b.new_page(viewport={"width": 1400, "height": 1000})

            def load(name: str) -> float:
                t = time.perf_counter()
                page.goto(f"{url}/" if name == "overview" else f"{url}/{name}")
                browser.settle(page, browser.CHARTS[name])
                drawn = browser.charts_drawn(page)
                elapsed = time.perf_counter() - t
                assert browser.error_boxes(page) == [] and all(drawn), (name, drawn)
                return elapsed

            for name in PAGES:
                cold[name] = load(name)
            for name in PAGES:
                warm[name] = min(load(name) for _ in range(3))
            page.goto(f"{url}/whales")
            browser.settle(page, browser.CHARTS["whales"])
            t = time.perf_counter()
            page.locator('[data-testid="stSelectbox"]').click()
            page.keyboard.type(last_wallet[:12])
            page.get_by_role("option", name=re.compile(last_wallet)).click()
            page.get_by_text(f"Whale {last_wallet}").wait_for(timeout=120_000)
            browser.settle(page, browser.CHARTS["whales"])
            drill_s = time.perf_counter() - t
            b.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps({
        "case": f"dashboard_{path.stem}", "warehouse": str(path), "fills": fills, "scored_wallets": scored,
        "built_warehouse_s": built_s, "server_start_s": round(server_s, 2),
        "cold_s": {k: round(v, 2) for k, v in cold.items()}, "warm_s": {k: round(v, 2) for k, v in warm.items()},
        "drill_down_s": round(drill_s, 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
