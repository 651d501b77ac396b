"""Sizing kernels: binary Kelly, EWMA volatility, adaptive scaling, and the invariants of every order size."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.size import model as m


@pytest.mark.parametrize(
    ("q", "c", "expected"),
    [
        (0.6, 0.5, 0.2),  # (0.6 - 0.5) / 0.5
        (0.9, 0.8, 0.5),
        (0.5, 0.5, 0.0),  # no edge
        (0.4, 0.5, 0.0),  # negative edge: no bet
        (1.0, 0.5, 1.0),  # a sure thing: everything
        (0.6, 1.0, 0.0),  # invalid price
        (np.nan, 0.5, 0.0),
    ],
)
def test_kelly_binary(q, c, expected):
    assert m.kelly_binary(q, c) == pytest.approx(expected)


def test_kelly_maximises_expected_log_wealth():
    q, c = 0.62, 0.5
    grid = np.linspace(0, 0.99, 10_000)
    growth = q * np.log(1 + grid * (1 - c) / c) + (1 - q) * np.log(1 - grid)
    assert grid[np.argmax(growth)] == pytest.approx(m.kelly_binary(q, c), abs=2e-4)


def test_ewma_volatility_recursion():
    r = np.array([0.01, -0.02, 0.03, np.nan, 0.0])
    s2 = [0.01**2]
    for x in [-0.02, 0.03, 0.0, 0.0]:
        s2.append(0.94 * s2[-1] + 0.06 * x * x)
    np.testing.assert_allclose(m.ewma_volatility(r), np.sqrt(s2), rtol=1e-12)
    two = m.ewma_volatility(np.vstack([r, 2 * r]))
    np.testing.assert_allclose(two[1], 2 * two[0], rtol=1e-12)  # vectorised across rows, scale-equivariant


def test_scaling_factors_at_their_documented_points():
    k_conf, k_vol, k_corr, k_dd = m.scaling_factors([0, 100], [0.0, 10.0], [0.0, 0.99], [0.0, 0.5])
    np.testing.assert_allclose(k_conf, [0.4, 1.0])
    np.testing.assert_allclose(k_vol, [1.0, 0.5])  # 1 / (1 + 5 sigma), clipped to [0.5, 1.2]
    np.testing.assert_allclose(k_corr, [1.0, 0.3])
    np.testing.assert_allclose(k_dd, [1.0, 0.2])
    # missing inputs take the most conservative value
    k = m.scaling_factors(np.nan, np.nan, np.nan, np.nan)
    assert [float(x) for x in k] == [0.4, 0.5, 0.3, 0.2]


def test_adaptive_kelly_worked_example_and_reasons():
    s = m.adaptive_kelly(
        edge=[0.05, -0.01, 0.05, 0.05], price=[0.5, 0.5, 1.2, 0.5], wqs=[80] * 4, volatility=[0.02] * 4,
        correlation=[0.0] * 4, drawdown=[0.1] * 4, nav=10_000,
    )  # fmt: skip
    # 0.5 * (0.05 / 0.5) * (0.4 + 0.48) * 1 / (1 + 0.1) * 1 * (1 - 0.3)
    f = 0.5 * 0.1 * 0.88 / 1.1 * 0.7
    assert s.fraction[0] == pytest.approx(f)
    assert s.shares[0] == 560  # 0.028 x 10,000 / 0.5 = 560 whole shares (float noise must not drop one)
    assert list(s.reason) == [None, "edge not positive", "price outside [0.0001, 0.9999]", None]
    capped = m.adaptive_kelly(0.3, 0.3, 100, 0.0, 0.0, 0.0, nav=10_000)
    assert capped.fraction == pytest.approx(0.08)  # the hard cap
    tiny = m.adaptive_kelly(0.05, 0.5, 80, 0.02, 0.0, 0.1, nav=50)
    assert tiny.shares == 0 and tiny.reason[()] == "under the minimum order of 5 shares"
    market = m.adaptive_kelly(0.05, 0.5, 80, 0.02, 0.0, 0.1, nav=50, order_type="market")
    assert market.shares == 2 and market.notional == pytest.approx(1.0)
    with pytest.raises(ValueError, match="order_type"):
        m.adaptive_kelly(0.05, 0.5, 80, 0.02, 0.0, 0.1, nav=50, order_type="stop")


def test_an_order_price_lies_on_polymarkets_tick_grid():
    # the finest tick and one tick from 1 are order prices; a hair outside either is not (a subnormal price
    # once asked for infinitely many shares)
    price = [1e-4, 0.9999, 1e-4 * (1 - 1e-12), 0.9999 * (1 + 1e-12), 2.2e-311]
    s = m.adaptive_kelly(edge=[1e-5, 1e-5, 0.5, 1e-5, 0.5], price=price, wqs=0.0, volatility=0.0, correlation=0.0,
                         drawdown=0.0, nav=1e6, order_type="market")  # fmt: skip
    assert list(s.reason[:2]) == [None, None] and (s.shares[:2] > 0).all()
    assert list(s.reason[2:]) == ["price outside [0.0001, 0.9999]"] * 3
    assert (s.shares[2:] == 0).all() and np.isfinite(s.notional).all()


finite = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=300, deadline=None)
@given(
    edge=finite, price=finite, wqs=finite, vol=finite, rho=finite, dd=finite,
    nav=st.floats(min_value=0, max_value=1e9), order_type=st.sampled_from(["limit", "market"]),
)  # fmt: skip
def test_sizes_are_never_negative_never_above_the_cap_and_whole_shares(
    edge, price, wqs, vol, rho, dd, nav, order_type
):
    s = m.adaptive_kelly(edge, price, wqs, vol, rho, dd, nav=nav, order_type=order_type)
    assert 0.0 <= float(s.fraction) <= m.MAX_POSITION_NAV
    assert float(s.shares) >= 0 and float(s.shares) == np.floor(float(s.shares))
    assert float(s.notional) <= m.MAX_POSITION_NAV * nav + 1e-6
    if float(s.shares) > 0:
        assert edge > 0 and m.MIN_TICK <= price <= 1 - m.MIN_TICK and s.reason[()] is None
    else:
        assert s.reason[()] is not None


def test_a_whales_volatility_does_not_depend_on_the_other_whales_asked_for():
    """One grid for every wallet (the warehouse's span of returns): a wallet whose first return is on day 12 gets
    the same volatility alone as beside one whose returns start on day 10, the grid's first day, and the seed
    ``r_0^2`` goes to a return on the grid's first day only."""
    import pandas as pd

    r = pd.DataFrame({"wallet": ["a"] * 4 + ["b"] * 2, "day": [10, 11, 12, 13, 12, 13],
                      "daily_return": [0.1, -0.2, 0.05, 0.0, 0.3, -0.1]})  # fmt: skip
    span = (10, 13)
    both = m.volatility_at(r, ["a", "b", "b"], [14, 14, 13], span)
    alone = m.volatility_at(r[r["wallet"] == "b"], ["b", "b"], [14, 13], span)
    np.testing.assert_array_equal(both[1:], alone)
    lam = m.EWMA_LAMBDA
    b12 = (1 - lam) * 0.3**2  # zeros on days 10 and 11, then the first return: no seed
    assert alone[1] == pytest.approx(np.sqrt(b12), rel=1e-12)  # at day 13: the returns through day 12
    assert alone[0] == pytest.approx(np.sqrt(lam * b12 + (1 - lam) * 0.01), rel=1e-12)
    a = 0.01  # seeded: a's first return is on the grid's first day
    for x in (-0.2, 0.05, 0.0):
        a = lam * a + (1 - lam) * x * x
    assert both[0] == pytest.approx(np.sqrt(a), rel=1e-12)
    # no score yet, a score on the grid's first day (no day before it), or past the grid: none
    assert np.isnan(m.volatility_at(r, ["a", "a", "a"], [np.nan, 10, 15], span)).all()
