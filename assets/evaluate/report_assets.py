"""The report: SQL reads what the pipeline measured, ``report.py`` draws it into one self-contained HTML page.
Used by the ``evaluation.report`` asset (the page is written next to the warehouse and its summary attached to
the materialisation) and by ``whalecopy report``. A second warehouse built from real trades, when given, becomes
the report's second section."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource

from assets.score.flags import FLAGS_AT_SQL, NO_FLAGS_SQL
from assets.signal import model as signal
from assets.warehouse import Transaction, replace_table, table_exists

from . import report
from .backtest_assets import (
    ATTRIBUTION_BRINSON,
    ATTRIBUTION_CONTRIBUTION,
    ATTRIBUTION_REGRESSION,
    BACKTEST_DAILY,
    BACKTEST_FOLDS,
    BACKTEST_SUMMARY,
    TARGETS,
    VALIDATION,
)

REPORT = dg.AssetKey(["evaluation", "report"])
#: the report's own row: where the page is and what it holds (so SQL users find it too)
REPORT_TYPES = {"path": "VARCHAR", "generated_at": "TIMESTAMPTZ", "bytes": "BIGINT", "plots": "INTEGER",
                "real_section": "BOOLEAN", "summary_md": "VARCHAR"}  # fmt: skip

TABLES = {
    "summary": "SELECT * FROM evaluation.backtest_summary",
    "daily": "SELECT * FROM evaluation.backtest_daily ORDER BY strategy, day",
    "targets": "SELECT * FROM evaluation.targets",
    "validation": "SELECT * FROM evaluation.validation",
    "folds": "SELECT * FROM evaluation.backtest_folds ORDER BY fold",
    "brinson": "SELECT * FROM evaluation.attribution_brinson ORDER BY category",
    "regression": "SELECT * FROM evaluation.attribution_regression",
    "contribution": "SELECT * FROM evaluation.attribution_contribution",
    "ic_monthly": "SELECT universe, predictor, month, ic FROM evaluation.score_ic_monthly ORDER BY month",
    "wqs": "SELECT as_of, wqs FROM analytics.whale_scores "
    "WHERE as_of = (SELECT max(as_of) FROM analytics.whale_scores) AND wqs IS NOT NULL",
}

#: how far each candidate got: the signal stage it failed at, or copied (analytics.orders)
STAGES_SQL = """
SELECT CASE WHEN o.copied THEN 'copied' ELSE s.stage_reached END AS stage_reached, count(*) AS n
FROM analytics.signals s LEFT JOIN analytics.orders o USING (fill_key)
GROUP BY ALL
"""


def report_data(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """Every frame the report draws; a table the warehouse does not hold gives an empty frame."""
    out = {}
    for name, sql in TABLES.items():
        table = sql.split(" FROM ")[1].split()[0]
        out[name] = con.sql(sql).df() if table_exists(con, table) else pd.DataFrame()
    if table_exists(con, "analytics.signals") and table_exists(con, "analytics.orders"):
        counts = con.sql(STAGES_SQL).df()
        reached = counts["stage_reached"].repeat(counts["n"].to_numpy()).reset_index(drop=True)
        out["funnel"] = signal.funnel(reached)
    else:
        out["funnel"] = pd.DataFrame()
    return out


REAL_FACTS_SQL = """
SELECT (SELECT count(*) FROM marts.fct_fills) AS fills,
       (SELECT count(DISTINCT wallet) FROM marts.fct_fills) AS wallets,
       (SELECT count(*) FROM marts.dim_markets) AS markets,
       (SELECT count(*) FILTER (WHERE is_resolved) FROM marts.dim_markets) AS resolved_markets,
       (SELECT count(*) FROM raw.quarantine) AS quarantined_rows,
       (SELECT CAST(min(trade_date) AS VARCHAR) FROM marts.fct_fills) AS first_day,
       (SELECT CAST(max(trade_date) AS VARCHAR) FROM marts.fct_fills) AS last_day,
       (SELECT count(*) FROM analytics.whale_scores
        WHERE as_of = (SELECT max(as_of) FROM analytics.whale_scores) AND wqs IS NOT NULL) AS scored_wallets,
       (SELECT round(max(wqs), 1) FROM analytics.whale_scores) AS highest_wqs_ever
"""

#: ``{flags}``: ``FLAGS_AT_SQL``, or ``NO_FLAGS_SQL`` for a warehouse without the flag history
REAL_WALLETS_SQL = """
SELECT s.wallet, s.wqs, s.tier, s.n_resolved_positions, s.win_rate_mean AS bayesian_win_rate,
       s.pnl_net_to_date, f.realised_pnl AS realised_pnl_all, fl.flags
FROM analytics.whale_scores s
LEFT JOIN (SELECT wallet, sum(pnl_net) AS realised_pnl FROM marts.fct_positions WHERE is_resolved GROUP BY 1) f USING (wallet)
LEFT JOIN ({flags}) fl USING (as_of, wallet)
WHERE s.as_of = (SELECT max(as_of) FROM analytics.whale_scores)
ORDER BY s.wqs DESC NULLS LAST, s.pnl_net_to_date DESC
LIMIT 15
"""

#: cumulative realised P&L by day: of every wallet, and of the 20 best-scored at the midpoint, after it
REAL_PNL_SQL = """
WITH mid AS (SELECT as_of FROM (SELECT DISTINCT as_of FROM analytics.whale_scores) ORDER BY as_of
             LIMIT 1 OFFSET (SELECT count(DISTINCT as_of) / 2 FROM analytics.whale_scores)),
top AS (SELECT wallet FROM analytics.whale_scores WHERE as_of = (SELECT as_of FROM mid) AND wqs IS NOT NULL
        ORDER BY wqs DESC LIMIT 20),
daily AS (
    SELECT day, 'all wallets' AS series, sum(pnl_net) AS pnl FROM marts.wallet_daily_returns GROUP BY ALL
    UNION ALL
    SELECT day, 'top-20 WQS at ' || strftime((SELECT as_of FROM mid), '%Y-%m-%d') || ', after it', sum(pnl_net)
    FROM marts.wallet_daily_returns SEMI JOIN top USING (wallet)
    WHERE day >= (SELECT as_of FROM mid) GROUP BY ALL
)
SELECT day, series, sum(pnl) OVER (PARTITION BY series ORDER BY day) AS value FROM daily ORDER BY series, day
"""


def real_section(path: Path, name: str) -> dict | None:
    """The second section from a warehouse built on real trades (None if there is none)."""
    if not Path(path).exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        facts = con.sql(REAL_FACTS_SQL).df().iloc[0].to_dict()
        # each one's flags at the score's date (a warehouse written by an older version holds none)
        flagged = FLAGS_AT_SQL if table_exists(con, "analytics.wallet_flags_history") else NO_FLAGS_SQL
        wallets = con.sql(REAL_WALLETS_SQL.format(flags=flagged)).df()
        wqs = con.sql(TABLES["wqs"]).df()
        pnl = con.sql(REAL_PNL_SQL).df()
        paper = con.sql(
            "SELECT strategy, sharpe, max_drawdown, trades, final_nav FROM evaluation.backtest_summary"
        ).df() if table_exists(con, "evaluation.backtest_summary") else pd.DataFrame()  # fmt: skip
    resolved = int(facts.get("resolved_markets") or 0)
    note = (
        f"{resolved} resolved markets is thin: a wallet's score rests on a handful of positions, most wallets "
        "trade one or two markets, and every market is US politics in one election year. These figures describe "
        "this dump; they are not evidence that the strategy works or fails on Polymarket today."
    )
    if len(paper) and int(paper["trades"].sum()) == 0:
        note += (
            f" No wallet reached the copy thresholds here (the highest WQS on any date is {facts.get('highest_wqs_ever')}; "
            "the universe starts at 60), so the walk-forward strategies made no trade on this dump."
        )
    return {
        "name": name,
        "facts": {k: (str(v) if v is not None else "–") for k, v in facts.items()},
        "note": note,
        "wallets": wallets,
        "wqs": wqs,
        "pnl": pnl,
        "backtest": paper,
    }


def render(data: dict[str, pd.DataFrame], warehouse: str | Path, real_path: Path | None, source: str) -> str:
    """The HTML page from ``report_data``'s frames, with the real-trades section when ``real_path`` is given."""
    days = data["daily"]["day"] if len(data["daily"]) else pd.Series(dtype=object)
    meta = {
        "warehouse": str(warehouse),
        "source": source,
        "period": f"{pd.Timestamp(days.min()).date()} .. {pd.Timestamp(days.max()).date()} (out of sample)"
        if len(days)
        else "no backtest",
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    real = real_section(real_path, f"Polymarket 2022 US midterms ({real_path})") if real_path else None
    return report.render_report(data, meta, real)


def build_report(
    report_path: Path, real_path: Path | None, source: str, warehouse_path: Path
) -> dg.AssetsDefinition:
    @dg.asset(
        key=REPORT,
        deps=[
            BACKTEST_DAILY,
            BACKTEST_SUMMARY,
            BACKTEST_FOLDS,
            VALIDATION,
            ATTRIBUTION_BRINSON,
            ATTRIBUTION_REGRESSION,
            ATTRIBUTION_CONTRIBUTION,
            TARGETS,
        ],  # fmt: skip
        group_name="evaluation",
        kinds={"duckdb", "html"},
        description="The self-contained HTML report: equity curves, drawdowns, funnel, IC, WQS, attribution, VaR "
        f"against realised P&L and the targets table (written to {report_path}).",
    )
    def report_asset(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
        with warehouse.get_connection() as con:
            data = report_data(con)
            html = render(data, warehouse_path, real_path, source)
            path = report.write_report(html, report_path)
            plots = html.count("<img data-plot=")
            row = pd.DataFrame([{"path": str(path.resolve()), "generated_at": datetime.now(UTC), "bytes": len(html),
                                 "plots": plots, "real_section": real_path is not None and Path(real_path).exists(),
                                 "summary_md": report.summary_markdown(data)}])  # fmt: skip
            with Transaction(con):
                replace_table(con, "evaluation.report", REPORT_TYPES, row)
        context.log.info(f"report: {path} ({len(html) / 1e6:.1f} MB, {plots} plots)")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path.resolve())),
                "summary": dg.MetadataValue.md(report.summary_markdown(data)),
            }
        )

    return report_asset
