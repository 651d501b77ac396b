"""A simulated world for the live tests: a batch through a Monday's eve, then the days after it replayed live.

The batch runs the sync without its evaluation group (nothing live reads it) on a clean world (no malformed rows:
the batch quarantines a mixed-case wallet that RTDS sends on purpose, so a dirty world would differ by design),
with thresholds loose enough that a week holds dozens of stage-3 decisions. Stage 1 and the universe share one
bound, so every wallet the batch could copy is tracked live.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from datetime import date
from pathlib import Path

from orchestration.cli import run_sync
from orchestration.settings import Settings

SCALE = 0.1
LAST_BATCH_DAY = date(2026, 10, 18)  # a Sunday: the live week starts on Monday 2026-10-19, a scoring date
FIRST_LIVE_DAY = 20745  # 2026-10-19 as a UTC day number
#: loose enough for a small world's week to hold dozens of stage-3 decisions; time exits ten days before a
#: market's end, so the week has day-end exits too
LOOSE = {"min_wqs": 0.0, "universe_min_wqs": 0.0, "max_whale_drawdown": 1.0, "min_notional": 0.0,
         "max_slippage": 10.0, "max_days_to_resolution": 10_000.0, "min_edge": 0.0, "strikes_to_quarantine": 1_000,
         "time_exit_hours": 240.0}  # fmt: skip


def world_settings(root: Path, **changes) -> Settings:
    base = Settings(warehouse_path=root / "warehouse.duckdb", source="sim", sim_scale=SCALE, sim_seed=7,
                    sim_dirty_share=0.0, report_path=root / "report.html", live_dir=root / "live")  # fmt: skip
    return dataclasses.replace(base, **changes)


def build_batch(root: Path, *, end: date = LAST_BATCH_DAY, start: date | None = None) -> Settings:
    settings = world_settings(root)
    with open(root / "sync.log", "a") as log:
        result = run_sync(
            settings, start=start, end=end, strategy=LOOSE, skip_groups=("evaluation",), out=log
        )
    assert result.success, "the batch sync failed"
    return settings


def fresh_copy(source: Path, dest: Path) -> Settings:
    """A copy of a built batch (warehouse and snapshot) with no live store yet."""
    shutil.copytree(source, dest)
    for f in ("live.sqlite", "live.sqlite-wal", "live.sqlite-shm", "intents.jsonl", "live.lock"):
        (dest / "live" / f).unlink(missing_ok=True)
    return world_settings(dest)


def run_live(settings: Settings, days: float, speed: float, **kw):
    from live.run import run_simulated

    return asyncio.run(run_simulated(settings, days=days, speed=speed, **kw))
