"""The three-stage signal filter: each threshold, every reason, and the funnel."""

import numpy as np
import pandas as pd
import pytest

from assets.signal import model as m


def _whales(**overrides) -> pd.DataFrame:
    base = {
        "wqs": 80.0,
        "rolling_sharpe_30": 3.0,
        "rolling_sharpe_90": 2.0,
        "current_drawdown": -0.1,
        "quarantined": False,
        "flags": None,
    }
    return pd.DataFrame([base | overrides])


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, None),
        ({"wqs": 74.9}, "WQS below 75"),
        ({"wqs": None}, "WQS below 75"),
        ({"rolling_sharpe_30": 2.0}, "30-day Sharpe not above 90-day Sharpe"),
        ({"rolling_sharpe_90": np.nan}, "30-day Sharpe not above 90-day Sharpe"),
        ({"current_drawdown": -0.25}, "whale drawdown 25% or more"),
        ({"quarantined": True}, "whale quarantined"),
        ({"wqs": 10.0, "quarantined": True}, "WQS below 75; whale quarantined"),
        ({"flags": "bot"}, "whale flagged (market maker, farmer, bot or wash)"),
        ({"flags": "market_maker, wash", "quarantined": True},
         "whale quarantined; whale flagged (market maker, farmer, bot or wash)"),
    ],
)  # fmt: skip
def test_whale_stage(overrides, reason):
    r = m.whale_stage(_whales(**overrides))
    assert bool(r.passed[0]) is (reason is None)
    assert r.reason[0] == reason


def test_a_flagged_whale_passes_stage_1_when_flagged_wallets_are_kept():
    keep = m.SignalParams(keep_flagged=True)
    assert bool(m.whale_stage(_whales(flags="farmer"), keep).passed[0])
    assert m.whale_stage(_whales(flags="farmer", quarantined=True), keep).reason[0] == "whale quarantined"


def _trades(**overrides) -> pd.DataFrame:
    base = {"whale_notional": 6_000.0, "slippage": 0.005, "days_to_resolution": 30.0, "edge_at_copy": 0.05}
    return pd.DataFrame([base | overrides])


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, None),
        ({"whale_notional": 4_999.0}, "whale trade under $5,000"),
        ({"slippage": 0.01}, "slippage 1% or more"),
        ({"days_to_resolution": 90.5}, "resolution more than 90 days away"),
        ({"days_to_resolution": None}, "resolution more than 90 days away"),
        ({"edge_at_copy": 0.0299}, "edge at our price under 3 points"),
    ],
)
def test_trade_stage(overrides, reason):
    r = m.trade_stage(_trades(**overrides))
    assert bool(r.passed[0]) is (reason is None)
    assert r.reason[0] == reason


def test_slippage_and_edge_at_copy():
    np.testing.assert_allclose(
        m.slippage_estimate([1_000, 100, 5], [10_000, 1_000_000, 0]), [0.1 * np.sqrt(0.1), 0.001, np.inf]
    )
    # the whale paid 0.40 with a 0.06 edge (it wins 46%); we pay 0.42 after the latency: 4 points left
    assert m.edge_at_copy(0.06, 0.40, 0.42) == pytest.approx(0.04)


def test_portfolio_fit():
    ok = m.portfolio_fit(0.2, 500.0, 100.0, nav=1_000.0)
    assert ok.passed[0] and ok.reason[0] is None
    bad = m.portfolio_fit(1.0, 960.0, 310.0, nav=1_000.0)
    assert bad.reason[0] == (
        "correlation with the book 0.4 or more; exposure would reach 95% of NAV; category exposure would reach 30% of NAV"
    )


def test_funnel_rates():
    reached = pd.Series(["whale"] * 50 + ["trade"] * 30 + ["portfolio"] * 5 + ["copied"] * 15)
    f = m.funnel(reached).set_index("stage")
    assert f.loc["whale", "entered"] == 100 and f.loc["whale", "passed"] == 50
    assert f.loc["trade", "entered"] == 50 and f.loc["trade", "rate"] == pytest.approx(20 / 50)
    assert f.loc["portfolio", "rate"] == pytest.approx(15 / 20)
    assert f.loc["overall", "rate"] == pytest.approx(0.15)


def _digests(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["part", "day", "condition_id", "rows", "hash"])


BASE = [("config", None, None, 0, 7), ("fills", 100, None, 5, 11), ("fills", 101, None, 3, 12),
        ("scores", 101, None, 2, 13), ("returns", 101, None, 9, 14), ("markets", None, "m1", 1, 15),
        ("markets", None, "m2", 1, 16)]  # fmt: skip


def test_the_signals_plan_decides_again_from_the_first_changed_day_and_the_changed_markets():
    stored = _digests(BASE)
    assert m.signals_plan(None, stored).mode == "full"
    assert m.signals_plan(stored.iloc[:0], stored).mode == "full"
    assert m.signals_plan(stored, stored) == m.SignalsPlan("unchanged", None, (), "no input changed")
    config = _digests([("config", None, None, 0, 8), *BASE[1:]])
    assert m.signals_plan(stored, config).mode == "full"
    # a new day, a changed hash, a day gone: the earliest counts
    new_day = _digests([*BASE, ("fills", 102, None, 1, 17)])
    assert m.signals_plan(stored, new_day)[:3] == ("increment", 102, ())
    changed = _digests([*BASE[:2], ("fills", 101, None, 3, 99), *BASE[3:]])
    assert m.signals_plan(stored, changed)[:3] == ("increment", 101, ())
    gone = _digests([BASE[0], *BASE[2:]])
    assert m.signals_plan(stored, gone)[:3] == ("increment", 100, ())
    recounted = _digests([*BASE[:4], ("returns", 101, None, 10, 14), *BASE[5:]])  # same hash, another count
    assert m.signals_plan(stored, recounted).since_day == 101
    # a market changed, another added: those markets' orders only
    markets = _digests([*BASE[:5], ("markets", None, "m1", 1, 99), BASE[6], ("markets", None, "m3", 1, 1)])
    plan = m.signals_plan(stored, markets)
    assert plan[:3] == ("increment", None, ("m1", "m3")) and "2 market(s) changed" in plan.reason
