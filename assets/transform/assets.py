"""The dbt models as Dagster assets: asset key = [schema, model], dbt tests = asset checks (error = blocking)."""

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets
from dagster_duckdb import DuckDBResource

from .model import sync_mode
from .project import dbt_project, prepare_manifest, read_sync_state
from .runner import DbtRunnerResource

prepare_manifest()


class WarehouseTranslator(DagsterDbtTranslator):
    """Models are keyed by the relation they build (``marts/fct_positions`` is ``marts.fct_positions``);
    sources by their ``meta.dagster.asset_key`` (the raw ingest assets), so the lineage joins up."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "transform"


TRANSLATOR = WarehouseTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


#: the DuckDB settings dbt applies as it starts, when the warehouse resource sets them
DUCKDB_LIMIT_SETTINGS = ("memory_limit", "threads", "temp_directory")


class TransformConfig(dg.Config):
    full_refresh: bool = False  # rebuild the incremental marts from scratch (`whalecopy run --full-refresh`)


def build_args(fee_rate: float, full_refresh: bool) -> list[str]:
    """The transform's dbt command: every model and test, with the run's fee rate."""
    return ["build", "--vars", json.dumps({"fee_rate": fee_rate})] + (
        ["--full-refresh"] if full_refresh else []
    )


def build_dbt_assets(fee_rate: float) -> dg.AssetsDefinition:
    """All dbt models, built with ``dbt build`` (models and their tests in DAG order; a failing error-severity
    test stops the models and Python assets downstream of it)."""

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        dagster_dbt_translator=TRANSLATOR,
        name="transform",
    )
    def transform(
        context: dg.AssetExecutionContext,
        dbt: DbtRunnerResource,
        warehouse: DuckDBResource,
        config: TransformConfig,
    ):
        # The incremental marts apply only what changed since the last complete build (model.py:sync_mode).
        with warehouse.get_connection() as con:
            full_refresh, why = sync_mode(read_sync_state(con), full_refresh=config.full_refresh)
        context.log.info(f"dbt build: {why}")
        # dbt runs in this process (runner.py) on the same DuckDB file (profiles.yml reads this variable); no other
        # connection is open meanwhile, so dbt is the one writer.
        database = Path(warehouse.database).resolve()
        os.environ["WHALECOPY_DBT_DATABASE"] = str(database)
        # and DuckDB's limits, the warehouse's own (macros/duckdb_limits.sql applies them as dbt starts)
        for setting in DUCKDB_LIMIT_SETTINGS:
            value = warehouse.connection_config.get(setting)
            if value is None:
                os.environ.pop(f"WHALECOPY_DBT_{setting.upper()}", None)
            else:
                os.environ[f"WHALECOPY_DBT_{setting.upper()}"] = str(value)
        args = build_args(fee_rate, full_refresh)
        yield from dbt.build(context, args, TRANSLATOR, database)

    return transform
