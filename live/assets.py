"""The live loop in Dagster (thin): the snapshot the sync publishes for it, its tables copied into the warehouse,
their checks, and the sensor that observes the running loop.

- ``live/snapshot``: the batch-to-live hand-off (``live/snapshot.py``). The daily sync materialises it last, so
  the live loop picks up the new whale universe when a batch completes; ``live.snapshot`` lists the generations.
- ``live/fills``, ``live/decisions``, ``live/intents``, ``live/paper_fills``, ``live/nav``, ``live/alerts``,
  ``live/loss_events``: the live store's tables (SQLite, ``live/store.py``) copied into the warehouse by the sync,
  read-only (the loop is never blocked), so SQL on the warehouse sees them next to the batch's.
- checks on them: ``live_rtds_coverage``, ``live_open_loss_events``, ``live_latency_budget`` (``live/checks.py``),
  run by the sync and, every minute, by ``live_monitor``, which reads the running loop's store and reports
  observations and check results without a run (Dagster is not the place for a seconds-latency loop:
  polymarket_realtime.md §5).
"""

import sqlite3
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from assets.risk.assets import WHALE_QUARANTINE
from assets.score.assets import WALLET_FLAGS_HISTORY, WHALE_SCORES
from assets.strategy import StrategyConfig
from assets.warehouse import Transaction

from . import checks, snapshot
from .store import Store, connect_readonly

LIVE_SNAPSHOT = dg.AssetKey(["live", "snapshot"])
LIVE_TABLES = ("fills", "decisions", "intents", "paper_fills", "nav", "alerts", "loss_events")
LIVE_KEYS = {name: dg.AssetKey(["live", name]) for name in LIVE_TABLES}
SNAPSHOT_DEPS = [
    WHALE_SCORES, WHALE_QUARANTINE, WALLET_FLAGS_HISTORY, dg.AssetKey(["analytics", "whale_universe"]),
    dg.AssetKey(["marts", "dim_markets"]),
    dg.AssetKey(["marts", "wallet_daily_returns"]), dg.AssetKey(["intermediate", "int_market_tokens"]),
    dg.AssetKey(["intermediate", "int_position_fills"]), dg.AssetKey(["raw", "price_history"]),
]  # fmt: skip
DESCRIPTIONS = {
    "fills": "Every fill of a tracked wallet the live loop saw, once (full identity), with each source that "
    "delivered it and when it arrived.",
    "decisions": "One decision per leader order (wallet|transaction|token|side): the stage reached and the reasons, "
    "the order, and its latency (docs/metrics.md#live-decisions).",
    "intents": "The live loop's order intents (also appended to intents.jsonl): entries BUY, exits SELL.",
    "paper_fills": "The live book's paper fills: entries, mirrored sells, stops, time exits, settlements.",
    "nav": "The live book's NAV per day.",
    "alerts": "The live loop's alerts: intents, stops, time exits, VaR breaches (and the webhook).",
    "loss_events": "Every stretch the live loop could not prove it saw, with its reason; closed by a batch that "
    "covers it.",
}


def build_live_snapshot(fee_rate: float, live_root: Path, source: dict | None = None) -> dg.AssetsDefinition:
    """``source``: where the warehouse's data came from (the simulated world's seed and scale), so the simulated
    live market can check it replays the same world."""

    @dg.asset(
        key=LIVE_SNAPSHOT, deps=SNAPSHOT_DEPS, group_name="live", kinds={"duckdb", "parquet"},
        description="What the live loop needs to decide as the batch would (universe, scores, markets, flow, marks, "
        "positions, the run's strategy config), published as Parquet for it (docs/warehouse.md#live).",
    )  # fmt: skip
    def live_snapshot(context: dg.AssetExecutionContext, strategy: StrategyConfig, warehouse: DuckDBResource):
        with warehouse.get_connection() as con:
            meta, frames = snapshot.build_frames(con, strategy, fee_rate)
            meta["source"] = dict(source or {})
            with Transaction(con):
                con.execute("CREATE SCHEMA IF NOT EXISTS live")
                con.execute(
                    "CREATE TABLE IF NOT EXISTS live.snapshot (generation VARCHAR PRIMARY KEY, published_at "
                    "TIMESTAMPTZ, data_end TIMESTAMPTZ, as_of VARCHAR, tracked_wallets BIGINT, path VARCHAR)"
                )
                if meta["data_end_ts"] is None:
                    context.log.info("live snapshot: the warehouse holds no fill yet; nothing to publish")
                    return dg.MaterializeResult(metadata={"published": False})
                pub = snapshot.publish(live_root / "snapshot", meta, frames)
                con.execute(  # a generation already published (the same state) keeps its first row
                    "INSERT OR IGNORE INTO live.snapshot VALUES (?, now(), to_timestamp(?), ?, ?, ?)",
                    [pub.generation, meta["data_end_ts"], meta["as_of"], meta["tracked"], str(pub.path)],
                )
        context.log.info(f"live snapshot {pub.generation}: {meta['tracked']} tracked wallets, data through "
                         f"{pd.Timestamp(meta['data_end_ts'], unit='s')} -> {pub.path}")  # fmt: skip
        return dg.MaterializeResult(metadata={"generation": pub.generation, "tracked_wallets": meta["tracked"],
                                              "path": str(pub.path), "rows": {k: len(v) for k, v in frames.items()}})  # fmt: skip

    return live_snapshot


def read_store(path: Path, tables=LIVE_TABLES) -> dict[str, pd.DataFrame]:
    """The live store's tables, read-only (an empty store's schema when there is none yet)."""
    if not Path(path).exists():
        with tempfile.TemporaryDirectory() as tmp:
            empty = Store(Path(tmp) / "empty.sqlite")
            try:
                return {t: pd.read_sql(f"SELECT * FROM {t}", empty.con) for t in tables}
            finally:
                empty.close()
    con = connect_readonly(path)
    try:
        return {t: pd.read_sql(f"SELECT * FROM {t}", con) for t in tables}
    finally:
        con.close()


def build_live_tables(live_root: Path) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="live_tables",
        specs=[dg.AssetSpec(LIVE_KEYS[t], group_name="live", kinds={"sqlite", "duckdb"}, description=DESCRIPTIONS[t])
               for t in LIVE_TABLES],
    )  # fmt: skip
    def live_tables(context: dg.AssetExecutionContext, warehouse: DuckDBResource):
        path = live_root / "live.sqlite"
        frames = read_store(path)
        with warehouse.get_connection() as con, Transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS live")
            for name, frame in frames.items():
                con.register("_live", frame)
                try:
                    con.execute(f"CREATE OR REPLACE TABLE live.{name} AS SELECT * FROM _live")
                finally:
                    con.unregister("_live")
        if not path.exists():
            context.log.info(
                f"live tables: no live store at {path} yet (start `whalecopy live`); empty tables"
            )
        for name in LIVE_TABLES:
            yield dg.MaterializeResult(asset_key=LIVE_KEYS[name], metadata={"rows": len(frames[name])})

    return live_tables


def _frames_from_warehouse(warehouse: DuckDBResource, *tables: str) -> list[pd.DataFrame]:
    with warehouse.get_connection() as con:
        return [con.execute(f"SELECT * FROM live.{t}").df() for t in tables]


def build_live_checks(coverage_min: float, budget_ms: float) -> list[dg.AssetChecksDefinition]:
    """The three checks, on the warehouse's copy (the sync runs them); ``live_monitor`` reports the same checks on
    the running loop's store."""

    @dg.asset_check(asset=LIVE_KEYS["fills"], name="live_rtds_coverage", blocking=False,
                    description=f"RTDS delivered at least {coverage_min:.0%} of the tracked wallets' fills (polls "
                    "found the rest)")  # fmt: skip
    def live_rtds_coverage(warehouse: DuckDBResource) -> dg.AssetCheckResult:
        (fills,) = _frames_from_warehouse(warehouse, "fills")
        return _result(checks.coverage(fills, coverage_min))

    @dg.asset_check(asset=LIVE_KEYS["loss_events"], name="live_open_loss_events", blocking=False,
                    description="No stretch the live loop could not prove it saw is open")  # fmt: skip
    def live_open_loss_events(warehouse: DuckDBResource) -> dg.AssetCheckResult:
        (losses,) = _frames_from_warehouse(warehouse, "loss_events")
        return _result(checks.open_losses(losses))

    @dg.asset_check(asset=LIVE_KEYS["decisions"], name="live_latency_budget", blocking=False,
                    description=f"p99 from the frame that released a decision to the decision committed is under "
                    f"{budget_ms:g} ms")  # fmt: skip
    def live_latency_budget(warehouse: DuckDBResource) -> dg.AssetCheckResult:
        (decisions,) = _frames_from_warehouse(warehouse, "decisions")
        return _result(checks.latency(decisions, budget_ms))

    return [live_rtds_coverage, live_open_loss_events, live_latency_budget]


def _result(outcome: checks.CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.passed, metadata=outcome.metadata, description=outcome.description
    )


def monitor_events(store_path: Path, coverage_min: float, budget_ms: float) -> list:
    """The running loop as Dagster events: an observation per live table and the three check results, read from
    its store without blocking it (the sensor's pure part, tested without a daemon)."""
    frames = read_store(store_path)
    events: list = []
    for name in LIVE_TABLES:
        meta = {"rows": len(frames[name]), "source": str(store_path)}
        if name == "decisions" and len(frames[name]):
            meta["last_decided_at"] = float(frames[name]["decided_at"].max())
        if name == "nav" and len(frames[name]):
            meta["nav"] = float(frames[name].sort_values("day")["nav"].iloc[-1])
        events.append(dg.AssetObservation(asset_key=LIVE_KEYS[name], metadata=meta))
    for key, name, outcome in (
        ("fills", "live_rtds_coverage", checks.coverage(frames["fills"], coverage_min)),
        ("loss_events", "live_open_loss_events", checks.open_losses(frames["loss_events"])),
        ("decisions", "live_latency_budget", checks.latency(frames["decisions"], budget_ms)),
    ):
        events.append(dg.AssetCheckEvaluation(asset_key=LIVE_KEYS[key], check_name=name, passed=outcome.passed,
                                              metadata=outcome.metadata, description=outcome.description))  # fmt: skip
    return events


def build_live_monitor(live_root: Path, coverage_min: float, budget_ms: float) -> dg.SensorDefinition:
    @dg.sensor(name="live_monitor", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
               description="Every minute: the running live loop's tables as observations, and its coverage, loss "
               "and latency checks, read from its store (never blocking it).")  # fmt: skip
    def live_monitor(context: dg.SensorEvaluationContext):
        path = live_root / "live.sqlite"
        if not path.exists():
            return dg.SkipReason(f"no live store at {path}: `whalecopy live` has not run here")
        try:
            events = monitor_events(path, coverage_min, budget_ms)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:  # pandas wraps the driver's errors
            return dg.SkipReason(f"the live store is not readable now: {exc}")
        return dg.SensorResult(asset_events=events)

    return live_monitor
