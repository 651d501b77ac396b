"""A gate reads the rows written since its table last passed (quality/checks.py ``Increment``), and still the
whole table where a new row could break a table-wide rule; it reads every row again after a failure, after a
build it cannot carry on from, and when told to (``scope="all"``)."""

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from quality.checks import (
    BY_DAY,
    BY_POSITION,
    GATE_STATE,
    Gate,
    Increment,
    gate_scope,
    record_gate,
    whole_read_due,
)
from quality.expectations import Scope, validate_connection

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TOKEN = "1" * 70
PRICES = Gate(
    "raw_price_history_gate", "raw.price_history", "price_history", increment=Increment(stamp="ingested_at")
)


def _prices(con, rows) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        "CREATE TABLE IF NOT EXISTS raw.price_history (token_id VARCHAR, ts BIGINT, price_date DATE, price DOUBLE, "
        "source VARCHAR, ingested_at TIMESTAMPTZ)"
    )
    for token, ts, price, at in rows:
        con.execute(
            "INSERT INTO raw.price_history VALUES (?, ?, DATE '2026-11-30', ?, 'sim', ?)",
            [token, ts, price, at],
        )


def _failed(result) -> list[str]:
    return [f.split(":")[0] for f in result.failed]


def test_a_scope_reads_its_rows_and_a_new_key_against_every_stored_key():
    con = duckdb.connect()
    # stored before the last pass, one of them out of range: a scoped validation does not read it
    _prices(con, [(TOKEN, 1_764_000_000, 0.5, T0), (TOKEN, 1_764_000_060, 1.5, T0)])
    after = Scope(f"ingested_at > CAST('{T0.isoformat()}' AS TIMESTAMPTZ)", "after T0")
    assert not validate_connection(con, "raw.price_history").success  # the whole table: the 1.5 fails
    empty = validate_connection(con, "raw.price_history", scope=after)
    assert empty.success and empty.rows_checked == 0
    assert empty.statistics["rows_in_scope"] == 0 and empty.statistics["table_rows"] == 2

    # a row exactly at the stamp was read by the last pass; a microsecond after it is new
    at, new = T0, T0 + timedelta(microseconds=1)
    _prices(con, [(TOKEN, 1_764_000_120, 2.0, at), (TOKEN, 1_764_000_180, 0.25, new)])
    ok = validate_connection(con, "raw.price_history", scope=after)
    assert ok.success and ok.statistics["rows_in_scope"] == 1 and ok.rows_checked == 1
    _prices(con, [(TOKEN, 1_764_000_240, 1.0000001, new)])
    assert _failed(validate_connection(con, "raw.price_history", scope=after)) == ["price between 0 and 1"]
    con.execute("DELETE FROM raw.price_history WHERE price > 1 AND ingested_at > ?", [T0])

    # a new row whose key an old row holds: the uniqueness check reads the old rows sharing the new keys
    _prices(con, [(TOKEN, 1_764_000_000, 0.5, new)])
    dup = validate_connection(con, "raw.price_history", scope=after)
    assert _failed(dup) == ["(token_id, ts) unique"]
    assert dup.statistics["expectations"]["(token_id, ts) unique"]["full_table_unexpected"] == 1


def test_a_table_level_check_counts_the_whole_table_whatever_the_scope():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute(
        "CREATE TABLE raw.trades (fill_key UHUGEINT, proxy_wallet VARCHAR, condition_id VARCHAR, asset VARCHAR, "
        "side VARCHAR, size DOUBLE, price DOUBLE, ts BIGINT, ingested_at TIMESTAMPTZ)"
    )
    nothing = Scope("ingested_at > now()", "none")
    result = validate_connection(con, "raw.trades", scope=nothing)
    assert _failed(result) == ["row count >= 1"]  # an empty table fails it, though the scope has no rows
    stats = result.statistics["expectations"]["row count >= 1"]
    assert stats["gx_skipped"] == "no rows in scope" and stats["full_table_unexpected"] == 1


def test_a_gate_carries_on_from_its_last_pass_and_reads_everything_after_a_failure():
    con = duckdb.connect()
    _prices(con, [(TOKEN, 1_764_000_000, 0.5, T0)])
    assert gate_scope(con, PRICES) is None  # never passed: every row
    record_gate(con, PRICES, passed=True, rows_in_scope=1, table_rows=1, whole=True)
    scope = gate_scope(con, PRICES)
    assert scope is not None and T0.isoformat() in scope.where
    assert con.execute(f"SELECT count(*) FROM raw.price_history WHERE {scope.where}").fetchone() == (0,)
    record_gate(con, PRICES, passed=False, rows_in_scope=0, table_rows=1, whole=False)
    assert gate_scope(con, PRICES) is None  # failed: the next run reads every row again
    assert con.execute(f"SELECT count(*) FROM {GATE_STATE}").fetchone() == (0,)
    # once a week every row again: an edit in place keeps its row's stamp. A scoped pass keeps the last whole
    # read's time; a whole read exactly the period ago is due
    record_gate(con, PRICES, passed=True, rows_in_scope=1, table_rows=1, whole=True)
    record_gate(con, PRICES, passed=True, rows_in_scope=0, table_rows=1, whole=False)
    con.execute(f"UPDATE {GATE_STATE} SET whole_at = now() - INTERVAL 1 DAY")
    assert gate_scope(con, PRICES, whole_every_days=1.001) is not None
    assert gate_scope(con, PRICES, whole_every_days=1) is None
    assert gate_scope(con, PRICES) is not None  # the default: a week
    con.execute(f"UPDATE {GATE_STATE} SET whole_at = now() - INTERVAL 7 DAY")
    assert gate_scope(con, PRICES) is None
    record_gate(con, PRICES, passed=False, rows_in_scope=0, table_rows=1, whole=False)
    # a table with no increment is read whole every time and keeps no state
    record_gate(con, Gate("raw_markets_gate", "raw.markets", "markets"), True, 5, 5, whole=True)
    assert gate_scope(con, Gate("raw_markets_gate", "raw.markets", "markets")) is None


def _build(con, build_id: str, previous: str | None) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS intermediate")
    con.execute(
        "CREATE OR REPLACE TABLE intermediate.int_sync_window AS SELECT CAST(? AS UUID) AS build_id, "
        "CAST(? AS UUID) AS previous_build_id",
        [build_id, previous],
    )


B1, B2, B3 = (f"00000000-0000-0000-0000-00000000000{i}" for i in (1, 2, 3))


def test_a_mart_gate_carries_on_only_from_the_build_before_this_one():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.fct_positions AS SELECT 1::UHUGEINT AS position_id, '0xa' AS wallet")
    con.execute("CREATE SCHEMA intermediate")
    con.execute(
        "CREATE TABLE intermediate.int_changes AS SELECT 2::UHUGEINT AS position_id, '0xb' AS wallet, 0 AS since_d"
    )
    gate = Gate("fct_positions_expectations", "marts.fct_positions", step="transform", increment=BY_POSITION)
    _build(con, B1, None)
    assert gate_scope(con, gate) is None  # a first build
    record_gate(con, gate, True, 1, 1, whole=True)
    _build(con, B2, B1)
    scope = gate_scope(con, gate)
    assert scope is not None and scope.where == BY_POSITION.build
    # a build in between that no gate passed (dbt run by hand, or a failed gate): every row
    _build(con, B3, B2)
    assert gate_scope(con, gate) is None
    _build(con, B2, None)  # a full refresh carries on from nothing
    assert gate_scope(con, gate) is None


def test_the_daily_returns_gate_reads_the_changed_days_and_every_day_after_the_last():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.wallet_daily_returns AS SELECT w AS wallet, DATE '2026-01-01' + d::INTEGER AS day "
        "FROM (VALUES ('0xa'), ('0xb')) t(w), range(10) r(d)"
    )
    con.execute("CREATE SCHEMA intermediate")
    # 0xa changed from day 5 (2026-01-06; the epoch day 20459); 0xb only gained the days after the last
    con.execute("CREATE TABLE intermediate.int_changes AS SELECT '0xa' AS wallet, 20459 AS since_d")
    gate = Gate(
        "wallet_daily_returns_expectations", "marts.wallet_daily_returns", step="transform", increment=BY_DAY
    )
    _build(con, B1, None)
    con.execute("DELETE FROM marts.wallet_daily_returns WHERE day >= DATE '2026-01-09'")
    record_gate(con, gate, True, 16, 16, whole=True)  # the last day then: 2026-01-08
    con.execute(
        "INSERT INTO marts.wallet_daily_returns SELECT w, DATE '2026-01-09' + d::INTEGER FROM (VALUES ('0xa'), ('0xb')) t(w), "
        "range(2) r(d)"
    )
    _build(con, B2, B1)
    scope = gate_scope(con, gate)
    got = con.execute(
        f"SELECT wallet, day FROM marts.wallet_daily_returns WHERE {scope.where} ORDER BY 1, 2"
    ).fetchall()
    days = [
        (w, datetime(2026, 1, 1).date() + timedelta(days=d))
        for w, d in [(w, d) for w in ("0xa", "0xb") for d in range(5, 10)]
    ]
    # every wallet's days from the earliest changed day (a superset of 0xa's), and the new days 9 and 10
    assert got == sorted(days)
    assert ("0xb", datetime(2026, 1, 5).date()) not in got  # the day before the earliest change is not read


def test_the_scope_setting_is_checked():
    from quality.checks import build_gates

    with pytest.raises(ValueError, match="gate scope 'some'"):
        build_gates(0.01, scope="some")


def test_the_dbt_tests_read_every_row_when_a_mart_gate_does():
    """``whole_read_due``: the marts' dbt tests follow their gates' cadence (assets/transform/model.py:data_test_scope):
    every row until each gate has passed, after one fails, and once a week, exactly at the period."""
    con = duckdb.connect()
    marts = ["marts.fct_positions", "raw.price_history"]
    assert whole_read_due(con, marts) == "no gate has passed yet"
    _prices(con, [(TOKEN, 1_764_000_000, 0.5, T0)])
    record_gate(con, PRICES, passed=True, rows_in_scope=1, table_rows=1, whole=True)
    assert "marts.fct_positions has not passed" in whole_read_due(con, marts)
    assert whole_read_due(con, ["raw.price_history"]) is None
    con.execute(f"UPDATE {GATE_STATE} SET whole_at = now() - INTERVAL 1 DAY")
    assert whole_read_due(con, ["raw.price_history"], whole_every_days=1.001) is None
    assert "weekly" in whole_read_due(con, ["raw.price_history"], whole_every_days=1)
    record_gate(con, PRICES, passed=False, rows_in_scope=0, table_rows=1, whole=False)
    assert "has not passed" in whole_read_due(con, ["raw.price_history"])
