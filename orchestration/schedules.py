"""Freshness: a daily partitioned schedule, a weekly one for the evaluation, and a sensor for markets that
resolved."""

from __future__ import annotations

import hashlib
import json

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from assets.ingest.resources import PolymarketResource

from .jobs import REFRESH_JOB


def daily_sync_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """Every day at 00:30 UTC, sync the day that just ended (its daily partition), then everything downstream
    but the evaluation (``job`` is the ``daily`` job)."""
    return dg.build_schedule_from_partitioned_job(
        job,
        name="daily_sync",
        hour_of_day=0,
        minute_of_hour=30,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


def weekly_evaluation_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """Every Monday at 02:00 UTC (after that day's sync), the evaluation on the warehouse as it stands."""
    return dg.ScheduleDefinition(
        name="weekly_evaluation",
        job=job,
        cron_schedule="0 2 * * 1",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


def open_markets(warehouse: DuckDBResource) -> list[str]:
    """Markets the warehouse holds as not (yet) resolved."""
    with warehouse.get_connection() as con:
        return [
            r[0]
            for r in con.execute(
                "SELECT condition_id FROM raw.markets "
                "WHERE NOT (coalesce(closed, false) AND coalesce(uma_resolution_status, '') = 'resolved') ORDER BY 1"
            ).fetchall()
        ]


def resolution_decision(open_ids: list[str], resolved_now: list[str], cursor: str | None):
    """Pure decision of the sensor: (run_key or None, the ids it covers, the new cursor).

    The cursor keeps the ids a run was already requested for and that the warehouse still holds open (the run
    may not have finished); ids the warehouse shows resolved drop out of it, so it stays small."""
    pending = set(json.loads(cursor)) if cursor else set()
    still_open = set(open_ids)
    new = sorted(set(resolved_now) - pending)
    next_cursor = json.dumps(sorted((pending & still_open) | set(new)))
    if not new:
        return None, [], next_cursor
    run_key = "resolved-" + hashlib.sha256(",".join(new).encode()).hexdigest()[:16]
    return run_key, new, next_cursor


@dg.sensor(
    name="market_resolution_sensor",
    job_name=REFRESH_JOB,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Refreshes raw.markets and the marts when markets the warehouse holds open have resolved.",
)
def market_resolution_sensor(
    context: dg.SensorEvaluationContext, polymarket: PolymarketResource, warehouse: DuckDBResource
):
    try:
        open_ids = open_markets(warehouse)
    except (
        duckdb.IOException,
        duckdb.CatalogException,
    ) as exc:  # a run holds the write lock, or no warehouse yet
        return dg.SkipReason(f"warehouse not readable now: {exc}")
    if not open_ids:
        return dg.SkipReason("the warehouse holds no open market")
    with polymarket.open() as src:
        resolved_now = src.resolved_among(open_ids)
    run_key, new, next_cursor = resolution_decision(open_ids, resolved_now, context.cursor)
    context.update_cursor(next_cursor)
    if run_key is None:
        return dg.SkipReason(f"none of {len(open_ids)} open markets has resolved")
    return dg.RunRequest(
        run_key=run_key,
        tags={"whalecopy/resolved_markets": str(len(new))},
    )
