"""GX suites on the raw tables: clean data passes, each kind of violation fails by name, the sampled path stays exact."""

import dataclasses
import json
import os
import time

import duckdb
import great_expectations as gx
import pytest

from assets.ingest.store import ensure_raw
from quality import expectations as ex
from quality.expectations import GX_BATCH_ROWS, SUITES, SuiteResult, TableSuite, suite_for, validate_table

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

TRADES_SQL = """
INSERT INTO raw.trades BY NAME
SELECT md5_number('fill-' || i::VARCHAR) AS fill_key,
       '0x' || lpad(printf('%x', i % 50), 40, '0') AS proxy_wallet,
       CASE WHEN i % 2 = 0 THEN 'BUY' ELSE 'SELL' END AS side,
       (1000000000000000000000000000000 + i % 7)::VARCHAR AS asset,
       '0x' || md5('m' || (i % 5)::VARCHAR) || md5('n' || (i % 5)::VARCHAR) AS condition_id,
       1.0 + (i % 7) AS size,
       (i % 101) / 100.0 AS price,
       1700000000 + i AS ts,
       DATE '1970-01-01' + CAST((1700000000 + i) // 86400 AS INTEGER) AS trade_date,
       'Yes' AS outcome, 0 AS outcome_index, 'sim' AS source, now() AS ingested_at
FROM range({n}) t(i)
"""
MARKETS_SQL = """
INSERT INTO raw.markets BY NAME
SELECT '0x' || md5('m' || i::VARCHAR) || md5('n' || i::VARCHAR) AS condition_id,
       i % 2 = 0 AS closed, '["Yes", "No"]' AS outcomes, '["1", "2"]' AS clob_token_ids,
       'sim' AS source, md5_number(i::VARCHAR) AS content_hash, now() AS fetched_at
FROM range({n}) t(i)
"""
PRICES_SQL = """
INSERT INTO raw.price_history BY NAME
SELECT (1000 + i % 10)::VARCHAR AS token_id, 1700000000 + 86400 * (i // 10) AS ts,
       DATE '1970-01-01' + CAST((1700000000 + 86400 * (i // 10)) // 86400 AS INTEGER) AS price_date,
       (i % 11) / 10.0 AS price, 'sim' AS source, now() AS ingested_at
FROM range({n}) t(i)
"""


def make_warehouse(path, *statements: str, trades: int = 200, markets: int = 5, prices: int = 100) -> str:
    con = duckdb.connect(str(path))
    try:
        ensure_raw(con)
        con.execute(TRADES_SQL.format(n=trades))
        con.execute(MARKETS_SQL.format(n=markets))
        con.execute(PRICES_SQL.format(n=prices))
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()
    return str(path)


def failed_checks(result: SuiteResult) -> set[str]:
    return {name for name, s in result.statistics["expectations"].items() if not s["success"]}


def test_clean_tables_pass(tmp_path):
    path = make_warehouse(tmp_path / "w.duckdb")
    expected_rows = {"raw.trades": 200, "raw.markets": 5, "raw.price_history": 100}
    for table, rows in expected_rows.items():
        result = validate_table(path, table)
        assert result.success, result.failed
        assert result.failed == []
        assert result.evaluated == len(SUITES[table].checks) == len(result.statistics["expectations"])
        assert result.rows_checked == rows
        assert result.statistics["table_rows"] == rows and result.statistics["sampled"] is False
        assert all(
            s["gx_success"] and s["full_table_unexpected"] == 0
            for s in result.statistics["expectations"].values()
        )


VIOLATIONS = {
    "wallet_uppercase": (
        "UPDATE raw.trades SET proxy_wallet = '0x' || repeat('A', 40) WHERE ts = 1700000007",
        {"proxy_wallet matches ^0x[0-9a-f]{40}$"},
    ),
    "wallet_username": (
        "UPDATE raw.trades SET proxy_wallet = 'redkollantai' WHERE ts = 1700000007",
        {"proxy_wallet matches ^0x[0-9a-f]{40}$"},
    ),
    "condition_id_short": (
        "UPDATE raw.trades SET condition_id = '0xabc' WHERE ts = 1700000007",
        {"condition_id matches ^0x[0-9a-f]{64}$"},
    ),
    "asset_not_decimal": (
        "UPDATE raw.trades SET asset = '12e5' WHERE ts = 1700000007",
        {"asset matches ^[0-9]{1,78}$"},
    ),
    "side_lowercase": ("UPDATE raw.trades SET side = 'buy' WHERE ts = 1700000007", {"side in {BUY, SELL}"}),
    "size_zero": ("UPDATE raw.trades SET size = 0 WHERE ts = 1700000007", {"size > 0 and <= 1e11"}),
    "size_inf": (
        "UPDATE raw.trades SET size = 'inf'::DOUBLE WHERE ts = 1700000007",
        {"size > 0 and <= 1e11"},
    ),
    "price_above_1": ("UPDATE raw.trades SET price = 1.5 WHERE ts = 1700000007", {"price between 0 and 1"}),
    "price_negative": (
        "UPDATE raw.trades SET price = -0.01 WHERE ts = 1700000007",
        {"price between 0 and 1"},
    ),
    # NaN is a missing value to pandas, so GX's between skips it: not_null catches it in the batch, and the
    # full-table SQL counts it against both.
    "price_nan": (
        "UPDATE raw.trades SET price = 'nan'::DOUBLE WHERE ts = 1700000007",
        {"price between 0 and 1", "price not null"},
    ),
    "size_nan": (
        "UPDATE raw.trades SET size = 'nan'::DOUBLE WHERE ts = 1700000007",
        {"size > 0 and <= 1e11", "size not null"},
    ),
    "duplicate_fill_key": (
        "UPDATE raw.trades SET fill_key = md5_number('fill-3') WHERE ts = 1700000007",
        {"fill_key unique"},
    ),
    "future_ts": (
        "UPDATE raw.trades SET ts = epoch(now())::BIGINT + 3600 WHERE ts = 1700000007",
        {"ts between 1500000000 and now+300"},
    ),
    "ts_too_old": (
        "UPDATE raw.trades SET ts = 1400000000 WHERE ts = 1700000007",
        {"ts between 1500000000 and now+300"},
    ),
    "empty_table": ("DELETE FROM raw.trades", {"row count >= 1"}),
}


@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_each_violation_fails_the_trades_suite_by_name(tmp_path, case):
    statement, expected = VIOLATIONS[case]
    result = validate_table(make_warehouse(tmp_path / "w.duckdb", statement), "raw.trades")
    assert not result.success
    assert failed_checks(result) == expected
    assert len(result.failed) == len(expected)
    for name in expected:
        assert any(line.startswith(f"{name}: ") for line in result.failed), result.failed
        stats = result.statistics["expectations"][name]
        if case != "empty_table":
            assert stats["full_table_unexpected"] == 1
    # the whole table is the batch here, so GX itself sees every violation (except NaN for between, see below)
    gx_blind = {"price between 0 and 1", "size > 0 and <= 1e11"} if case.endswith("_nan") else set()
    for name in expected - gx_blind:
        assert result.statistics["expectations"][name]["gx_success"] is False


def test_nan_alone_slips_through_gx_between_which_is_why_not_null_is_in_the_suite(tmp_path):
    path = make_warehouse(
        tmp_path / "w.duckdb", "UPDATE raw.trades SET price = 'nan'::DOUBLE WHERE ts = 1700000007"
    )
    stats = validate_table(path, "raw.trades").statistics["expectations"]
    assert stats["price between 0 and 1"]["gx_success"] is True  # pandas: NaN is missing, so between skips it
    assert stats["price between 0 and 1"]["full_table_unexpected"] == 1  # DuckDB: isfinite() rejects it
    assert stats["price not null"]["gx_success"] is False
    assert stats["price not null"]["batch_unexpected"] == 1


def test_trailing_newline_wallet_is_caught_by_the_full_match(tmp_path):
    # Python's re: '$' matches before a final newline, so GX passes it; RE2's full match in DuckDB does not
    wallet = "0x" + "a" * 40
    path = make_warehouse(
        tmp_path / "w.duckdb",
        f"UPDATE raw.trades SET proxy_wallet = '{wallet}' || chr(10) WHERE ts = 1700000007",
    )
    result = validate_table(path, "raw.trades")
    assert not result.success
    assert failed_checks(result) == {"proxy_wallet matches ^0x[0-9a-f]{40}$"}
    assert (
        result.statistics["expectations"]["proxy_wallet matches ^0x[0-9a-f]{40}$"]["full_table_unexpected"]
        == 1
    )


def test_failed_lines_carry_observed_values(tmp_path):
    path = make_warehouse(tmp_path / "w.duckdb", "UPDATE raw.trades SET price = 1.5 WHERE ts = 1700000007")
    result = validate_table(path, "raw.trades")
    (line,) = result.failed
    assert line.startswith("price between 0 and 1: ")
    assert "1 of 200 rows violate it in the full table" in line
    assert "1.5" in line
    assert result.statistics["expectations"]["price between 0 and 1"]["examples"] == [1.5]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "UPDATE raw.markets SET closed = NULL WHERE condition_id = (SELECT min(condition_id) FROM raw.markets)",
            {"closed not null"},
        ),
        (
            "UPDATE raw.markets SET outcomes = NULL WHERE condition_id = (SELECT min(condition_id) FROM raw.markets)",
            {"outcomes not null"},
        ),
        (
            "UPDATE raw.markets SET clob_token_ids = NULL "
            "WHERE condition_id = (SELECT min(condition_id) FROM raw.markets)",
            {"clob_token_ids not null"},
        ),
        (
            "INSERT INTO raw.markets BY NAME SELECT '0X' || repeat('a', 64) AS condition_id, true AS closed, "
            "'[]' AS outcomes, '[]' AS clob_token_ids, 'sim' AS source, 1::UHUGEINT AS content_hash, "
            "now() AS fetched_at",
            {"condition_id matches ^0x[0-9a-f]{64}$"},
        ),
    ],
)
def test_markets_violations(tmp_path, statement, expected):
    result = validate_table(make_warehouse(tmp_path / "w.duckdb", statement), "raw.markets")
    assert not result.success
    assert failed_checks(result) == expected


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "UPDATE raw.price_history SET price = 1.5 WHERE token_id = '1003' AND ts = 1700000000",
            {"price between 0 and 1"},
        ),
        (
            "UPDATE raw.price_history SET price = 'nan'::DOUBLE WHERE token_id = '1003' AND ts = 1700000000",
            {"price between 0 and 1", "price not null"},
        ),
        (
            "UPDATE raw.price_history SET token_id = 'tok' WHERE token_id = '1003' AND ts = 1700000000",
            {"token_id matches ^[0-9]{1,78}$"},
        ),
    ],
)
def test_price_history_violations(tmp_path, statement, expected):
    result = validate_table(make_warehouse(tmp_path / "w.duckdb", statement), "raw.price_history")
    assert not result.success
    assert failed_checks(result) == expected


def test_large_table_sampled_path_still_counts_violations_exactly(tmp_path):
    path = make_warehouse(
        tmp_path / "w.duckdb",
        "UPDATE raw.trades SET size = 0 WHERE ts IN (1700000011, 1700123456, 1700299998)",
        "UPDATE raw.trades SET fill_key = md5_number('fill-5') WHERE ts = 1700250000",
        trades=300_000,
    )
    result = validate_table(path, "raw.trades")
    assert result.rows_checked == GX_BATCH_ROWS
    assert result.statistics["sampled"] is True and result.statistics["table_rows"] == 300_000
    assert not result.success
    assert failed_checks(result) == {"size > 0 and <= 1e11", "fill_key unique"}
    stats = result.statistics["expectations"]
    assert stats["size > 0 and <= 1e11"]["full_table_unexpected"] == 3
    assert stats["fill_key unique"]["full_table_unexpected"] == 1
    assert any(line.startswith("size > 0 and <= 1e11: 3 of 300000 rows violate it") for line in result.failed)

    # a tiny batch almost surely misses a single bad row; the full-table count does not
    small = validate_table(path, "raw.trades", max_rows=1_000)
    assert small.rows_checked == 1_000 and not small.success
    assert small.statistics["expectations"]["size > 0 and <= 1e11"]["full_table_unexpected"] == 3

    # the sample is deterministic
    again = validate_table(path, "raw.trades", max_rows=1_000)
    assert {k: v for k, v in again.statistics.items() if k != "now"} == {
        k: v for k, v in small.statistics.items() if k != "now"
    }


def test_clean_large_table_passes_on_the_sampled_path(tmp_path):
    path = make_warehouse(tmp_path / "w.duckdb", trades=5_000)
    result = validate_table(path, "raw.trades", max_rows=500)
    assert result.success, result.failed
    assert result.rows_checked == 500 and result.statistics["sampled"] is True


def test_results_are_json_serialisable(tmp_path):
    path = make_warehouse(
        tmp_path / "w.duckdb",
        "UPDATE raw.trades SET price = 'nan'::DOUBLE WHERE ts = 1700000001",
        "UPDATE raw.trades SET size = 'inf'::DOUBLE WHERE ts = 1700000002",
        "UPDATE raw.trades SET fill_key = md5_number('fill-3') WHERE ts = 1700000004",
    )
    for table in SUITES:
        result = validate_table(path, table)
        text = json.dumps(dataclasses.asdict(result), allow_nan=False)
        assert json.loads(text)["suite"] == table
    assert not validate_table(path, "raw.trades").success


def test_suite_for_is_a_gx_suite_written_in_code():
    now = 1_800_000_000
    suite = suite_for("raw.trades", now=now)
    assert isinstance(suite, gx.ExpectationSuite)
    assert suite.name == "raw.trades"
    by_check = {e.meta["check"]: e for e in suite.expectations}
    wallet = by_check["proxy_wallet matches ^0x[0-9a-f]{40}$"]
    assert isinstance(wallet, gx.expectations.ExpectColumnValuesToMatchRegex)
    assert wallet.regex == ex.WALLET_RE
    ts = by_check["ts between 1500000000 and now+300"]
    assert (ts.min_value, ts.max_value) == (1_500_000_000, now + 300)
    size = by_check["size > 0 and <= 1e11"]
    assert size.strict_min and size.min_value == 0
    assert isinstance(by_check["fill_key unique"], gx.expectations.ExpectColumnValuesToBeUnique)
    prices = {e.meta["check"]: e for e in suite_for("raw.price_history").expectations}
    assert prices["(token_id, ts) unique"].column_list == ["token_id", "ts"]
    with pytest.raises(KeyError, match="no expectation suite"):
        suite_for("raw.nope")


def test_missing_table_fails(tmp_path):
    path = str(tmp_path / "empty.duckdb")
    duckdb.connect(path).close()
    result = validate_table(path, "raw.trades")
    assert not result.success and result.evaluated == 0
    assert result.failed == ["raw.trades does not exist"]


def test_works_while_this_process_holds_the_file_open_read_write(tmp_path):
    path = make_warehouse(tmp_path / "w.duckdb")
    writer = duckdb.connect(path)
    try:
        assert validate_table(path, "raw.trades").success
        assert writer.execute("SELECT count(*) FROM raw.trades").fetchone()[0] == 200
    finally:
        writer.close()


def test_a_new_suite_is_a_few_lines_and_works_on_views(tmp_path, monkeypatch):
    """The pattern for later mart suites: a TableSuite of check builders, keyed by "schema.table"."""
    path = make_warehouse(
        tmp_path / "w.duckdb",
        "CREATE SCHEMA marts",
        "CREATE TABLE marts.fills AS SELECT fill_key, proxy_wallet, asset, ts, price FROM raw.trades",
        "INSERT INTO marts.fills SELECT * FROM marts.fills WHERE ts = 1700000009",  # a duplicate (asset, ts)
        "CREATE VIEW marts.fills_v AS SELECT * FROM marts.fills",
    )
    for table in ("marts.fills", "marts.fills_v"):
        monkeypatch.setitem(
            SUITES,
            table,
            TableSuite(
                table,
                (
                    ex.compound_unique("asset", "ts"),
                    ex.between("price", 0, 1),
                    ex.not_null("price"),
                    ex.row_count_at_least(100),
                ),
            ),
        )
        result = validate_table(path, table, max_rows=50)  # sampled: a view takes the plain reservoir path
        assert result.rows_checked == 50 and result.statistics["sampled"]
        assert not result.success
        assert failed_checks(result) == {"(asset, ts) unique"}
        assert result.statistics["expectations"]["(asset, ts) unique"]["full_table_unexpected"] == 1
        assert result.statistics["expectations"]["row count >= 100"]["success"]


def test_a_missing_column_fails_that_expectation_only(tmp_path, monkeypatch):
    path = make_warehouse(tmp_path / "w.duckdb")
    monkeypatch.setitem(
        SUITES,
        "raw.price_history",
        TableSuite(
            "raw.price_history",
            (
                ex.not_null("price"),
                ex.not_null("no_such_column"),
            ),
        ),
    )
    result = validate_table(path, "raw.price_history")
    assert failed_checks(result) == {"no_such_column not null"}
    stats = result.statistics["expectations"]["no_such_column not null"]
    assert str(stats["full_table_unexpected"]).startswith("error:")
    assert "gx_error" in stats


def test_ts_bound_moves_with_now(tmp_path):
    ts = int(time.time()) + 120  # 2 minutes ahead: within the 5-minute slack
    path = make_warehouse(tmp_path / "w.duckdb", f"UPDATE raw.trades SET ts = {ts} WHERE ts = 1700000007")
    assert validate_table(path, "raw.trades").success


def test_one_sided_bound_still_rejects_nan_and_inf(tmp_path, monkeypatch):
    # GX passes both (NaN is missing to pandas, inf >= 0); the full-table SQL requires isfinite on DOUBLE columns
    path = make_warehouse(
        tmp_path / "w.duckdb",
        "CREATE SCHEMA marts",
        "CREATE TABLE marts.pnl AS SELECT i::DOUBLE AS pnl FROM range(10) t(i)",
        "INSERT INTO marts.pnl VALUES ('inf'::DOUBLE), ('nan'::DOUBLE)",
    )
    monkeypatch.setitem(SUITES, "marts.pnl", TableSuite("marts.pnl", (ex.between("pnl", 0),)))
    result = validate_table(path, "marts.pnl")
    assert not result.success
    (line,) = result.failed
    assert line.startswith("pnl >= 0: 2 of 12 rows violate it in the full table")
    assert result.statistics["expectations"]["pnl >= 0"]["gx_success"] is True


def test_gx_failure_alone_fails_the_suite(tmp_path, monkeypatch):
    # an expectation passes only when GX passes it too, whatever the SQL count says
    path = make_warehouse(tmp_path / "w.duckdb")
    check = ex.Check(
        "price <= 0.1 (GX only)",
        ("price",),
        lambda env: gx.expectations.ExpectColumnValuesToBeBetween(column="price", max_value=0.1),
        lambda env: "0",
    )
    monkeypatch.setitem(SUITES, "raw.trades", TableSuite("raw.trades", (check,)))
    result = validate_table(path, "raw.trades")
    assert not result.success
    (line,) = result.failed
    assert line.startswith("price <= 0.1 (GX only): GX: ")
    assert result.statistics["expectations"]["price <= 0.1 (GX only)"]["full_table_unexpected"] == 0


def test_uhugeint_reaches_gx_as_its_exact_decimal_text(tmp_path):
    top = 2**128 - 1
    path = make_warehouse(
        tmp_path / "w.duckdb",
        f"UPDATE raw.trades SET fill_key = {top}::UHUGEINT WHERE ts IN (1700000001, 1700000002)",
    )
    stats = validate_table(path, "raw.trades").statistics["expectations"]["fill_key unique"]
    assert stats["examples"] == [str(top), str(top)]
    edges = [0, 1, 10**19 - 1, 10**19, 10**19 + 7, 2**127 - 1, 2**127, 2**127 + 10**19, top]
    con = duckdb.connect()
    con.execute("CREATE TABLE k (fill_key UHUGEINT)")
    con.executemany("INSERT INTO k VALUES (?::UHUGEINT)", [[str(v)] for v in edges])
    got = con.execute(f"SELECT {ex._fetch_expr('fill_key', 'UHUGEINT')} FROM k").df()["fill_key"].tolist()
    assert got == [str(v) for v in edges]


ORDERS_SQL = """
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE TABLE analytics.orders AS
SELECT k::UHUGEINT AS fill_key, k AS key, 20000 AS day, 10000.0 AS nav, 0.0 AS correlation, 0.0 AS exposure_after,
       0.0 AS drawdown, f AS fraction, 100.0 AS shares, 50.0 AS notional, true AS copied, NULL::VARCHAR AS reason
FROM (VALUES (1, 0.08), (2, 0.09)) t(k, f)
"""  # one order exactly at the default 8% cap, one above it


def test_the_orders_gate_reads_the_position_cap_from_the_run_strategy(tmp_path):
    """No config bound is copied into a gate: the orders gate takes the cap from the run's StrategyConfig, so
    raising the cap moves the gate, in the suite and in the blocking Dagster check."""
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from assets.strategy import StrategyConfig
    from quality.checks import build_gates

    path = make_warehouse(tmp_path / "w.duckdb", *ORDERS_SQL.split(";"))
    check = "fraction between 0 and the position cap (max_position_nav)"
    default = validate_table(path, "analytics.orders", bounds=StrategyConfig().gate_bounds())
    assert failed_checks(default) == {check}
    assert default.statistics["expectations"][check]["full_table_unexpected"] == 1  # 0.08 itself passes
    raised = validate_table(
        path, "analytics.orders", bounds=StrategyConfig(max_position_nav=0.10).gate_bounds()
    )
    assert raised.success, raised.failed
    with pytest.raises(KeyError, match="max_position_nav"):
        validate_table(path, "analytics.orders")  # a suite that needs a strategy bound says so

    @dg.asset(key=["analytics", "orders"])
    def orders():
        return None  # written above; the check reads the table

    (gate,) = [c for c in build_gates(0.05) if "orders_expectations" in {k.name for k in c.check_keys}]

    def run(cap: float) -> bool:
        resources = {
            "warehouse": DuckDBResource(database=path),
            "strategy": StrategyConfig(max_position_nav=cap),
        }
        result = dg.materialize([orders, gate], resources=resources, instance=dg.DagsterInstance.ephemeral(),
                                raise_on_error=False)  # fmt: skip
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation.passed

    assert run(0.10) and not run(0.08)
