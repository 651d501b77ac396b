"""The one Definitions object: loads, names assets after warehouse tables, gates are blocking."""

import dataclasses
from pathlib import Path

import dagster as dg
import pytest

from orchestration.cli import partition_range
from orchestration.definitions import build_definitions
from orchestration.settings import Settings


@pytest.fixture
def defs(tmp_path):
    return build_definitions(Settings(warehouse_path=tmp_path / "w.duckdb"))


def test_definitions_load_with_the_sync_job(defs):
    job = defs.resolve_job_def("sync")
    assert job is not None
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "raw/markets",
        "raw/leaderboard",
        "raw/trades",
        "raw/activity",
        "raw/price_history",
        "evaluation/sim_truth",
    } <= keys
    assert {"staging/stg_polymarket__trades", "marts/fct_fills", "marts/fct_positions", "marts/dim_markets",
            "marts/wallet_daily_returns", "marts/wallet_features"} <= keys  # fmt: skip


def test_asset_keys_are_schema_and_table(defs):
    for key in defs.resolve_asset_graph().get_all_asset_keys():
        assert len(key.path) == 2 and key.path[0] in {
            "raw",
            "staging",
            "intermediate",
            "marts",
            "analytics",
            "evaluation",
            "live",
        }


def test_every_raw_asset_python_read_mart_and_python_output_has_a_blocking_gate(defs):
    specs = [spec for checks_def in defs.asset_checks for spec in checks_def.check_specs]
    assert {s.asset_key.to_user_string() for s in specs} == {
        "raw/markets", "raw/trades", "raw/activity", "raw/price_history",
        "marts/fct_fills", "marts/fct_positions", "marts/wallet_daily_returns", "marts/wallet_features",
        "analytics/whale_scores", "analytics/whale_universe", "analytics/wallet_flags",
        "analytics/wallet_flags_history", "evaluation/score_ic",
        "analytics/whale_quarantine", "analytics/signals",
        "analytics/orders", "analytics/paper_nav", "analytics/paper_fills",
        "evaluation/backtest_daily", "evaluation/backtest_summary", "evaluation/validation", "evaluation/targets",
        "live/fills", "live/decisions", "live/loss_events",
    }  # fmt: skip
    live_monitoring = {"live_rtds_coverage", "live_open_loss_events", "live_latency_budget"}
    assert all(spec.blocking for spec in specs if spec.name not in live_monitoring)
    # the live loop's health checks report on a process outside the batch: nothing downstream waits on them
    assert {s.name for s in specs if not s.blocking} == live_monitoring


def test_dbt_tests_are_blocking_checks_and_sources_join_the_lineage(defs):
    graph = defs.resolve_asset_graph()
    dbt_checks = [
        k for k in graph.asset_check_keys if k.asset_key.path[0] in ("staging", "intermediate", "marts")
    ]
    assert len(dbt_checks) >= 40
    stg = graph.get(dg.AssetKey(["staging", "stg_polymarket__trades"]))
    assert dg.AssetKey(["raw", "trades"]) in stg.parent_keys  # the dbt source is the ingest asset


def test_score_and_evaluation_assets_are_keyed_like_their_tables(defs):
    graph = defs.resolve_asset_graph()
    for key in ("analytics/whale_scores", "analytics/whale_universe", "evaluation/score_ic",
                "evaluation/score_ic_monthly", "evaluation/backtest_daily", "evaluation/backtest_summary",
                "evaluation/backtest_folds", "evaluation/validation", "evaluation/attribution_brinson",
                "evaluation/attribution_regression", "evaluation/attribution_contribution", "evaluation/targets",
                "evaluation/report"):  # fmt: skip
        assert graph.has(dg.AssetKey.from_user_string(key))
    backtest = graph.get(dg.AssetKey(["evaluation", "backtest_summary"]))
    assert dg.AssetKey(["analytics", "signals"]) in backtest.parent_keys
    assert dg.AssetKey(["evaluation", "sim_truth"]) not in backtest.parent_keys  # nor does the backtest
    scores = graph.get(dg.AssetKey(["analytics", "whale_scores"]))
    assert dg.AssetKey(["marts", "wallet_daily_returns"]) in scores.parent_keys
    assert dg.AssetKey(["evaluation", "sim_truth"]) not in scores.parent_keys  # scoring never reads the truth


def test_trades_and_prices_are_daily_partitioned(defs):
    graph = defs.resolve_asset_graph()
    for name in ("raw/trades", "raw/price_history"):
        pd = graph.get(dg.AssetKey.from_user_string(name)).partitions_def
        assert isinstance(pd, dg.DailyPartitionsDefinition)


def test_settings_reject_a_bad_source(monkeypatch):
    monkeypatch.setenv("WHALECOPY_SOURCE", "mainnet")
    with pytest.raises(ValueError, match="WHALECOPY_SOURCE='mainnet'"):
        Settings.from_env()
    monkeypatch.setenv("WHALECOPY_SOURCE", "sim")
    monkeypatch.setenv("WHALECOPY_SIM_SCALE", "big")
    with pytest.raises(ValueError, match="WHALECOPY_SIM_SCALE='big' is not a number"):
        Settings.from_env()
    monkeypatch.delenv("WHALECOPY_SIM_SCALE")
    monkeypatch.setenv("WHALECOPY_GX_BATCH_ROWS", "1")  # the smallest batch GX can validate
    assert Settings.from_env().gx_batch_rows == 1
    monkeypatch.setenv("WHALECOPY_GX_BATCH_ROWS", "0")
    with pytest.raises(ValueError, match="WHALECOPY_GX_BATCH_ROWS='0' must be at least 1"):
        Settings.from_env()
    monkeypatch.delenv("WHALECOPY_GX_BATCH_ROWS")
    assert Settings.from_env().gate_scope == "new" and Settings.from_env().sim_cache_dir == Path(
        "data/sim_cache"
    )
    monkeypatch.setenv("WHALECOPY_GATE_SCOPE", "some")
    with pytest.raises(ValueError, match="WHALECOPY_GATE_SCOPE='some': expected one of new, all"):
        Settings.from_env()
    monkeypatch.setenv("WHALECOPY_GATE_SCOPE", "all")
    monkeypatch.setenv("WHALECOPY_SIM_CACHE_DIR", "off")
    assert Settings.from_env().gate_scope == "all" and Settings.from_env().sim_cache_dir is None


def test_the_run_range_is_the_source_history():
    s = Settings(warehouse_path=Path("unused.duckdb"))
    lo, hi = partition_range(s)
    assert (lo.isoformat(), hi.isoformat()) == ("2024-11-01", "2026-10-31")
    with pytest.raises(SystemExit, match="before the first partition"):
        partition_range(dataclasses.replace(s, partition_start="2025-01-01"))


def test_workspace_points_at_the_definitions():
    text = (Path(__file__).resolve().parents[2] / "workspace.yaml").read_text()
    assert "orchestration.definitions" in text


@pytest.mark.parametrize(
    ("flag", "strategy"), [([], None), (["--keep-flagged"], {"keep_flagged_wallets": True})]
)
def test_keep_flagged_sets_the_runs_strategy(tmp_path, monkeypatch, flag, strategy):
    from orchestration import cli

    seen = {}

    class Stop(Exception):
        pass

    def fake_run_sync(settings, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(cli, "run_sync", fake_run_sync)
    with pytest.raises(Stop):
        cli.main(["run", "--warehouse", str(tmp_path / "w.duckdb"), *flag])
    assert seen["strategy"] == strategy


def test_a_run_on_another_warehouse_writes_its_report_beside_it(tmp_path, monkeypatch):
    from orchestration import cli

    monkeypatch.delenv("WHALECOPY_REPORT_PATH", raising=False)
    args = cli._parser().parse_args(["run", "--warehouse", str(tmp_path / "copy.duckdb")])
    assert cli._settings(args).report_path == tmp_path / "copy.html"
    monkeypatch.setenv("WHALECOPY_REPORT_PATH", str(tmp_path / "mine.html"))
    assert cli._settings(args).report_path == tmp_path / "mine.html"
    assert cli._settings(cli._parser().parse_args(["run"])).report_path == tmp_path / "mine.html"
