"""DuckDB's memory limit, threads and spill directory come from settings, for the warehouse's connections and for
dbt's (orchestration/settings.py, dbt_project/macros/duckdb_limits.sql)."""

import dataclasses
import io

import duckdb
import pytest

from orchestration.cli import run_sync
from orchestration.resources import build_resources
from orchestration.settings import Settings
from tests.assets.helpers import small_settings
from tests.reliability import stages


def test_limits_are_read_from_the_environment_and_a_bad_one_is_named(monkeypatch):
    monkeypatch.setenv("WHALECOPY_DUCKDB_MEMORY_LIMIT", "2GB")
    monkeypatch.setenv("WHALECOPY_DUCKDB_THREADS", "1")
    monkeypatch.setenv("WHALECOPY_DUCKDB_TEMP_DIR", "/tmp/spill")
    settings = Settings.from_env()
    assert settings.duckdb_config() == {"memory_limit": "2GB", "threads": "1", "temp_directory": "/tmp/spill"}
    monkeypatch.setenv("WHALECOPY_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="WHALECOPY_DUCKDB_MEMORY_LIMIT='lots'"):
        Settings.from_env()
    monkeypatch.delenv("WHALECOPY_DUCKDB_MEMORY_LIMIT")
    monkeypatch.setenv("WHALECOPY_DUCKDB_THREADS", "0")
    with pytest.raises(ValueError, match="WHALECOPY_DUCKDB_THREADS='0'"):
        Settings.from_env()
    monkeypatch.delenv("WHALECOPY_DUCKDB_THREADS")
    monkeypatch.delenv("WHALECOPY_DUCKDB_TEMP_DIR")
    assert Settings.from_env().duckdb_config() == {}  # unset: DuckDB's defaults


def test_the_warehouse_connections_run_under_the_limits(tmp_path):
    settings = dataclasses.replace(
        small_settings(tmp_path / "w.duckdb"), duckdb_memory_limit="1GB", duckdb_threads=1,
        duckdb_temp_dir=str(tmp_path / "spill"),
    )  # fmt: skip
    with build_resources(settings)["warehouse"].get_connection() as con:
        limit, threads, spill = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads'), current_setting('temp_directory')"
        ).fetchone()
    assert (limit, threads, spill) == ("953.6 MiB", 1, str(tmp_path / "spill"))  # DuckDB prints 1GB in MiB


def test_dbt_applies_the_limits_it_is_given(tmp_path, monkeypatch):
    """The on-run-start hook sets what WHALECOPY_DBT_<SETTING> holds: a value DuckDB refuses fails the run, naming
    the setting (so the hook does run), and a sync under real limits builds everything."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA raw")
    monkeypatch.setenv("WHALECOPY_DBT_MEMORY_LIMIT", "not a size")
    with pytest.raises(RuntimeError, match="(?i)memory must have a number") as failed:
        stages.dbt_models(path)
    assert "int_sync_window" not in str(failed.value)  # no model ran without its limits
    monkeypatch.delenv("WHALECOPY_DBT_MEMORY_LIMIT")

    settings = dataclasses.replace(
        small_settings(tmp_path / "s.duckdb"), duckdb_memory_limit="2GB", duckdb_threads=1,
        duckdb_temp_dir=str(tmp_path / "spill"),
    )  # fmt: skip
    assert run_sync(settings, out=io.StringIO(), skip_groups=("evaluation",)).success
