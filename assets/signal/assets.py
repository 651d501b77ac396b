"""Signal assets. ``analytics.signals``: every whale BUY order as a candidate, with the stage it reached and every
reason it failed. Thin: the candidates' facts come from one SQL query (point in time: the whale's latest score and
quarantine state on or before the order's day, the token's flow over the hours before it, the price at the copy);
the stages are ``model.screen``, the one function the live loop calls on a single order too.

An order is one decision: the fills of one (wallet, transaction, token) are its legs (a taker order that walks
several makers), decided once (polymarket_realtime.md §4). Every fact here is one the live loop can rebuild from
the batch's snapshot and the feed it sees; the whale's flags are those of its score's date
(``analytics.wallet_flags_history``), so the live engine and this table decide alike (docs/metrics.md#signals).

The table is carried from run to run: a run takes the digests of what the candidates read (``DIGEST_SQL``),
compares them with the last run's (``analytics.signals_state``, ``model.signals_plan``) and decides again only the
orders from the earliest changed day and those of changed markets, the rows a run from scratch would change
(``tests/assets/test_score_assets.py``).

Stage 3 (portfolio fit) needs the paper portfolio's book; until that portfolio exists, a candidate that passes
stages 1 and 2 is recorded as ``stage_reached = 'portfolio'`` (waiting for stage 3), never as copied.
"""

import hashlib
import time

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from assets.risk.assets import WHALE_QUARANTINE
from assets.score.assets import WALLET_FLAGS_HISTORY, WHALE_SCORES
from assets.score.flags import FLAGS_AT_SQL
from assets.size import model as size
from assets.strategy import StrategyConfig
from assets.warehouse import Transaction, create_table_sql, exact_sum, replace_table, table_exists

from . import model

SIGNALS = dg.AssetKey(["analytics", "signals"])
SIGNALS_TABLE = "analytics.signals"

DECIMAL = "DECIMAL(38, 12)"

#: the whales' fills (``kind = 'trade'``: the legs of their splits, merges and conversions are not orders to copy,
#: nor prints of a price)
FILLS = "(SELECT * FROM intermediate.int_position_fills WHERE kind = 'trade')"


def orders_sql(where: str = "true") -> str:
    """Every order of the fills matching ``where``: the legs of one (wallet, transaction, token, side) are one
    order. A single leg keeps its own price and notional; several legs add their sizes and notionals exactly, at
    their volume-weighted price. A filter on the wallets or tokens belongs in ``where``: DuckDB does not push a
    semi join below the GROUP BY (the paper book's whale sells read 4 times faster at scale 10 with it inside)."""
    return f"""
    SELECT min(fill_key) AS fill_key, wallet, condition_id, token_id, side, min(ts) AS ts, count(*) AS legs,
           CASE WHEN count(*) = 1 THEN min(size) ELSE {exact_sum("size")} END AS size,
           CASE WHEN count(*) = 1 THEN min(notional) ELSE {exact_sum("notional")} END AS notional,
           CASE WHEN min(price) = max(price) THEN min(price)
                ELSE {exact_sum("notional")} / {exact_sum("size")} END AS price,
           arg_min(shares_before, (ts, fill_key)) AS shares_before
    FROM {FILLS}
    WHERE {where}
    GROUP BY wallet, condition_id, token_id, side, coalesce(transaction_hash, CAST(fill_key AS VARCHAR))
"""


def token_days_sql(where: str = "true") -> str:
    """Per token and UTC day, the day's last print (the highest price of the day's last traded second): a mark; of
    the fills matching ``where`` (a filter on the tokens belongs here: DuckDB does not push a semi join below the
    GROUP BY, and the paper book's marks read 2.5 times faster on the demo warehouse with it inside)."""
    return f"""
    SELECT token_id, CAST(ts // 86400 AS BIGINT) AS day, arg_max(price, (ts, price)) AS last_price
    FROM {FILLS}
    WHERE {where}
    GROUP BY ALL
"""


TOKEN_DAYS_SQL = token_days_sql()

FLOW_HOURS = 168  # the flow looks back over the 7 x 24 whole hours before the order's hour


def token_hours_sql(where: str = "true") -> str:
    """Per token and UTC hour, the notional traded (exact, DECIMAL): what the live loop keeps from the feed."""
    return f"""
    SELECT token_id, CAST(ts // 3600 AS BIGINT) AS hour, sum(CAST(notional AS {DECIMAL})) AS notional
    FROM {FILLS}
    WHERE {where}
    GROUP BY ALL
"""


TOKEN_HOURS_SQL = token_hours_sql()

#: the candidates a run decides: the orders from ``$since_ts`` (a UTC midnight) on, and every order in the markets
#: ``$markets`` (a whole run: the earliest time there is and no market)
IN_SCOPE = "(ts >= {since} OR condition_id IN (SELECT UNNEST($markets::VARCHAR[])))"

#: the legs of an order are one transaction, so they share a block time: an order starting at or after
#: ``$since_ts`` has every leg among the fills from a day before it on
ORDER_LEGS = IN_SCOPE.format(since="$since_ts - 86400")

#: an hour's flow reads the 168 hours before it: the hours from ``$since_ts`` on read the fills from 168 hours before
FLOW_FILLS = IN_SCOPE.format(since=f"($since_ts // 3600 - {FLOW_HOURS}) * 3600")

#: the token's mean daily notional over the 168 whole hours before each hour it traded in
FLOW_SQL = f"""
    SELECT token_id, hour, coalesce(CAST(sum(notional) OVER (
        PARTITION BY token_id ORDER BY hour RANGE BETWEEN {FLOW_HOURS} PRECEDING AND 1 PRECEDING) AS DOUBLE), 0)
        / 7.0 AS daily_notional
    FROM ({token_hours_sql(FLOW_FILLS)})
"""

#: every BUY order in scope with the facts the stages need, each known at the order (or at the copy, for the
#: price); ``$latency_seconds`` is bound (the copy latency), and the scope (``$since_ts``, ``$markets``)
CANDIDATES_SQL = f"""
    WITH buys AS (
        SELECT *, to_timestamp(ts) AS traded_at, CAST(ts // 3600 AS BIGINT) AS hour,
               DATE '1970-01-01' + CAST(ts // 86400 AS INTEGER) AS trade_date
        FROM ({orders_sql(ORDER_LEGS)}) WHERE side = 'BUY' AND {IN_SCOPE.format(since="$since_ts")}
    ),
    prints AS (  -- the highest price of each second a token traded
        SELECT token_id, ts, max(price) AS price FROM {FILLS}
        WHERE token_id IN (SELECT token_id FROM buys) GROUP BY ALL
    ),
    copy AS (  -- the token's last print at or before the order + the copy latency: what we would pay
        SELECT b.fill_key, t.price AS copy_price
        FROM buys b ASOF JOIN prints t ON t.token_id = b.token_id AND t.ts <= b.ts + $latency_seconds
    )
    SELECT
        b.fill_key, b.wallet, b.condition_id, b.token_id, m.event_id, m.category, b.traded_at, b.legs,
        b.price AS whale_price, b.notional AS whale_notional, c.copy_price, f.daily_notional,
        (epoch(try_cast(m.end_date AS TIMESTAMPTZ)) - b.ts) / 86400.0 AS days_to_resolution,
        s.as_of AS score_as_of, s.wqs, s.rolling_sharpe_30, s.rolling_sharpe_90, s.current_drawdown,
        s.edge_mean AS whale_edge, coalesce(q.quarantined, false) AS quarantined, fl.flags
    FROM buys b
    JOIN ({FLOW_SQL}) f USING (token_id, hour)
    JOIN copy c USING (fill_key)
    LEFT JOIN marts.dim_markets m USING (condition_id)
    ASOF LEFT JOIN analytics.whale_scores s ON s.wallet = b.wallet AND s.as_of <= b.trade_date
    ASOF LEFT JOIN analytics.whale_quarantine q ON q.wallet = b.wallet AND q.as_of <= b.trade_date
    LEFT JOIN ({FLAGS_AT_SQL}) fl ON fl.wallet = b.wallet AND fl.as_of = s.as_of
    """

#: the daily returns of the wallets whose volatility the candidates need (``$wallets``, bound)
WHALE_RETURNS_SQL = """
SELECT wallet, CAST(floor(epoch(day) / 86400) AS BIGINT) AS day, daily_return
FROM marts.wallet_daily_returns WHERE wallet IN (SELECT UNNEST($wallets::VARCHAR[]))
"""

#: the first and last day of the warehouse's daily returns: the grid every whale's EWMA volatility runs on
RETURNS_SPAN_SQL = """
SELECT CAST(floor(epoch(min(day)) / 86400) AS BIGINT), CAST(floor(epoch(max(day)) / 86400) AS BIGINT)
FROM marts.wallet_daily_returns
"""


def whale_volatility(con, wallets, score_days, wqs, min_wqs: float) -> np.ndarray:
    """Each whale's EWMA volatility at its score's date (``size.volatility_at``) where its WQS is at least
    ``min_wqs``, the lowest any strategy sizes at; NaN below it (never sized), so a row's value is its own whale's
    and does not depend on the other rows asked for. The batch's candidates and the live loop's whales both take
    theirs from here."""
    wallets = np.asarray(wallets, dtype=object)
    with np.errstate(invalid="ignore"):
        need = np.asarray(wqs, dtype=float) >= min_wqs
    out = np.full(len(wallets), np.nan)
    if not need.any():
        return out
    returns = con.execute(WHALE_RETURNS_SQL, {"wallets": sorted(set(wallets[need]))}).df()
    span = con.execute(RETURNS_SPAN_SQL).fetchall()[0]
    out[need] = size.volatility_at(returns, wallets[need], np.asarray(score_days, dtype=float)[need], span)
    return out


SIGNALS_COLUMNS = {
    "fill_key": "UHUGEINT NOT NULL",  # the order's first fill's natural key, as in marts.fct_fills
    "wallet": "VARCHAR NOT NULL",
    "condition_id": "VARCHAR",
    "token_id": "VARCHAR",
    "event_id": "VARCHAR",
    "category": "VARCHAR",
    "traded_at": "TIMESTAMPTZ NOT NULL",
    "legs": "BIGINT NOT NULL",
    "whale_price": "DOUBLE",
    "whale_notional": "DOUBLE",
    "copy_price": "DOUBLE",
    "daily_notional": "DOUBLE",
    "days_to_resolution": "DOUBLE",
    "score_as_of": "DATE",
    "wqs": "DOUBLE",
    "rolling_sharpe_30": "DOUBLE",
    "rolling_sharpe_90": "DOUBLE",
    "current_drawdown": "DOUBLE",
    "whale_edge": "DOUBLE",
    "quarantined": "BOOLEAN NOT NULL",
    "flags": "VARCHAR",  # the whale's flags at its score's date (analytics.wallet_flags_history), null when none
    "whale_volatility": "DOUBLE",
    "edge_at_copy": "DOUBLE",
    "order_notional_estimate": "DOUBLE",
    "slippage": "DOUBLE",
    "passed_whale": "BOOLEAN NOT NULL",
    "passed_trade": "BOOLEAN NOT NULL",
    "stage_reached": "VARCHAR NOT NULL",
    "reason": "VARCHAR",
}


STATE_TABLE = "analytics.signals_state"
STATE_COLUMNS = {
    "part": "VARCHAR NOT NULL",  # model.DAY_PARTS, "markets" or "config"
    "day": "INTEGER",  # the first order day a change in this row can move (DAY_PARTS)
    "condition_id": "VARCHAR",  # markets
    "rows": "BIGINT NOT NULL",
    "hash": "UBIGINT NOT NULL",  # XOR of the rows' hashes
}

#: bump when a change to the code moves any candidate's row: the stored rows are then decided again
SIGNALS_VERSION = 2

#: the digests of what the candidates read (``$latency_seconds`` bound): see ``model.signals_plan``
DIGEST_SQL = f"""
SELECT 'fills' AS part, CAST((ts - $latency_seconds) // 86400 AS INTEGER) AS day, NULL AS condition_id,
       count(*) AS rows,
       bit_xor(hash(fill_key, wallet, condition_id, token_id, side, ts, size, notional, price, transaction_hash))
FROM {FILLS} GROUP BY ALL
UNION ALL
SELECT 'scores', CAST(as_of - DATE '1970-01-01' AS INTEGER), NULL, count(*),
       bit_xor(hash(wallet, wqs, rolling_sharpe_30, rolling_sharpe_90, current_drawdown, edge_mean))
FROM analytics.whale_scores GROUP BY ALL
UNION ALL
SELECT 'quarantine', CAST(as_of - DATE '1970-01-01' AS INTEGER), NULL, count(*), bit_xor(hash(wallet, quarantined))
FROM analytics.whale_quarantine GROUP BY ALL
UNION ALL
SELECT 'flags', CAST(as_of - DATE '1970-01-01' AS INTEGER), NULL, count(*), bit_xor(hash(wallet, flag))
FROM analytics.wallet_flags_history GROUP BY ALL
UNION ALL
SELECT 'returns', CAST(day - DATE '1970-01-01' AS INTEGER) + 1, NULL, count(*), bit_xor(hash(wallet, daily_return))
FROM marts.wallet_daily_returns GROUP BY ALL
UNION ALL
SELECT 'markets', NULL, condition_id, count(*), bit_xor(hash(event_id, category, end_date))
FROM marts.dim_markets GROUP BY ALL
UNION ALL
SELECT 'config', NULL, NULL, 0, CAST($config AS UBIGINT)
"""


def config_hash(strategy: StrategyConfig) -> int:
    """One number for everything a candidate's row depends on besides the warehouse: the signal settings, the
    copy latency, the sizing bound of the volatility, our largest order, and the code's version."""
    text = repr((SIGNALS_VERSION, strategy.signal_params(), int(strategy.copy_latency_seconds),
                 strategy.volatility_min_wqs(), strategy.max_position_nav * strategy.starting_nav))  # fmt: skip
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def read_digests(con, strategy: StrategyConfig) -> pd.DataFrame:
    """The digests now (``DIGEST_SQL``), with the ``config`` row."""
    params = {"latency_seconds": int(strategy.copy_latency_seconds), "config": str(config_hash(strategy))}
    current = con.execute(DIGEST_SQL, params).df()
    current.columns = list(STATE_COLUMNS)
    return current


def read_stored(con) -> pd.DataFrame | None:
    """The digests the last run stored, or None when it stored none (or its table is gone)."""
    stored = table_exists(con, "analytics.signals") and table_exists(con, STATE_TABLE)
    return con.sql(f"SELECT * FROM {STATE_TABLE}").df() if stored else None


def decide(con, strategy: StrategyConfig, since_ts: int, markets: list[str]) -> pd.DataFrame:
    """Stages 1 and 2 for the orders in scope (``CANDIDATES_SQL``): a frame of every ``SIGNALS_COLUMNS`` column but
    ``fill_key`` plus ``row_id``, which joins it to its key in the temp table ``_candidates``."""
    params = strategy.signal_params()
    # the 128-bit fill key stays in DuckDB (NumPy has no such integer, and casting 770k of them to text takes
    # seconds): Python works on a row number and the key is joined back on insert
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _candidates AS SELECT row_number() OVER () AS row_id, * FROM ("
        + CANDIDATES_SQL
        + ")",
        {"latency_seconds": int(strategy.copy_latency_seconds), "since_ts": since_ts, "markets": markets},
    )
    c = con.sql("SELECT * EXCLUDE (fill_key) FROM _candidates").df()
    c["whale_volatility"] = whale_volatility(
        con, c["wallet"], model.score_day(c["score_as_of"]), c["wqs"], strategy.volatility_min_wqs()
    )
    return model.screen(c, params, strategy.max_position_nav * strategy.starting_nav)


#: the first order time of a whole run's scope (every order), and of a scope of markets alone (no order by date)
FULL_SINCE_TS, NO_ORDER_TS = -(2**53), 2**53


@dg.asset(
    key=SIGNALS,
    deps=[
        WHALE_SCORES,
        WHALE_QUARANTINE,
        WALLET_FLAGS_HISTORY,
        dg.AssetKey(["marts", "dim_markets"]),
        dg.AssetKey(["marts", "wallet_daily_returns"]),
        dg.AssetKey(["intermediate", "int_position_fills"]),
    ],
    group_name="signal",
    kinds={"duckdb", "python"},
    description="Every whale BUY order as a candidate copy: the stage it reached (whale, trade, portfolio) and "
    "every reason it failed (docs/metrics.md#signals). A run decides again only the orders whose inputs changed.",
)
def signals(context: dg.AssetExecutionContext, strategy: StrategyConfig, warehouse: DuckDBResource):
    t0 = time.perf_counter()
    with warehouse.get_connection() as con, Transaction(con):
        current = read_digests(con, strategy)
        plan = model.signals_plan(read_stored(con), current)
        # the scope: every order (full), or the orders from the plan's day on and those of its markets
        if plan.mode == "full":
            since_ts = FULL_SINCE_TS
        else:
            since_ts = NO_ORDER_TS if plan.since_day is None else plan.since_day * 86400
        markets = list(plan.markets)
        c = decide(con, strategy, since_ts, markets) if plan.mode != "unchanged" else None
        if plan.mode == "full":
            con.execute(f"DROP TABLE IF EXISTS {SIGNALS_TABLE}")
            con.execute(create_table_sql(SIGNALS_TABLE, SIGNALS_COLUMNS))
        elif plan.mode == "increment":
            con.execute(
                f"DELETE FROM {SIGNALS_TABLE} WHERE epoch(traded_at) >= $since_ts "
                "OR condition_id IN (SELECT UNNEST($markets::VARCHAR[]))",
                {"since_ts": since_ts, "markets": markets},
            )
        if c is not None and len(c):
            columns = [col for col in SIGNALS_COLUMNS if col != "fill_key"]
            con.register("_decided", pa.Table.from_pandas(c[["row_id", *columns]], preserve_index=False))
            try:
                con.execute(
                    f"INSERT INTO {SIGNALS_TABLE} BY NAME SELECT k.fill_key, d.* EXCLUDE (row_id) "
                    "FROM _decided d JOIN _candidates k USING (row_id) ORDER BY d.traded_at, k.fill_key"
                )
            finally:
                con.unregister("_decided")
        replace_table(con, STATE_TABLE, STATE_COLUMNS, current)
        con.execute("DROP TABLE IF EXISTS _candidates")
        counts = dict(con.sql(f"SELECT stage_reached, count(*) FROM {SIGNALS_TABLE} GROUP BY 1").fetchall())
    decided = 0 if c is None else len(c)
    total = sum(counts.values())
    funnel = model.funnel_from_counts(counts, ("whale", "trade", "portfolio"))
    rates = {
        r.stage: {"entered": r.entered, "passed": r.passed, "rate": round(float(r.rate), 4)}
        for r in funnel.itertuples()
    }
    seconds = round(time.perf_counter() - t0, 2)
    context.log.info(
        f"signals: {plan.mode} ({plan.reason}): {decided:,} orders decided, {total:,} candidates in the table, "
        f"{seconds} s; funnel {rates}"
    )
    return dg.MaterializeResult(
        metadata={
            "candidates": total,
            "decided": decided,
            "plan": plan.mode,
            "plan_reason": plan.reason,
            "funnel": dg.MetadataValue.json(rates),
        }
    )
