"""Resources built from settings: the warehouse (DuckDB) and the Polymarket source."""

from __future__ import annotations

from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from assets.ingest.resources import PolymarketResource
from assets.risk.alerts import AlertsResource
from assets.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR

from .settings import Settings


def build_resources(settings: Settings) -> dict:
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "warehouse": DuckDBResource(database=str(settings.warehouse_path)),
        "dbt": DbtCliResource(
            project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=DBT_EXECUTABLE
        ),
        "polymarket": PolymarketResource(
            source=settings.source,
            sim_seed=settings.sim_seed,
            sim_scale=settings.sim_scale,
            sim_start=settings.sim_start,
            sim_days=settings.sim_days,
            sim_dirty_share=settings.sim_dirty_share,
            sim_throttle_share=settings.sim_throttle_share,
            trades_path=settings.trades_path,
            markets_path=settings.markets_path,
            data_api_url=settings.data_api_url,
            gamma_api_url=settings.gamma_api_url,
            clob_api_url=settings.clob_api_url,
            timeout_s=settings.http_timeout_s,
            max_attempts=settings.http_max_attempts,
        ),
        "alerts": AlertsResource(webhook_url=settings.alert_webhook_url, timeout_s=settings.http_timeout_s),
    }
