"""The dbt marts: true realised P&L on real data, and gates that stop what lies downstream of a failure."""

import io
import json

import duckdb
import numpy as np
import pandas as pd

from orchestration.cli import run_sync
from tests.assets.helpers import small_settings
from tests.conftest import FIXTURES, load_fixture


def test_midterms_realised_pnl_matches_an_independent_recompute(midterms, tmp_path):
    """Per wallet, gross realised P&L from fct_positions equals the per-fill formula of polymarket_api.md §5,
    recomputed in plain pandas from the dump, to 1e-6 relative."""
    path = tmp_path / "midterms.duckdb"
    settings = small_settings(path, source="files", trades_path=str(midterms / "trades.jsonl.gz"),
                              markets_path=str(midterms / "markets.json"))  # fmt: skip
    assert run_sync(settings, out=io.StringIO()).success
    with duckdb.connect(str(path), read_only=True) as con:
        mart = (
            con.execute("SELECT wallet, sum(pnl_gross) FROM marts.fct_positions WHERE is_resolved GROUP BY 1")
            .df()
            .set_index("wallet")
            .iloc[:, 0]
        )
    trades = pd.read_json(midterms / "trades.jsonl.gz", lines=True, dtype={"asset": str})
    payout = {}
    for m in json.loads((midterms / "markets.json").read_text()):
        if m["closed"] and m.get("umaResolutionStatus") == "resolved":
            payout.update(
                zip(json.loads(m["clobTokenIds"]), map(float, json.loads(m["outcomePrices"])), strict=True)
            )
    t = trades[(trades["size"] > 0) & trades["proxyWallet"].str.fullmatch(r"0x[0-9a-f]{40}")].copy()
    t["R"] = t["asset"].map(payout)
    t = t[t["R"].notna()]
    t["pnl"] = np.where(
        t["side"] == "BUY", t["size"] * (t["R"] - t["price"]), t["size"] * (t["price"] - t["R"])
    )
    ref = t.groupby("proxyWallet")["pnl"].sum()
    assert len(ref) > 2000
    assert set(ref.index) == set(mart.index)
    both = pd.concat([ref.rename("ref"), mart.rename("mart")], axis=1)
    np.testing.assert_allclose(both["mart"], both["ref"], rtol=1e-6, atol=1e-6)


def test_marts_on_the_simulated_market(tmp_path):
    settings = small_settings(tmp_path / "w.duckdb")
    result = run_sync(settings, out=io.StringIO())
    assert result.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        n_fills, n_raw = con.execute(
            "SELECT (SELECT count(*) FROM marts.fct_fills), (SELECT count(*) FROM raw.trades)"
        ).fetchone()
        assert n_fills == n_raw
        # positions reconcile with fills; resolved P&L is cash flow + payout x net shares. Per market: the makers'
        # splits and merges move P&L between a market's two positions, and add nothing to the market's
        (bad, n) = con.execute(
            """SELECT count(*) FILTER (WHERE abs(p.g - f.g) > 1e-6 * (1 + abs(f.g))), count(*) FROM (
                   SELECT wallet, condition_id, sum(pnl_gross) AS g FROM marts.fct_positions WHERE is_resolved
                   GROUP BY ALL) p
               JOIN (SELECT wallet, condition_id, sum(pnl_gross) AS g FROM marts.fct_fills WHERE is_resolved
                     GROUP BY ALL) f USING (wallet, condition_id)"""
        ).fetchone()
        assert bad == 0 and n > 1000
        # one row per wallet-day from the first fill to the last day, no gaps
        (gaps,) = con.execute(
            """SELECT count(*) FROM (
                   SELECT wallet, count(*) AS n, datediff('day', min(day), max(day)) + 1 AS span
                   FROM marts.wallet_daily_returns GROUP BY 1) WHERE n <> span"""
        ).fetchone()
        assert gaps == 0
        (non_finite,) = con.execute(
            "SELECT count(*) FROM marts.wallet_daily_returns WHERE daily_return IS NOT NULL AND NOT isfinite(daily_return)"
        ).fetchone()
        assert non_finite == 0
        cats = {r[0] for r in con.execute("SELECT DISTINCT category FROM marts.dim_markets").fetchall()}
        assert (
            cats <= {"Politics", "Sports", "Crypto", "Economics", "Culture", "Tech", "Weather"}
            and len(cats) >= 5
        )
        informed = con.execute(
            """SELECT avg(f.pnl_net / nullif(f.volume, 0)) FROM marts.wallet_features f
               JOIN evaluation.sim_truth t USING (wallet) WHERE t.wallet_type = 'informed'"""
        ).fetchone()[0]
        noise = con.execute(
            """SELECT avg(f.pnl_net / nullif(f.volume, 0)) FROM marts.wallet_features f
               JOIN evaluation.sim_truth t USING (wallet) WHERE t.wallet_type = 'noise'"""
        ).fetchone()[0]
        assert informed > noise  # the simulator's informed traders earn more per dollar traded


def test_a_failing_dbt_test_stops_the_models_downstream(tmp_path):
    """Two markets sharing a token id pass every raw gate; dbt's unique test on int_market_tokens fails, and the
    positions, returns and features models downstream of it are not built."""
    trades = load_fixture("edulabrador_trades.json")
    market = load_fixture("pscanner_market_open.json")
    shared_token = trades[0]["asset"]
    twin = {**market, "conditionId": "0x" + "b" * 64, "clobTokenIds": json.dumps([shared_token, "1" * 70])}
    first = {
        **market,
        "conditionId": trades[0]["conditionId"],
        "clobTokenIds": json.dumps([shared_token, "2" * 70]),
    }
    (tmp_path / "markets.json").write_text(json.dumps([first, twin]))
    (tmp_path / "trades.json").write_text(json.dumps(trades))
    settings = small_settings(tmp_path / "w.duckdb", source="files", trades_path=str(tmp_path / "trades.json"),
                              markets_path=str(tmp_path / "markets.json"))  # fmt: skip
    result = run_sync(settings, out=io.StringIO())
    assert not result.success
    failed = {e.asset_check_key.name for e in result.get_asset_check_evaluations() if not e.passed}
    assert any("unique_int_market_tokens_token_id" in name for name in failed)
    # the step's failure names the failed test and what dbt said of it
    (failure,) = result.get_step_failure_events()
    assert "unique_int_market_tokens_token_id" in failure.step_failure_data.error.message
    assert "Got 1 result" in failure.step_failure_data.error.message
    assert all(
        e.passed for e in result.get_asset_check_evaluations() if e.asset_check_key.name.startswith("raw_")
    )
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        tables = {
            tuple(r)
            for r in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        }
    assert ("intermediate", "int_market_tokens") in tables  # built, then its test failed
    for downstream in ("int_position_fills", "fct_positions", "wallet_daily_returns", "wallet_features"):
        assert not any(t[1] == downstream for t in tables)
    assert FIXTURES.exists()
