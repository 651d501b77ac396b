"""Signal assets. ``analytics.signals``: every whale BUY fill as a candidate, with the stage it reached and every
reason it failed. Thin: the candidates' facts come from one SQL query (point in time: the whale's latest score and
quarantine state before the fill, the token's flow before it); the stages are ``model.py``.

Stage 3 (portfolio fit) needs the paper portfolio's book; until that portfolio exists, a candidate that passes
stages 1 and 2 is recorded as ``stage_reached = 'portfolio'`` (waiting for stage 3), never as copied.
"""

import dagster as dg
import numpy as np
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from assets.risk.assets import WHALE_QUARANTINE
from assets.score.assets import WHALE_SCORES
from assets.strategy import StrategyConfig
from assets.warehouse import Transaction, create_table_sql

from . import model

SIGNALS = dg.AssetKey(["analytics", "signals"])


#: every BUY fill with the facts the stages need, each known at the fill (or at the copy, for the price);
#: ``$latency_seconds`` is bound (the copy latency)
CANDIDATES_SQL = """
    WITH buys AS (
        SELECT fill_key, wallet, condition_id, token_id, price, notional, ts, traded_at, trade_date
        FROM intermediate.int_position_fills
        WHERE side = 'BUY'
    ),
    flow AS (  -- the token's mean daily notional over the 7 days before the fill
        SELECT fill_key, coalesce(sum(notional) OVER (
            PARTITION BY token_id ORDER BY ts RANGE BETWEEN 604800 PRECEDING AND 1 PRECEDING), 0) / 7.0
            AS daily_notional
        FROM intermediate.int_position_fills
    ),
    copy AS (  -- the last trade on the token at or before the fill + the copy latency: what we would pay
        SELECT b.fill_key, t.price AS copy_price
        FROM buys b ASOF JOIN intermediate.int_position_fills t
          ON t.token_id = b.token_id AND t.ts <= b.ts + $latency_seconds
    )
    SELECT
        b.fill_key, b.wallet, b.condition_id, b.token_id, m.event_id, m.category, b.traded_at,
        b.price AS whale_price, b.notional AS whale_notional, c.copy_price, f.daily_notional,
        (epoch(try_cast(m.end_date AS TIMESTAMPTZ)) - b.ts) / 86400.0 AS days_to_resolution,
        s.as_of AS score_as_of, s.wqs, s.rolling_sharpe_30, s.rolling_sharpe_90, s.current_drawdown,
        s.edge_mean AS whale_edge, coalesce(q.quarantined, false) AS quarantined
    FROM buys b
    JOIN flow f USING (fill_key)
    JOIN copy c USING (fill_key)
    LEFT JOIN marts.dim_markets m USING (condition_id)
    ASOF LEFT JOIN analytics.whale_scores s ON s.wallet = b.wallet AND s.as_of <= b.trade_date
    ASOF LEFT JOIN analytics.whale_quarantine q ON q.wallet = b.wallet AND q.as_of <= b.trade_date
    """


SIGNALS_COLUMNS = {
    "fill_key": "UHUGEINT NOT NULL",  # the fill's natural key, as in marts.fct_fills
    "wallet": "VARCHAR NOT NULL",
    "condition_id": "VARCHAR",
    "token_id": "VARCHAR",
    "event_id": "VARCHAR",
    "category": "VARCHAR",
    "traded_at": "TIMESTAMPTZ NOT NULL",
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
    description="Every whale BUY fill as a candidate copy: the stage it reached (whale, trade, portfolio) and every "
    "reason it failed (docs/metrics.md#signals).",
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
        c["edge_at_copy"] = model.edge_at_copy(c["whale_edge"], c["whale_price"], c["copy_price"])
        # our order at its largest (the position cap on the starting NAV): slippage is judged for that size
        c["order_notional_estimate"] = strategy.max_position_nav * strategy.starting_nav
        c["slippage"] = model.slippage_estimate(
            c["order_notional_estimate"], c["daily_notional"], params.impact_coefficient
        )
        c["slippage"] = c["slippage"].replace(
            np.inf, np.nan
        )  # no flow before the fill: unknown (fails stage 2)
        whale = model.whale_stage(c, params)
        trade = model.trade_stage(c, params)
        c["passed_whale"] = whale.passed
        c["passed_trade"] = trade.passed & whale.passed
        c["stage_reached"] = np.where(~whale.passed, "whale", np.where(~trade.passed, "trade", "portfolio"))
        c["reason"] = np.where(~whale.passed, whale.reason, np.where(~trade.passed, trade.reason, None))
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
