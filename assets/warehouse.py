"""Helpers every stage shares to write the warehouse, in one place (no project imports: ingestion, the stages and
the live snapshot all use it).

- ``Transaction``: ``BEGIN ... COMMIT`` (DuckDB auto-commits each statement of a multi-statement string);
- ``checked_table``, ``create_table_sql``, ``append_frame``, ``replace_table``: names written into SQL come from
  lists in the code and are checked; frames go in through Arrow;
- ``exact_sum``: a sum of DOUBLEs whose bits do not depend on the order of the rows (dbt's ``exact_sum`` macro
  is the same expression), and ``exact_units`` / ``units_to_float``, its twin in Python, for the live loop, which
  keeps such sums one fill at a time and must land on the same bits as the batch;
- ``epoch_datetimes``: day numbers or epoch seconds (NaN for none) as datetimes, without pandas' float path.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

WAREHOUSE_SCHEMAS = frozenset({"raw", "staging", "intermediate", "marts", "analytics", "evaluation", "live"})
_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
_TEMP = re.compile(r"_[a-z][a-z0-9_]*")  # a run's temporary table (no schema)
_COLUMN_TYPE = re.compile(r"[A-Z]+(\(\d+, ?\d+\))?(\[\d*\])?( NOT NULL)?")


class Transaction:
    """``with Transaction(con):`` BEGIN ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self.con.execute("BEGIN TRANSACTION")
        return self.con

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.con.execute("COMMIT")
        else:
            self.con.execute("ROLLBACK")


def checked_table(table: str) -> str:
    """``table`` itself if it is ``<warehouse schema>.<identifier>``, or a run's temporary table (``_<identifier>``,
    no schema); a ValueError otherwise (it goes into SQL)."""
    if _TEMP.fullmatch(table):
        return table
    schema, _, name = table.partition(".")
    if schema not in WAREHOUSE_SCHEMAS or not _IDENT.fullmatch(name):
        raise ValueError(
            f"table {table!r} is not <schema>.<name> with schema one of {sorted(WAREHOUSE_SCHEMAS)} "
            "and a name of lower-case letters, digits and underscores"
        )
    return table


def _relation(table: str) -> tuple[str, str]:
    schema, _, name = table.partition(".")
    if not (_IDENT.fullmatch(schema) and _IDENT.fullmatch(name)):
        raise ValueError(
            f"table {table!r} is not <schema>.<name> of lower-case letters, digits and underscores"
        )
    return schema, name


def table_type(con, table: str) -> str | None:
    """``table``'s ("schema.name", any schema of plain identifiers, else a ValueError) type, "BASE TABLE" or
    "VIEW", None when the warehouse has no such relation."""
    schema, name = _relation(table)
    row = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchall()
    return row[0][0] if row else None


def table_exists(con, table: str) -> bool:
    """Whether ``table`` ("schema.name") is a table or view of the warehouse."""
    return table_type(con, table) is not None


def table_columns(con, table: str) -> dict[str, str]:
    """``table``'s ("schema.name") columns in their order, name -> DuckDB type (upper case); empty when the
    warehouse has no such relation."""
    schema, name = _relation(table)
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return {c: t.upper() for c, t in rows}


def create_table_sql(table: str, columns: dict[str, str], key: str | None = None) -> str:
    checked_table(table)
    for name, kind in columns.items():
        if not (_IDENT.fullmatch(name) and _COLUMN_TYPE.fullmatch(kind)):
            raise ValueError(f"{table}: column {name!r} {kind!r} is not a plain identifier and a simple type")
    if key is not None and not all(_IDENT.fullmatch(k.strip()) for k in key.split(",")):
        raise ValueError(f"{table}: key {key!r} is not a list of plain identifiers")
    body = ",\n    ".join(f'"{name}" {kind}' for name, kind in columns.items())  # quoted: `check`, `end`
    temp = "TEMP " if _TEMP.fullmatch(table) else ""  # a run's temporary table: gone with its connection
    return (
        f"CREATE {temp}TABLE IF NOT EXISTS {table} (\n    {body}{f', PRIMARY KEY ({key})' if key else ''}\n)"
    )


def append_frame(con, table: str, frame: pd.DataFrame | pa.Table) -> None:
    """Append ``frame`` through Arrow (NaN in a float column becomes NULL)."""
    checked_table(table)
    arrow = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    con.register("_rows", arrow)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
    finally:
        con.unregister("_rows")


def replace_table(
    con, table: str, columns: dict[str, str], frame: pd.DataFrame | None, key: str | None = None
) -> None:
    """Drop ``table`` and create it again with ``columns`` (name -> SQL type), filled from ``frame`` (which may be
    None or empty: the table then exists, empty, with its schema). Call it inside a transaction."""
    con.execute(f"DROP TABLE IF EXISTS {checked_table(table)}")
    con.execute(create_table_sql(table, columns, key=key))
    if frame is not None and len(frame):
        append_frame(con, table, frame[[c for c in columns if c in frame.columns]])


# ------------------------------------------------------------------------------------------------- exact sums

EXACT_SCALE = 12  # the decimal places every term keeps (USDC has 6)


def exact_sum(expr: str, over: str | None = None) -> str:
    """SQL for a sum of DOUBLEs independent of row order (terms rounded to 1e-12, added exactly as DECIMAL), so two
    runs over the same rows give the same bits; with ``over`` (a window), a running total that later rows never
    change. dbt's ``exact_sum`` macro is the same expression."""
    window = f" OVER ({over})" if over else ""
    return f"CAST(sum(CAST({expr} AS DECIMAL(38, {EXACT_SCALE}))){window} AS DOUBLE)"


def exact_units(x: float) -> int:
    """One term of ``exact_sum`` as an integer count of 1e-12: what DuckDB's ``CAST(x AS DECIMAL(38, 12))`` gives,
    bit for bit (it multiplies by 1e12 in double precision, then rounds half away from zero)."""
    y = float(x) * 1e12
    if not math.isfinite(y):
        raise ValueError(f"exact_units: {x!r} is not a finite number")
    n = math.floor(abs(y))
    return int(math.copysign(n + (1 if abs(y) - n >= 0.5 else 0), y))


def units_to_float(units: int) -> float:
    """An exact sum of ``exact_units`` as the DOUBLE ``CAST(... AS DOUBLE)`` returns (correctly rounded)."""
    return float(Decimal(units).scaleb(-EXACT_SCALE))


def epoch_datetimes(values, unit: str = "D") -> np.ndarray:
    """Day numbers (``unit="D"``, days since 1970-01-01) or epoch seconds (``"s"``, to the millisecond) as
    ``datetime64[ns]``, NaN (or None) as NaT.

    ``pd.to_datetime(floats, unit=...)`` is not used: for an array with NaN, pandas before 3.0 rounds an
    uninitialised buffer and can raise ``FloatingPointError`` at random (pandas-dev/pandas#58419)."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype="float64")
    ok = np.isfinite(v)
    out = np.full(v.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    if unit == "D":
        out[ok] = np.round(v[ok]).astype("int64").astype("datetime64[D]")
    elif unit == "s":
        out[ok] = np.round(v[ok] * 1000.0).astype("int64").astype("datetime64[ms]")
    else:
        raise ValueError(f"epoch_datetimes: unit {unit!r} is not 'D' or 's'")
    return out
