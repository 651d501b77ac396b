"""Jobs. ``sync`` materialises every asset; a run covers a range of days in one run."""

from __future__ import annotations

import dagster as dg

SYNC_JOB = "sync"
REFRESH_JOB = "refresh_resolutions"


def sync_job(partitions: dg.PartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        SYNC_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=partitions,
        description="Ingest (markets, leaderboard, trades, prices) and everything downstream of it, gated.",
    )


def refresh_resolutions_job() -> dg.UnresolvedAssetJobDefinition:
    """Markets and the models built on them (no partitioned asset): what changes when markets resolve."""
    return dg.define_asset_job(
        REFRESH_JOB,
        selection=dg.AssetSelection.assets(dg.AssetKey(["raw", "markets"]))
        | dg.AssetSelection.groups("transform"),
        description="Refetch markets and rebuild the dbt models (launched by market_resolution_sensor).",
    )
