"""The one ``Definitions`` of the project (loaded by ``workspace.yaml`` and by the CLI)."""

from __future__ import annotations

import dagster as dg

from assets.evaluate.assets import score_ic
from assets.evaluate.backtest_assets import build_backtest
from assets.evaluate.report_assets import build_report
from assets.ingest.assets import build_ingest_assets, raw_leaderboard, raw_markets, sim_truth
from assets.paper.assets import build_paper_portfolio
from assets.risk.assets import whale_quarantine
from assets.score.assets import wallet_flags, whale_scores, whale_scores_integrity, whale_universe
from assets.signal.assets import signals
from assets.transform.assets import build_dbt_assets
from live.assets import build_live_checks, build_live_monitor, build_live_snapshot, build_live_tables
from quality.checks import build_gates

from .jobs import daily_job, evaluation_job, refresh_resolutions_job, sync_job
from .partitions import daily_partitions
from .resources import build_resources
from .schedules import daily_sync_schedule, market_resolution_sensor, weekly_evaluation_schedule
from .settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    daily = daily_partitions(settings)
    sync, day, evaluation = sync_job(daily), daily_job(daily), evaluation_job()
    return dg.Definitions(
        assets=[
            raw_markets,
            raw_leaderboard,
            *build_ingest_assets(daily),
            sim_truth,
            build_dbt_assets(settings.fee_rate, settings.gate_scope),
            whale_scores,
            whale_universe,
            wallet_flags,
            score_ic,
            whale_quarantine,
            signals,
            build_paper_portfolio(settings.fee_rate),
            build_backtest(settings.fee_rate),
            build_report(
                settings.report_path,
                settings.real_warehouse_path,
                settings.source_description,
                settings.warehouse_path,
            ),  # fmt: skip
            # the live loop's hand-off (published last in a sync) and its tables, copied into the warehouse
            build_live_snapshot(settings.fee_rate, settings.live_root, settings.source_info()),
            build_live_tables(settings.live_root),
        ],
        asset_checks=[
            *build_gates(settings.quarantine_max_share, settings.gx_batch_rows, settings.gate_scope),
            whale_scores_integrity,
            *build_live_checks(settings.live_coverage_min, settings.live_latency_budget_ms),
        ],
        jobs=[sync, day, evaluation, refresh_resolutions_job()],
        schedules=[daily_sync_schedule(day), weekly_evaluation_schedule(evaluation)],
        sensors=[
            market_resolution_sensor,
            build_live_monitor(
                settings.live_root, settings.live_coverage_min, settings.live_latency_budget_ms
            ),
        ],
        resources=build_resources(settings),
        # DuckDB allows one writing process: every step runs in this process, one after another.
        executor=dg.in_process_executor,
    )


defs = build_definitions(Settings.from_env())
