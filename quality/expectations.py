"""Great Expectations 1.x suites on the warehouse tables, written in code, fast at 10M rows.

Route: bounded GX batches plus exact SQL counts, not a GX SQL data source.
We tried the SQL data source first: GX 1.24.1 + duckdb-engine 0.17.0 + SQLAlchemy 2.1.9 + duckdb 2.0.1, with
``context.data_sources.add_sql("duckdb:///...")``. It does not work. Every expectation errors with ``IndexError:
list index out of range`` in ``SqlAlchemyExecutionEngine.resolve_metric_bundle``. The cause: GX fetches a query's
rows only after its ``with engine.connect()`` block has closed. Closing a SQLAlchemy 2.x connection issues
``ROLLBACK``, and on DuckDB, where the cursor is the connection, that discards the pending result, so GX reads
``[]``. ``pool_reset_on_return=None`` does not help (the rollback comes from the connection's own implicit
transaction). duckdb-engine rejects ``isolation_level="AUTOCOMMIT"`` (no ``set_isolation_level``). The same
bug is reported upstream (great_expectations issues 10738 and 11579). The table asset also drops its
``schema_name``. So no dependency is added.

How a suite runs (``validate_table``):

1. **Exact, full table, in DuckDB.** Every expectation also has a SQL count of the rows that violate it (for a
   table-level expectation, 1 if it fails). All the counts are one ``SELECT`` over the whole table, so the
   verdict is exact at any size.
2. **GX on a bounded batch.** GX validates the expectations themselves (``ExpectColumnValuesToMatchRegex``, ...,
   in an ephemeral context) on a pandas DataFrame. When the table has at most ``max_rows`` rows, the DataFrame is
   the whole table. Otherwise it is a deterministic sample of ``max_rows`` rows: the rowids of
   ``USING SAMPLE reservoir(N ROWS) REPEATABLE (42)``, then those rows in rowid order. Sampling only the rowids
   takes about 0.3 s at 10M rows; a plain reservoir over every column takes 2 to 3 s.

An expectation passes only when GX passes it on the batch **and** its SQL count over the full table is 0.
``SuiteResult.statistics`` reports both.

With a :class:`Scope` (the rows written since the table last passed, ``quality.checks``), both read the scope's
rows instead of the table's, except where a new row can break a rule of the whole table: a uniqueness count reads
every stored row that shares a key with a row in scope, and a row-count check reads the table.

Semantics to know:

- In pandas a DOUBLE NaN is a missing value. GX's ``ExpectColumnValuesToBeBetween`` skips it, so a NaN price
  would pass "price between 0 and 1". The suites therefore expect DOUBLE columns to be not null; in the batch,
  NaN counts as null and fails there. On the SQL side, ``not_null`` counts ``isnan`` and ``between`` requires
  ``isfinite`` on floating columns. ±inf fails ``between`` on both sides. (This is why ``size`` has an upper
  bound, 1e11, the same bound as ingestion's ``size_out_of_range``.)
- GX's pandas regex is Python ``re.search``, and there ``$`` also matches before a trailing newline. The SQL
  side uses RE2 ``regexp_full_match``, which does not match it, so ``"0x…\\n"`` still fails the suite.
- UHUGEINT columns (``fill_key``) reach pandas as exact decimal strings. DuckDB 2.0.1 has no NumPy conversion
  for UHUGEINT, and its ``CAST(... AS VARCHAR)`` takes about 20 µs a value, so the conversion goes through
  HUGEINT arithmetic instead.
- ``now`` is read once per validation, so GX and SQL use the same ``ts`` bound (``now + 300``).

Measured on this 2-core machine (idle): ``validate_table(path, "raw.trades")`` on a 10M-row raw.trades (built with
SQL; 318 MB file) takes **3.9 to 4.0 s** warm, over 3 runs. That is 2.4 s for the full-table SQL counts (three
regexes at 0.7 to 1.2 s each, and the ``count(DISTINCT fill_key)`` at about 0.6 s), 0.6 s to sample and fetch
200k rows, and 0.95 s for GX on the batch. The first call in a process also pays for ``import
great_expectations``, 4.6 s on its own, so this module imports GX only when it first needs it.

Adding a suite, for example for a mart, takes a few lines:

    SUITES["marts.fct_fills"] = TableSuite("marts.fct_fills", (
        not_null("fill_key"), unique("fill_key"), between("price", 0, 1), not_null("price"),
        row_count_at_least(1),
    ))
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import duckdb

from assets.evaluate.backtest import STATUSES
from assets.ingest.records import ACTIVITY_TYPES
from assets.score.flags import FLAGS
from assets.warehouse import table_columns, table_type

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd
    from great_expectations.expectations import Expectation

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@cache
def _gx():
    """great_expectations, imported on first use: it takes seconds, and Dagster loads this module with every run."""
    import great_expectations

    return great_expectations


def _gxe():
    return _gx().expectations


WALLET_RE = r"^0x[0-9a-f]{40}$"
HEX64_RE = r"^0x[0-9a-f]{64}$"
TOKEN_RE = r"^[0-9]{1,78}$"
MIN_TS = 1_500_000_000  # before Polymarket existed (ingestion rejects before 2017-07-14)
FUTURE_SLACK_S = 300  # a timestamp may be at most 5 minutes in the future
MAX_SIZE = 1e11  # ingestion's size_out_of_range bound
SAMPLE_SEED = 42
#: GX's batch: the whole table up to this many rows, a repeatable sample above (WHALECOPY_GX_BATCH_ROWS)
GX_BATCH_ROWS = 50_000
PARTIAL_UNEXPECTED = 3  # example values kept per failed expectation

_FLOATING = ("FLOAT", "DOUBLE", "REAL")
#: the live loop's decision stages and loss reasons (live/model.py; quality/ imports nothing of the project)
LIVE_STAGES = ["whale", "trade", "portfolio", "copied", "skipped_stale", "exit", "not_held"]
LIVE_LOSS_REASONS = ["horizon-expired", "restart-beyond-horizon", "start-beyond-horizon", "continuity-mismatch",
                     "feed-gap"]  # fmt: skip
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ----------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Env:
    """What an expectation may depend on at validation time."""

    now: int  # epoch seconds, read once per validation
    types: Mapping[str, str]  # column -> DuckDB type (upper case) of the table being validated
    batch_limit: int  # the most rows GX sees (max_rows)
    #: bounds that come from the run's strategy config (``StrategyConfig.gate_bounds``), by name
    bounds: Mapping[str, float] = field(default_factory=dict)

    def bound(self, name: str) -> float:
        try:
            return float(self.bounds[name])
        except KeyError:
            raise KeyError(
                f"this suite needs the strategy's {name!r}: pass bounds=StrategyConfig(...).gate_bounds() "
                f"(given: {sorted(self.bounds) or 'none'})"
            ) from None


Bound = float | int | Callable[[Env], float | int] | None


@dataclass(frozen=True)
class Check:
    """One expectation. GX runs ``expectation(env)`` on the batch, and DuckDB runs ``violations_sql(env)`` over the
    full table: an aggregate SQL expression giving the number of violating rows (0 means it passes)."""

    name: str  # human-readable, unique within its suite
    columns: tuple[str, ...]  # the columns the GX batch needs
    expectation: Callable[[Env], Expectation]
    violations_sql: Callable[[Env], str]
    #: how a check reads a :class:`Scope` (the rows written since the last passing validation): "row" counts the
    #: scope's rows; "key" (uniqueness of ``columns``) counts every row of the table that shares a key with a row
    #: of the scope, so a new key that repeats an old one fails; "table" (row counts) counts the whole table
    kind: str = "row"


@dataclass(frozen=True)
class TableSuite:
    table: str  # "schema.table"
    checks: tuple[Check, ...]

    def __post_init__(self) -> None:
        _split(self.table)
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.table}: duplicate check names {names}")


def _split(table: str) -> tuple[str, str]:
    parts = table.split(".")
    if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(f"table must be 'schema.table' of plain identifiers, got {table!r}")
    return parts[0], parts[1]


def _q(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _lit(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"bound must be finite, got {value}")
        return repr(value)
    raise TypeError(f"unsupported literal {value!r}")


def strategy_bound(name: str, slack: float = 0.0) -> Callable[[Env], float]:
    """A bound read from the run's strategy config at validation time (``name`` of ``gate_bounds()``), so the
    gate and the stage it checks never disagree about a threshold."""
    return lambda env: env.bound(name) + slack


def _resolve(bound: Bound, env: Env) -> float | int | None:
    return bound(env) if callable(bound) else bound


def _floating(env: Env, column: str) -> bool:
    return env.types.get(column, "").startswith(_FLOATING)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1e6:
        return f"{value:.0e}".replace("e+", "e")
    return str(value)


# ------------------------------------------------------------------------------------ check builders


def matches_regex(column: str, regex: str) -> Check:
    """Non-null values match ``regex`` (GX: Python ``re.search``; SQL: RE2 full match)."""
    return Check(
        f"{column} matches {regex}",
        (column,),
        lambda env: _gxe().ExpectColumnValuesToMatchRegex(column=column, regex=regex),
        lambda env: (
            f"count(*) FILTER (WHERE {_q(column)} IS NOT NULL "
            f"AND NOT regexp_full_match({_q(column)}, {_lit(regex)}))"
        ),
    )


def in_set(column: str, values: Sequence[Any]) -> Check:
    values = list(values)
    return Check(
        f"{column} in {{{', '.join(map(str, values))}}}",
        (column,),
        lambda env: _gxe().ExpectColumnValuesToBeInSet(column=column, value_set=values),
        lambda env: (
            f"count(*) FILTER (WHERE {_q(column)} IS NOT NULL "
            f"AND {_q(column)} NOT IN ({', '.join(_lit(v) for v in values)}))"
        ),
    )


def between(
    column: str,
    min_value: Bound = None,
    max_value: Bound = None,
    *,
    strict_min: bool = False,
    strict_max: bool = False,
    label: str | None = None,
) -> Check:
    """Non-null values in the range (inclusive unless strict). On floating columns, SQL also rejects NaN and ±inf;
    pair it with ``not_null`` so that the GX batch rejects NaN too (pandas treats NaN as missing)."""
    if min_value is None and max_value is None:
        raise ValueError("between needs a bound")
    if label is None:
        lo = None if min_value is None else _fmt(min_value)
        hi = None if max_value is None else _fmt(max_value)
        if lo is not None and hi is not None and not strict_min and not strict_max:
            label = f"{column} between {lo} and {hi}"
        else:
            parts = ([f"{'>' if strict_min else '>='} {lo}"] if lo is not None else []) + (
                [f"{'<' if strict_max else '<='} {hi}"] if hi is not None else []
            )
            label = f"{column} {' and '.join(parts)}"

    def expectation(env: Env) -> Expectation:
        return _gxe().ExpectColumnValuesToBeBetween(
            column=column,
            min_value=_resolve(min_value, env),
            max_value=_resolve(max_value, env),
            strict_min=strict_min,
            strict_max=strict_max,
        )

    def sql(env: Env) -> str:
        c = _q(column)
        ok = [f"isfinite({c})"] if _floating(env, column) else []
        lo, hi = _resolve(min_value, env), _resolve(max_value, env)
        if lo is not None:
            ok.append(f"{c} {'>' if strict_min else '>='} {_lit(lo)}")
        if hi is not None:
            ok.append(f"{c} {'<' if strict_max else '<='} {_lit(hi)}")
        return f"count(*) FILTER (WHERE {c} IS NOT NULL AND NOT ({' AND '.join(ok)}))"

    return Check(label, (column,), expectation, sql)


def not_null(column: str) -> Check:
    """No nulls. On floating columns NaN counts as null (as it does in the pandas batch)."""
    return Check(
        f"{column} not null",
        (column,),
        lambda env: _gxe().ExpectColumnValuesToNotBeNull(column=column),
        lambda env: (
            f"count(*) FILTER (WHERE {_q(column)} IS NULL"
            + (f" OR isnan({_q(column)}))" if _floating(env, column) else ")")
        ),
    )


def unique(column: str) -> Check:
    """Non-null values are unique. The SQL count is the number of surplus rows (rows minus distinct values)."""
    return Check(
        f"{column} unique",
        (column,),
        lambda env: _gxe().ExpectColumnValuesToBeUnique(column=column),
        lambda env: f"count({_q(column)}) - count(DISTINCT {_q(column)})",
        kind="key",
    )


def compound_unique(*columns: str) -> Check:
    """The combination of ``columns`` is unique (rows where all of them are null are ignored, as GX does)."""
    cols = list(columns)
    quoted = ", ".join(_q(c) for c in cols)
    not_all_null = " OR ".join(f"{_q(c)} IS NOT NULL" for c in cols)
    return Check(
        f"({', '.join(cols)}) unique",
        tuple(cols),
        lambda env: _gxe().ExpectCompoundColumnsToBeUnique(column_list=cols),
        lambda env: (
            f"count(*) FILTER (WHERE {not_all_null}) "
            f"- count(DISTINCT ({quoted})) FILTER (WHERE {not_all_null})"
        ),
        kind="key",
    )


def row_count_at_least(n: int) -> Check:
    """The table has at least ``n`` rows (GX checks the batch against min(n, max_rows), SQL the full table)."""
    return Check(
        f"row count >= {n}",
        (),
        lambda env: _gxe().ExpectTableRowCountToBeBetween(min_value=min(n, env.batch_limit)),
        lambda env: f"CASE WHEN count(*) >= {int(n)} THEN 0 ELSE 1 END",
        kind="table",
    )


def _ts_max(env: Env) -> int:
    return env.now + FUTURE_SLACK_S


def ts_in_range(column: str = "ts") -> Check:
    return between(column, MIN_TS, _ts_max, label=f"{column} between {MIN_TS} and now+{FUTURE_SLACK_S}")


# ------------------------------------------------------------------------------------------- suites


def _suites(*suites: TableSuite) -> dict[str, TableSuite]:
    return {s.table: s for s in suites}


SUITES: dict[str, TableSuite] = _suites(
    TableSuite(
        "raw.trades",
        (
            matches_regex("proxy_wallet", WALLET_RE),
            matches_regex("condition_id", HEX64_RE),
            matches_regex("asset", TOKEN_RE),
            in_set("side", ["BUY", "SELL"]),
            between("size", 0, MAX_SIZE, strict_min=True),
            not_null("size"),
            between("price", 0, 1),
            not_null("price"),
            ts_in_range("ts"),
            not_null("ts"),
            not_null("fill_key"),
            unique("fill_key"),
            row_count_at_least(1),
        ),
    ),
    TableSuite(
        "raw.activity",
        (
            matches_regex("proxy_wallet", WALLET_RE),
            in_set("type", list(ACTIVITY_TYPES)),
            matches_regex("condition_id", HEX64_RE),
            matches_regex("asset", TOKEN_RE),
            between("size", 0, MAX_SIZE),
            not_null("size"),
            between("usdc_size", 0, MAX_SIZE),
            not_null("usdc_size"),
            ts_in_range("ts"),
            not_null("ts"),
            not_null("activity_key"),
            unique("activity_key"),
        ),
    ),
    TableSuite(
        "raw.markets",
        (
            not_null("condition_id"),
            unique("condition_id"),
            matches_regex("condition_id", HEX64_RE),
            not_null("closed"),
            not_null("outcomes"),
            not_null("clob_token_ids"),
        ),
    ),
    TableSuite(
        "raw.price_history",
        (
            matches_regex("token_id", TOKEN_RE),
            between("price", 0, 1),
            not_null("price"),
            ts_in_range("ts"),
            compound_unique("token_id", "ts"),
        ),
    ),
)


MAX_MONEY = 1e13  # USDC: far above any real figure; a NaN, an inf or an overflow fails it

SUITES.update(
    _suites(
        TableSuite(
            "marts.fct_fills",
            (
                not_null("fill_key"),
                unique("fill_key"),
                between("price", 0, 1),
                not_null("price"),
                between("size", 0, MAX_SIZE, strict_min=True),
                between("fee", 0, MAX_MONEY),
                not_null("fee"),
                between("pnl_gross", -MAX_MONEY, MAX_MONEY),
            ),
        ),
        TableSuite(
            "marts.fct_positions",
            (
                not_null("wallet"),
                compound_unique("wallet", "token_id"),
                between("pnl_gross", -MAX_MONEY, MAX_MONEY),
                not_null("pnl_gross"),
                between("fees", 0, MAX_MONEY),
                between("cost", 0, MAX_MONEY),
            ),
        ),
        TableSuite(
            "marts.wallet_daily_returns",
            (
                compound_unique("wallet", "day"),
                between("capital_base", 0, MAX_MONEY),
                not_null("capital_base"),
                between("daily_return", -1e6, 1e6),
                in_set("return_reason", ["no_capital", "pnl_without_capital"]),
            ),
        ),
        TableSuite(
            "marts.wallet_features",
            (
                not_null("wallet"),
                unique("wallet"),
                between("market_hhi", 0, 10_000.000001),
                between("volume", 0, MAX_MONEY),
                not_null("volume"),
                between("pnl_net", -MAX_MONEY, MAX_MONEY),
            ),
        ),
    )
)

TIERS = ["MEGA", "LARGE", "MID", "WATCH"]
#: the walk-forward strategies (assets/evaluate/backtest.py STRATEGIES; a test keeps the two in step)
STRATEGIES = ["naive_copy", "fixed_size", "full", "random_whales", "reverse"]
CONFIDENCE = ["VERY_HIGH", "HIGH", "MEDIUM", "LOW", "VERY_LOW"]
MAX_RATIO = 1e300  # Sharpe, IR, Calmar: finite (Calmar annualises short histories and can be very large)

SUITES.update(
    _suites(
        TableSuite(
            "analytics.whale_scores",
            (
                not_null("as_of"),
                not_null("wallet"),
                compound_unique("as_of", "wallet"),
                between("wqs", 0, 100),
                between("rank", 1, None),
                in_set("tier", TIERS),
                in_set("regime", ["IMPROVING", "STABLE", "DETERIORATING"]),
                in_set("win_rate_confidence", CONFIDENCE),
                *(between(c, -MAX_RATIO, MAX_RATIO) for c in ("sharpe", "information_ratio", "calmar")),
                *(between(f"rolling_sharpe_{w}", -MAX_RATIO, MAX_RATIO) for w in (7, 14, 30, 60, 90)),
                between("max_drawdown", -1, 0),
                between("current_drawdown", -1, 0),
                between("consistency", 0, 100),
                between("volume", 0, MAX_MONEY),
                between("market_hhi", 0, 10_000.000001),
                between("pnl_net_to_date", -MAX_MONEY, MAX_MONEY),
                *(
                    between(c, 0, 1)
                    for c in (
                        "raw_win_rate",
                        "win_rate_prior",
                        "win_rate_mean",
                        "win_rate_lower",
                        "win_rate_upper",
                    )
                ),
                *(between(c, -1, 1) for c in ("edge_raw", "edge_mean")),
                *(between(c, -2, 2) for c in ("edge_lower", "edge_upper")),
            ),
        ),
        TableSuite(
            "analytics.whale_universe",
            (
                not_null("wallet"),
                unique("wallet"),
                not_null("wqs"),
                between("wqs", 0, 100),
                in_set("tier", TIERS),
                between("predicted_wins_mean", 0, 1e6),
                not_null("predicted_wins_mean"),
            ),
        ),
        TableSuite(
            "analytics.wallet_flags",
            (
                matches_regex("wallet", WALLET_RE),
                in_set("flag", list(FLAGS)),
                compound_unique("wallet", "flag"),
                not_null("bound"),
                not_null("evidence"),
            ),
        ),
        TableSuite(
            "analytics.wallet_flags_history",
            (
                not_null("as_of"),
                matches_regex("wallet", WALLET_RE),
                in_set("flag", list(FLAGS)),
                compound_unique("as_of", "wallet", "flag"),
                not_null("bound"),
                not_null("evidence"),
            ),
        ),
        TableSuite(
            "analytics.whale_quarantine",
            (
                not_null("as_of"),
                not_null("wallet"),
                compound_unique("as_of", "wallet"),
                between("strikes", 0, 1000),
                not_null("quarantined"),
            ),
        ),
        TableSuite(
            "analytics.signals",
            (
                not_null("fill_key"),
                unique("fill_key"),
                not_null("wallet"),
                in_set("stage_reached", ["whale", "trade", "portfolio", "copied"]),
                between("whale_price", 0, 1),
                between("copy_price", 0, 1),
                between("whale_notional", 0, MAX_MONEY),
                between("slippage", 0, 1e6),
                between("edge_at_copy", -2, 2),
                between("wqs", 0, 100),
                not_null("legs"),
                between("legs", 1, 1_000_000),
                between("whale_volatility", 0, 1e6),
            ),
        ),
        TableSuite(
            "analytics.orders",
            (
                not_null("fill_key"),
                unique("key"),
                between(
                    "fraction",
                    0,
                    strategy_bound("max_position_nav", 1e-9),
                    label="fraction between 0 and the position cap (max_position_nav)",
                ),
                between("shares", 0, 1e12),
                between("correlation", -1, 1),
                not_null("copied"),
            ),
        ),
        TableSuite(
            "analytics.paper_nav",
            (
                unique("day"),
                not_null("nav"),
                between("nav", -MAX_MONEY, MAX_MONEY),
                between("cash", -MAX_MONEY, MAX_MONEY),
                between("drawdown", 0, 1),
                between("var", -1, 1e6),
            ),
        ),
        TableSuite(
            "analytics.paper_fills",
            (
                in_set("kind", ["entry", "whale_sell", "trailing_stop", "time_exit", "settlement"]),
                between("price", 0, 1),
                between("fee", 0, MAX_MONEY),
                not_null("cash_after"),
            ),
        ),
        TableSuite(
            "evaluation.score_ic",
            (
                not_null("predictor"),
                compound_unique("universe", "predictor"),
                between("mean_ic", -1, 1),
                not_null("mean_ic"),
                between("true_edge_spearman", -1, 1),
            ),
        ),
        TableSuite(
            "evaluation.backtest_daily",
            (
                not_null("strategy"),
                compound_unique("strategy", "day"),
                in_set("strategy", STRATEGIES),
                not_null("nav"),
                between("nav", 0, MAX_MONEY),
                between("daily_return", -1, 1e6),
                between("drawdown", 0, 1),
            ),
        ),
        TableSuite(
            "evaluation.backtest_summary",
            (
                unique("strategy"),
                in_set("strategy", STRATEGIES),
                between("max_drawdown", 0, 1),
                between("hit_rate", 0, 1),
                between("deflated_sharpe", 0, 1),
                between("trades", 0, 1e9),
                not_null("final_nav"),
            ),
        ),
        TableSuite(
            "evaluation.validation",
            (
                not_null("check_name"),
                compound_unique("check_name", "subject"),
                between("p_value", 0, 1),
            ),
        ),
        TableSuite(
            "live.fills",
            (
                not_null("identity"),
                unique("identity"),
                matches_regex("wallet", WALLET_RE),
                matches_regex("condition_id", HEX64_RE),
                matches_regex("token_id", TOKEN_RE),
                in_set("side", ["BUY", "SELL"]),
                not_null("price"),
                between("price", 0, 1),
                not_null("size"),
                between("size", 0, MAX_SIZE, strict_min=True),
                not_null("decision_key"),
            ),
        ),
        TableSuite(
            "live.decisions",
            (
                unique("decision_key"),
                unique("seq"),
                in_set("stage_reached", LIVE_STAGES),
                in_set("side", ["BUY", "SELL"]),
                between("frame_to_decision_s", 0, 86_400),
                between(
                    "fraction",
                    0,
                    strategy_bound("max_position_nav", 1e-9),
                    label="fraction between 0 and the position cap (max_position_nav)",
                ),
            ),
        ),
        TableSuite(
            "live.loss_events",
            (in_set("reason", LIVE_LOSS_REASONS), not_null("start_ts"), not_null("end_ts")),
        ),
        TableSuite(
            "evaluation.targets",
            (
                unique("target"),
                not_null("documented"),
                in_set("kind", ["promise", "baseline"]),
                in_set("status", list(STATUSES)),
                not_null("status"),
            ),
        ),
    )
)


def _suite_spec(table: str) -> TableSuite:
    try:
        return SUITES[table]
    except KeyError:
        raise KeyError(f"no expectation suite for {table!r}; known: {sorted(SUITES)}") from None


def _build_suite(spec: TableSuite, env: Env) -> gx.ExpectationSuite:
    suite = _gx().ExpectationSuite(name=spec.table)
    for check in spec.checks:
        expectation = check.expectation(env)
        expectation.meta = {**(expectation.meta or {}), "check": check.name}
        suite.add_expectation(expectation)
    return suite


def suite_for(
    table: str,
    *,
    now: int | None = None,
    max_rows: int = GX_BATCH_ROWS,
    bounds: Mapping[str, float] | None = None,
) -> gx.ExpectationSuite:
    """The GX ``ExpectationSuite`` for ``table`` ("schema.table"), with time bounds resolved at ``now`` (default:
    the current time), row-count minimums capped at ``max_rows`` (the batch size) and the strategy's bounds."""
    env = Env(int(time.time()) if now is None else now, {}, max_rows, dict(bounds or {}))
    return _build_suite(_suite_spec(table), env)


# ----------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class SuiteResult:
    suite: str  # e.g. "raw.trades"
    success: bool
    evaluated: int  # number of expectations run
    failed: list[str]  # human-readable names of failed expectations with observed values
    statistics: dict  # small JSON-able dict for Dagster check metadata
    rows_checked: int  # rows the GX validation looked at (table size or sample size)


@dataclass(frozen=True)
class Scope:
    """The rows of a table a validation reads when not all of them: ``where``, a SQL predicate over the table's
    own columns (unqualified) that holds for every row written since the table's last passing validation (a
    superset is fine); ``label`` says which rows, for the check's metadata. A table-level check still counts the
    whole table and a uniqueness check every row that shares a key with the scope's rows (:class:`Check`)."""

    where: str
    label: str


def _json_safe(value: Any) -> Any:
    """Plain JSON values only (numpy scalars unwrapped, non-finite floats as strings)."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return str(value)


def _fetch_expr(column: str, dtype: str) -> str:
    c = _q(column)
    if dtype == "UHUGEINT":
        # exact decimal text, fast: DuckDB 2.0.1's UHUGEINT -> VARCHAR cast costs ~20 us a value, HUGEINT's does not
        e19 = "10000000000000000000"
        return (
            f"CASE WHEN {c} < 170141183460469231731687303715884105728 THEN CAST(CAST({c} AS HUGEINT) AS VARCHAR) "
            f"ELSE CAST(CAST({c} // {e19} AS HUGEINT) AS VARCHAR) "
            f"|| lpad(CAST(CAST({c} % {e19} AS UBIGINT) AS VARCHAR), 19, '0') END AS {c}"
        )
    if dtype == "HUGEINT":
        return f"CAST({c} AS VARCHAR) AS {c}"
    return c


def _counts_select(
    relation: str, table: str, checks: Sequence[Check], env: Env, scoped: bool
) -> dict[str, str]:
    """check name -> its SQL count over ``relation`` (scoped: the scope's rows; a "table" check over ``table``, a
    "key" check over the rows of ``table`` sharing a key with the scope's rows)."""
    out = {}
    for c in checks:
        expr = c.violations_sql(env)
        if scoped and c.kind == "table":
            expr = f"(SELECT {expr} FROM {table})"
        elif scoped and c.kind == "key":
            cols = ", ".join(_q(k) for k in c.columns)
            on = " AND ".join(f"_t.{_q(k)} IS NOT DISTINCT FROM _k.{_q(k)}" for k in c.columns)
            expr = f"(SELECT {expr} FROM {table} AS _t SEMI JOIN (SELECT DISTINCT {cols} FROM {relation}) AS _k ON {on})"
        out[c.name] = expr
    return out


def _full_table_counts(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    checks: Sequence[Check],
    env: Env,
    table: str | None = None,
) -> tuple[int, dict[str, int | str]]:
    """(row count of ``relation``, check name -> violations or an error message), in one scan when every
    expression binds. ``table``: the whole table when ``relation`` is a scope of it."""
    exprs = _counts_select(relation, table or relation, checks, env, scoped=table is not None)
    select = ", ".join(["count(*)", *exprs.values()])
    try:
        row = con.execute(f"SELECT {select} FROM {relation}").fetchone()
        return int(row[0]), {name: int(v) for name, v in zip(exprs, row[1:], strict=True)}
    except duckdb.Error:
        pass
    (rows,) = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    out: dict[str, int | str] = {}
    for name, expr in exprs.items():
        try:
            out[name] = int(con.execute(f"SELECT {expr} FROM {relation}").fetchone()[0])
        except duckdb.Error as exc:
            out[name] = f"error: {str(exc).splitlines()[0]}"
    return int(rows), out


def _batch(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: Iterable[str],
    types: Mapping[str, str],
    rows: int,
    max_rows: int,
    is_table: bool,
) -> pd.DataFrame:
    # a column the table lacks is left out: GX then fails the expectations that need it, one by one
    present = [c for c in dict.fromkeys(columns) if c in types]
    select = ", ".join(_fetch_expr(c, types[c]) for c in present) or "1 AS _row"
    if rows <= max_rows:
        query = f"SELECT {select} FROM {relation}"
    elif is_table:  # sample rowids only (cheap), then fetch those rows
        query = (
            f"SELECT {select} FROM {relation} WHERE rowid IN (SELECT rowid FROM {relation} "
            f"USING SAMPLE reservoir({int(max_rows)} ROWS) REPEATABLE ({SAMPLE_SEED})) ORDER BY rowid"
        )
    else:  # views have no rowid
        query = f"SELECT {select} FROM {relation} USING SAMPLE reservoir({int(max_rows)} ROWS) REPEATABLE ({SAMPLE_SEED})"
    return con.execute(query).df()


def _gx_validate(spec: TableSuite, env: Env, df: pd.DataFrame) -> dict[str, Any]:
    """check name -> GX ExpectationValidationResult, on an ephemeral context."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = _gx().get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas(name="warehouse").add_dataframe_asset(name=spec.table)
    batch = asset.add_batch_definition_whole_dataframe("batch").get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(
        _build_suite(spec, env),
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": PARTIAL_UNEXPECTED},
    )
    return {r.expectation_config.meta["check"]: r for r in result.results}


def _gx_stats(r: Any) -> dict[str, Any]:
    res = dict(r.result or {})
    out: dict[str, Any] = {"gx_success": bool(r.success)}
    if "observed_value" in res:
        out["observed"] = res["observed_value"]
    if "unexpected_count" in res:
        out["batch_unexpected"] = res["unexpected_count"]
        if res.get("partial_unexpected_list"):
            out["examples"] = list(res["partial_unexpected_list"])[:PARTIAL_UNEXPECTED]
    info = r.exception_info or {}
    raised = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    if info.get("raised_exception"):
        raised.append(info)
    if raised:
        out["gx_error"] = str(raised[0].get("exception_message", "")).splitlines()[0][:300]
    return _json_safe(out)


def _describe(stats: Mapping[str, Any], rows: int, rows_checked: int) -> str:
    why = []
    full = stats.get("full_table_unexpected")
    if isinstance(full, str):
        why.append(f"full-table SQL {full}")
    elif full:
        why.append(f"{full} of {rows} rows violate it in the full table")
    if not stats.get("gx_success", True):
        if "gx_error" in stats:
            why.append(f"GX raised: {stats['gx_error']}")
        elif "batch_unexpected" in stats:
            ex = f", e.g. {stats['examples']}" if stats.get("examples") else ""
            why.append(f"GX: {stats['batch_unexpected']} unexpected of {rows_checked} rows checked{ex}")
        elif "observed" in stats:
            why.append(f"GX observed {stats['observed']}")
        else:
            why.append("GX failed")
    return "; ".join(why)


def validate_connection(
    con: duckdb.DuckDBPyConnection,
    table: str,
    *,
    max_rows: int = GX_BATCH_ROWS,
    now: int | None = None,
    bounds: Mapping[str, float] | None = None,
    scope: Scope | None = None,
) -> SuiteResult:
    """Run ``table``'s suite on an open DuckDB connection (see the module docstring for how). ``bounds``: the run's
    strategy bounds (``StrategyConfig.gate_bounds()``), for the suites that check a strategy threshold.
    ``scope``: validate only the rows it names (:class:`Scope`): the SQL counts and GX's batch read those rows,
    and the table-level and uniqueness checks still read the table as :class:`Check` says."""
    spec = _suite_spec(table)
    if max_rows < 1:
        raise ValueError("max_rows must be >= 1")
    schema, name = _split(table)
    whole = f"{_q(schema)}.{_q(name)}"
    kind = table_type(con, table)
    if kind is None:
        return SuiteResult(
            table, False, 0, [f"{table} does not exist"], {"table_rows": 0, "missing_table": True}, 0
        )
    types = table_columns(con, table)
    env = Env(int(time.time()) if now is None else int(now), types, max_rows, dict(bounds or {}))

    if scope is None:
        rows, full = _full_table_counts(con, whole, spec.checks, env)
        table_rows, relation, is_table = rows, whole, kind == "BASE TABLE"
    else:
        relation = f"(SELECT * FROM {whole} WHERE {scope.where})"
        rows, full = _full_table_counts(con, relation, spec.checks, env, table=whole)
        (table_rows,) = con.execute(f"SELECT count(*) FROM {whole}").fetchone()
        is_table = False
    # GX checks the rows in scope; a table-level expectation is the SQL count's alone there (the batch is not the
    # table), and no rows in scope leave GX nothing to check
    gx_checks = tuple(c for c in spec.checks if scope is None or c.kind != "table")
    gx_results = {}
    df = None
    if scope is None or rows > 0:
        columns = [c for check in gx_checks for c in check.columns]
        df = _batch(con, relation, columns, types, rows, max_rows, is_table)
        gx_results = _gx_validate(TableSuite(spec.table, gx_checks), env, df)

    per_check: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    checked = 0 if df is None else len(df)
    for check in spec.checks:
        if check.name in gx_results:
            stats = _gx_stats(gx_results[check.name])
        elif check in gx_checks and df is not None:
            stats = {"gx_success": False}
        else:
            stats = {
                "gx_success": True,
                "gx_skipped": "no rows in scope" if df is None else "table-level: SQL only",
            }
        stats["full_table_unexpected"] = full[check.name]
        stats["success"] = bool(stats["gx_success"]) and full[check.name] == 0
        per_check[check.name] = stats
        if not stats["success"]:
            failed.append(f"{check.name}: {_describe(stats, rows, checked)}")
    statistics = {
        "table_rows": int(table_rows),
        "rows_in_scope": int(rows),
        "scope": "every row" if scope is None else scope.label,
        "rows_checked": checked,
        "sampled": rows > max_rows,
        "now": env.now,
        "expectations": per_check,
    }
    return SuiteResult(table, not failed, len(spec.checks), failed, _json_safe(statistics), checked)


def validate_table(
    database_path: str,
    table: str,
    *,
    max_rows: int = GX_BATCH_ROWS,
    bounds: Mapping[str, float] | None = None,
) -> SuiteResult:
    """Open the DuckDB file read-only and run ``table``'s suite (``table`` is a key of ``SUITES``)."""
    _suite_spec(table)
    try:
        con = duckdb.connect(str(database_path), read_only=True)
    except duckdb.ConnectionException:
        # this process already holds the file open read-write (different configuration): share that instance
        con = duckdb.connect(str(database_path))
    try:
        con.execute("SET enable_progress_bar = false")
        return validate_connection(con, table, max_rows=max_rows, bounds=bounds)
    finally:
        con.close()
