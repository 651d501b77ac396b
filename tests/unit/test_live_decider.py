"""The live decider on a hand-made snapshot: each candidate fact the stream rebuilds, at its boundaries."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from assets.strategy import StrategyConfig
from assets.warehouse import exact_units, units_to_float
from live.decider import DAY, Decider, Snapshot
from live.model import fill_key

D0 = 20_745  # the first live day
T0 = D0 * DAY
W, W2 = "0x" + "a" * 40, "0x" + "b" * 40
TOK, TOK2 = "111", "222"
COND = "0x" + "c" * 64


def _snapshot(strategy: StrategyConfig | None = None, **frames) -> Snapshot:
    s = strategy or StrategyConfig(min_wqs=0.0, universe_min_wqs=0.0, min_notional=0.0, max_slippage=10.0,
                                   min_edge=-1.0, max_whale_drawdown=1.0, max_days_to_resolution=1e4)  # fmt: skip
    whales = pd.DataFrame([{"wallet": W, "tracked": True, "score_as_of": pd.Timestamp("2026-10-19"), "wqs": 80.0,
                            "rolling_sharpe_30": 2.0, "rolling_sharpe_90": 1.0, "current_drawdown": -0.01,
                            "whale_edge": 0.05, "quarantined": False, "flags": None,
                            "whale_volatility": 0.02}])  # fmt: skip
    markets = pd.DataFrame([{"token_id": t, "condition_id": COND, "event_id": "e", "category": "Politics",
                             "end_epoch": float(T0 + 30 * DAY), "end_ts": float(T0 + 30 * DAY), "resolved_ts": math.nan,
                             "payout": math.nan} for t in (TOK, TOK2)])  # fmt: skip
    empty = {
        "token_hours": pd.DataFrame({"token_id": [], "hour": [], "units": []}),
        "marks": pd.DataFrame({"token_id": [], "day": [], "price": []}),
        "positions": pd.DataFrame({"wallet": [], "token_id": [], "units": []}),
        "prints": pd.DataFrame({"token_id": [], "ts": [], "price": []}),
        "recent_fills": pd.DataFrame(),
    }
    meta = {"data_end_ts": T0, "recent_start_ts": T0 - 180, "fee_rate": 0.02, "fidelity_minutes": 1440,
            "strategy": s.model_dump(), "generation": "g"}  # fmt: skip
    return Snapshot(meta=meta, whales=whales, markets=markets, **(empty | frames))


def _fill(ts, price=0.5, size=100.0, side="BUY", wallet=W, token=TOK, tx="0x" + "1" * 64) -> dict:
    row = {"proxy_wallet": wallet, "side": side, "asset": token, "condition_id": COND, "size": size, "price": price,
           "ts": ts, "outcome_index": 0, "transaction_hash": tx}  # fmt: skip
    row["fill_key"] = fill_key(row)
    return row


def test_the_copy_price_is_the_highest_print_of_the_last_second_at_or_before_order_plus_latency():
    d = Decider(_snapshot())
    ts = T0 + 1000
    d.observe(_fill(ts, price=0.50), received_at=ts + 2, tracked=True)
    for when, price in ((ts + 30, 0.52), (ts + 60, 0.55), (ts + 60, 0.54), (ts + 61, 0.90)):
        d.observe(_fill(when, price=price, wallet=W2, tx=None), received_at=when, tracked=False)
    assert d.copy_price(TOK, ts + 60) == 0.55  # exactly at order + latency counts; the highest of that second
    assert d.copy_price(TOK, ts + 59) == 0.52 and math.isnan(d.copy_price(TOK2, ts + 60))


def test_the_flow_is_the_168_whole_hours_before_the_orders_hour_summed_exactly():
    h = (T0 + 200 * 3600) // 3600
    hours = pd.DataFrame({"token_id": [TOK] * 3, "hour": [h - 169, h - 168, h - 1],
                          "units": [exact_units(1000.0), exact_units(700.0), exact_units(0.1)]})  # fmt: skip
    d = Decider(_snapshot(token_hours=hours))
    d.observe(
        _fill(h * 3600 + 5, price=0.5, size=10.0), received_at=h * 3600 + 6, tracked=True
    )  # its own hour
    assert d.daily_notional(TOK, h * 3600 + 10) == units_to_float(exact_units(700.0) + exact_units(0.1)) / 7.0


def test_an_orders_legs_are_one_decision_at_their_volume_weighted_price_and_exact_totals():
    ts = T0 + 5000
    flow = pd.DataFrame({"token_id": [TOK], "hour": [ts // 3600 - 5], "units": [exact_units(1e6)]})
    d = Decider(_snapshot(token_hours=flow))
    legs = [_fill(ts, price=0.40, size=10.1), _fill(ts, price=0.50, size=20.2)]
    legs[1]["fill_key"] += 1  # two fills of one transaction
    for leg in legs:
        d.observe(leg, received_at=ts + 2, tracked=True)
    (order,) = d.orders.values()
    assert len(order.legs) == 2 and order.fill_key == min(leg["fill_key"] for leg in legs)
    notional = units_to_float(exact_units(10.1 * 0.40) + exact_units(20.2 * 0.50))
    assert order.notional == notional and order.whale_price == notional / units_to_float(
        exact_units(10.1) + exact_units(20.2)
    )
    assert d.release(ts + 59.9) == [] and d.release(ts + 60) == [
        order
    ]  # released once order + latency settles
    dec = d.decide(order)
    assert dec["legs"] == 2 and dec["stage_reached"] == "copied", dec["reason"]
    late = _fill(ts, price=0.45, size=1.0)
    late["fill_key"] += 7
    d.observe(late, received_at=ts + 500, tracked=True)
    assert d.release(ts + 10_000) == [] and d.late_legs == 1  # a late leg is stored, never decided again


def test_a_whale_sell_is_the_share_of_its_position_before_its_first_leg():
    pos = pd.DataFrame({"wallet": [W], "token_id": [TOK], "units": [exact_units(300.0)]})
    d = Decider(_snapshot(positions=pos))
    buy, sell = _fill(T0 + 100, size=100.0), _fill(T0 + 200, size=50.0, side="SELL", tx="0x" + "2" * 64)
    d.observe(buy, received_at=T0 + 101, tracked=True)
    d.observe(sell, received_at=T0 + 201, tracked=True)
    orders = d.release(T0 + 1000)
    assert [o.side for o in orders] == ["BUY", "SELL"]
    assert orders[1].shares_before == units_to_float(exact_units(400.0) - exact_units(50.0)) + 50.0 == 400.0
    d.decide(orders[0])
    exit_ = d.decide(orders[1])
    assert exit_["fraction"] == 50.0 / 400.0
    if exit_["copied"]:  # we held the copy: the same share of ours went
        assert exit_["stage_reached"] == "exit"


def test_orders_due_before_the_first_live_day_move_positions_only_and_stale_buys_are_skipped():
    d = Decider(_snapshot())
    old = _fill(T0 - 90, size=10.0)  # due at T0 - 30: the batch decided it
    d.observe(old, received_at=T0 - 88, tracked=True, applied=True)
    assert d.release(T0 + 100) == [] and d.positions[(W, TOK)] == exact_units(10.0)
    new = _fill(T0 + 500, tx="0x" + "3" * 64)
    d.observe(new, received_at=T0 + 900, tracked=True)
    (order,) = d.release(T0 + 600)
    dec = d.stale(order, age_s=400, max_age_s=60)
    assert dec["stage_reached"] == "skipped_stale" and "400 s old" in dec["reason"]


def test_stage_1_and_2_are_the_batchs_screen():
    d = Decider(_snapshot(StrategyConfig()))  # the documented thresholds
    ts = T0 + 300
    d.observe(_fill(ts, size=100.0), received_at=ts + 1, tracked=True)
    (order,) = d.release(ts + 61)
    dec = d.decide(order)
    assert dec["stage_reached"] == "trade" and "whale trade under $5,000" in dec["reason"]
    assert dec["copy_price"] == 0.5 and dec["wqs"] == 80.0


@pytest.mark.parametrize("held", [True, False])
def test_marks_come_from_history_then_the_snapshot_then_the_days_last_print(held):
    marks = pd.DataFrame({"token_id": [TOK, TOK], "day": [D0 - 2, D0 - 1], "price": [0.4, 0.45]})
    d = Decider(_snapshot(marks=marks))
    d.observe(_fill(T0 + 3600, price=0.6, wallet=W2), received_at=T0 + 3601, tracked=False)
    d.observe(_fill(T0 + 7200, price=0.61, wallet=W2, tx=None), received_at=T0 + 7201, tracked=False)
    assert d.mark(TOK, D0 - 1) == 0.45 and d.mark(TOK, D0) == 0.61  # the snapshot's; the day's last print
    d.add_history(TOK, [(D0 * DAY, 0.58), ((D0 - 1) * DAY, 0.44)], through_day=D0)
    assert d.mark(TOK, D0) == 0.58 and d.mark(TOK, D0 - 1) == 0.44  # history first
    assert d.history_needed(TOK, D0 + 1) is None and d.history_needed(TOK, D0 + 3) == (D0 + 1, D0 + 2)
