"""The dbt models as Dagster assets: asset key = [schema, model], dbt tests = asset checks (error = blocking)."""

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets
from dagster_duckdb import DuckDBResource

from quality.checks import TRANSFORM_TABLES, whole_read_due

from .model import data_test_scope, sync_mode
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


def build_args(fee_rate: float, full_refresh: bool, unit_tests: bool = True) -> list[str]:
    """The transform's dbt command: every model and test, with the run's fee rate (``unit_tests``: the dbt unit
    tests too; they read fixed inputs, not the data, so an incremental build whose tests read only its new rows
    leaves them out)."""
    return (
        ["build", "--vars", json.dumps({"fee_rate": fee_rate})]
        + (["--full-refresh"] if full_refresh else [])
        + ([] if unit_tests else ["--exclude-resource-type", "unit_test"])
    )


def build_dbt_assets(fee_rate: float, gate_scope: str = "new") -> dg.AssetsDefinition:
    """All dbt models, built with ``dbt build`` (models and their tests in DAG order; a failing error-severity
    test stops the models and Python assets downstream of it). ``gate_scope``: the gates' (``all``: the tests too
    read every row every time)."""

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
            state = read_sync_state(con)
            full_refresh, why = sync_mode(state, full_refresh=config.full_refresh)
            whole, reads = data_test_scope(
                full_refresh=full_refresh, first_build=not state.marts_built, gate_scope=gate_scope,
                whole_due=whole_read_due(con, TRANSFORM_TABLES),
            )  # fmt: skip
        context.log.info(f"dbt build: {why}; the tests read {reads}")
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
        # what the data tests read (macros/test_scope.sql reads it as each test runs: no parse of its own)
        os.environ["WHALECOPY_DBT_TEST_SCOPE"] = "all" if whole else "increment"
        args = build_args(fee_rate, full_refresh, unit_tests=whole)
        yield from dbt.build(context, args, TRANSLATOR, database)

    return transform
