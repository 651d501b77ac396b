"""Partitions: raw fills and prices are daily (UTC)."""

from __future__ import annotations

import dagster as dg

from .settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    # The last partition is yesterday: a day is synced once it is complete (a partial day marked as fetched
    # would never be fetched again).
    return dg.DailyPartitionsDefinition(start_date=settings.partition_start, timezone="UTC")
