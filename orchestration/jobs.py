"""Jobs. ``sync`` materialises every asset; a run covers a range of days in one run."""

from __future__ import annotations

import dagster as dg

SYNC_JOB = "sync"


def sync_job(partitions: dg.PartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        SYNC_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=partitions,
        description="Ingest (markets, leaderboard, trades, prices) and everything downstream of it, gated.",
    )
