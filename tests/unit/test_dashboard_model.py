"""The dashboard's pure functions, on every boundary they decide at."""

import math

import numpy as np
import pandas as pd
import pytest

from dashboard import model as m


def test_live_state_reports_the_loops_own_state_only_while_its_process_lives_and_ticks():
    now = 1_000.0
    beat = {
        "loop_state": "degraded",
        "heartbeat_wall": now - m.STALLED_AFTER_S,
    }  # exactly at the bound: still live
    assert m.live_state(beat, True, now) == m.LiveState("degraded", "last tick 30 s ago", False)
    assert m.live_state({**beat, "loop_state": "running"}, True, now).healthy
    late = {**beat, "heartbeat_wall": now - m.STALLED_AFTER_S - 0.001}
    assert m.live_state(late, True, now).label == "stalled"
    gone = m.live_state(beat, False, now)
    assert gone.label == "stopped" and "last state was degraded" in gone.detail and not gone.healthy
    assert m.live_state({}, False, now).label == "not started"
    assert m.live_state({}, True, now).label == "stalled"  # a holder that never ticked


def test_exposure_by_category_is_within_its_limit_exactly_at_it():
    pos = pd.DataFrame(
        {"category": ["Sports", "Sports", "Crypto", None], "value": [200.0, 100.0, 301.0, 50.0]}
    )
    out = m.exposure_by_category(pos, 1_000.0, 0.30)
    assert out["category"].tolist() == ["Crypto", "Sports", "(unknown)"]
    assert out["share"].tolist() == pytest.approx([0.301, 0.30, 0.05])
    assert out["within"].tolist() == [False, True, True]  # 0.30 of NAV is at the limit: within it
    assert m.exposure_by_category(pos.iloc[:0], 1_000.0, 0.3).empty
    assert m.exposure_by_category(pos, math.nan, 0.3).empty


def test_batch_funnel_rates_are_of_the_stage_before_and_of_every_order():
    counts = pd.DataFrame({"orders": [1000], "passed_whale": [100], "passed_trade": [10], "copied": [0]})
    f = m.batch_funnel(counts)
    assert f["orders"].tolist() == [1000, 100, 10, 0]
    assert np.isnan(f["pass_rate"].iloc[0]) and f["pass_rate"].iloc[1:].tolist() == [0.1, 0.1, 0.0]
    assert f["of_orders"].tolist() == [1.0, 0.1, 0.01, 0.0]
    empty = m.batch_funnel(
        pd.DataFrame({"orders": [0], "passed_whale": [0], "passed_trade": [0], "copied": [0]})
    )
    assert empty["pass_rate"].isna().all() and empty["of_orders"].isna().all()


def test_live_funnel_lists_every_stage_in_order_and_keeps_an_unknown_one():
    stages = pd.DataFrame({"stage_reached": ["copied", "whale", "new_kind"], "decisions": [1, 3, 1]})
    f = m.live_funnel(stages)
    assert f["stage_reached"].tolist() == [*m.LIVE_STAGES, "new_kind"]
    assert f.set_index("stage_reached")["decisions"].to_dict() == {
        "whale": 3, "trade": 0, "portfolio": 0, "copied": 1, "skipped_stale": 0, "exit": 0, "not_held": 0,
        "new_kind": 1,
    }  # fmt: skip
    assert f["share"].sum() == pytest.approx(1.0)
    assert m.live_funnel(pd.DataFrame({"stage_reached": [], "decisions": []}))["decisions"].sum() == 0


def test_latency_quantiles_skip_missing_values():
    d = pd.DataFrame(
        {"frame_to_decision_s": [0.001, 0.002, None, 0.003], "fill_to_decision_s": [60, 61, 62, None]}
    )
    got = m.latency_ms(d)
    assert got["frame_p50_ms"] == pytest.approx(2.0) and got["fill_p50_s"] == pytest.approx(61.0)
    assert math.isnan(m.latency_ms(d.iloc[:0])["frame_p99_ms"])


def test_positions_view_splits_open_from_closed_and_takes_each_ones_pnl():
    p = pd.DataFrame({
        "key": [1, 2], "wallet": ["a", "b"], "question": ["q1", "q2"], "category": ["x", "y"],
        "entry_day": pd.array([20000, 20001], dtype="Int64"), "entry_price": [0.5, 0.4], "shares_open": [10.0, 0.0],
        "cost": [5.0, 4.0], "mark": [0.6, None], "stop_level": [None, 0.3],
        "time_exit_day": pd.array([20010, pd.NA], dtype="Int64"), "closed_day": pd.array([pd.NA, 20005], dtype="Int64"),
        "close_reason": [None, "settlement"], "proceeds": [0.0, 10.0], "fees": [0.1, 0.0],
        "realised_pnl": [None, 6.0], "unrealised_pnl": [0.9, None], "token_id": ["t1", "t2"],
    })  # fmt: skip
    open_, closed = m.positions_view(p)
    assert open_["key"].tolist() == [1] and closed["key"].tolist() == [2]
    assert open_["pnl"].tolist() == [0.9] and closed["pnl"].tolist() == [6.0]
    assert open_["time_exit_date"].iloc[0] == pd.Timestamp(
        "2024-10-14"
    )  # day 20010 (day 20000 is 2024-10-04)
    assert closed["closed_date"].iloc[0] == pd.Timestamp("2024-10-09")


def test_strike_reasons_use_the_batchs_bounds():
    scores = pd.DataFrame({"sharpe": [0.9, 0.9], "current_drawdown": [-0.2, -0.1], "consistency": [50, 50]})
    got = m.with_strike_reasons(scores, {"strike_min_sharpe": 1.0, "strike_max_drawdown": 0.15})
    assert got["strike_reasons"].tolist() == ["Sharpe < 1; current drawdown > 15%", "Sharpe < 1"]
    assert m.with_strike_reasons(scores, {})["strike_reasons"].tolist() == ["", ""]  # the defaults


def test_the_default_bounds_are_strategy_configs():
    from assets.strategy import StrategyConfig
    from dashboard.context import default_strategy

    config = StrategyConfig().model_dump()
    assert default_strategy() == {k: config[k] for k in default_strategy()}


def test_short_shortens_addresses_only():
    assert m.short("0x" + "ab" * 20) == "0xabab…abab"
    assert m.short("(other whales)") == "(other whales)" and m.short("0x12") == "0x12"
