"""Raw ingest assets. Thin: each one opens the source and the warehouse and calls a loop in ``ingest.py``.

Asset key = warehouse relation: ``raw/markets`` is ``raw.markets``. ``raw/trades`` and ``raw/price_history`` are
daily-partitioned (a run over a range of days is one run: ``BackfillPolicy.single_run``).
"""

from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg
import duckdb
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from assets.warehouse import Transaction

from .http import NonJsonBodyError
from .ingest import (
    IngestReport,
    ingest_activity,
    ingest_leaderboard,
    ingest_markets,
    ingest_prices,
    ingest_trades,
    record_body_error,
)
from .resources import PolymarketResource
from .sources import ApiSource
from .store import ensure_raw

RAW_MARKETS = dg.AssetKey(["raw", "markets"])
RAW_TRADES = dg.AssetKey(["raw", "trades"])
RAW_ACTIVITY = dg.AssetKey(["raw", "activity"])
RAW_PRICES = dg.AssetKey(["raw", "price_history"])
RAW_LEADERBOARD = dg.AssetKey(["raw", "leaderboard"])
SIM_TRUTH = dg.AssetKey(["evaluation", "sim_truth"])


class TradesConfig(dg.Config):
    scope: str = "markets"  # markets: every market's full tape; wallets: the whale universe's fills
    markets_per_request: int = 20
    large_trade_usd: float = 10_000.0
    refetch: bool = False  # fetch windows already covered again (repeats are dropped by natural key)


class ActivityConfig(dg.Config):
    #: the wallets whose activity is fetched: the leaderboard's and those whose fills add up to at least this many
    #: dollars (0: every wallet that traded)
    min_volume_usd: float = 0.0
    refetch: bool = False


class PricesConfig(dg.Config):
    fidelity_minutes: int = 1440
    refetch: bool = False


class LeaderboardConfig(dg.Config):
    limit: int = 500  # per ordering (P&L, volume); the API serves at most ~1,050


class SourceMismatchError(RuntimeError):
    pass


def guard_source(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Never mix sources in one warehouse: simulated and real fills scored together would mean nothing."""
    held = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT source FROM raw.markets UNION SELECT DISTINCT source FROM (SELECT source FROM raw.trades LIMIT 1)"
        ).fetchall()
    }
    other = held - {source}
    if other:
        raise SourceMismatchError(
            f"the warehouse holds data from source {sorted(other)} and this run reads {source!r}; "
            "use another warehouse (WAREHOUSE_PATH or `whalecopy run --warehouse PATH`)"
        )


def _window(context: dg.AssetExecutionContext, pm: PolymarketResource) -> tuple[int, int] | None:
    """The run's time window in epoch seconds (inclusive), clipped to the source's known history."""
    tw = context.partition_time_window
    start, end = int(tw.start.timestamp()), int(tw.end.timestamp()) - 1
    history = pm.history() if pm.source == "sim" else None
    if history is not None:
        start, end = max(start, history[0]), min(end, history[1])
    return (start, end) if end >= start else None


@contextmanager
def keeping_bad_bodies(con: duckdb.DuckDBPyConnection, entity: str, source: str):
    """A body that is not JSON fails the run, but is first kept in raw.quarantine (non_json_body) to inspect."""
    try:
        yield
    except NonJsonBodyError as exc:
        record_body_error(con, entity, source, exc)
        raise


#: the raw tables an ingest asset writes (the only names ``_result`` puts into SQL)
RAW_TABLES = ("markets", "trades", "activity", "price_history", "leaderboard")


def _result(report: IngestReport, con: duckdb.DuckDBPyConnection, table: str) -> dg.MaterializeResult:
    if table not in RAW_TABLES:
        raise ValueError(f"raw table {table!r} is not one of {RAW_TABLES}")
    (rows,) = con.execute(f"SELECT count(*) FROM raw.{table}").fetchone()
    return dg.MaterializeResult(metadata={**report.metadata(), "dagster/row_count": int(rows)})


@dg.asset(
    key=RAW_MARKETS,
    group_name="ingest",
    kinds={"duckdb", "python"},
    description="Gamma markets, open and closed, as fetched (one row per conditionId, rewritten when it changes).",
)
def raw_markets(context: dg.AssetExecutionContext, polymarket: PolymarketResource, warehouse: DuckDBResource):
    with polymarket.open() as src, warehouse.get_connection() as con:
        ensure_raw(con)
        guard_source(con, src.name)
        with keeping_bad_bodies(con, "markets", src.name):
            report = ingest_markets(con, src, log=context.log.info)
        return _result(report, con, "markets")


@dg.asset(
    key=RAW_LEADERBOARD,
    group_name="ingest",
    kinds={"duckdb", "python"},
    description="Data API /v1/leaderboard snapshots (all-time, by P&L and by volume): the seed of the whale universe.",
)
def raw_leaderboard(
    context: dg.AssetExecutionContext,
    config: LeaderboardConfig,
    polymarket: PolymarketResource,
    warehouse: DuckDBResource,
):
    with polymarket.open() as src, warehouse.get_connection() as con:
        ensure_raw(con)
        if not isinstance(src, ApiSource):
            context.log.info(
                "file source: no leaderboard to fetch (the universe is every wallet in the file)"
            )
            return dg.MaterializeResult(metadata={"skipped": "file source has no leaderboard"})
        report = ingest_leaderboard(con, src, limit=config.limit, log=context.log.info)
        return _result(report, con, "leaderboard")


def build_ingest_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The raw assets, the partitioned ones on ``partitions`` (daily)."""

    daily = {  # a range of days runs as one run
        "partitions_def": partitions,
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "group_name": "ingest",
        "kinds": {"duckdb", "python"},
    }

    @dg.asset(
        key=RAW_TRADES,
        deps=[RAW_MARKETS, RAW_LEADERBOARD],
        description="Data API /trades fills (takerOnly=false), validated; rejected rows go to raw.quarantine.",
        **daily,
    )
    def raw_trades(
        context: dg.AssetExecutionContext,
        config: TradesConfig,
        polymarket: PolymarketResource,
        warehouse: DuckDBResource,
    ):
        window = _window(context, polymarket)
        with polymarket.open() as src, warehouse.get_connection() as con:
            ensure_raw(con)
            guard_source(con, src.name)
            if window is None:
                context.log.info("the partition range lies outside the source's history: nothing to fetch")
                return dg.MaterializeResult(metadata={"skipped": "outside the source's history"})
            with keeping_bad_bodies(con, "trades", src.name):
                report = ingest_trades(
                    con,
                    src,
                    start=window[0],
                    end=window[1],
                    scope=config.scope,
                    markets_per_request=config.markets_per_request,
                    large_trade_usd=config.large_trade_usd,
                    refetch=config.refetch,
                    log=context.log.info,
                )
            if isinstance(src, ApiSource):
                context.log.info(f"HTTP: {src.call_stats()}")
            return _result(report, con, "trades")

    @dg.asset(
        key=RAW_ACTIVITY,
        deps=[RAW_TRADES, RAW_LEADERBOARD],
        description="Data API /activity rows other than trades (splits, merges, redemptions, conversions, rewards, "
        "rebates) of every wallet that traded and the leaderboard's, each carried on from where it stopped, "
        "validated; rejected rows go to raw.quarantine.",
        **daily,
    )
    def raw_activity(
        context: dg.AssetExecutionContext,
        config: ActivityConfig,
        polymarket: PolymarketResource,
        warehouse: DuckDBResource,
    ):
        window = _window(context, polymarket)
        with polymarket.open() as src, warehouse.get_connection() as con:
            ensure_raw(con)
            if window is None:
                return dg.MaterializeResult(metadata={"skipped": "outside the source's history"})
            with keeping_bad_bodies(con, "activity", src.name):
                report = ingest_activity(
                    con, src, start=window[0], end=window[1], min_volume_usd=config.min_volume_usd,
                    refetch=config.refetch, log=context.log.info,
                )  # fmt: skip
            return _result(report, con, "activity")

    @dg.asset(
        key=RAW_PRICES,
        deps=[RAW_TRADES],
        description="CLOB /prices-history of the tokens the whale universe trades (marks for positions).",
        **daily,
    )
    def raw_price_history(
        context: dg.AssetExecutionContext,
        config: PricesConfig,
        polymarket: PolymarketResource,
        warehouse: DuckDBResource,
    ):
        window = _window(context, polymarket)
        with polymarket.open() as src, warehouse.get_connection() as con:
            ensure_raw(con)
            if not isinstance(src, ApiSource):
                context.log.info("file source: no price history (positions are marked from last trades)")
                return dg.MaterializeResult(metadata={"skipped": "file source has no price history"})
            if window is None:
                return dg.MaterializeResult(metadata={"skipped": "outside the source's history"})
            with keeping_bad_bodies(con, "price_history", src.name):
                report = ingest_prices(
                    con, src, start=window[0], end=window[1], fidelity_min=config.fidelity_minutes,
                    refetch=config.refetch, log=context.log.info,
                )  # fmt: skip
            return _result(report, con, "price_history")

    return [raw_trades, raw_activity, raw_price_history]


@dg.asset(
    key=SIM_TRUTH,
    deps=[RAW_TRADES],
    group_name="evaluation",
    kinds={"duckdb", "python"},
    description="The simulator's hidden ground truth per wallet (type, true edge, bankroll). Evaluation only: "
    "no scoring code may read it. Empty for real sources.",
)
def sim_truth(context: dg.AssetExecutionContext, polymarket: PolymarketResource, warehouse: DuckDBResource):
    if polymarket.source == "sim":
        truth = polymarket.world().truth.copy()
        truth.insert(0, "wallet", truth.pop("address"))
        table = pa.Table.from_pandas(truth, preserve_index=False)
    else:
        table = None
    with warehouse.get_connection() as con:
        with Transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS evaluation")
            con.execute("DROP TABLE IF EXISTS evaluation.sim_truth")
            if table is not None:
                con.register("_truth", table)
                con.execute("CREATE TABLE evaluation.sim_truth AS SELECT * FROM _truth ORDER BY wallet")
                con.unregister("_truth")
            else:
                con.execute(
                    "CREATE TABLE evaluation.sim_truth (seed INTEGER, wallet VARCHAR, wallet_type VARCHAR, "
                    "bankroll DOUBLE, lookahead_hours DOUBLE, true_edge DOUBLE, n_entries BIGINT, "
                    "entry_notional DOUBLE, n_fills BIGINT, is_whale BOOLEAN, pnl_resolved DOUBLE, decay_start TIMESTAMPTZ)"
                )
        counts = dict(
            con.execute(
                "SELECT wallet_type, count(*) FROM evaluation.sim_truth GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
    context.log.info(f"sim_truth: {counts or 'no ground truth for a real source'}")
    return dg.MaterializeResult(
        metadata={
            "wallets_by_type": dg.MetadataValue.json(counts),
            "generated_at": datetime.now(UTC).isoformat(),
        }
    )
