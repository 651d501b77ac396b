"""The raw assets end to end on the simulated Polymarket: exactly once, idempotent, gated, fault tolerant."""

import collections
import io

import duckdb
import numpy as np
import pytest

from assets.ingest import ingest
from assets.ingest.http import RetriesExhaustedError
from assets.ingest.resources import PolymarketResource
from assets.ingest.sim_api import CLOB_URL, DATA_URL, GAMMA_URL, FaultInjector, FaultPlan, SimPolymarket
from assets.ingest.sources import build_api_source
from assets.ingest.store import ensure_raw
from orchestration.cli import run_sync
from tests.assets.helpers import content_hash, small_settings, tape_keys, warehouse_keys


def sync(settings, **kw):
    return run_sync(settings, out=io.StringIO(), **kw)


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    settings = small_settings(path, sim_dirty_share=0.002)
    result = sync(settings)
    assert result.success
    return settings, result


def test_every_fill_is_stored_exactly_once_and_every_bad_one_quarantined(synced):
    settings, _ = synced
    pm = PolymarketResource(sim_scale=settings.sim_scale, sim_seed=settings.sim_seed)
    world = pm.world()
    dirty = SimPolymarket(world, dirty_share=settings.sim_dirty_share).dirty_rows(np.arange(len(world.tape)))
    stored = warehouse_keys(settings.warehouse_path)
    assert len(stored) == len(set(stored))  # no duplicates
    assert collections.Counter(stored) == collections.Counter(tape_keys(world, exclude=dirty))  # nothing lost
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        reasons = dict(con.execute("SELECT reason_code, count(*) FROM raw.quarantine GROUP BY 1").fetchall())
        (n_markets,) = con.execute("SELECT count(*) FROM raw.markets").fetchone()
        (n_truth,) = con.execute("SELECT count(*) FROM evaluation.sim_truth").fetchone()
    assert sum(reasons.values()) == dirty.sum() > 0
    assert set(reasons) <= {"size_not_positive", "timestamp_millis", "bad_wallet"}
    assert n_markets == len(world.markets) and n_truth == len(world.wallets)


def test_every_asset_key_is_its_warehouse_table(synced):
    settings, result = synced
    keys = {tuple(m.asset_key.path) for m in result.get_asset_materialization_events()
            for m in [m.step_materialization_data.materialization]}  # fmt: skip
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        tables = set(con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall())
    assert {("raw", "markets"), ("raw", "leaderboard"), ("raw", "trades"), ("raw", "price_history"),
            ("evaluation", "sim_truth"), ("marts", "fct_positions")} <= keys  # fmt: skip
    assert keys <= tables  # every asset is the table of its name


@pytest.mark.long  # the whole job twice more (about 200 s): make test-long, which CI runs after make test
def test_ingesting_twice_leaves_identical_tables(synced):
    """The whole job run again, then again refetching every window: the raw tables are not even rewritten (load
    stamps included), and every other table and view has the same content hash (run stamps left out)."""
    from tests.reliability.hashing import differences, warehouse_hashes

    settings, _ = synced
    tables = {
        "raw.trades": "fill_key",
        "raw.markets": "condition_id",
        "raw.price_history": "token_id, ts",
        "raw.quarantine": "record_key",
        "raw.leaderboard": "order_by, proxy_wallet",
        "raw.ingest_state": "stream",
    }
    before = {t: content_hash(settings.warehouse_path, t, o) for t, o in tables.items()}
    whole_before = warehouse_hashes(settings.warehouse_path)
    assert sync(settings).success  # covered windows: nothing fetched
    assert sync(settings, refetch=True).success  # everything fetched again: repeats dropped
    after = {t: content_hash(settings.warehouse_path, t, o) for t, o in tables.items()}
    assert after == before
    assert len(whole_before) > 30
    diff = differences(whole_before, warehouse_hashes(settings.warehouse_path))
    assert not diff, "running the job again changed tables:\n" + "\n".join(diff)


def test_cursor_is_committed_with_the_rows(synced):
    settings, _ = synced
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        n_streams, loaded = con.execute(
            "SELECT count(*), sum(last_rows) FROM raw.ingest_state WHERE starts_with(stream, 'trades/market/')"
        ).fetchone()
        (n_markets,) = con.execute("SELECT count(*) FROM raw.markets").fetchone()
        (n_trades,) = con.execute("SELECT count(*) FROM raw.trades").fetchone()
    assert n_streams == n_markets
    assert loaded >= n_trades  # per-market accepted rows (page-boundary repeats counted where fetched twice)


def test_a_failing_gate_stops_the_downstream_assets(tmp_path):
    settings = small_settings(tmp_path / "w.duckdb", sim_dirty_share=0.01, quarantine_max_share=0.001)
    result = sync(settings)
    assert not result.success
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["raw_trades_gate"] is False
    done = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert "raw__trades" in done
    assert "raw__price_history" not in done and "evaluation__sim_truth" not in done
    assert "transform" not in done  # the dbt models downstream of raw.trades did not run either
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "sim_truth" not in tables


def _source(world, transport, sleeps, attempts=10):
    return build_api_source(
        "sim", data_url=DATA_URL, gamma_url=GAMMA_URL, clob_url=CLOB_URL, transport=transport, limits={},
        now_ts=world.now, sleep=sleeps.append, max_attempts=attempts, offset_cap=3000,
    )  # fmt: skip


def test_a_storm_of_429s_and_5xx_stores_every_row_exactly_once(tmp_path):
    pm = PolymarketResource(sim_scale=0.03, sim_seed=7)
    world = pm.world()
    plan = FaultPlan(p_429=0.15, retry_after_share=0.5, retry_after_s=2.5, p_5xx=0.1, p_timeout=0.03, p_reset=0.03,
                     seed=42)  # fmt: skip
    faults = FaultInjector(SimPolymarket(world, dirty_share=0.0), plan)
    sleeps: list[float] = []
    src = _source(world, faults, sleeps)
    con = duckdb.connect(str(tmp_path / "storm.duckdb"))
    ensure_raw(con)
    ingest.ingest_markets(con, src)
    report = ingest.ingest_trades(
        con, src, start=world.config.start_ts, end=world.now - 1, markets_per_request=5
    )
    assert report.pages > 50  # a multi-page backfill
    assert faults.injected.get("429_retry_after", 0) >= 5 and faults.injected.get("503", 0) >= 5
    stored = con.execute(
        "SELECT transaction_hash, proxy_wallet, asset, side, size, price, ts FROM raw.trades"
    ).fetchall()
    assert collections.Counter(stored) == collections.Counter(tape_keys(world))
    assert sleeps.count(2.5) >= faults.injected["429_retry_after"]  # Retry-After honoured every time


def test_a_persistent_failure_fails_naming_the_endpoint_and_keeps_the_cursor(tmp_path):
    pm = PolymarketResource(sim_scale=0.03, sim_seed=7)
    world = pm.world()
    sim = SimPolymarket(world, dirty_share=0.0)

    class BrokenTrades(FaultInjector):
        def handle_request(self, request):
            if request.url.path == "/trades" and self.count > 3:
                self.count += 1
                import httpx

                return httpx.Response(502, content=b"bad gateway")
            self.count += 1
            return sim.handle_request(request)

    src = _source(world, BrokenTrades(sim, FaultPlan()), [], attempts=3)
    con = duckdb.connect(str(tmp_path / "broken.duckdb"))
    ensure_raw(con)
    ingest.ingest_markets(con, src)
    with pytest.raises(RetriesExhaustedError, match=r"HTTP 502.*sim-data-api\.polymarket\.local/trades\?"):
        ingest.ingest_trades(con, src, start=world.config.start_ts, end=world.now - 1)
    assert (
        con.execute("SELECT count(*) FROM raw.ingest_state WHERE stream LIKE 'trades/%'").fetchone()[0] == 0
    )
    assert con.execute("SELECT count(*) FROM raw.trades").fetchone()[0] == 0


def test_wallet_scope_reads_the_whale_universe(tmp_path):
    pm = PolymarketResource(sim_scale=0.03, sim_seed=7)
    world = pm.world()
    src = _source(world, SimPolymarket(world, dirty_share=0.0), [])
    con = duckdb.connect(str(tmp_path / "wallets.duckdb"))
    ensure_raw(con)
    ingest.ingest_markets(con, src)
    ingest.ingest_leaderboard(con, src, limit=20)
    report = ingest.ingest_trades(con, src, start=world.config.start_ts, end=world.now - 1, scope="wallets",
                                  large_trade_usd=50_000)  # fmt: skip
    universe = set(ingest.universe_wallets(con))
    stored = {r[0] for r in con.execute("SELECT DISTINCT proxy_wallet FROM raw.trades").fetchall()}
    assert universe <= stored and report.streams_done >= len(universe)
    # every fill of a universe wallet, maker fills included
    addr = world.wallets["address"].to_numpy()
    expected = sum(1 for w in world.tape.wallet if addr[w] in universe)
    (got,) = con.execute(
        "SELECT count(*) FROM raw.trades WHERE proxy_wallet IN (SELECT proxy_wallet FROM raw.leaderboard)"
    ).fetchone()
    assert got == expected


def test_the_simulated_leaderboard_pages_one_ranking_computed_once(monkeypatch):
    """The simulator ranks the board once per world time and pages through it: the pages, joined, are the ranking
    computed fresh, with no wallet twice or left out, for both orderings."""
    import httpx

    from assets.ingest.sim_api import DATA_HOST

    world = PolymarketResource(sim_scale=0.03, sim_seed=7).world()
    sim = SimPolymarket(world, dirty_share=0.0)
    calls = []
    frame = sim.leaderboard_frame
    monkeypatch.setattr(sim, "leaderboard_frame", lambda *a: calls.append(a) or frame(*a))
    for order_by, column in (("PNL", "pnl"), ("VOL", "vol")):
        got = []
        for offset in range(0, 150, 50):
            url = f"https://{DATA_HOST}/v1/leaderboard?timePeriod=ALL&orderBy={order_by}&limit=50&offset={offset}"
            got += [r["proxyWallet"] for r in sim.handle_request(httpx.Request("GET", url)).json()]
        fresh = frame("ALL", "OVERALL").sort_values([column, "proxyWallet"], ascending=[False, True])
        assert got == fresh["proxyWallet"].head(150).tolist()
    assert calls == [("ALL", "OVERALL")]  # once, not once per page or ordering


def test_the_live_source_uses_the_real_hosts_and_documented_limits():
    pm = PolymarketResource(source="live")
    with pm.open() as src:
        assert src.data.api.base_url == "https://data-api.polymarket.com"
        assert src.gamma.api.base_url == "https://gamma-api.polymarket.com"
        assert src.clob.api.base_url == "https://clob.polymarket.com"
        assert src.data.api._bucket("/trades").capacity == 200  # per 10 s (polymarket_api.md §3)
        assert src.gamma.api._bucket("/markets/keyset").capacity == 300
        assert src.data.api._bucket("/v1/leaderboard").capacity == 1000


@pytest.mark.long  # a whole sync through a throttling API (about 80 s): make test-long
def test_a_throttled_sim_still_loads_everything(tmp_path):
    settings = small_settings(tmp_path / "t.duckdb", sim_throttle_share=0.05, sim_dirty_share=0.0)
    result = sync(settings)
    assert result.success
    world = PolymarketResource(sim_scale=settings.sim_scale, sim_seed=settings.sim_seed).world()
    assert collections.Counter(warehouse_keys(settings.warehouse_path)) == collections.Counter(
        tape_keys(world)
    )


def test_a_cloudflare_page_fails_the_run_naming_the_url_and_is_kept(tmp_path):
    from assets.ingest.assets import keeping_bad_bodies
    from assets.ingest.http import NonJsonBodyError

    world = PolymarketResource(sim_scale=0.03, sim_seed=7).world()
    faults = FaultInjector(SimPolymarket(world, dirty_share=0.0), FaultPlan(scripted={4: "html403"}))
    src = _source(world, faults, [])
    con = duckdb.connect(str(tmp_path / "cf.duckdb"))
    ensure_raw(con)
    ingest.ingest_markets(con, src)  # requests 1-2: open and closed markets
    with pytest.raises(NonJsonBodyError, match=r"Cloudflare.*sim-data-api\.polymarket\.local/trades\?"):
        with keeping_bad_bodies(con, "trades", "sim"):
            ingest.ingest_trades(con, src, start=world.config.start_ts, end=world.now - 1)
    kept = con.execute("SELECT reason_code, origin, record FROM raw.quarantine").fetchall()
    assert len(kept) == 1 and kept[0][0] == "non_json_body"
    assert "/trades?" in kept[0][1] and "Just a moment" in kept[0][2]
    assert (
        con.execute("SELECT count(*) FROM raw.ingest_state WHERE stream LIKE 'trades/%'").fetchone()[0] == 0
    )


def test_a_gx_gate_catches_a_bad_row_written_behind_ingestions_back(tmp_path):
    # an edit in place keeps its row's ingested_at: the gates' daily scope reads it at their weekly whole read
    # (tests/quality/test_gate_scope.py), and `WHALECOPY_GATE_SCOPE=all` reads it on the next run
    settings = small_settings(tmp_path / "w.duckdb", sim_dirty_share=0.0, gate_scope="all")
    assert sync(settings).success
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "UPDATE raw.trades SET price = 1.5 WHERE fill_key = (SELECT min(fill_key) FROM raw.trades)"
        )
    result = sync(
        settings
    )  # every window covered: nothing new is fetched, the gate validates the table again
    assert not result.success
    gate = next(
        e for e in result.get_asset_check_evaluations() if e.asset_check_key.name == "raw_trades_gate"
    )
    assert not gate.passed
    assert "price between 0 and 1" in gate.metadata["failed_because"].value
    done = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert "transform" not in done and "raw__price_history" not in done
