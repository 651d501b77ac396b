"""The dashboard tests' world: a small simulated market's whole batch (evaluation included) through four days
before the world's end, so a live loop can replay the days after it on the same snapshot."""

from __future__ import annotations

import gc
import io
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from live.run import sim_world
from orchestration.cli import run_sync
from orchestration.settings import Settings
from tests.assets.helpers import small_settings
from tests.live.world import LOOSE

LIVE_DAYS = 3


def world_settings(root: Path) -> Settings:
    return small_settings(root / "warehouse.duckdb", live_dir=root / "live", sim_dirty_share=0.0)


def build(root: Path) -> Settings:
    settings = world_settings(root)
    world_end = datetime.fromtimestamp(sim_world(settings).now, UTC).date()
    log = io.StringIO()
    result = run_sync(
        settings, end=world_end - timedelta(days=math.ceil(LIVE_DAYS) + 1), strategy=LOOSE, out=log
    )
    assert result.success, log.getvalue()[-3000:]
    # the run's DuckDB connections live until they are collected, and while one does no other process can open
    # the file (the dashboard's server would find it busy)
    del result
    gc.collect()
    duckdb.connect(str(settings.warehouse_path), read_only=True).close()  # fails while this process holds it
    return settings


if __name__ == "__main__":  # python -m tests.dashboard.world DIR: a world to look at by hand
    import sys
    import time

    t = time.perf_counter()
    build(Path(sys.argv[1]))
    print(f"built in {time.perf_counter() - t:.1f} s")
