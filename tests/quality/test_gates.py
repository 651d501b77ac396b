"""Gates grouped by the step that writes their tables (quality/checks.py): one step, a result per table, and one
failing table's gate stops what lies downstream."""

import dagster as dg
import duckdb
import pytest

from assets.strategy import StrategyConfig
from orchestration.resources import WarehouseResource
from quality.checks import GATES, build_gates

MARTS = {g.asset_key: g.name for g in GATES if g.step == "transform"}
TABLES = {
    "fct_fills": "fill_key BIGINT, price DOUBLE, size DOUBLE, fee DOUBLE, pnl_gross DOUBLE",
    "fct_positions": "wallet VARCHAR, token_id VARCHAR, pnl_gross DOUBLE, fees DOUBLE, cost DOUBLE",
    "wallet_daily_returns": "wallet VARCHAR, day DATE, capital_base DOUBLE, daily_return DOUBLE, return_reason VARCHAR",
    "wallet_features": "wallet VARCHAR, market_hhi DOUBLE, volume DOUBLE, pnl_net DOUBLE",
}
ROWS = {
    "fct_fills": "(1, 0.4, 10.0, 0.08, 1.5), (2, 1.0, 5.0, 0.1, -5.0)",  # a price exactly on its bound passes
    "fct_positions": "('0xa', '1', 1.5, 0.08, 4.0), ('0xa', '2', -5.0, 0.1, 5.0)",
    "wallet_daily_returns": "('0xa', DATE '2026-01-01', 4.0, 0.375, NULL), ('0xa', DATE '2026-01-02', 0.0, NULL, "
    "'pnl_without_capital')",
    "wallet_features": "('0xa', 10000.0, 9.0, -3.68)",  # an HHI of exactly 10,000 (one market) passes
}


def _run(tmp_path, bad_price: float | None) -> dg.ExecuteInProcessResult:
    db = tmp_path / "w.duckdb"

    @dg.multi_asset(name="transform", specs=[dg.AssetSpec(k) for k in MARTS])
    def transform():
        with duckdb.connect(str(db)) as con:
            con.execute("CREATE SCHEMA IF NOT EXISTS marts")
            for table, columns in TABLES.items():
                con.execute(f"CREATE OR REPLACE TABLE marts.{table} ({columns})")
                con.execute(f"INSERT INTO marts.{table} VALUES {ROWS[table]}")
            if bad_price is not None:
                con.execute("UPDATE marts.fct_fills SET price = ? WHERE fill_key = 2", [bad_price])

    @dg.asset(key=["analytics", "whale_scores"], deps=[dg.AssetKey(["marts", "fct_fills"])])
    def whale_scores() -> None:
        pass

    gates = [c for c in build_gates(0.01) if {k.asset_key for k in c.check_keys} & set(MARTS)]
    assert len(gates) == 1  # the four marts' gates: one definition, so one step
    return dg.materialize(
        [transform, whale_scores, *gates],
        resources={"warehouse": WarehouseResource(database=str(db)), "strategy": StrategyConfig()},
        raise_on_error=False,
    )


def _done(result) -> set[str]:
    return {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}


def test_the_marts_gates_run_in_one_step_with_a_result_per_table(tmp_path):
    result = _run(tmp_path, bad_price=None)
    assert result.success
    checks = {e.asset_check_key: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {dg.AssetCheckKey(k, name): True for k, name in MARTS.items()}
    assert _done(result) == {"transform", "transform_gates", "analytics__whale_scores"}


@pytest.mark.parametrize("price", [1.0000001, float("nan")])
def test_one_failing_table_fails_its_own_gate_alone_and_stops_the_downstream(tmp_path, price):
    result = _run(tmp_path, bad_price=price)
    assert not result.success
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {name: name != "fct_fills_expectations" for name in MARTS.values()}
    failed = next(e for e in result.get_asset_check_evaluations() if not e.passed)
    assert "price between 0 and 1" in failed.metadata["failed_because"].value
    assert _done(result) == {"transform"}  # the gates' step failed; whale_scores did not run
