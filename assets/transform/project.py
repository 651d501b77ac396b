"""The dbt project, and its manifest prepared before any module that defines dbt assets is imported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from .model import SyncState

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

# dbt installed beside this interpreter (the venv), whether or not the venv is on PATH
DBT_EXECUTABLE = (
    str(Path(sys.executable).parent / "dbt")
    if (Path(sys.executable).parent / "dbt").exists()
    else (shutil.which("dbt") or "dbt")
)

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _sources_mtime() -> float:
    files = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        files.extend(
            p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.suffix in (".sql", ".yml", ".yaml")
        )
    return max(p.stat().st_mtime for p in files if p.exists())


def prepare_manifest() -> Path:
    """Run `dbt parse` when the manifest is missing or older than any model, macro, test or config file."""
    manifest = dbt_project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < _sources_mtime():
        env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        out = subprocess.run(
            [DBT_EXECUTABLE, "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
             str(DBT_PROJECT_DIR), "--target-path", str(manifest.parent)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(
                f"dbt parse failed in {DBT_PROJECT_DIR}:\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
            )
    return manifest


def read_sync_state(con) -> SyncState:
    """The incremental marts' bookkeeping as ``con`` (a DuckDB connection on the warehouse) sees it."""
    tables = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'intermediate' "
            "AND table_name IN ('int_position_fills', 'int_sync_window', 'int_sync_state')"
        ).fetchall()
    }

    def build_id(table: str) -> str | None:
        if table not in tables:
            return None
        row = con.execute(f"SELECT CAST(build_id AS VARCHAR) FROM intermediate.{table}").fetchone()
        return row[0] if row else None

    return SyncState(
        marts_built="int_position_fills" in tables,
        window_build=build_id("int_sync_window"),
        state_build=build_id("int_sync_state"),
    )
