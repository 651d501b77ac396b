"""The daily schedule and the resolution sensor, on an ephemeral instance with the simulated API as fake client."""

import json
from datetime import UTC, datetime

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from assets.ingest import ingest
from assets.ingest.resources import PolymarketResource
from assets.ingest.store import ensure_raw
from orchestration.definitions import build_definitions
from orchestration.schedules import market_resolution_sensor, resolution_decision
from orchestration.settings import Settings


def test_the_daily_schedule_syncs_the_day_that_just_ended(tmp_path):
    defs = build_definitions(Settings(warehouse_path=tmp_path / "w.duckdb"))
    schedule = defs.resolve_schedule_def("daily_sync")
    assert schedule.cron_schedule == "30 0 * * *"
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
        )
        requests = list(schedule.evaluate_tick(ctx).run_requests)
    assert [r.partition_key for r in requests] == ["2026-11-23"]
    job = defs.resolve_job_def(schedule.job_name)
    assert job.name == "daily"
    # every asset but the evaluation's, which the weekly schedule runs
    graph = defs.resolve_asset_graph()
    evaluation = set(graph.asset_keys_for_group("evaluation"))
    daily = set(job.asset_layer.selected_asset_keys)
    assert (
        evaluation and not daily & evaluation and daily | evaluation == set(graph.materializable_asset_keys)
    )
    weekly = defs.resolve_schedule_def("weekly_evaluation")
    assert weekly.cron_schedule == "0 2 * * 1"
    assert set(defs.resolve_job_def(weekly.job_name).asset_layer.selected_asset_keys) == evaluation


def markets_warehouse(path):
    """A warehouse holding the small simulated world's markets, and the resource that serves that world."""
    pm = PolymarketResource(sim_scale=0.03, sim_seed=7)
    con = duckdb.connect(str(path))
    ensure_raw(con)
    with pm.open() as src:
        ingest.ingest_markets(con, src)
    return pm, con


@pytest.fixture
def stale_warehouse(tmp_path):
    """A warehouse whose copy of three resolved markets still says open (as before they resolved)."""
    path = tmp_path / "w.duckdb"
    pm, con = markets_warehouse(path)
    stale = [r[0] for r in con.execute(
        "SELECT condition_id FROM raw.markets WHERE uma_resolution_status = 'resolved' ORDER BY 1 LIMIT 3").fetchall()]  # fmt: skip
    con.execute(
        "UPDATE raw.markets SET closed = false, uma_resolution_status = NULL WHERE condition_id IN (SELECT unnest(?))",
        [stale],
    )
    con.close()
    return pm, DuckDBResource(database=str(path)), stale


def test_the_sensor_requests_one_run_for_newly_resolved_markets_and_never_twice(stale_warehouse):
    pm, warehouse, stale = stale_warehouse
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"polymarket": pm, "warehouse": warehouse})
        first = market_resolution_sensor(ctx)
        assert isinstance(first, dg.RunRequest)
        assert first.run_key.startswith("resolved-") and first.tags["whalecopy/resolved_markets"] == "3"
        assert sorted(json.loads(ctx.cursor)) == sorted(stale)
        again = market_resolution_sensor(dg.build_sensor_context(
            instance=instance, cursor=ctx.cursor, resources={"polymarket": pm, "warehouse": warehouse}))  # fmt: skip
        assert isinstance(again, dg.SkipReason)  # the same markets do not launch a second run


def test_the_sensor_skips_when_nothing_resolved(tmp_path):
    path = tmp_path / "w.duckdb"
    pm, con = markets_warehouse(path)
    con.close()
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(
            instance=instance, resources={"polymarket": pm, "warehouse": DuckDBResource(database=str(path))}
        )
        assert isinstance(market_resolution_sensor(ctx), dg.SkipReason)


def test_the_sensor_cursor_forgets_markets_the_warehouse_has_caught_up_with():
    key, new, cursor = resolution_decision(["a", "b", "c"], ["a", "b"], None)
    assert key and new == ["a", "b"] and json.loads(cursor) == ["a", "b"]
    key2, new2, cursor2 = resolution_decision(
        ["c"], ["c"], cursor
    )  # a and b are resolved in the warehouse now
    assert key2 and new2 == ["c"] and json.loads(cursor2) == ["c"]
    assert resolution_decision(["c"], ["c"], cursor2)[0] is None
