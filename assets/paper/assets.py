"""The paper-trading portfolio as one multi-asset: the candidates that passed stages 1 and 2 go through stage 3,
sizing, fills, exits and daily NAV (``model.run_paper``), and six tables come out.

Every run's tables are those of one replay of the history from its first day: deterministic, so a rerun books
exactly the same fills, never a fill twice, and the tables are replaced in one transaction. A run goes on from the
book the last one kept (``analytics.paper_state``, ``model.run_paper_carried``) where nothing it had read changed,
so a daily run replays its last days, not the history. Its alerts are found anew by every run too;
``analytics.alerts`` carries what became of each at the webhook, so each is posted once
(``assets/risk/model.py:alert_deliveries``). whalecopy holds no keys and places no orders (``whalecopy
intents`` writes them for a user's own executor).
"""

import dagster as dg
import pandas as pd
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from assets.risk import model as risk_model
from assets.risk.alerts import AlertsResource
from assets.risk.assets import WHALE_QUARANTINE
from assets.signal.assets import SIGNALS, orders_sql, token_days_sql
from assets.strategy import StrategyConfig
from assets.warehouse import Transaction, create_table_sql, replace_table, table_columns, table_exists

from . import model

ORDERS = dg.AssetKey(["analytics", "orders"])
PAPER_FILLS = dg.AssetKey(["analytics", "paper_fills"])
PAPER_POSITIONS = dg.AssetKey(["analytics", "paper_positions"])
PAPER_NAV = dg.AssetKey(["analytics", "paper_nav"])
RISK_DAILY = dg.AssetKey(["analytics", "risk_daily"])
ALERTS = dg.AssetKey(["analytics", "alerts"])


#: the candidates stage 3 sees (``$latency_seconds``, the copy latency, is bound)
CANDIDATES_SQL = """
    CREATE OR REPLACE TEMP TABLE _paper_candidates AS
    SELECT row_number() OVER (ORDER BY traded_at, fill_key) AS key, fill_key, wallet, token_id, condition_id,
           event_id, category, epoch(traded_at) + $latency_seconds AS ts, copy_price, edge_at_copy, wqs,
           whale_volatility, daily_notional, CAST(floor(epoch(traded_at) / 86400) AS BIGINT) AS fill_day
    FROM analytics.signals
    WHERE stage_reached = 'portfolio'
    """


#: the daily marks of the candidates' tokens: the day's last price-history point, else the day's last print
MARKS_SQL = f"""
WITH toks AS (SELECT DISTINCT token_id FROM _paper_candidates),
history AS (
    SELECT token_id, CAST(floor(ts / 86400) AS BIGINT) AS day, arg_max(price, ts) AS price
    FROM raw.price_history SEMI JOIN toks USING (token_id) GROUP BY ALL
),
trades AS (
    SELECT token_id, day, last_price AS price FROM ({token_days_sql("token_id IN (SELECT token_id FROM toks)")})
)
SELECT token_id, day, coalesce(h.price, t.price) AS price FROM history h FULL JOIN trades t USING (token_id, day)
"""


#: the whales' sell orders on the candidates' tokens, seen after the copy latency (``$latency_seconds``, bound):
#: the share of its position the whale sold (an order's legs together, against the position before the first)
WHALE_SELLS_SQL = f"""
    SELECT wallet, token_id, ts + $latency_seconds AS ts, price, size / shares_before AS fraction
    FROM ({orders_sql("(wallet, token_id) IN (SELECT DISTINCT wallet, token_id FROM _paper_candidates)")}) o
    WHERE side = 'SELL' AND shares_before > 1e-9
    ORDER BY ts, fill_key
    """


MARKETS_SQL = """
SELECT t.token_id, epoch(m.end_date) AS end_ts,
       CASE WHEN t.has_valid_payout THEN epoch(t.resolved_at) END AS resolved_ts,
       CASE WHEN t.has_valid_payout THEN t.payout END AS payout
FROM intermediate.int_market_tokens t
JOIN marts.dim_markets m USING (condition_id)
SEMI JOIN (SELECT DISTINCT token_id FROM _paper_candidates) c USING (token_id)
"""

#: quarantines that start for a whale the portfolio has copied: (day, wallet, released_on)
QUARANTINE_STARTS_SQL = """
SELECT CAST(floor(epoch(as_of) / 86400) AS BIGINT) AS day, wallet, released_on
FROM (
    SELECT *, lag(quarantined) OVER (PARTITION BY wallet ORDER BY as_of) AS was_quarantined
    FROM analytics.whale_quarantine
    WHERE wallet IN (SELECT UNNEST(?::VARCHAR[]))
)
WHERE quarantined AND NOT coalesce(was_quarantined, false)
ORDER BY day, wallet
"""


def paper_inputs(con, strategy: StrategyConfig):
    """The frames ``model.run_paper`` takes, from the warehouse (leaves ``_paper_candidates``, whose ``key`` joins a
    decision to its whale order's ``fill_key``)."""
    latency = {"latency_seconds": int(strategy.copy_latency_seconds)}
    con.execute(CANDIDATES_SQL, latency)
    cands = con.sql("SELECT * EXCLUDE (fill_key) FROM _paper_candidates").df()
    return (
        cands,
        con.sql(MARKS_SQL).df(),
        con.execute(WHALE_SELLS_SQL, latency).df(),
        con.sql(MARKETS_SQL).df(),
    )


def paper_run(con, strategy: StrategyConfig, fee_rate: float, first_day: int | None, last_day: int | None):
    """The batch paper run from ``first_day`` to ``last_day`` (UTC day numbers) on an empty book: the daily run over
    the whole history, or any stretch of it (the live loop's parity test runs one week)."""
    params = strategy.paper_params(fee_rate)
    cands, marks, sells, markets = paper_inputs(con, strategy)
    if first_day is None:
        return model.run_paper(
            cands.iloc[:0], marks.iloc[:0], sells.iloc[:0], markets.iloc[:0], 0, -1, params
        ), cands
    return model.run_paper(cands, marks, sells, markets, int(first_day), int(last_day), params), cands


def _with_quarantine_alerts(con, result: model.PaperResult) -> pd.DataFrame:
    """The run's alerts plus a ``whale_quarantined`` alert each time a whale the portfolio copied is quarantined."""
    wallets = sorted(set(result.positions["wallet"].dropna()))
    starts = con.execute(QUARANTINE_STARTS_SQL, [wallets]).df() if wallets else pd.DataFrame()
    if starts.empty:
        return result.alerts
    extra = pd.DataFrame(
        {
            "day": starts["day"],
            "kind": "whale_quarantined",
            "message": "copied whale "
            + starts["wallet"]
            + " quarantined until "
            + starts["released_on"].astype(str),
        }
    )
    return pd.concat([result.alerts, extra], ignore_index=True).sort_values(
        "day", kind="stable", ignore_index=True
    )


D, INT, V, B = "DOUBLE", "BIGINT", "VARCHAR", "BOOLEAN"
ORDER_TYPES = {"key": INT, "day": INT, "nav": D, "correlation": D, "exposure_after": D, "drawdown": D, "fraction": D,
               "shares": D, "notional": D, "copied": B, "reason": V}  # fmt: skip
FILL_TYPES = {
    "key": INT,
    "kind": V,
    "day": INT,
    "ts": D,
    "token_id": V,
    "shares": D,
    "price": D,
    "fee": D,
    "cash_after": D,
}
POSITION_TYPES = {"key": INT, "wallet": V, "token_id": V, "category": V, "entry_day": INT, "entry_price": D,
                  "shares_open": D, "cost": D, "proceeds": D, "fees": D, "closed_day": INT, "close_reason": V,
                  "realised_pnl": D, "mark": D, "stop_level": D, "time_exit_day": INT}  # fmt: skip
NAV_TYPES = {"day": INT, "cash": D, "positions_value": D, "nav": D, "exposure_share": D, "max_category_share": D,
             "open_positions": INT, "drawdown": D, "daily_return": D, "var": D, "entries_blocked": B}  # fmt: skip
TS = "TIMESTAMPTZ"
LOGGED_ALERTS = 20  # the run log lists at most this many of a run's new alerts
ALERT_TYPES = {"day": INT, "kind": V, "message": V, "found_at": TS, "delivery": V, "posted_at": TS}
RISK_TYPES = {k: NAV_TYPES[k] for k in ("day", "nav", "var", "entries_blocked", "exposure_share",
                                        "max_category_share", "drawdown")} | {"var_limit": D}  # fmt: skip


#: the book a run keeps for the next to go on from (model.run_paper_carried): one row, a cache (deleting it makes
#: the next run replay the history, with the same tables)
PAPER_STATE = "analytics.paper_state"
STATE_TYPES = {"first_day": INT, "through_day": INT, "digest": V, "book": "BLOB", "kept_at": TS}


def stored_book(con) -> model.PaperState | None:
    """The book the last run kept, or None."""
    if not table_exists(con, PAPER_STATE):
        return None
    rows = con.execute(f"SELECT first_day, through_day, digest, book FROM {PAPER_STATE}").fetchall()
    return (
        model.PaperState(int(rows[0][0]), int(rows[0][1]), rows[0][2], bytes(rows[0][3]))
        if len(rows) == 1
        else None
    )


def stored_alerts(con) -> pd.DataFrame | None:
    """The alerts the last run stored, with what became of each at the webhook, in their order; None before the
    first run. A table from before delivery was recorded: its alerts count as ``history`` (never posted again)."""
    columns = table_columns(con, "analytics.alerts")
    if not columns:
        return None
    if set(risk_model.DELIVERY_COLUMNS) <= set(columns):
        return con.sql(
            "SELECT day, kind, message, found_at, delivery, posted_at FROM analytics.alerts ORDER BY rowid"
        ).df()
    old = con.sql("SELECT day, kind, message FROM analytics.alerts ORDER BY rowid").df()
    return old.assign(found_at=pd.NaT, delivery=risk_model.HISTORY, posted_at=pd.NaT)


def build_paper_portfolio(fee_rate: float) -> dg.AssetsDefinition:
    """The paper portfolio at the warehouse's fee rate (the same one the marts charge whales)."""

    @dg.multi_asset(
        name="paper_portfolio",
        specs=[
            dg.AssetSpec(ORDERS, deps=[SIGNALS], group_name="paper", kinds={"duckdb", "python"},
                         description="Stage 3 and sizing for every candidate that passed stages 1 and 2: copied or "
                         "why not, and the order (docs/metrics.md#paper-portfolio)."),
            dg.AssetSpec(PAPER_FILLS, deps=[SIGNALS], group_name="paper", kinds={"duckdb", "python"},
                         description="Every paper fill: entries, mirrored whale sells, trailing stops, time exits, "
                         "settlements."),
            dg.AssetSpec(PAPER_POSITIONS, deps=[SIGNALS], group_name="paper", kinds={"duckdb", "python"},
                         description="One row per paper position opened: cost, proceeds, fees, how it closed."),
            dg.AssetSpec(PAPER_NAV, deps=[SIGNALS], group_name="paper", kinds={"duckdb", "python"},
                         description="The paper portfolio's NAV per day, marked to the day's last price."),
            dg.AssetSpec(RISK_DAILY, deps=[SIGNALS], group_name="risk", kinds={"duckdb", "python"},
                         description="Per day: Cornish-Fisher VaR of the portfolio's daily returns, exposure, the "
                         "largest category, drawdown, and whether new entries are blocked."),
            dg.AssetSpec(ALERTS, deps=[SIGNALS, WHALE_QUARANTINE], group_name="risk", kinds={"duckdb", "python"},
                         description="VaR breaches, stops, time exits and quarantines of copied whales (and the "
                         "webhook, when configured)."),
        ]
    )  # fmt: skip
    def paper_portfolio(
        context: dg.AssetExecutionContext,
        strategy: StrategyConfig,
        warehouse: DuckDBResource,
        alerts: AlertsResource,
    ):
        params = strategy.paper_params(fee_rate)
        with warehouse.get_connection() as con:
            first_day, last_day = con.execute(
                "SELECT CAST(floor(epoch(min(day)) / 86400) AS BIGINT), CAST(floor(epoch(max(day)) / 86400) AS BIGINT) "
                "FROM marts.wallet_daily_returns"
            ).fetchall()[0]
            if first_day is None:
                result, cands = paper_run(con, strategy, fee_rate, first_day, last_day)
                stored, kept, how = None, None, "no days to run"
            else:  # the book the last run kept goes on where what it read is unchanged
                cands, marks, sells, markets = paper_inputs(con, strategy)
                stored = stored_book(con)
                result, kept, how = model.run_paper_carried(
                    cands, marks, sells, markets, int(first_day), int(last_day), params, stored
                )
            context.log.info(f"paper portfolio: {how}")
            result = result._replace(alerts=_with_quarantine_alerts(con, result))
            now = pd.Timestamp.now(tz="UTC")
            with Transaction(con):
                found = risk_model.alert_deliveries(
                    result.alerts, stored_alerts(con), now, -1 if last_day is None else int(last_day),
                    webhook=bool(alerts.webhook_url),
                )  # fmt: skip
                con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
                con.execute("DROP TABLE IF EXISTS analytics.orders")
                con.execute(
                    create_table_sql("analytics.orders", {"fill_key": "UHUGEINT NOT NULL"} | ORDER_TYPES)
                )
                if len(result.decisions):
                    con.register(
                        "_orders",
                        pa.Table.from_pandas(result.decisions[list(ORDER_TYPES)], preserve_index=False),
                    )
                    try:
                        con.execute(
                            "INSERT INTO analytics.orders BY NAME SELECT c.fill_key, o.* FROM _orders o "
                            "JOIN _paper_candidates c USING (key) ORDER BY o.key"
                        )
                    finally:
                        con.unregister("_orders")
                replace_table(con, "analytics.paper_fills", FILL_TYPES, result.fills)
                replace_table(con, "analytics.paper_positions", POSITION_TYPES, result.positions)
                replace_table(con, "analytics.paper_nav", NAV_TYPES, result.nav)
                risk_daily = result.nav.assign(var_limit=-params.var_limit_nav)
                replace_table(con, "analytics.risk_daily", RISK_TYPES, risk_daily)
                replace_table(con, "analytics.alerts", ALERT_TYPES, found)
                if kept != stored or stored is None:  # the same book kept stays as it was
                    state = None
                    if kept is not None:
                        state = pd.DataFrame([{"first_day": kept.first_day, "through_day": kept.through,
                                               "digest": kept.digest, "book": kept.book, "kept_at": now}])  # fmt: skip
                    replace_table(con, PAPER_STATE, STATE_TYPES, state)
            con.execute("DROP TABLE IF EXISTS _paper_candidates")
            # posted after the commit (an alert of a run that stops is never posted), marked once the webhook took it
            pending = found[found["delivery"] == risk_model.PENDING]
            sent = alerts.send(pending[risk_model.ALERT_KEY].to_dict("records"), context.log)
            if sent:
                with Transaction(con):
                    con.execute(
                        "UPDATE analytics.alerts SET delivery = ?, posted_at = ? WHERE delivery = ?",
                        [risk_model.POSTED, now.to_pydatetime(), risk_model.PENDING],
                    )
        nav = result.nav
        copied = int(result.decisions["copied"].sum()) if len(result.decisions) else 0
        summary = {
            "candidates": len(cands),
            "copied": copied,
            "fills": len(result.fills),
            "final_nav": round(float(nav["nav"].iloc[-1]), 2) if len(nav) else None,
            "var_breach_days": int(nav["entries_blocked"].sum()) if len(nav) else 0,
            "alerts": len(result.alerts),
            "new_alerts": int((found["found_at"] == now).sum()),
            "alerts_pending": len(pending) - sent,
        }
        context.log.info(f"paper portfolio: {summary}")
        new = found[found["found_at"] == now]
        for a in new.tail(LOGGED_ALERTS).to_dict("records"):  # the alerts no run found before this one
            context.log.warning(f"alert [{a['kind']}] day {a['day']}: {a['message']} ({a['delivery']})")
        if len(new) > LOGGED_ALERTS:
            context.log.warning(f"... and {len(new) - LOGGED_ALERTS} more new alerts (analytics.alerts)")
        meta = {k: v for k, v in summary.items() if v is not None} | {"alerts_posted": sent}
        for key in (ORDERS, PAPER_FILLS, PAPER_POSITIONS, PAPER_NAV, RISK_DAILY, ALERTS):
            yield dg.MaterializeResult(asset_key=key, metadata=meta)

    return paper_portfolio
