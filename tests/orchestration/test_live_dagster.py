"""The live loop in Dagster: its assets, checks and sensor, and the sensor reading a store a writer holds."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from live.assets import LIVE_KEYS, build_live_monitor, build_live_tables, monitor_events
from live.store import Commit, Store


def _store(path, *, open_loss: bool, slow: bool) -> Store:
    store = Store(path)
    c = Commit()
    for i, sources in enumerate(["rtds_trades", "rtds_trades,poll", "poll"]):
        c.fills.append({"identity": f"id{i}", "fill_key": str(i), "decision_key": f"k{i}", "wallet": "0xw",
                        "token_id": "1", "condition_id": "0xc", "side": "BUY", "outcome_index": 0, "price": 0.5,
                        "size": 10.0, "ts": 1_800_000_000 + i, "transaction_hash": None, "source": sources.split(",")[0],
                        "received_at": 1_800_000_002.0 + i, "received_wall": 0.0})  # fmt: skip
    for i in range(3):
        c.decisions.append({"decision_key": f"k{i}", "seq": i + 1, "fill_key": str(i), "wallet": "0xw", "token_id": "1",
                            "side": "BUY", "ts": 1_800_000_000 + i, "day": 20833, "legs": 1, "stage_reached": "whale",
                            "copied": 0, "frame_to_decision_s": 0.2 if slow else 0.004, "fill_to_decision_s": 61.0,
                            "decided_at": 1_800_000_070.0 + i})  # fmt: skip
    if open_loss:
        c.losses_opened.append({"reason": "feed-gap", "start_ts": 1.0, "end_ts": 2.0, "detail": "restart",
                                "wallets": "", "opened_at": 3.0})  # fmt: skip
    store.commit(c)
    # the third fill's sources, as a poll found it after RTDS missed it
    store.con.execute("UPDATE fills SET sources = 'rtds_trades,poll' WHERE identity = 'id1'")
    return store


def test_the_live_assets_checks_and_sensor_are_defined():
    from orchestration.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {f"live/{t}" for t in LIVE_KEYS} | {"live/snapshot"} <= keys
    checks = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    assert {"live_rtds_coverage", "live_open_loss_events", "live_latency_budget"} <= checks
    sensor = defs.resolve_sensor_def("live_monitor")
    assert sensor.minimum_interval_seconds >= 60


def test_the_monitor_reports_observations_and_the_three_checks(tmp_path):
    _store(tmp_path / "live.sqlite", open_loss=True, slow=True).close()
    events = monitor_events(tmp_path / "live.sqlite", coverage_min=0.95, budget_ms=50.0)
    observations = [e for e in events if isinstance(e, dg.AssetObservation)]
    results = {e.check_name: e for e in events if isinstance(e, dg.AssetCheckEvaluation)}
    assert {o.asset_key for o in observations} == set(LIVE_KEYS.values())
    assert not results["live_open_loss_events"].passed
    assert not results["live_latency_budget"].passed  # 200 ms from frame to decision
    assert not results["live_rtds_coverage"].passed  # one of three fills came only by poll
    assert results["live_rtds_coverage"].metadata["poll_only"].value == 1


def test_the_sensor_reads_the_store_while_the_loop_holds_a_write_transaction(tmp_path):
    """WAL: a reader never waits on the writer (and never blocks it)."""
    store = _store(tmp_path / "live" / "live.sqlite", open_loss=False, slow=False)
    store.con.execute("BEGIN IMMEDIATE")
    store.con.execute("INSERT INTO state VALUES ('busy', '1')")
    try:
        sensor = build_live_monitor(tmp_path / "live", 0.5, 50.0)
        result = sensor.evaluate_tick(dg.build_sensor_context())
        checks = {
            e.check_name: e.passed for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)
        }
        assert checks == {
            "live_rtds_coverage": True,
            "live_open_loss_events": True,
            "live_latency_budget": True,
        }
    finally:
        store.con.execute("ROLLBACK")
        store.close()
    missing = build_live_monitor(tmp_path / "nowhere", 0.5, 50.0).evaluate_tick(dg.build_sensor_context())
    assert missing.skip_message and "no live store" in missing.skip_message


@pytest.mark.parametrize("with_store", [True, False])
def test_the_sync_copies_the_live_tables_into_the_warehouse(tmp_path, with_store):
    from dagster_duckdb import DuckDBResource

    if with_store:
        _store(tmp_path / "live" / "live.sqlite", open_loss=True, slow=False).close()
    wh = tmp_path / "w.duckdb"
    result = dg.materialize([build_live_tables(tmp_path / "live")], resources={"warehouse": DuckDBResource(database=str(wh))},
                            instance=dg.DagsterInstance.ephemeral())  # fmt: skip
    assert result.success
    with duckdb.connect(str(wh), read_only=True) as con:
        counts = {t: con.execute(f"SELECT count(*) FROM live.{t}").fetchall()[0][0] for t in LIVE_KEYS}
        cols = {r[0] for r in con.execute("DESCRIBE live.decisions").fetchall()}
    assert counts["fills"] == (3 if with_store else 0) and counts["loss_events"] == (1 if with_store else 0)
    assert {"decision_key", "stage_reached", "frame_to_decision_s"} <= cols  # the schema even when empty
