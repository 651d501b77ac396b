"""The shared warehouse helpers: exact sums in Python land on DuckDB's bits."""

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from assets.warehouse import epoch_datetimes, exact_sum, exact_units, units_to_float


def test_exact_units_and_their_sum_are_duckdbs_decimal_cast_bit_for_bit():
    """The live loop keeps exact sums one fill at a time; they must equal the batch's ``exact_sum`` to the bit,
    including the terms DuckDB rounds half away from zero after its double-precision multiply (0.5 ulp ties)."""
    rng = np.random.default_rng(5)
    size = np.concatenate([np.round(rng.lognormal(5, 2, 60_000), 2), rng.uniform(-1e6, 1e6, 20_000)])
    price = np.concatenate([np.round(rng.uniform(0, 1, 60_000), 3), np.ones(20_000)])
    x = size * price
    group = np.arange(len(x)) % 997
    with duckdb.connect() as con:
        con.register("t", pa.table({"x": x, "g": group}))
        terms = con.execute(
            "SELECT CAST(CAST(x AS DECIMAL(38, 12)) * 1000000000000 AS HUGEINT) FROM t"
        ).fetchall()
        sums = dict(con.execute(f"SELECT g, {exact_sum('x')} FROM t GROUP BY g").fetchall())
    assert [exact_units(v) for v in x] == [int(t) for (t,) in terms]
    mine: dict[int, int] = {}
    for g, v in zip(group, x, strict=True):
        mine[int(g)] = mine.get(int(g), 0) + exact_units(v)
    assert {g: units_to_float(n) for g, n in mine.items()} == sums
    with pytest.raises(ValueError, match="not a finite number"):
        exact_units(float("nan"))


def test_epoch_datetimes_turn_day_numbers_and_seconds_into_datetimes_and_nan_into_nat():
    days = epoch_datetimes(np.array([0.0, np.nan, 20_000.0, 20_745.0]), "D")
    assert days.dtype == np.dtype("datetime64[ns]")
    assert [str(d)[:10] if not np.isnat(d) else None for d in days] == [
        "1970-01-01",
        None,
        "2024-10-04",
        "2026-10-19",
    ]
    secs = epoch_datetimes([1_790_000_000.1234, None, 0], "s")
    assert (
        str(secs[0]) == "2026-09-21T14:13:20.123000000"
        and np.isnat(secs[1])
        and str(secs[2])[:19] == "1970-01-01T00:00:00"
    )
    # many NaN among values: pandas < 3 would round an uninitialised buffer here (pandas-dev/pandas#58419)
    many = epoch_datetimes(np.where(np.arange(100_000) % 3 == 0, np.nan, 20_000.0), "D")
    assert np.isnat(many).sum() == 33_334 and (many[1] == np.datetime64("2024-10-04"))
    with pytest.raises(ValueError, match="unit 'h'"):
        epoch_datetimes([1.0], "h")


def test_table_exists_names_tables_and_views_and_rejects_other_text():
    from assets.warehouse import table_exists

    con = duckdb.connect()
    con.execute("CREATE SCHEMA analytics")
    con.execute("CREATE TABLE analytics.t (x INTEGER)")
    con.execute("CREATE VIEW analytics.v AS SELECT 1 AS x")
    assert table_exists(con, "analytics.t") and table_exists(con, "analytics.v")
    assert not table_exists(con, "analytics.missing") and not table_exists(con, "marts.t")
    with pytest.raises(ValueError):
        table_exists(con, "analytics.t; DROP TABLE analytics.t")
