"""The walk-forward backtest as one multi-asset: SQL gathers what the strategies may be offered (every BUY of a
wallet that is a whale, a random control or scores above the lowest threshold), the marks, the whales' sells and
the markets; ``backtest.py`` runs the strategies and builds the tables; they are replaced in one transaction.
The backtest is deterministic for its seed, so a rerun writes the same tables."""

import time

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from assets.evaluate.assets import SCORE_IC_MONTHLY
from assets.paper.assets import MARKETS_SQL, MARKS_SQL, PAPER_NAV, WHALE_SELLS_SQL
from assets.score.assets import WALLET_FLAGS_HISTORY, WHALE_SCORES
from assets.score.flags import FLAGS_AT_SQL
from assets.signal.assets import SIGNALS
from assets.strategy import StrategyConfig
from assets.warehouse import Transaction, replace_table

from . import backtest, report

BACKTEST_DAILY = dg.AssetKey(["evaluation", "backtest_daily"])
BACKTEST_SUMMARY = dg.AssetKey(["evaluation", "backtest_summary"])
BACKTEST_FOLDS = dg.AssetKey(["evaluation", "backtest_folds"])
VALIDATION = dg.AssetKey(["evaluation", "validation"])
ATTRIBUTION_BRINSON = dg.AssetKey(["evaluation", "attribution_brinson"])
ATTRIBUTION_REGRESSION = dg.AssetKey(["evaluation", "attribution_regression"])
ATTRIBUTION_CONTRIBUTION = dg.AssetKey(["evaluation", "attribution_contribution"])
TARGETS = dg.AssetKey(["evaluation", "targets"])

DAY = "CAST(floor(epoch({}) / 86400) AS BIGINT)"

COMPLEMENT_SQL = """
SELECT a.token_id, b.token_id AS complement
FROM intermediate.int_market_tokens a
JOIN intermediate.int_market_tokens b ON a.condition_id = b.condition_id AND a.token_id <> b.token_id
WHERE a.condition_id IN (SELECT condition_id FROM intermediate.int_market_tokens GROUP BY 1 HAVING count(*) = 2)
"""


#: every BUY the strategies may be offered, keyed by a row number (the 128-bit fill key stays in DuckDB);
#: ``$latency_seconds``, ``$min_wqs`` and ``$wallets`` are bound
OFFERED_SQL = f"""
    CREATE OR REPLACE TEMP TABLE _bt_offered AS
    WITH pairs AS ({COMPLEMENT_SQL})
    SELECT row_number() OVER (ORDER BY s.traded_at, s.fill_key) AS key, s.fill_key, s.wallet, s.token_id,
           s.condition_id, s.event_id, s.category, epoch(s.traded_at) + $latency_seconds AS ts,
           {DAY.format("s.traded_at")} AS fill_day, s.whale_price, s.whale_notional, s.copy_price,
           s.daily_notional, s.days_to_resolution, s.wqs, s.rolling_sharpe_30, s.rolling_sharpe_90,
           s.current_drawdown, s.quarantined, s.flags, s.whale_volatility, s.edge_at_copy, s.slippage,
           p.complement AS complement_token
    FROM analytics.signals s LEFT JOIN pairs p USING (token_id)
    WHERE s.wqs >= $min_wqs OR s.wallet IN (SELECT UNNEST($wallets::VARCHAR[]))
    """


#: the tokens the portfolio code reads marks, sells and markets for (the paper asset's queries read this table);
#: the other outcome of each, for the reverse control's settlement
PAPER_TOKENS_SQL = """
CREATE OR REPLACE TEMP TABLE _paper_candidates AS
SELECT wallet, token_id FROM _bt_offered
UNION ALL SELECT NULL, complement_token FROM _bt_offered WHERE complement_token IS NOT NULL
"""

D, INT, V, B = "DOUBLE", "BIGINT", "VARCHAR", "BOOLEAN"
DAILY_TYPES = {"strategy": V, "day": "DATE", "nav": D, "daily_return": D, "drawdown": D, "exposure_share": D,
               "var": D, "open_positions": INT}  # fmt: skip
METRIC_TYPES = {f"{m}{suffix}": D for m in backtest.METRICS for suffix in ("", "_ci_low", "_ci_high")}
SUMMARY_TYPES = {"strategy": V, "is_control": B, **METRIC_TYPES, "hit_rate": D, "turnover": D, "trades": INT,
                 "final_nav": D, "days": INT, "n_markets": INT, "deflated_sharpe": D, "dsr_sr0_daily": D,
                 "n_trials": INT}  # fmt: skip
FOLD_TYPES = {"fold": INT, "train_start": "DATE", "origin": "DATE", "fold_end": "DATE", "whales": INT,
              "random_wallets": INT, "chosen_min_wqs": D, "in_sample_sharpe": D, "out_of_sample_sharpe": D}  # fmt: skip
VALIDATION_TYPES = {"check_name": V, "subject": V, "statistic": V, "value": D, "p_value": D, "threshold": D,
                    "passed": B, "detail": V}  # fmt: skip
BRINSON_TYPES = {"portfolio": V, "benchmark": V, "category": V, "wp": D, "wb": D, "rp": D, "rb": D,
                 "allocation": D, "selection": D, "interaction": D, "total": D}  # fmt: skip
REGRESSION_TYPES = {"strategy": V, "benchmark": V, "alpha": D, "beta": D, "r_squared": D, "alpha_annualised": D,
                    "alpha_t": D, "n": INT}  # fmt: skip
CONTRIBUTION_TYPES = {"strategy": V, "dimension": V, "item": V, "pnl": D, "share_of_pnl": D}
TARGET_TYPES = {"target": V, "description": V, "kind": V, "documented": D, "measured": D, "ci_low": D,
                "ci_high": D, "met": B, "status": V, "reason": V, "definition": V}  # fmt: skip


def _as_date(days: pd.Series) -> pd.Series:
    return pd.to_datetime(days.astype("int64"), unit="D").dt.date


def load_inputs(con, strategy: StrategyConfig, p: backtest.BacktestParams, first_day: int, last_day: int):
    """The frames ``backtest.walk_forward`` takes, read point in time from the warehouse."""
    folds = backtest.make_folds(first_day, last_day, p)
    score_days = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT {DAY.format('as_of')} FROM analytics.whale_scores ORDER BY 1"
        ).fetchall()
    ]
    used = sorted({max((d for d in score_days if d <= f.origin), default=None) for f in folds} - {None})
    # the wallets flagged at a date are not whales to discover nor random wallets to draw at it (unless kept)
    scores = con.execute(
        f"SELECT {DAY.format('s.as_of')} AS as_of_day, s.wallet, s.wqs FROM analytics.whale_scores s "
        f"LEFT JOIN ({FLAGS_AT_SQL}) fl USING (as_of, wallet) "
        f"WHERE {DAY.format('s.as_of')} IN (SELECT UNNEST(?::BIGINT[])) AND (fl.flags IS NULL OR ?)",
        [used, strategy.keep_flagged_wallets],
    ).df()
    wallets = set()
    for f in folds:
        whales = backtest.discovered(scores, f.origin, p)
        wallets |= set(whales) | set(
            backtest.random_wallets(scores, f.origin, len(whales), p.seed * 1000 + f.fold)
        )
    min_wqs = min([*p.min_wqs_grid, strategy.min_wqs])
    latency = {"latency_seconds": int(strategy.copy_latency_seconds)}
    con.execute(OFFERED_SQL, {**latency, "min_wqs": min_wqs, "wallets": sorted(wallets)})
    cands = con.sql("SELECT * EXCLUDE (fill_key) FROM _bt_offered").df()
    con.execute(PAPER_TOKENS_SQL)
    marks = con.sql(MARKS_SQL).df()
    sells = con.execute(WHALE_SELLS_SQL, latency).df()
    markets = con.sql(MARKETS_SQL).df()
    complement = con.sql(COMPLEMENT_SQL).df().set_index("token_id")["complement"]
    monthly = con.execute(
        f"SELECT {DAY.format('month')} AS month, ic FROM evaluation.score_ic_monthly "
        "WHERE universe = 'all' AND predictor = 'wqs'"
    ).df()
    live = con.execute("SELECT day, nav FROM analytics.paper_nav").df()  # day numbers already
    con.execute("DROP TABLE IF EXISTS _bt_offered")
    con.execute("DROP TABLE IF EXISTS _paper_candidates")
    return cands, marks, sells, markets, scores, complement, monthly, live


def build_backtest(fee_rate: float) -> dg.AssetsDefinition:
    """The walk-forward backtest at the warehouse's fee rate."""

    def spec(key, description, *, group="evaluation"):
        deps = [SIGNALS, WHALE_SCORES, WALLET_FLAGS_HISTORY, SCORE_IC_MONTHLY, PAPER_NAV]
        return dg.AssetSpec(
            key, deps=deps, group_name=group, kinds={"duckdb", "python"}, description=description
        )

    @dg.multi_asset(
        name="backtest",
        specs=[
            spec(BACKTEST_DAILY, "Per strategy and day: NAV, return, drawdown, exposure and VaR of the walk-forward "
                 "backtest (docs/metrics.md#walk-forward-backtest)."),
            spec(BACKTEST_SUMMARY, "Per strategy: CAGR, Sharpe, Sortino, drawdown, Calmar, tail return with "
                 "market-clustered bootstrap intervals; hit rate, turnover, trades; deflated Sharpe."),
            spec(BACKTEST_FOLDS, "Per walk-forward fold: origin, whales, the WQS threshold chosen in sample, "
                 "in-sample and out-of-sample Sharpe."),
            spec(VALIDATION, "Score IC per fold, Kupiec and Christoffersen tests of the VaR, overfitting ratio and "
                 "drawdown checks (docs/metrics.md#statistical-validation)."),
            spec(ATTRIBUTION_BRINSON, "Brinson-Fachler by category, full strategy against naive copying."),
            spec(ATTRIBUTION_REGRESSION, "Alpha and beta of each strategy's daily returns on naive copying's."),
            spec(ATTRIBUTION_CONTRIBUTION, "P&L by category and by whale, and the execution costs, per strategy."),
            spec(TARGETS, "The documented targets against what the backtest measured, with intervals."),
        ],
    )  # fmt: skip
    def backtest_asset(
        context: dg.AssetExecutionContext, strategy: StrategyConfig, warehouse: DuckDBResource
    ):
        p = strategy.backtest_params()
        t0 = time.perf_counter()
        with warehouse.get_connection() as con:
            first_day, last_day = con.execute(
                f"SELECT {DAY.format('min(day)')}, {DAY.format('max(day)')} FROM marts.wallet_daily_returns"
            ).fetchall()[0]
            if first_day is None:
                raise dg.Failure("the backtest needs marts.wallet_daily_returns: it is empty")
            if backtest.make_folds(int(first_day), int(last_day), p):
                tables, folds = _backtest_tables(
                    context, con, strategy, fee_rate, int(first_day), int(last_day)
                )
            else:
                context.log.warning(
                    f"backtest: {int(last_day) - int(first_day) + 1} days of data do not outlast the "
                    f"{p.warmup_days}-day warm-up: no walk-forward fold, the tables are written empty"
                )
                tables, folds = {t: (types, None) for t, types in TABLE_TYPES.items()}, 0
            with Transaction(con):
                con.execute("CREATE SCHEMA IF NOT EXISTS evaluation")
                for table, (types, frame) in tables.items():
                    replace_table(con, table, types, frame)
        elapsed = time.perf_counter() - t0
        context.log.info(f"backtest: {folds} folds, {len(backtest.STRATEGIES)} strategies in {elapsed:.1f}s")
        table_md = report.summary_markdown(
            {"summary": tables["evaluation.backtest_summary"][1], "targets": tables["evaluation.targets"][1]}
        )
        for key in (BACKTEST_DAILY, BACKTEST_SUMMARY, BACKTEST_FOLDS, VALIDATION, ATTRIBUTION_BRINSON,
                    ATTRIBUTION_REGRESSION, ATTRIBUTION_CONTRIBUTION, TARGETS):  # fmt: skip
            meta = {"folds": folds, "seconds": round(elapsed, 1)}
            if key == BACKTEST_SUMMARY:
                meta["summary"] = dg.MetadataValue.md(table_md)
            yield dg.MaterializeResult(asset_key=key, metadata=meta)

    return backtest_asset


TABLE_TYPES = {
    "evaluation.backtest_daily": DAILY_TYPES,
    "evaluation.backtest_summary": SUMMARY_TYPES,
    "evaluation.backtest_folds": FOLD_TYPES,
    "evaluation.validation": VALIDATION_TYPES,
    "evaluation.attribution_brinson": BRINSON_TYPES,
    "evaluation.attribution_regression": REGRESSION_TYPES,
    "evaluation.attribution_contribution": CONTRIBUTION_TYPES,
    "evaluation.targets": TARGET_TYPES,
}


def _backtest_tables(context, con, strategy: StrategyConfig, fee_rate: float, first_day: int, last_day: int):
    """Every evaluation table of the walk-forward, as (types, frame) by table name, and the number of folds."""
    p, base = strategy.backtest_params(), strategy.paper_params(fee_rate)
    t0 = time.perf_counter()
    cands, marks, sells, markets, scores, complement, monthly, live = load_inputs(
        con, strategy, p, first_day, last_day
    )
    context.log.info(f"backtest: {len(cands):,} candidate copies loaded in {time.perf_counter() - t0:.1f}s")
    bt = backtest.walk_forward(cands, marks, sells, markets, scores, complement, first_day, last_day, base, p,
                               progress=context.log.info)  # fmt: skip
    summary = backtest.summary_table(bt, int(bt.folds["origin"].min()), last_day, base.starting_nav, p)
    daily = backtest.daily_table(bt)
    brinson = backtest.brinson_table(bt, last_day)
    folds = bt.folds.assign(**{c: _as_date(bt.folds[c]) for c in ("train_start", "origin", "fold_end")})
    frames = {
        "evaluation.backtest_daily": daily.assign(day=_as_date(daily["day"])),
        "evaluation.backtest_summary": summary,
        "evaluation.backtest_folds": folds,
        "evaluation.validation": backtest.validation_table(
            bt, summary, monthly, live, strategy.var_confidence
        ),
        "evaluation.attribution_brinson": brinson,
        "evaluation.attribution_regression": backtest.regression_table(bt),
        "evaluation.attribution_contribution": backtest.contribution_table(bt, last_day),
        "evaluation.targets": backtest.targets_table(summary, brinson, bt.stopped_by, p.min_trades),
    }
    return {t: (TABLE_TYPES[t], f) for t, f in frames.items()}, len(bt.folds)
