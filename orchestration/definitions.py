"""The one ``Definitions`` of the project (loaded by ``workspace.yaml`` and by the CLI)."""

from __future__ import annotations

import dagster as dg

from assets.ingest.assets import build_ingest_assets, raw_leaderboard, raw_markets, sim_truth
from quality.checks import build_raw_gates

from .jobs import sync_job
from .partitions import daily_partitions
from .resources import build_resources
from .settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    daily = daily_partitions(settings)
    return dg.Definitions(
        assets=[raw_markets, raw_leaderboard, *build_ingest_assets(daily), sim_truth],
        asset_checks=build_raw_gates(settings.quarantine_max_share),
        jobs=[sync_job(daily)],
        resources=build_resources(settings),
        # DuckDB allows one writing process: every step runs in this process, one after another.
        executor=dg.in_process_executor,
    )


defs = build_definitions(Settings.from_env())
