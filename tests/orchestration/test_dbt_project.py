"""The dbt project parses offline with the pinned dbt-core (no packages, no network)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


def test_dbt_parses_offline(tmp_path):
    env = {
        **os.environ,
        "WAREHOUSE_PATH": str(tmp_path / "w.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    dbt = Path(sys.executable).parent / "dbt"
    if not dbt.exists():
        pytest.fail(f"dbt is not installed next to {sys.executable}: the pinned install is incomplete")
    out = subprocess.run(
        [str(dbt), "parse", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--target-path",
         str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert (tmp_path / "target" / "manifest.json").exists()
