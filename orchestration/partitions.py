"""Partitions: raw fills and prices are daily (UTC)."""

from __future__ import annotations

import dagster as dg

from .settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    # end_offset=1: today's partition exists (and fills in) while the day is still running.
    return dg.DailyPartitionsDefinition(start_date=settings.partition_start, end_offset=1, timezone="UTC")
