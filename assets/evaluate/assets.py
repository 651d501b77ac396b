"""Evaluation assets. ``evaluation.score_ic``: does the score predict? Thin: SQL joins the stored score history to
each wallet's realised forward return; the statistics are in ``model.py``."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from assets.ingest.assets import SIM_TRUTH
from assets.score.assets import WHALE_SCORES
from assets.strategy import StrategyConfig
from assets.warehouse import Transaction, exact_sum, replace_table, table_exists

from . import model

SCORE_IC = dg.AssetKey(["evaluation", "score_ic"])
SCORE_IC_MONTHLY = dg.AssetKey(["evaluation", "score_ic_monthly"])

#: predictor name -> column of analytics.whale_scores: the WQS, two of its parts, and the rivals
PREDICTORS: dict[str, str] = {
    "wqs": "wqs",
    "consistency": "consistency",
    "sharpe": "sharpe",
    "bayesian_win_rate": "win_rate_mean",
    "price_calibrated_edge": "edge_mean",
    "raw_win_rate": "raw_win_rate",
    "raw_pnl": "pnl_net_to_date",
}
SCORE_IC_COLUMNS: dict[str, str] = {
    "universe": "VARCHAR NOT NULL",
    "predictor": "VARCHAR NOT NULL",
    **{c: "DOUBLE" for c in ("mean_ic", "t_stat", "ci_low", "ci_high")},
    "n_months": "INTEGER",
    "n_as_of": "INTEGER",
    "mean_wallets": "DOUBLE",
    "share_positive_months": "DOUBLE",
    "diff_vs_raw_win_rate": "DOUBLE",
    "diff_t_stat": "DOUBLE",
    "true_edge_spearman": "DOUBLE",
    "horizon_days": "INTEGER",
    "target_ic": "DOUBLE",
    "first_as_of": "DATE",
    "last_as_of": "DATE",
    "computed_at": "TIMESTAMPTZ",
}
SCORE_IC_MONTHLY_COLUMNS: dict[str, str] = {
    "universe": "VARCHAR NOT NULL",
    "predictor": "VARCHAR NOT NULL",
    "month": "DATE NOT NULL",
    "ic": "DOUBLE",
    "n_as_of": "INTEGER",
    "mean_wallets": "DOUBLE",
}

#: universes of wallets an IC is measured over: every scored wallet, or those that trade in the forward window
UNIVERSES: dict[str, str] = {"all": "TRUE", "active": "fwd_fills > 0"}


#: the relations ``forward_sql`` may read scores from: the stored history, or tuning's registered candidate
SCORE_RELATIONS = ("analytics.whale_scores", "_candidate")


def forward_sql(scores: str = "analytics.whale_scores") -> str:
    """Each (as_of, wallet) row of ``scores`` with its predictors and the sum of its daily returns over
    ``[as_of, as_of + $horizon_days)``; only as-of dates whose whole window lies inside the data, and that hold at
    least ``$min_forward_days`` return days (both bound: see ``forward_returns``)."""
    if scores not in SCORE_RELATIONS:
        raise ValueError(f"scores must be one of {SCORE_RELATIONS}, not {scores!r}")
    cols = ", ".join(f"s.{c} AS {name}" for name, c in PREDICTORS.items())
    return f"""
    WITH bounds AS (SELECT max(day) + 1 AS data_end FROM marts.wallet_daily_returns),
    fwd AS (
        SELECT s.as_of, s.wallet, {exact_sum("r.daily_return")} AS fwd_return, count(r.daily_return) AS fwd_days,
               sum(r.n_fills) AS fwd_fills
        FROM {scores} s
        JOIN marts.wallet_daily_returns r
          ON r.wallet = s.wallet AND r.day >= s.as_of AND r.day < s.as_of + CAST($horizon_days AS INTEGER)
        WHERE s.as_of + CAST($horizon_days AS INTEGER) <= (SELECT data_end FROM bounds)
        GROUP BY ALL
    )
    SELECT s.as_of, s.wallet, {cols}, f.fwd_return, f.fwd_days, f.fwd_fills
    FROM {scores} s JOIN fwd f USING (as_of, wallet)
    WHERE f.fwd_days >= $min_forward_days
    """


def forward_returns(
    con, horizon_days: int, min_forward_days: int, scores: str = "analytics.whale_scores"
) -> pd.DataFrame:
    """``forward_sql`` run with its values bound."""
    params = {"horizon_days": int(horizon_days), "min_forward_days": int(min_forward_days)}
    return con.execute(forward_sql(scores), params).df()


LATEST_SQL = f"""
SELECT s.wallet, {", ".join(f"s.{c} AS {name}" for name, c in PREDICTORS.items())}, t.true_edge
FROM analytics.whale_scores s JOIN evaluation.sim_truth t USING (wallet)
WHERE s.as_of = (SELECT max(as_of) FROM analytics.whale_scores)
"""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            SCORE_IC,
            deps=[WHALE_SCORES, dg.AssetKey(["marts", "wallet_daily_returns"]), SIM_TRUTH],
            group_name="evaluation",
            kinds={"duckdb", "python"},
            description="Out-of-sample information coefficient of the WQS and its rivals: Spearman(score at t, "
            "realised return over the next 30 days), month-clustered mean, t and 95% CI; rank correlation with the "
            "simulator's true edge (docs/metrics.md#score-evaluation).",
        ),
        dg.AssetSpec(
            SCORE_IC_MONTHLY,
            deps=[WHALE_SCORES],
            group_name="evaluation",
            kinds={"duckdb", "python"},
            description="The monthly mean IC behind evaluation.score_ic, per universe and predictor.",
        ),
    ]
)
def score_ic(context: dg.AssetExecutionContext, strategy: StrategyConfig, warehouse: DuckDBResource):
    with warehouse.get_connection() as con:
        frame = forward_returns(con, strategy.ic_horizon_days, strategy.ic_min_forward_days)
        has_truth = table_exists(con, "evaluation.sim_truth")
        latest = con.sql(LATEST_SQL).df() if has_truth else pd.DataFrame()
        summaries, monthly = [], []
        for universe, condition in UNIVERSES.items():
            rows = frame.query(condition) if condition != "TRUE" else frame
            ic = model.information_coefficients(rows, list(PREDICTORS), "fwd_return")
            if ic.empty:
                continue
            summary = model.summarise_ic(ic, baseline="raw_win_rate")
            summary.insert(0, "universe", universe)
            summaries.append(summary)
            m = model.monthly_ic(ic)
            m.insert(0, "universe", universe)
            monthly.append(m)
        summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
        if len(summary):
            common = latest.dropna() if len(latest) else latest
            truth = (
                {p: model.spearman(common[p], common["true_edge"]) for p in PREDICTORS} if len(common) else {}
            )
            summary["true_edge_spearman"] = summary["predictor"].map(truth).astype(float)
            summary["horizon_days"] = strategy.ic_horizon_days
            summary["target_ic"] = model.TARGET_IC
            summary["first_as_of"] = pd.Timestamp(frame["as_of"].min()).date()
            summary["last_as_of"] = pd.Timestamp(frame["as_of"].max()).date()
            summary["computed_at"] = pd.Timestamp(datetime.now(UTC))
        with Transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS evaluation")
            for table, columns, data in (
                ("evaluation.score_ic", SCORE_IC_COLUMNS, summary),
                (
                    "evaluation.score_ic_monthly",
                    SCORE_IC_MONTHLY_COLUMNS,
                    pd.concat(monthly) if monthly else None,
                ),
            ):
                replace_table(con, table, columns, data)
    shown = summary[summary["universe"] == "all"] if len(summary) else summary
    table = {r.predictor: round(float(r.mean_ic), 4) for r in shown.itertuples()} if len(shown) else {}
    context.log.info(f"score_ic (all wallets, {strategy.ic_horizon_days}-day horizon): {table}")
    yield dg.MaterializeResult(
        asset_key=SCORE_IC,
        metadata={
            "as_of_dates": int(frame["as_of"].nunique()) if len(frame) else 0,
            "mean_ic_all": dg.MetadataValue.json(table),
            "target_ic": model.TARGET_IC,
        },
    )
    yield dg.MaterializeResult(asset_key=SCORE_IC_MONTHLY, metadata={"rows": sum(len(m) for m in monthly)})
