"""The dashboard on a small warehouse built here: every page through Streamlit's headless AppTest (the values it
shows are the warehouse's, recomputed in SQL), the sources missing or busy, and a real browser (Debian's
chromium driven by Playwright) against ``whalecopy dashboard`` on 127.0.0.1 while ``whalecopy live`` decides.

One module, so the world is built once (``--dist loadfile`` keeps it on one worker)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from live.store import Commit, Store
from tests.dashboard import browser
from tests.dashboard.world import build

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAGES = ("overview", "whales", "signals", "portfolio", "evidence")
WALLET = "0x" + "ab" * 20


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dashboard-world"))


def _sql(world, sql: str, params=()):
    with duckdb.connect(str(world.warehouse_path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def _decision(seq: int, stage: str, **kw) -> dict:
    row = {"decision_key": f"{WALLET}|0xtx{seq}|tok{seq}|BUY", "seq": seq, "fill_key": str(1000 + seq),
           "wallet": WALLET, "token_id": f"tok{seq}", "side": "BUY", "ts": 1_790_000_000 + seq, "day": 20_717,
           "legs": 1, "size": 100.0, "whale_price": 0.5, "stage_reached": stage, "copied": int(stage == "copied"),
           "reason": None if stage == "copied" else f"{stage} reason", "decided_wall": time.time() - 10 + seq,
           "frame_to_decision_s": 0.001 * seq, "fill_to_decision_s": 60.0 + seq, "late": 0}  # fmt: skip
    return row | kw


@pytest.fixture(scope="module")
def live_dir(world, tmp_path_factory):
    """A live store with known rows (three decisions, one copied; a fill; a day-end NAV; an alert; an intent),
    a heartbeat now and this process as the lock's holder."""
    root = tmp_path_factory.mktemp("dashboard-live") / "live"
    shutil.copytree(world.live_root / "snapshot", root / "snapshot")
    store = Store(root / "live.sqlite")
    fill = {"identity": "i1", "fill_key": "1001", "decision_key": "k1", "wallet": WALLET, "token_id": "tok3",
            "condition_id": "c1", "side": "BUY", "outcome_index": 0, "price": 0.52, "size": 100.0,
            "ts": 1_790_000_003, "transaction_hash": "0xtx3", "source": "rtds_trades", "sources": "rtds_trades",
            "received_at": 1_790_000_003.5, "received_wall": time.time() - 4}  # fmt: skip
    store.commit(Commit(
        fills=[fill],
        decisions=[_decision(1, "whale"), _decision(2, "trade"), _decision(3, "copied", shares=190.0, price=0.52,
                                                                            notional=98.8)],
        intents=[{"intent_id": "1003-entry-1790000063", "decision_key": _decision(3, "copied")["decision_key"],
                  "created_at": "2026-09-21T10:01:03Z", "kind": "entry", "side": "BUY", "token_id": "tok3",
                  "shares": 190.0, "limit_price": 0.52, "notional": 98.8, "copied_wallet": WALLET, "emitted_at": None}],
        nav=[{"day": 20_717, "cash": 9_901.2, "positions_value": 98.8, "nav": 10_000.0, "exposure_share": 0.00988,
              "max_category_share": 0.00988, "open_positions": 1, "drawdown": 0.0, "daily_return": 0.0, "var": None,
              "entries_blocked": 0}],
        alerts=[{"seq": 1, "day": 20_717, "kind": "trailing_stop", "message": "trailing stop of tok9"}],
        state={"loop_state": "running", "heartbeat_wall": time.time() + 3600},  # stays fresh for the module
    ))  # fmt: skip
    store.close()
    (root / "live.lock").write_text(f"pid {os.getpid()}\n")
    return root


def _app(monkeypatch, warehouse: Path, live: Path, page: str):
    """The app at ``page``, run headless with the sources named by the environment (as the CLI passes them)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("WAREHOUSE_PATH", str(warehouse))
    monkeypatch.setenv("WHALECOPY_LIVE_DIR", str(live))
    monkeypatch.setenv(
        "WHALECOPY_DASHBOARD_QUIET_S", "0"
    )  # the world was just written; the rule is tested apart
    st.cache_resource.clear()  # the context (settings, sources) is built once per server process
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    if page != "overview":
        at.switch_page(f"screens/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _page(monkeypatch, warehouse: Path, live: Path, page: str):
    """``_app`` on sources that are there: no warning either (a busy or missing source would hide the page)."""
    at = _app(monkeypatch, warehouse, live, page)
    assert not at.warning and not at.info, [w.value for w in [*at.warning, *at.info]]
    return at


def _usd(x: float) -> str:
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


def _metrics(at) -> dict[str, str]:
    return {x.label: x.value for x in at.metric}


def _frame(at, column: str, position: int = 0):
    """The ``position``-th table on the page that has ``column``."""
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    return frames[position]


# ----------------------------------------------------------------------------------------------- pages
def test_overview_shows_the_books_latest_day_and_the_live_loop(world, live_dir, monkeypatch):
    at = _page(monkeypatch, world.warehouse_path, live_dir, "overview")
    (day, nav, n_open), = _sql(world, "SELECT day, nav, open_positions FROM analytics.paper_nav ORDER BY day DESC LIMIT 1")  # fmt: skip
    (held,) = _sql(world, "SELECT count(*) FROM analytics.paper_positions WHERE closed_day IS NULL")[0]
    (n_alerts,) = _sql(world, "SELECT least(count(*), 200) FROM analytics.alerts")[0]
    got = _metrics(at)
    assert got["NAV"] == _usd(nav)
    assert got["Open positions"] == str(n_open) == str(held)
    assert got["State"] == "running"
    assert got["Live NAV"] == "$10,000.00"
    assert got["Frame → decision p50 / p99"] == "2.0 / 3.0 ms"
    assert got["Last fill seen"].endswith("s ago")
    assert len(_frame(at, "message")) in (n_alerts, 1)  # the batch's alerts table, or the live one first
    batch_alerts = [
        d.value for d in at.dataframe if "message" in d.value.columns and "posted" not in d.value.columns
    ]
    assert len(batch_alerts[0]) == n_alerts
    assert any(f"Batch paper book on {_date(day)}" in h.value for h in at.subheader)


def _date(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))


def test_whales_ranks_the_latest_scores_and_drills_down_to_a_whales_copied_trades(
    world, live_dir, monkeypatch
):
    at = _page(monkeypatch, world.warehouse_path, live_dir, "whales")
    ranked = [w for (w,) in _sql(world, "SELECT wallet FROM analytics.whale_scores WHERE as_of = (SELECT max(as_of) "
                                        "FROM analytics.whale_scores) AND wqs IS NOT NULL ORDER BY rank")]  # fmt: skip
    table = _frame(at, "strike_reasons")
    assert table["wallet"].tolist() == ranked
    # each scored wallet's flags at the date (the simulated market makers, farmers, bots and wash traders), none
    # of them in the universe
    flagged = dict(_sql(world, "SELECT wallet, string_agg(flag, ', ' ORDER BY flag) FROM analytics.wallet_flags_history "
                               "WHERE as_of = (SELECT max(as_of) FROM analytics.whale_scores) GROUP BY 1"))  # fmt: skip
    shown = table.set_index("wallet")["flags"].dropna().to_dict()
    assert shown and shown == {w: f for w, f in flagged.items() if w in set(ranked)}
    assert not table.loc[table["flags"].notna(), "in_universe"].any()
    assert _metrics(at)["Scored wallets"] == f"{len(ranked):,}"
    # the whale with the most copied trades
    (wallet, n, earned), = _sql(world, """
        SELECT s.wallet, count(*), sum(coalesce(p.realised_pnl, 0)) + sum(CASE WHEN p.closed_day IS NULL THEN
               p.shares_open * coalesce(p.mark, p.entry_price) - p.cost + p.proceeds - p.fees ELSE 0 END)
        FROM analytics.signals s JOIN analytics.orders o USING (fill_key) JOIN analytics.paper_positions p USING (key)
        WHERE o.copied GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1""")  # fmt: skip
    assert wallet in ranked and n > 0
    at.selectbox(key="whale_pick").set_value(wallet).run()
    assert not at.exception
    got = _metrics(at)
    assert got["Trades of it we copied"] == f"{n:,}"
    assert got["What the copies earned"] == _usd(earned)
    copied = _frame(at, "copy_price")
    assert len(copied) == n
    ((n_pos, pnl),) = _sql(
        world, "SELECT count(*), sum(pnl_net) FROM marts.fct_positions WHERE wallet = ?", [wallet]
    )
    assert got["Positions"] == f"{n_pos:,}" and got["Realised P&L (net)"] == _usd(pnl)
    (n_hist,) = _sql(world, "SELECT count(*) FROM analytics.whale_scores WHERE wallet = ?", [wallet])[0]
    assert len(_frame(at, "as_of")) == n_hist
    # an address typed (any case) reaches any scored whale; one without a score is said
    last = ranked[-1]
    at.text_input(key="whale_typed").input(f"  {last.upper().replace('0X', '0x')} ").run()
    assert any(h.value == f"Whale {last}" for h in at.header)
    at.text_input(key="whale_typed").input("0xnotawallet").run()
    assert any("has no score at this date" in c.value for c in at.caption)
    assert any(h.value == f"Whale {wallet}" for h in at.header)  # the selectbox's whale again


def test_signals_shows_the_live_decisions_and_both_funnels(world, live_dir, monkeypatch):
    at = _page(monkeypatch, world.warehouse_path, live_dir, "signals")
    got = _metrics(at)
    assert (got["Decisions"], got["Copied"], got["Intents"]) == ("3", "1", "1")
    assert any("Latest decision **#3**" in md.value and "copied" in md.value for md in at.markdown)
    decisions = _frame(at, "stage_reached")
    assert decisions["seq"].tolist() == [3, 2, 1]
    expected = _sql(world, """SELECT count(*), count(*) FILTER (WHERE passed_whale), count(*) FILTER (WHERE passed_trade),
                                     (SELECT count(*) FROM analytics.orders WHERE copied) FROM analytics.signals""")[0]  # fmt: skip
    funnel = _frame(at, "pass_rate")
    assert tuple(funnel["orders"]) == expected


def test_portfolio_shows_each_positions_mark_stop_and_time_exit(world, live_dir, monkeypatch):
    at = _page(monkeypatch, world.warehouse_path, live_dir, "portfolio")
    open_rows = _sql(world, "SELECT key, mark, stop_level FROM analytics.paper_positions WHERE closed_day IS NULL "
                            "ORDER BY key")  # fmt: skip
    (n_closed,) = _sql(world, "SELECT count(*) FROM analytics.paper_positions WHERE closed_day IS NOT NULL")[
        0
    ]
    got = _metrics(at)
    assert got["Open positions"] == str(len(open_rows)) and got["Closed positions"] == f"{n_closed:,}"
    shown = _frame(at, "stop_level")
    assert shown["key"].tolist() == [k for k, *_ in open_rows]
    assert shown["mark"].tolist() == pytest.approx([mk for _, mk, _ in open_rows], nan_ok=True)
    assert len(_frame(at, "close_reason")) == n_closed


def test_evidence_shows_the_backtest_targets_and_ic(world, live_dir, monkeypatch):
    at = _page(monkeypatch, world.warehouse_path, live_dir, "evidence")
    summary = _frame(at, "sharpe")
    assert sorted(summary["strategy"]) == sorted(s for (s,) in _sql(world, "SELECT strategy FROM evaluation.backtest_summary"))  # fmt: skip
    (sharpe,) = _sql(world, "SELECT sharpe FROM evaluation.backtest_summary WHERE strategy = 'full'")[0]
    assert summary.set_index("strategy").loc["full", "sharpe"] == pytest.approx(sharpe)
    (n_targets,) = _sql(world, "SELECT count(*) FROM evaluation.targets")[0]
    targets = _frame(at, "status")
    assert len(targets) == n_targets
    assert targets.set_index("target")["status"].to_dict() == dict(
        _sql(world, "SELECT target, status FROM evaluation.targets")
    )
    # a target on a strategy that did not trade enough is said first, with why
    reasons = {
        r for (r,) in _sql(world, "SELECT reason FROM evaluation.targets WHERE status = 'not measurable'")
    }
    said = [w.value for w in at.warning if w.value.startswith("Not measurable")]
    assert len(said) == len(reasons) and all(any(r in s for s in said) for r in reasons)
    assert (
        len(_frame(at, "share_positive_months"))
        == _sql(world, "SELECT count(*) FROM evaluation.score_ic")[0][0]
    )


# ----------------------------------------------------------------------------------------------- sources
@pytest.mark.parametrize("page", PAGES)
def test_a_missing_warehouse_and_live_store_are_said_not_raised(tmp_path, monkeypatch, page):
    at = _app(monkeypatch, tmp_path / "none.duckdb", tmp_path / "no-live", page)
    said = " ".join(i.value for i in at.info)
    assert f"no warehouse at {tmp_path / 'none.duckdb'}: run `make demo`" in said
    if page in ("overview", "signals"):
        assert f"No live store at {tmp_path / 'no-live' / 'live.sqlite'}" in said


@pytest.fixture()
def held(world, tmp_path):
    """A copy of the warehouse whose write lock another process holds (as a batch run does)."""
    path = tmp_path / "busy.duckdb"
    shutil.copy(world.warehouse_path, path)
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time\n"
                               f"con = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(300)"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))  # quiet: the dashboard tries to open it, and finds the lock
    yield path, holder
    holder.kill()
    holder.wait()


def test_a_busy_warehouse_is_said_on_every_page_and_a_page_read_before_stays(
    world, live_dir, held, monkeypatch
):
    path, holder = held
    for page in PAGES:
        at = _app(monkeypatch, path, live_dir, page)
        assert any("is busy: a batch run holds its write lock" in w.value for w in at.warning), page
    holder.kill()
    holder.wait()
    # a page read while the file was free stays readable while a writer holds it again, and says how old it is
    from dashboard.sources import SourceUnavailable, Warehouse

    wh = Warehouse(path, quiet_s=0.0)
    first = wh.read({"n": "SELECT count(*) AS n FROM analytics.paper_nav"})
    assert first.stale is None
    again = subprocess.Popen([sys.executable, "-c", "import duckdb, time\n"
                              f"con = duckdb.connect({str(path)!r}); con.execute('CREATE TABLE t AS SELECT 1 AS x'); "
                              "con.execute('CHECKPOINT'); print('held', flush=True); time.sleep(300)"],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert again.stdout.readline().strip() == "held"
        second = wh.read({"n": "SELECT count(*) AS n FROM analytics.paper_nav"})
        assert second.stale is not None and "busy" in second.stale
        assert second.frames["n"]["n"].tolist() == first.frames["n"]["n"].tolist()
    finally:
        again.kill()
        again.wait()
    # a file written less than quiet_s ago is not opened at all: the last read, or "busy" with none
    fresh = Warehouse(path, quiet_s=60.0)
    with pytest.raises(SourceUnavailable, match="is being written"):
        fresh.read({"n": "SELECT 1 AS n"})
    third = wh.read({"n": "SELECT count(*) AS n FROM analytics.paper_nav"})
    assert third.stale is None  # free again and quiet for 0 s: read
    os.utime(path)
    wh.quiet_s = 60.0
    fourth = wh.read({"n": "SELECT count(*) AS n FROM analytics.paper_nav"})
    assert fourth.stale is not None and "being written" in fourth.stale and fourth.read_at == third.read_at


# ----------------------------------------------------------------------------------------------- browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "the dashboard exited"
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the dashboard did not answer at {url} within {timeout_s:g} s")


def _env(world, live: Path, **extra) -> dict[str, str]:
    return {**os.environ, "WAREHOUSE_PATH": str(world.warehouse_path), "WHALECOPY_LIVE_DIR": str(live),
            "WHALECOPY_SIM_SCALE": str(world.sim_scale), "WHALECOPY_SIM_SEED": str(world.sim_seed),
            "WHALECOPY_SIM_CACHE_DIR": str(live / "sim_cache"),
            "WHALECOPY_SIM_DIRTY_SHARE": str(world.sim_dirty_share), "GX_ANALYTICS_ENABLED": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "WHALECOPY_DASHBOARD_QUIET_S": "0", **extra}  # fmt: skip


def _shoot(page, dirs: list[Path], name: str) -> None:
    browser.screenshot(page, dirs[0] / name)
    for d in dirs[1:]:
        shutil.copy(dirs[0] / name, d / name)


def _latest_shown(page) -> int | None:
    found = re.search(r"Latest decision #(\d+)", page.locator('[data-testid="stMain"]').inner_text())
    return int(found.group(1)) if found else None


def test_every_page_in_chromium_and_a_live_decision_within_5_seconds(world, tmp_path):
    chromium = browser.chromium_path()
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs Debian's chromium where apt-get can)")
    from playwright.sync_api import sync_playwright

    live = tmp_path / "live"
    shutil.copytree(world.live_root / "snapshot", live / "snapshot")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    shots = [tmp_path / "screenshots"] + (
        [Path(d)] if (d := os.environ.get("WHALECOPY_SCREENSHOT_DIR")) else []
    )
    for d in shots:
        d.mkdir(parents=True, exist_ok=True)
    whalecopy = str(Path(sys.executable).parent / "whalecopy")
    server = subprocess.Popen([whalecopy, "dashboard", "--port", str(port)], env=_env(world, live,
                              WHALECOPY_DASHBOARD_REFRESH_S="1"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)  # fmt: skip
    loop = None
    try:
        _wait_http(url, server)
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium, headless=True, args=browser.CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            loads = {}
            for name in PAGES:
                t = time.perf_counter()
                page.goto(f"{url}/" if name == "overview" else f"{url}/{name}")
                browser.settle(page, browser.CHARTS[name])
                loads[name] = time.perf_counter() - t
                assert browser.error_boxes(page) == [], name
                drawn = browser.charts_drawn(page)
                assert len(drawn) >= browser.CHARTS[name] and all(drawn), (name, drawn)
                _shoot(page, shots, f"{name}.png")
            print("page loads (s):", json.dumps({k: round(v, 2) for k, v in loads.items()}))

            # a click drills down from a whale to the trades of it we copied
            (wallet, n), = _sql(world, """SELECT s.wallet, count(*) FROM analytics.signals s JOIN analytics.orders o
                                          USING (fill_key) WHERE o.copied GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1""")  # fmt: skip
            page.goto(f"{url}/whales")
            browser.settle(page, browser.CHARTS["whales"])
            page.locator('[data-testid="stSelectbox"]').click()
            page.keyboard.type(wallet[:12])
            page.get_by_role("option", name=re.compile(wallet)).click()
            page.get_by_text(f"Copied trades ({n})").wait_for(timeout=30_000)
            page.get_by_text(f"Whale {wallet}").wait_for(timeout=30_000)
            assert browser.error_boxes(page) == []
            _shoot(page, shots, "whale.png")
            # the ranked table downloads as CSV: every scored wallet, best first. The button's CSV is made on the
            # click from the run that drew it, and a rerun replaces it: wait for the drill-down's run to end first
            browser.settle(page, browser.CHARTS["whales"])
            with page.expect_download(timeout=60_000) as got:
                page.get_by_text("Download whales (CSV)").click()
            lines = Path(got.value.path()).read_text().splitlines()
            (scored,) = _sql(world, "SELECT count(*) FROM analytics.whale_scores WHERE wqs IS NOT NULL AND as_of = "
                                    "(SELECT max(as_of) FROM analytics.whale_scores)")[0]  # fmt: skip
            assert lines[0].startswith("rank,wallet,wqs,") and len(lines) == scored + 1
            # and a click on a row of the ranked table drills down into that row's whale (the second-ranked)
            (second, n2), = _sql(world, """
                WITH s AS (SELECT wallet FROM analytics.whale_scores WHERE wqs IS NOT NULL AND as_of =
                           (SELECT max(as_of) FROM analytics.whale_scores) ORDER BY rank LIMIT 1 OFFSET 1)
                SELECT s.wallet, count(o.key) FILTER (WHERE o.copied) FROM s
                LEFT JOIN analytics.signals g USING (wallet) LEFT JOIN analytics.orders o USING (fill_key) GROUP BY 1""")  # fmt: skip
            page.goto(f"{url}/whales")
            browser.settle(page, browser.CHARTS["whales"])
            browser.click_row(page, 1)
            page.get_by_text(f"Whale {second}").wait_for(timeout=30_000)
            page.get_by_text(f"Copied trades ({n2})").wait_for(timeout=30_000)

            # a decision the live loop commits shows on the Signals page within 5 s, without a reload
            page.goto(f"{url}/signals")
            browser.settle(page, browser.CHARTS["signals"])
            loop = subprocess.Popen([whalecopy, "live", "--source", "sim", "--days", "3", "--speed", "2000"],
                                    env=_env(world, live), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            store = live / "live.sqlite"
            seen: dict[int, float] = {}  # decision seq -> wall time it first showed on the page
            committed: dict[int, float] = {}
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and len(committed) < 3:
                shown = _latest_shown(page)
                if shown is not None:
                    seen.setdefault(shown, time.time())
                if store.exists():
                    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
                    try:
                        for seq, wall in con.execute(
                            "SELECT seq, decided_wall FROM decisions ORDER BY seq LIMIT 3"
                        ):
                            committed[seq] = wall
                    except sqlite3.OperationalError:
                        pass
                    finally:
                        con.close()
                page.wait_for_timeout(200)
            assert committed, "the live loop decided nothing in 240 s"
            first = min(committed)
            shown_at = None
            deadline = time.monotonic() + 10
            while shown_at is None and time.monotonic() < deadline:
                shown_at = min((t for s, t in seen.items() if s >= first), default=None)
                if shown_at is None:
                    if (s := _latest_shown(page)) is not None:
                        seen.setdefault(s, time.time())
                    page.wait_for_timeout(200)
            assert shown_at is not None, f"decision #{first} never showed: the page showed {sorted(seen)}"
            delay = shown_at - committed[first]
            print(f"decision #{first} committed, on the page {delay:.2f} s later")
            assert delay <= 5.0, delay
            assert browser.error_boxes(page) == []
            _shoot(page, shots, "signals-live.png")
            b.close()
    finally:
        for p in (loop, server):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
