"""Jobs. ``sync`` materialises every asset; ``daily`` all but the evaluation, which ``evaluation`` runs weekly. A
run covers a range of days in one run."""

from __future__ import annotations

import dagster as dg

SYNC_JOB = "sync"
DAILY_JOB = "daily"
EVALUATION_JOB = "evaluation"
REFRESH_JOB = "refresh_resolutions"
#: what need not run every day: the walk-forward backtest, validation, attribution, the IC tables and the report
#: (whole-history studies, not inputs of the paper book or the live loop)
EVALUATION_GROUP = "evaluation"


def sync_job(partitions: dg.PartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        SYNC_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=partitions,
        description="Ingest (markets, leaderboard, trades, prices) and everything downstream of it, gated.",
    )


def daily_job(partitions: dg.PartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups(EVALUATION_GROUP),
        partitions_def=partitions,
        description="What a day needs: ingest, the marts, scores, signals, the paper book and the live hand-off, "
        "gated; the evaluation (backtest, IC, report) is left to the weekly `evaluation` job.",
    )


def evaluation_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        EVALUATION_JOB,
        selection=dg.AssetSelection.groups(EVALUATION_GROUP),
        description="The walk-forward backtest, validation, attribution, the IC tables and the report, on the "
        "warehouse as the last daily run left it.",
    )


def refresh_resolutions_job() -> dg.UnresolvedAssetJobDefinition:
    """Markets and the models built on them (no partitioned asset): what changes when markets resolve."""
    return dg.define_asset_job(
        REFRESH_JOB,
        selection=dg.AssetSelection.assets(dg.AssetKey(["raw", "markets"]))
        | dg.AssetSelection.groups("transform"),
        description="Refetch markets and rebuild the dbt models (launched by market_resolution_sensor).",
    )
