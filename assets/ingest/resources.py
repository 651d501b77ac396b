"""The Polymarket resource: which source a run reads (simulated, live or files) and how to reach it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg

from .sim import SimConfig, SimWorld, cached_world
from .sources import FILE_BATCH_ROWS, ApiSource, FileSource, build_api_source


class PolymarketResource(dg.ConfigurableResource):
    """Where raw records come from. ``source``: ``sim`` (the embedded default), ``live`` or ``files``."""

    source: str = "sim"
    sim_seed: int = 7
    sim_scale: float = 1.0
    sim_start: str = "2024-11-01"
    sim_days: int = 730
    sim_offset_cap: int = 3000
    # share of fills the simulated API serves malformed (quarantined on ingest)
    sim_dirty_share: float = 0.001
    # share of simulated requests answered 429 (half with Retry-After: 0.05 s)
    sim_throttle_share: float = 0.0
    # where generated worlds are kept between processes (None: generated in each process)
    sim_cache_dir: str | None = None
    trades_path: str | None = None
    markets_path: str | None = None
    trades_format: str = "data-api"  # data-api | poly-data | orderfilled (dumps.py)
    activity_path: str | None = None  # the /activity rows of a file source (JSON, JSONL or Parquet)
    file_batch_rows: int = FILE_BATCH_ROWS
    data_api_url: str = "https://data-api.polymarket.com"
    gamma_api_url: str = "https://gamma-api.polymarket.com"
    clob_api_url: str = "https://clob.polymarket.com"
    timeout_s: float = 30.0
    max_attempts: int = 6

    def sim_config(self) -> SimConfig:
        return SimConfig.scaled(self.sim_scale, seed=self.sim_seed, start=self.sim_start, days=self.sim_days)

    def world(self) -> SimWorld:
        return cached_world(self.sim_config(), self.sim_cache_dir)

    def history(self) -> tuple[int, int] | None:
        """The span of history the source holds, when it is known (the sim's; a file's trades)."""
        if self.source == "sim":
            cfg = self.sim_config()
            return cfg.start_ts, cfg.end_ts - 1
        if self.source == "files":
            with self.open() as src:
                return src.trade_bounds() if isinstance(src, FileSource) and src.trades_path else None
        return None

    @contextmanager
    def open(self) -> Iterator[ApiSource | FileSource]:
        if self.source == "files":
            yield FileSource(self.trades_path, self.markets_path, now_ts=int(time.time()),
                             batch_rows=self.file_batch_rows, trade_format=self.trades_format,
                             activity_path=self.activity_path)  # fmt: skip
            return
        if self.source == "sim":
            from .sim_api import CLOB_URL, DATA_URL, GAMMA_URL, SimPolymarket

            world = self.world()
            transport = SimPolymarket(world, offset_cap=self.sim_offset_cap, dirty_share=self.sim_dirty_share)
            if self.sim_throttle_share > 0:
                from .sim_api import FaultInjector, FaultPlan

                plan = FaultPlan(p_429=self.sim_throttle_share, retry_after_s=0.05, seed=self.sim_seed)
                transport = FaultInjector(transport, plan)
            src = build_api_source(
                "sim",
                data_url=DATA_URL,
                gamma_url=GAMMA_URL,
                clob_url=CLOB_URL,
                transport=transport,
                limits={},  # in process: no shared server to protect (the token buckets are tested apart)
                timeout_s=self.timeout_s,
                max_attempts=self.max_attempts,
                now_ts=world.now,
                history=(world.config.start_ts, world.now - 1),
                offset_cap=self.sim_offset_cap,
            )
        elif self.source == "live":
            src = build_api_source(
                "live",
                data_url=self.data_api_url,
                gamma_url=self.gamma_api_url,
                clob_url=self.clob_api_url,
                timeout_s=self.timeout_s,
                max_attempts=self.max_attempts,
            )
        else:
            raise ValueError(f"unknown source {self.source!r}: expected sim, live or files")
        try:
            yield src
        finally:
            src.close()


def utc_date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()
