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


def test_all_finite_fails_on_nan_and_inf_in_any_listed_column_and_passes_null(tmp_path, monkeypatch):
    """The marts' one finiteness test per model (tests/generic/all_finite.sql), run by dbt on a hand-made
    fct_fills: NULLs and ordinary numbers pass; a NaN in the last listed column and an -inf in the first fail."""
    import duckdb

    from assets.transform.project import DBT_PROJECT_DIR
    from assets.transform.runner import run_dbt

    db = tmp_path / "w.duckdb"
    monkeypatch.setenv("WHALECOPY_DBT_DATABASE", str(db))
    columns = ["size", "price", "notional", "fee", "pnl_gross", "pnl_net", "avg_cost_before", "realised_on_sell",
               "shares_after"]  # fmt: skip
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute(f"CREATE TABLE marts.fct_fills ({', '.join(f'{c} DOUBLE' for c in columns)})")
        con.execute(f"INSERT INTO marts.fct_fills VALUES ({', '.join(['1.5'] * len(columns))})")
        con.execute(f"INSERT INTO marts.fct_fills VALUES ({', '.join(['NULL'] * len(columns))})")

    def test_fct_fills():
        return run_dbt(["test", "--select", "fct_fills,test_name:all_finite"], project_dir=DBT_PROJECT_DIR,
                       profiles_dir=DBT_PROJECT_DIR, target_path=tmp_path / "target")  # fmt: skip

    passed = test_fct_fills()
    assert passed.success and passed.statuses["pass"] == 1  # (and the project hook's "success")
    assert [n for n in passed.timings if n.startswith("all_finite_fct_fills")] != []  # each node's time
    # the run's results are its outcome: no manifest.json or run_results.json, but the partial parse is kept
    target = tmp_path / "target"
    assert not (target / "run_results.json").exists() and not (target / "manifest.json").exists()
    assert (target / "partial_parse.msgpack").exists()
    with duckdb.connect(str(db)) as con:
        last_nan = ", ".join(["0"] * (len(columns) - 1) + ["'nan'::DOUBLE"])
        first_inf = ", ".join(["'-inf'::DOUBLE"] + ["NULL"] * (len(columns) - 1))
        con.execute(f"INSERT INTO marts.fct_fills VALUES ({last_nan}), ({first_inf})")
    failed = test_fct_fills()
    assert not failed.success and failed.statuses["fail"] == 1
    assert "Got 2 results" in failed.failures[0]
