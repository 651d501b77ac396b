"""Resources built from settings: the warehouse (DuckDB) and the Polymarket source."""

from __future__ import annotations

import time
from contextlib import contextmanager

import duckdb
from dagster_duckdb import DuckDBResource

from assets.ingest.resources import PolymarketResource
from assets.risk.alerts import AlertsResource
from assets.strategy import StrategyConfig
from assets.transform.project import DBT_PROJECT_DIR
from assets.transform.runner import DbtRunnerResource

from .settings import Settings


class WarehouseLocked(RuntimeError):
    """Another process holds the warehouse's write lock for longer than the run waits."""


class WarehouseResource(DuckDBResource):
    """The DuckDB warehouse. DuckDB allows one writing process: while another process holds the file, a
    connection waits (backing off from 0.2 s to 5 s) up to ``lock_wait_s``, then fails with a clear
    ``WarehouseLocked`` naming the file and the holder DuckDB reports. Any other I/O error is raised at once."""

    lock_wait_s: float = 60.0

    @contextmanager
    def get_connection(self):
        config = {"custom_user_agent": "dagster", **self.connection_config}
        deadline, delay = time.monotonic() + self.lock_wait_s, 0.2
        while True:
            try:
                conn = duckdb.connect(self.database, read_only=False, config=config)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() >= deadline:
                    raise WarehouseLocked(
                        f"the warehouse {self.database} is locked by another process and stayed locked for "
                        f"{self.lock_wait_s:g} s (WHALECOPY_LOCK_WAIT_S). DuckDB allows one writer: close the "
                        f"other connection (a DuckDB shell, a notebook, a second run) and run again. DuckDB "
                        f"said: {exc}"
                    ) from exc
                time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
                delay = min(delay * 2, 5.0)
        try:
            yield conn
        finally:
            conn.close()


def build_resources(settings: Settings) -> dict:
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "warehouse": WarehouseResource(
            database=str(settings.warehouse_path),
            lock_wait_s=settings.lock_wait_s,
            connection_config=settings.duckdb_config(),
        ),
        "dbt": DbtRunnerResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR)),
        "polymarket": PolymarketResource(
            source=settings.source,
            sim_seed=settings.sim_seed,
            sim_scale=settings.sim_scale,
            sim_start=settings.sim_start,
            sim_days=settings.sim_days,
            sim_dirty_share=settings.sim_dirty_share,
            sim_throttle_share=settings.sim_throttle_share,
            sim_cache_dir=None if settings.sim_cache_dir is None else str(settings.sim_cache_dir),
            trades_path=settings.trades_path,
            activity_path=settings.activity_path,
            markets_path=settings.markets_path,
            trades_format=settings.trades_format,
            file_batch_rows=settings.file_batch_rows,
            data_api_url=settings.data_api_url,
            gamma_api_url=settings.gamma_api_url,
            clob_api_url=settings.clob_api_url,
            timeout_s=settings.http_timeout_s,
            max_attempts=settings.http_max_attempts,
        ),
        "alerts": AlertsResource(webhook_url=settings.alert_webhook_url, timeout_s=settings.http_timeout_s),
        # every threshold of the strategy, one config for every asset and gate of a run (and the live loop)
        "strategy": StrategyConfig(),
    }
