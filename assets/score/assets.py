"""Score assets: the point-in-time WQS history and the whale universe.

Thin: the warehouse reads and writes are in ``inputs.py`` and ``incremental.py``, the math in ``model.py``.
``analytics.whale_scores`` is an immutable history: a run scores only the as-of dates it does not hold yet
(``rebuild_scores`` starts over), so a backtest at date t reads the score that existed at t. It carries a state
(``analytics.whale_score_state``) from run to run, so a daily run reads only the new days.
"""

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from assets.strategy import StrategyConfig
from assets.warehouse import Transaction, create_table_sql, replace_table, table_exists

from . import flags, model
from .incremental import WHALE_SCORES_COLUMNS, read_grid, score_increment

WHALE_SCORES = dg.AssetKey(["analytics", "whale_scores"])
WHALE_UNIVERSE = dg.AssetKey(["analytics", "whale_universe"])
WALLET_FLAGS = dg.AssetKey(["analytics", "wallet_flags"])
WALLET_FLAGS_HISTORY = dg.AssetKey(["analytics", "wallet_flags_history"])
SCORE_INPUTS = [
    dg.AssetKey(["marts", name])
    for name in (
        "wallet_daily_returns",
        "fct_fills",
        "fct_positions",
        "dim_markets",
        "wallet_features",
        "daily_digests",
    )
]


class ScoreRunConfig(dg.Config):
    """How this run treats the stored score history (not a strategy threshold: see ``StrategyConfig``)."""

    #: drop the stored history and score every date again (immutable otherwise)
    rebuild_scores: bool = False
    #: wallets scored at a time: a run's memory follows it (about 0.4 MB a wallet over two years of days)
    bucket_wallets: int = 10_000
    #: the carried state stops this many days before the last data day: a fill that late is still read
    state_lag_days: int = 3


@dg.asset(
    key=WHALE_SCORES,
    deps=SCORE_INPUTS,
    group_name="score",
    kinds={"duckdb", "python"},
    description="WQS and its components per (wallet, as_of), from data known before as_of: an immutable, "
    "append-only history (docs/metrics.md#point-in-time-scores).",
)
def whale_scores(
    context: dg.AssetExecutionContext,
    config: ScoreRunConfig,
    strategy: StrategyConfig,
    warehouse: DuckDBResource,
):
    with warehouse.get_connection() as con:
        grid = read_grid(con)
        con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        if config.rebuild_scores:
            with Transaction(con):
                con.execute("DROP TABLE IF EXISTS analytics.whale_scores")
        con.execute(create_table_sql("analytics.whale_scores", WHALE_SCORES_COLUMNS, key="as_of, wallet"))
        have = [r[0] for r in con.execute("DESCRIBE analytics.whale_scores").fetchall()]
        if have != list(WHALE_SCORES_COLUMNS):
            missing = sorted(set(WHALE_SCORES_COLUMNS) - set(have))
            extra = sorted(set(have) - set(WHALE_SCORES_COLUMNS))
            raise dg.Failure(
                "analytics.whale_scores was written by another version of whalecopy "
                f"(missing columns: {missing or 'none'}; unknown columns: {extra or 'none'}). The history is "
                "never rewritten silently: rerun with `whalecopy run --rebuild-scores` (or rebuild_scores: true)."
            )
        held = {r[0] for r in con.execute("SELECT DISTINCT as_of FROM analytics.whale_scores").fetchall()}
        if grid.last_day is None:
            context.log.info("whale_scores: the marts hold no daily returns yet; nothing to score")
            return dg.MaterializeResult(metadata={"new_as_of_dates": 0, "rows_written": 0})
        dates = model.as_of_dates(grid.first_day, grid.last_day, strategy.score_every_days)
        todo = [d for d in dates if d not in held]
        context.log.info(
            f"whale_scores: {len(dates)} as-of dates from {dates[0] if dates else '-'} to "
            f"{dates[-1] if dates else '-'}; {len(held)} already held, scoring {len(todo)}"
        )
        run = None
        if todo:
            run = score_increment(
                con, grid, todo, strategy.score_params(), rebuild=config.rebuild_scores,
                bucket_wallets=config.bucket_wallets, state_lag_days=config.state_lag_days,
                scored_at=pd.Timestamp(datetime.now(UTC)), log=context.log.info,
            )  # fmt: skip
        latest = con.execute(
            "SELECT max(as_of), count(*) FILTER (WHERE as_of = (SELECT max(as_of) FROM analytics.whale_scores)) "
            "FROM analytics.whale_scores"
        ).fetchall()[0]
        tiers = dict(
            con.execute(
                "SELECT coalesce(tier, 'unscored'), count(*) FROM analytics.whale_scores "
                "WHERE as_of = (SELECT max(as_of) FROM analytics.whale_scores) GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        top = con.execute(
            "SELECT wallet, round(wqs, 1) FROM analytics.whale_scores "
            "WHERE as_of = (SELECT max(as_of) FROM analytics.whale_scores) AND rank <= 5 ORDER BY rank"
        ).fetchall()
    return dg.MaterializeResult(
        metadata={
            "new_as_of_dates": len(todo),
            "rows_written": run.rows if run else 0,
            "scoring": run.plan.reason if run else "nothing new to score",
            "days_read": run.days_read if run else 0,
            "wallet_buckets": run.buckets if run else 0,
            "state_through": str(run.state_end) if run else "-",
            "seconds": dg.MetadataValue.json({k: round(v, 2) for k, v in run.seconds.items()} if run else {}),
            "latest_as_of": str(latest[0]),
            "wallets_at_latest": int(latest[1]),
            "tiers_at_latest": dg.MetadataValue.json(tiers),
            "top_5": dg.MetadataValue.json([{"wallet": w, "wqs": s} for w, s in top]),
        }
    )


@dg.asset_check(asset=WHALE_SCORES, name="whale_scores_integrity", blocking=True,
                description="Unscored rows carry a reason and no rank; ranks start at 1 on a scored row; "
                "every credible interval holds its mean.")  # fmt: skip
def whale_scores_integrity(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        counts = con.execute(
            """
            SELECT
                count(*) FILTER (WHERE (wqs IS NULL) <> (reason IS NOT NULL)) AS reason_mismatch,
                count(*) FILTER (WHERE (wqs IS NULL) <> (rank IS NULL)) AS rank_mismatch,
                count(*) FILTER (WHERE NOT (win_rate_lower <= win_rate_mean AND win_rate_mean <= win_rate_upper))
                    AS win_rate_interval_broken,
                count(*) FILTER (WHERE NOT (edge_lower <= edge_mean AND edge_mean <= edge_upper))
                    AS edge_interval_broken,
                count(*) AS rows
            FROM analytics.whale_scores
            """
        ).fetchall()[0]
        unranked_first = con.execute(
            "SELECT count(*) FROM (SELECT as_of, min(rank) AS r FROM analytics.whale_scores GROUP BY as_of) "
            "WHERE r IS NOT NULL AND r <> 1"
        ).fetchall()[0][0]
    names = ["reason_mismatch", "rank_mismatch", "win_rate_interval_broken", "edge_interval_broken"]
    meta = dict(zip([*names, "rows"], map(int, counts), strict=True)) | {
        "dates_not_ranked_from_1": int(unranked_first)
    }
    failed = [n for n in [*names, "dates_not_ranked_from_1"] if meta[n]]
    if failed:
        meta["failed_because"] = ", ".join(failed)
    return dg.AssetCheckResult(passed=not failed, severity=dg.AssetCheckSeverity.ERROR, metadata=meta)


WHALE_UNIVERSE_COLUMNS: dict[str, str] = {
    **{c: WHALE_SCORES_COLUMNS[c] for c in ("as_of", "rank", "wallet", "wqs", "tier", "regime", "volume",
                                            "n_resolved_positions", "win_rate_mean", "win_rate_lower",
                                            "win_rate_upper", "win_rate_confidence", "edge_mean", "edge_lower",
                                            "edge_upper")},
    "predictive_positions": "INTEGER NOT NULL",
    **{c: "DOUBLE" for c in ("predicted_wins_mean", "predicted_wins_lower", "predicted_wins_upper")},
    "flags": "VARCHAR",  # its flags at the date (kept only with keep_flagged_wallets), null when none
}  # fmt: skip


@dg.asset(
    key=WHALE_UNIVERSE,
    deps=[WHALE_SCORES, WALLET_FLAGS_HISTORY],
    group_name="score",
    kinds={"duckdb", "python"},
    description="Discovery: the wallets worth following as of the latest date (WQS >= universe_min_wqs, best "
    "first, none flagged at the date unless keep_flagged_wallets), with their win-rate and edge intervals and a "
    "Monte Carlo forecast of wins in their next positions.",
)
def whale_universe(context: dg.AssetExecutionContext, strategy: StrategyConfig, warehouse: DuckDBResource):
    with warehouse.get_connection() as con:
        latest = con.execute(
            f"SELECT s.*, fl.flags FROM analytics.whale_scores s LEFT JOIN ({flags.FLAGS_AT_SQL}) fl "
            "USING (as_of, wallet) WHERE s.as_of = (SELECT max(as_of) FROM analytics.whale_scores) AND s.wqs >= ? "
            "AND (fl.flags IS NULL OR ?) ORDER BY s.rank",
            [strategy.universe_min_wqs, strategy.keep_flagged_wallets],
        ).df()
        k = strategy.win_rate_prior_strength
        alpha = latest["win_rate_prior"].to_numpy(dtype=float) * k + latest["wins"].to_numpy(dtype=float)
        beta = (1 - latest["win_rate_prior"].to_numpy(dtype=float)) * k + (
            latest["n_resolved_positions"].to_numpy(dtype=float) - latest["wins"].to_numpy(dtype=float)
        )
        pred = model.posterior_predictive_wins(
            alpha,
            beta,
            strategy.predictive_positions,
            strategy.predictive_draws,
            rng=np.random.default_rng(0),
        )
        universe = latest.assign(
            predictive_positions=strategy.predictive_positions,
            predicted_wins_mean=pred.mean,
            predicted_wins_lower=pred.lower,
            predicted_wins_upper=pred.upper,
        )[list(WHALE_UNIVERSE_COLUMNS)]
        with Transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
            replace_table(con, "analytics.whale_universe", WHALE_UNIVERSE_COLUMNS, universe)
        left_out = dict(con.execute(flags.FLAGGED_LEFT_OUT_SQL, [strategy.universe_min_wqs]).fetchall())
    tiers = universe["tier"].value_counts().to_dict()
    context.log.info(
        f"whale_universe: {len(universe)} wallets with WQS >= {strategy.universe_min_wqs}: {tiers}; flagged and "
        f"left out: {left_out or 'none'}"
        + (f"; {int(universe['flags'].notna().sum())} flagged kept" if strategy.keep_flagged_wallets else "")
    )
    return dg.MaterializeResult(
        metadata={
            "wallets": len(universe),
            "flagged_left_out": dg.MetadataValue.json(left_out),
            "flagged_kept": int(universe["flags"].notna().sum()),
            "as_of": str(universe["as_of"].iloc[0]) if len(universe) else "-",
            "tiers": dg.MetadataValue.json(tiers),
        }
    )


WALLET_FLAGS_HISTORY_COLUMNS = {
    "as_of": "DATE NOT NULL",  # the flag reads what the wallet did before this UTC midnight
    "wallet": "VARCHAR NOT NULL",
    "flag": "VARCHAR NOT NULL",  # market_maker | farmer | bot | wash
    "statistic": "VARCHAR NOT NULL",  # what was measured
    "value": "DOUBLE",  # its value for the wallet
    "bound": "DOUBLE NOT NULL",  # the bound it reached (docs/metrics.md#wallet-flags)
    "evidence": "VARCHAR NOT NULL",  # the counts behind it, in words
}
WALLET_FLAGS_COLUMNS = {**WALLET_FLAGS_HISTORY_COLUMNS, "computed_at": "TIMESTAMPTZ NOT NULL"}

#: the as-of dates the flags are kept at: every date of the score history, and the day after the last fill (the
#: flags on all the data, which ``analytics.wallet_flags`` holds)
FLAG_LAST_DATE_SQL = "SELECT CAST(max(traded_at) AS DATE) + 1 FROM marts.fct_fills"
FLAG_INPUTS = [
    dg.AssetKey(["marts", n]) for n in ("fct_fills", "fct_positions", "dim_markets", "fct_activity")
]


FLAG_DESCRIPTIONS = {
    WALLET_FLAGS_HISTORY: "The wallet flags as of every date of the score history, each from what the wallet did "
    "before it: what stage 1, the universe and the backtest read beside the score of the same date "
    "(docs/metrics.md#wallet-flags).",
    WALLET_FLAGS: "Wallets that are not traders to copy, one row per wallet and flag with its evidence, on all the "
    "data: market makers, airdrop farmers, bots, wash traders (docs/metrics.md#wallet-flags).",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            deps=[*FLAG_INPUTS, WHALE_SCORES],
            group_name="score",
            kinds={"duckdb", "python"},
            description=text,
        )
        for key, text in FLAG_DESCRIPTIONS.items()
    ]
)
def wallet_flags(context: dg.AssetExecutionContext, warehouse: DuckDBResource):
    with warehouse.get_connection() as con:
        dates = {d for (d,) in con.execute(FLAG_LAST_DATE_SQL).fetchall() if d is not None}
        if table_exists(con, "analytics.whale_scores"):
            dates |= {
                d for (d,) in con.execute("SELECT DISTINCT as_of FROM analytics.whale_scores").fetchall()
            }
        dates = sorted(dates)
        stats = con.execute(flags.STATS_SQL, {"as_of": dates}).df()
        stats["as_of"] = pd.to_datetime(stats["as_of"]).dt.date
        history = flags.flag_wallets(stats)
        latest = dates[-1] if dates else None
        found = history[history["as_of"] == latest].assign(computed_at=datetime.now(UTC))
        with Transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
            replace_table(con, "analytics.wallet_flags_history", WALLET_FLAGS_HISTORY_COLUMNS, history,
                          key="as_of, wallet, flag")  # fmt: skip
            replace_table(con, "analytics.wallet_flags", WALLET_FLAGS_COLUMNS, found, key="wallet, flag")
    counts = {f: int((found["flag"] == f).sum()) for f in flags.FLAGS}
    wallets = int((stats["as_of"] == latest).sum()) if latest else 0
    context.log.info(f"wallet_flags: {counts} of {wallets:,} wallets as of {latest}; "
                     f"{len(history):,} flags over {len(dates)} as-of dates")  # fmt: skip
    yield dg.MaterializeResult(
        asset_key=WALLET_FLAGS_HISTORY,
        metadata={"as_of_dates": len(dates), "dagster/row_count": len(history),
                  "wallets_ever_flagged": int(history["wallet"].nunique())},
    )  # fmt: skip
    yield dg.MaterializeResult(
        asset_key=WALLET_FLAGS,
        metadata={"as_of": str(latest), "wallets": wallets, "flagged": dg.MetadataValue.json(counts),
                  "dagster/row_count": len(found)},
    )  # fmt: skip
