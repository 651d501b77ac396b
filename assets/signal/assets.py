"""Signal assets. ``analytics.signals``: every whale BUY order as a candidate, with the stage it reached and every
reason it failed. Thin: the candidates' facts come from one SQL query (point in time: the whale's latest score and
quarantine state on or before the order's day, the token's flow over the hours before it, the price at the copy);
the stages are ``model.screen``, the one function the live loop calls on a single order too.

An order is one decision: the fills of one (wallet, transaction, token) are its legs (a taker order that walks
several makers), decided once (polymarket_realtime.md §4). Every fact here is one the live loop can rebuild from
the batch's snapshot and the feed it sees, so the live engine and this table decide alike (docs/metrics.md#signals).

Stage 3 (portfolio fit) needs the paper portfolio's book; until that portfolio exists, a candidate that passes
stages 1 and 2 is recorded as ``stage_reached = 'portfolio'`` (waiting for stage 3), never as copied.
"""

import dagster as dg
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from assets.risk.assets import WHALE_QUARANTINE
from assets.score.assets import WHALE_SCORES
from assets.size import model as size
from assets.strategy import StrategyConfig
from assets.warehouse import Transaction, create_table_sql, exact_sum

from . import model

SIGNALS = dg.AssetKey(["analytics", "signals"])

DECIMAL = "DECIMAL(38, 12)"

#: every fill's order: the legs of one (wallet, transaction, token, side) are one order. A single leg keeps its own
#: price and notional; several legs add their sizes and notionals exactly, at their volume-weighted price
ORDERS_SQL = f"""
    SELECT min(fill_key) AS fill_key, wallet, condition_id, token_id, side, min(ts) AS ts, count(*) AS legs,
           CASE WHEN count(*) = 1 THEN min(size) ELSE {exact_sum("size")} END AS size,
           CASE WHEN count(*) = 1 THEN min(notional) ELSE {exact_sum("notional")} END AS notional,
           CASE WHEN min(price) = max(price) THEN min(price)
                ELSE {exact_sum("notional")} / {exact_sum("size")} END AS price,
           arg_min(shares_before, (ts, fill_key)) AS shares_before
    FROM intermediate.int_position_fills
    GROUP BY wallet, condition_id, token_id, side, coalesce(transaction_hash, CAST(fill_key AS VARCHAR))
"""

#: per token and UTC day, the day's last print (the highest price of the day's last traded second): a mark
TOKEN_DAYS_SQL = """
    SELECT token_id, CAST(ts // 86400 AS BIGINT) AS day, arg_max(price, (ts, price)) AS last_price
    FROM intermediate.int_position_fills
    GROUP BY ALL
"""

FLOW_HOURS = 168  # the flow looks back over the 7 x 24 whole hours before the order's hour

#: per token and UTC hour, the notional traded (exact, DECIMAL): what the live loop keeps from the feed
TOKEN_HOURS_SQL = f"""
    SELECT token_id, CAST(ts // 3600 AS BIGINT) AS hour, sum(CAST(notional AS {DECIMAL})) AS notional
    FROM intermediate.int_position_fills
    GROUP BY ALL
"""

#: the token's mean daily notional over the 168 whole hours before each hour it traded in
FLOW_SQL = f"""
    SELECT token_id, hour, coalesce(CAST(sum(notional) OVER (
        PARTITION BY token_id ORDER BY hour RANGE BETWEEN {FLOW_HOURS} PRECEDING AND 1 PRECEDING) AS DOUBLE), 0)
        / 7.0 AS daily_notional
    FROM ({TOKEN_HOURS_SQL})
"""

#: every BUY order with the facts the stages need, each known at the order (or at the copy, for the price);
#: ``$latency_seconds`` is bound (the copy latency)
CANDIDATES_SQL = f"""
    WITH buys AS (
        SELECT *, to_timestamp(ts) AS traded_at, CAST(ts // 3600 AS BIGINT) AS hour,
               DATE '1970-01-01' + CAST(ts // 86400 AS INTEGER) AS trade_date
        FROM ({ORDERS_SQL}) WHERE side = 'BUY'
    ),
    prints AS (  -- the highest price of each second a token traded
        SELECT token_id, ts, max(price) AS price FROM intermediate.int_position_fills GROUP BY ALL
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
        s.edge_mean AS whale_edge, coalesce(q.quarantined, false) AS quarantined
    FROM buys b
    JOIN ({FLOW_SQL}) f USING (token_id, hour)
    JOIN copy c USING (fill_key)
    LEFT JOIN marts.dim_markets m USING (condition_id)
    ASOF LEFT JOIN analytics.whale_scores s ON s.wallet = b.wallet AND s.as_of <= b.trade_date
    ASOF LEFT JOIN analytics.whale_quarantine q ON q.wallet = b.wallet AND q.as_of <= b.trade_date
    """

#: the daily returns of the wallets whose volatility the candidates need (``$wallets``, bound)
WHALE_RETURNS_SQL = """
SELECT wallet, CAST(floor(epoch(day) / 86400) AS BIGINT) AS day, daily_return
FROM marts.wallet_daily_returns WHERE wallet IN (SELECT UNNEST($wallets::VARCHAR[]))
"""


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
    "whale_volatility": "DOUBLE",
    "edge_at_copy": "DOUBLE",
    "order_notional_estimate": "DOUBLE",
    "slippage": "DOUBLE",
    "passed_whale": "BOOLEAN NOT NULL",
    "passed_trade": "BOOLEAN NOT NULL",
    "stage_reached": "VARCHAR NOT NULL",
    "reason": "VARCHAR",
}


@dg.asset(
    key=SIGNALS,
    deps=[
        WHALE_SCORES,
        WHALE_QUARANTINE,
        dg.AssetKey(["marts", "dim_markets"]),
        dg.AssetKey(["marts", "fct_fills"]),
    ],
    group_name="signal",
    kinds={"duckdb", "python"},
    description="Every whale BUY order as a candidate copy: the stage it reached (whale, trade, portfolio) and "
    "every reason it failed (docs/metrics.md#signals).",
)
def signals(context: dg.AssetExecutionContext, strategy: StrategyConfig, warehouse: DuckDBResource):
    params = strategy.signal_params()
    with warehouse.get_connection() as con:
        # the 128-bit fill key stays in DuckDB (NumPy has no such integer, and casting 770k of them to text takes
        # seconds): Python works on a row number and the key is joined back on insert
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _candidates AS SELECT row_number() OVER () AS row_id, * FROM ("
            + CANDIDATES_SQL
            + ")",
            {"latency_seconds": int(strategy.copy_latency_seconds)},
        )
        c = con.sql("SELECT * EXCLUDE (fill_key) FROM _candidates").df()
        # the EWMA volatility of a whale's daily returns at its score's date, for the wallets that can be sized
        sized = sorted(set(c.loc[c["wqs"] >= strategy.volatility_min_wqs(), "wallet"]))
        returns = con.execute(WHALE_RETURNS_SQL, {"wallets": sized}).df()
        c["whale_volatility"] = size.volatility_at(returns, c["wallet"], model.score_day(c["score_as_of"]))
        c = model.screen(c, params, strategy.max_position_nav * strategy.starting_nav)
        columns = [col for col in SIGNALS_COLUMNS if col != "fill_key"]
        with Transaction(con):
            con.execute("DROP TABLE IF EXISTS analytics.signals")
            con.execute(create_table_sql("analytics.signals", SIGNALS_COLUMNS))
            if len(c):
                con.register("_decided", pa.Table.from_pandas(c[["row_id", *columns]], preserve_index=False))
                try:
                    con.execute(
                        "INSERT INTO analytics.signals BY NAME SELECT k.fill_key, d.* EXCLUDE (row_id) "
                        "FROM _decided d JOIN _candidates k USING (row_id) ORDER BY d.traded_at, k.fill_key"
                    )
                finally:
                    con.unregister("_decided")
        con.execute("DROP TABLE IF EXISTS _candidates")
    funnel = model.funnel(c["stage_reached"], ("whale", "trade", "portfolio"))
    rates = {
        r.stage: {"entered": r.entered, "passed": r.passed, "rate": round(float(r.rate), 4)}
        for r in funnel.itertuples()
    }
    context.log.info(f"signals: {len(c):,} candidates; funnel {rates}")
    return dg.MaterializeResult(metadata={"candidates": len(c), "funnel": dg.MetadataValue.json(rates)})
