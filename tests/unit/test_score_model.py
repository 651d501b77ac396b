"""Scoring kernels (assets/score/model.py): named series with expected values, empyrical agreement, invariances.

empyrical is called with ``annualization=365`` everywhere (the whalecopy convention; empyrical's default is 252).
The named series are empyrical's own test vectors (empyrical/tests/test_stats.py: ``simple_benchmark``,
``positive_returns``, ``negative_returns``, ``mixed_returns``, ``one_return``, ``flat_line_1``), daily.
"""

import empyrical
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from assets.score import model as m

ANN = 365
NAN = np.nan

# empyrical's test vectors (percent / 100)
SIMPLE_BENCHMARK = np.array([0.0, 1, 0, 1, 0, 1, 0, 1, 0]) / 100
POSITIVE_RETURNS = np.array([1.0, 2, 1, 1, 1, 1, 1, 1, 1]) / 100
NEGATIVE_RETURNS = np.array([0.0, -6, -7, -1, -9, -2, -6, -8, -5]) / 100
MIXED_RETURNS = np.array([NAN, 1, 10, -4, 2, 3, 2, 1, -10]) / 100
ONE_RETURN = np.array([1.0]) / 100
FLAT_LINE_1 = np.full(9, 1.0) / 100
NAN_FREE = {"simple_benchmark": SIMPLE_BENCHMARK, "positive": POSITIVE_RETURNS, "negative": NEGATIVE_RETURNS}


# ----------------------------------------------------------------------------------------- Sharpe / drawdown / Calmar


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        # mean 4/900, sample variance 1/36000 -> daily Sharpe sqrt(36000)/225, times sqrt(365)
        (SIMPLE_BENCHMARK, np.sqrt(36000) / 225 * np.sqrt(ANN)),
        (ONE_RETURN, NAN),  # one observation: no sample std
        (FLAT_LINE_1, NAN),  # zero variance: NaN, never inf
        (np.array([]), NAN),
        (np.full(5, NAN), NAN),
    ],
    ids=["simple_benchmark", "one_return", "flat_line", "empty", "all_nan"],
)
def test_sharpe_named_series(returns, expected):
    np.testing.assert_allclose(m.annualised_sharpe(returns), expected, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        (MIXED_RETURNS, -0.1),  # the last day's -10% from the running peak; the leading NaN is skipped
        (POSITIVE_RETURNS, 0.0),
        # falls every day: the whole path is the drawdown
        (NEGATIVE_RETURNS, np.prod(1 + NEGATIVE_RETURNS) - 1),
        (np.array([-0.5, 1.0, -0.5]), -0.5),  # wealth 1 -> 0.5 -> 1 -> 0.5: the starting 1 counts as a peak
        (np.array([-1.2, 0.1]), -1.0),  # a return below -1 is a total loss
        (np.array([]), NAN),
        (np.full(3, NAN), NAN),
    ],
    ids=["mixed", "positive", "negative", "start_peak", "below_minus_one", "empty", "all_nan"],
)
def test_max_drawdown_named_series(returns, expected):
    np.testing.assert_allclose(m.max_drawdown(returns), expected, rtol=1e-12, atol=1e-15, equal_nan=True)


def test_calmar_named_series():
    # negative_returns: annual return (prod(1+r))^(365/9) - 1 over |max drawdown| = |prod(1+r) - 1|
    g = np.prod(1 + NEGATIVE_RETURNS)
    np.testing.assert_allclose(m.calmar(NEGATIVE_RETURNS), (g ** (ANN / 9) - 1) / abs(g - 1), rtol=1e-12)
    assert np.isnan(m.calmar(POSITIVE_RETURNS))  # no drawdown: undefined, as in empyrical
    assert np.isnan(m.calmar(ONE_RETURN))
    assert np.isnan(m.calmar(np.array([])))


@pytest.mark.parametrize("name", sorted(NAN_FREE))
def test_agrees_with_empyrical_on_named_series(name):
    r = NAN_FREE[name]
    np.testing.assert_allclose(m.max_drawdown(r), empyrical.max_drawdown(r), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m.annual_return(r), empyrical.annual_return(r, annualization=ANN), rtol=1e-12)
    np.testing.assert_allclose(
        m.calmar(r), empyrical.calmar_ratio(r, annualization=ANN), rtol=1e-12, equal_nan=True
    )
    if np.ptp(r) > 0:
        np.testing.assert_allclose(
            m.annualised_sharpe(r), empyrical.sharpe_ratio(r, annualization=ANN), rtol=1e-12
        )


def test_agrees_with_empyrical_on_random_rows():
    rng = np.random.default_rng(7)
    r = rng.normal(0.001, 0.03, size=(20, 120))
    b = rng.normal(0.0, 0.01, size=120)
    sharpe, mdd, cal, ir = m.annualised_sharpe(r), m.max_drawdown(r), m.calmar(r), m.information_ratio(r, b)
    np.testing.assert_allclose(sharpe, empyrical.sharpe_ratio(r.T, annualization=ANN), rtol=1e-10)
    np.testing.assert_allclose(mdd, empyrical.max_drawdown(r.T), rtol=1e-10)
    np.testing.assert_allclose(ir, empyrical.excess_sharpe(r.T, b[:, None]) * np.sqrt(ANN), rtol=1e-10)
    expected_cal = [empyrical.calmar_ratio(row, annualization=ANN) for row in r]
    np.testing.assert_allclose(cal, expected_cal, rtol=1e-10)


def test_nan_days_are_skipped_not_zero_filled():
    """A NaN (not-yet-existing) prefix is not part of the history: same metrics as the trimmed series."""
    r = np.array([NAN, NAN, 0.02, -0.01, 0.03, -0.02, 0.01])
    trimmed = r[2:]
    for f in (m.annualised_sharpe, m.max_drawdown, m.annual_return, m.calmar):
        np.testing.assert_allclose(f(r), f(trimmed), rtol=1e-14)
    # empyrical's annual_return counts NaN days in the length; ours does not (documented difference)
    assert m.annual_return(r) != pytest.approx(empyrical.annual_return(r, annualization=ANN))


def test_information_ratio():
    r = np.array([0.02, 0.00, 0.03, 0.01])
    b = np.array([0.01, 0.00, 0.01, 0.00])
    active = r - b  # 0.01, 0, 0.02, 0.01: mean 0.01, sample std sqrt(0.0002/3)
    np.testing.assert_allclose(
        m.information_ratio(r, b), 0.01 / np.sqrt(0.0002 / 3) * np.sqrt(ANN), rtol=1e-12
    )
    assert np.isnan(m.information_ratio(r, r))  # zero tracking error
    # days where the benchmark is missing are skipped
    np.testing.assert_allclose(
        m.information_ratio(np.append(r, 0.5), np.append(b, NAN)), m.information_ratio(active, 0)
    )


@pytest.mark.parametrize("c", [0.01, 0.5, 3.0])
def test_scaling_returns_leaves_sharpe_and_ir_unchanged(c):
    rng = np.random.default_rng(1)
    r = rng.normal(0.002, 0.02, size=(5, 100))
    b = rng.normal(0, 0.01, size=100)
    np.testing.assert_allclose(m.annualised_sharpe(c * r), m.annualised_sharpe(r), rtol=1e-10)
    np.testing.assert_allclose(m.information_ratio(c * r, c * b), m.information_ratio(r, b), rtol=1e-10)
    for w, v in m.rolling_sharpes(c * r).items():
        np.testing.assert_allclose(v, m.rolling_sharpe(r, w), rtol=1e-8, atol=1e-10, equal_nan=True)


def test_adding_a_wallet_row_does_not_change_other_rows():
    rng = np.random.default_rng(2)
    r = rng.normal(0.001, 0.02, size=(4, 150))
    r[1, :40] = NAN
    extra = np.vstack([r, rng.normal(5.0, 100.0, size=(1, 150))])  # a wild new wallet
    b = rng.normal(0, 0.01, size=150)
    for f in (m.annualised_sharpe, m.max_drawdown, m.calmar, m.annual_return):
        np.testing.assert_array_equal(f(extra)[:4], f(r))
    np.testing.assert_array_equal(m.information_ratio(extra, b)[:4], m.information_ratio(r, b))
    one, five = m.rolling_sharpes(r), m.rolling_sharpes(extra)
    for w in m.ROLLING_WINDOWS:
        np.testing.assert_array_equal(five[w][:4], one[w])
    np.testing.assert_array_equal(m.consistency_score(five[30])[:4], m.consistency_score(one[30]))


# ------------------------------------------------------------------------------------------------- rolling Sharpe


def _naive_rolling_sharpe(r: np.ndarray, w: int) -> np.ndarray:
    df = pd.DataFrame(r.T)
    roll = df.rolling(w)
    out = (roll.mean() / roll.std() * np.sqrt(ANN)).to_numpy().T
    return np.where(np.isfinite(out), out, np.nan)


def test_rolling_sharpe_matches_naive_pandas():
    rng = np.random.default_rng(3)
    n_wallets, n_days = 60, 400
    r = rng.normal(0.003, 0.04, size=(n_wallets, n_days)) + rng.normal(0, 0.01, size=(n_wallets, 1))
    starts = rng.integers(0, n_days, size=n_wallets)
    starts[5] = 10
    r[np.arange(n_days) < starts[:, None]] = NAN  # wallets that did not exist yet
    r[5, 200] = NAN  # a NULL day (pnl_without_capital) in the middle breaks every window over it
    got = m.rolling_sharpes(r)
    assert set(got) == {7, 14, 30, 60, 90}
    for w, v in got.items():
        assert v.shape == r.shape
        np.testing.assert_allclose(v, _naive_rolling_sharpe(r, w), rtol=1e-10, atol=1e-10, equal_nan=True)
    assert np.isnan(got[7][5, 200:207]).all() and np.isfinite(got[7][5, 207])


def test_rolling_sharpe_edges():
    r = np.array([0.01, 0.01, 0.01, 0.01, 0.02, 0.0, 0.01])
    out = m.rolling_sharpe(r, 3)
    assert out.shape == r.shape
    assert np.isnan(out[:4]).all()  # first 2 days too short, then two constant windows (zero variance): NaN
    assert np.isfinite(out[4:]).all()
    np.testing.assert_allclose(out[4], np.mean(r[2:5]) / np.std(r[2:5], ddof=1) * np.sqrt(ANN))
    assert np.isnan(m.rolling_sharpe(np.array([0.01, 0.02]), 7)).all()  # history shorter than the window
    assert m.rolling_sharpe(np.empty((0, 10)), 7).shape == (0, 10)
    with pytest.raises(ValueError):
        m.rolling_sharpe(r, 1)
    # a large constant offset does not break the zero-variance detection or the accuracy
    big = np.full(40, 1e6)
    assert np.isnan(m.rolling_sharpe(big, 7)).all()


# ----------------------------------------------------------------------------------------- consistency and regime


def test_consistency_score():
    const = np.full(40, 2.0)
    noisy = np.tile([1.0, 3.0], 20)  # sample std = sqrt(40/39)
    few = np.r_[np.full(29, 1.0), np.full(11, NAN)]
    out = m.consistency_score(np.vstack([const, noisy, few, np.full(40, NAN)]))
    np.testing.assert_allclose(out[:2], [100.0, 100 * np.exp(-np.sqrt(40 / 39) / m.CONSISTENCY_SCALE)])
    assert np.isnan(out[2:]).all()  # fewer than 30 valid points
    wider = m.consistency_score(np.vstack([noisy, 2 * noisy, 4 * noisy]))
    assert wider[0] > wider[1] > wider[2] > 0


@pytest.mark.parametrize(
    ("short", "long", "expected"),
    [
        (1.5, 1.0, "IMPROVING"),
        (0.5, 1.0, "DETERIORATING"),
        (1.2, 1.0, "STABLE"),
        (0.75, 1.0, "STABLE"),
        (NAN, 1.0, None),
        (1.0, NAN, None),
    ],
)
def test_regime(short, long, expected):
    assert m.regime(short, long)[()] == expected


def test_regime_vectorised():
    out = m.regime(np.array([2.0, 0.0, 1.0, NAN]), np.array([1.0, 1.0, 1.1, 1.0]))
    assert out.tolist() == ["IMPROVING", "DETERIORATING", "STABLE", None]


# ----------------------------------------------------------------------------------------- Bayesian win rate


def test_beta_posterior_hand_values():
    # uniform prior Beta(1, 1) (mean 0.5, strength 2), no data: the interval is the 2.5%/97.5% quantiles of U(0,1)
    p = m.bayesian_win_rate(0, 0, 0.5, prior_strength=2)
    assert (p.alpha, p.beta, p.mean) == (1.0, 1.0, 0.5)
    np.testing.assert_allclose([p.lower, p.upper], [0.025, 0.975], rtol=1e-10)
    # one win: Beta(2, 1) has cdf x^2, so the quantiles are sqrt(q)
    p = m.bayesian_win_rate(1, 1, 0.5, prior_strength=2)
    np.testing.assert_allclose([p.alpha, p.beta, p.mean], [2, 1, 2 / 3])
    np.testing.assert_allclose([p.lower, p.upper], np.sqrt([0.025, 0.975]), rtol=1e-10)
    # one loss: Beta(1, 2) has cdf 1 - (1 - x)^2, quantiles 1 - sqrt(1 - q)
    p = m.bayesian_win_rate(0, 1, 0.5, prior_strength=2)
    np.testing.assert_allclose([p.lower, p.upper], 1 - np.sqrt([0.975, 0.025]), rtol=1e-10)


def test_beta_posterior_politics_prior_vectorised():
    prior = m.category_prior_mean(["Politics", "Crypto", "Sports", "Weather", None], fallback=0.49)
    np.testing.assert_allclose(prior, [0.521, 0.508, 0.513, 0.49, 0.49])
    prior[4] = NAN
    p = m.bayesian_win_rate(np.array([30, 0, 5, 3, 1]), np.array([50, 0, 10, 2, 1]), prior)
    # Politics, prior strength 20: alpha = 10.42 + 30, beta = 9.58 + 20
    np.testing.assert_allclose([p.alpha[0], p.beta[0], p.mean[0]], [40.42, 29.58, 40.42 / 70])
    np.testing.assert_allclose(p.mean[1], 0.508)  # no positions: the prior
    np.testing.assert_allclose(p.width, p.upper - p.lower)
    assert np.isnan(p.mean[3]) and np.isnan(p.lower[3])  # wins > n is invalid
    assert np.isnan(p.mean[4])  # no prior
    assert p.width[0] < p.width[1]  # data narrows the interval
    mapped = m.category_prior_mean(["Weather", "Tech"], fallback={"Weather": 0.47})
    assert mapped[0] == 0.47 and np.isnan(mapped[1])


@pytest.mark.parametrize(
    ("width", "level"),
    [
        (0.01, "VERY_HIGH"),
        (0.05, "HIGH"),
        (0.0999, "HIGH"),
        (0.10, "MEDIUM"),
        (0.19, "MEDIUM"),
        (0.2, "LOW"),
        (0.29, "LOW"),
        (0.30, "VERY_LOW"),
        (0.9, "VERY_LOW"),
        (NAN, None),
    ],
)
def test_confidence_level(width, level):
    assert m.confidence_level(width)[()] == level


def test_confidence_grows_with_positions():
    n = np.array([0, 30, 100, 400, 1600])
    levels = m.confidence_level(m.bayesian_win_rate(n // 2, n, 0.5).width)
    assert levels.tolist() == ["VERY_LOW", "LOW", "MEDIUM", "HIGH", "VERY_HIGH"]


def test_posterior_predictive_wins():
    alpha = np.array([40.42, 2.0, NAN, 5.0])
    beta = np.array([29.58, 8.0, 1.0, 5.0])
    n_next = np.array([20, 20, 20, 0])
    pred = m.posterior_predictive_wins(
        alpha, beta, n_next, draws=20_000, rng=np.random.default_rng(0), max_block=30_000
    )
    exact_mean = n_next * alpha / (alpha + beta)
    np.testing.assert_allclose(pred.mean[[0, 1]], exact_mean[[0, 1]], atol=0.1)
    for i in (0, 1):  # the Monte Carlo 90% interval matches the exact beta-binomial quantiles within one win
        bb = stats.betabinom(n_next[i], alpha[i], beta[i])
        assert abs(pred.lower[i] - bb.ppf(0.05)) <= 1 and abs(pred.upper[i] - bb.ppf(0.95)) <= 1
    assert np.isnan([pred.mean[2], pred.lower[2], pred.upper[2]]).all()
    assert (pred.mean[3], pred.lower[3], pred.upper[3]) == (0.0, 0.0, 0.0)
    again = m.posterior_predictive_wins(
        alpha, beta, n_next, draws=20_000, rng=np.random.default_rng(0), max_block=30_000
    )
    np.testing.assert_array_equal(again.mean, pred.mean)


# ----------------------------------------------------------------------------------------- price-calibrated edge


def test_edge_is_zero_for_a_wallet_that_wins_what_it_pays():
    won = np.r_[np.ones(85), np.zeros(15)]
    e = m.price_calibrated_edge(won, np.full(100, 0.85), np.zeros(100, dtype=int))
    np.testing.assert_allclose([e.raw[0], e.mean[0]], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(e.sd[0], np.sqrt(0.85 * 0.15 / (100 + m.EDGE_PRIOR_STRENGTH)))
    assert e.lower[0] < 0 < e.upper[0]


def test_edge_shrinkage_grouping_and_empty_groups():
    rng = np.random.default_rng(4)
    # group 0: 100 buys at 0.5, 70 wins -> raw 0.2, posterior 100/150 * 0.2; group 1: none; group 2: 1 buy at 0.3, won
    won = np.r_[np.ones(70), np.zeros(30), 1.0, NAN]
    price = np.r_[np.full(100, 0.5), 0.3, 0.4]
    groups = np.r_[np.zeros(100, dtype=int), 2, 2]
    perm = rng.permutation(won.size)
    e = m.price_calibrated_edge(won[perm], price[perm], groups[perm], n_groups=4)
    np.testing.assert_array_equal(e.n, [100, 0, 1, 0])
    np.testing.assert_allclose(e.raw[[0, 2]], [0.2, 0.7])
    np.testing.assert_allclose(e.mean[[0, 2]], [100 / 150 * 0.2, 1 / 51 * 0.7])
    np.testing.assert_allclose(e.sd[0], np.sqrt(0.25 / 150))
    assert e.lower[0] > 0  # a clear edge excludes 0
    assert np.isnan([e.raw[1], e.mean[1], e.sd[1], e.lower[3]]).all()
    # shrinkage: one lucky win is pulled much further toward 0 than 100 positions are
    assert e.mean[2] / e.raw[2] < e.mean[0] / e.raw[0]
    assert m.price_calibrated_edge([], [], []).n.size == 0


# ----------------------------------------------------------------------------------------- WQS


def _factors(**over):
    base = {"sharpe": 1.0, "information_ratio": 0.5, "calmar": 1.0, "consistency": 50.0, "volume": 1e5}
    base.update(over)
    return m.factor_scores(
        base["sharpe"], base["information_ratio"], base["calmar"], base["consistency"], base["volume"]
    )


def test_factor_transforms():
    f = _factors()
    np.testing.assert_allclose(
        [f.sharpe, f.information_ratio, f.calmar, f.consistency, f.volume], [50, 50, 50, 50, 50]
    )
    np.testing.assert_allclose(m.volume_score([0, 1e3, 1e4, 1e7, 1e9, NAN]), [0, 0, 25, 100, 100, NAN])
    never_lost = m.factor_scores(NAN, 0, NAN, 0, 0, max_drawdown=[0.0])
    assert never_lost.calmar[0] == 100.0  # never lost: top Calmar score
    assert np.isnan(m.factor_scores(0, 0, NAN, 0, 0).calmar)


@pytest.mark.parametrize(
    ("factor", "values"),
    [
        ("sharpe", [-2, 0, 1, 3, 10]),
        ("information_ratio", [-1, 0, 0.5, 2, 5]),
        ("calmar", [-3, 0, 1, 5, 50]),
        ("consistency", [0, 20, 50, 80, 100]),
        ("volume", [500, 1e4, 1e5, 1e6, 2e7]),
    ],
)
def test_wqs_is_monotone_in_each_factor(factor, values):
    scores = [m.wqs(_factors(**{factor: v}), 50, 1000) for v in values]
    assert np.all(np.diff(scores) > 0) or (factor == "volume" and np.all(np.diff(scores) >= 0))
    assert all(0 <= s <= 100 for s in scores)


def test_wqs_weights_and_penalties():
    f = _factors()  # every factor 50
    np.testing.assert_allclose(m.wqs(f, 50, 1000), 50.0)
    np.testing.assert_allclose(m.wqs(f, np.array([0, 25, 50, 500]), 1000), [25.0, 37.5, 50.0, 50.0])
    np.testing.assert_allclose(m.wqs(f, 50, np.array([1800, 1800.01, 10_000])), [50.0, 45.0, 45.0])
    np.testing.assert_allclose(m.wqs(f, 0, 5000), 22.5)  # both penalties multiply
    assert np.isnan(m.wqs(_factors(sharpe=NAN), 50, 1000))
    assert np.isnan(m.wqs(f, NAN, 1000)) and np.isnan(m.wqs(f, 50, NAN))
    top = m.FactorScores(*(np.array(100.0),) * 5)
    np.testing.assert_allclose(m.wqs(top, 50, 0), 100.0)


@pytest.mark.parametrize(
    ("score", "volume", "expected"),
    [
        (85, 1e5, "MEGA"),
        (85, 99_999, "LARGE"),
        (80, 2e6, "MEGA"),
        (79.9, 1e7, "LARGE"),
        (70, 0, "LARGE"),
        (65, 1e6, "MID"),
        (60, 1e6, "MID"),
        (59.9, 1e8, "WATCH"),
        (NAN, 1e8, None),
    ],
)
def test_tiers(score, volume, expected):
    assert m.tier(score, volume)[()] == expected


def test_nan_and_none_never_rank_first():
    assert m.rank_scores(np.array([NAN, 10.0, NAN, 90.0, 50.0])).tolist() == [3, 4, 1, 0, 2]
    assert m.rank_scores([None, 1.0, None]).tolist() == [1, 0, 2]
    assert m.rank_scores(np.array([NAN, NAN])).tolist() == [0, 1]
    assert m.rank_scores([]).tolist() == []
    ties = m.rank_scores(np.array([5.0, 7.0, 5.0]))
    assert ties.tolist() == [1, 0, 2]


# ----------------------------------------------------------------------------------------- DataFrame layer


def test_score_wallets_frame():
    rng = np.random.default_rng(5)
    days = pd.date_range("2025-01-01", periods=120, freq="D")
    rows = []
    for wallet, (mu, start) in {"0xgood": (0.01, 0), "0xmeh": (0.0, 0), "0xnew": (0.01, 110)}.items():
        r = rng.normal(mu, 0.02, size=len(days) - start)
        rows.append(pd.DataFrame({"wallet": wallet, "day": days[start:], "daily_return": r}))
    flat = pd.DataFrame({"wallet": "0xflat", "day": days, "daily_return": 0.0})
    returns = pd.concat([*rows, flat], ignore_index=True)
    features = pd.DataFrame(
        {
            "wallet": ["0xgood", "0xmeh", "0xnew", "0xflat", "0xghost"],
            "n_resolved_positions": [80, 80, 3, 10, 0],
            "volume": [5e6, 2e4, 1e3, 1e4, 0.0],
            "market_hhi": [900.0, 900.0, 10_000.0, 2000.0, NAN],
        }
    )
    out = m.score_wallets(features, returns)
    assert out["wallet"].tolist()[:2] == ["0xgood", "0xmeh"]
    assert out["rank"].tolist() == [1, 2, None, None, None]
    assert out["wqs"].iloc[0] > out["wqs"].iloc[1]
    assert out["reason"].iloc[0] is None
    by = out.set_index("wallet")
    assert (
        by.loc["0xnew", "wqs"] is None and f"fewer than {m.MIN_RETURN_DAYS} days" in by.loc["0xnew", "reason"]
    )
    assert by.loc["0xflat", "sharpe"] is None and "zero variance" in by.loc["0xflat", "reason"]
    assert by.loc["0xghost", "tier"] is None and by.loc["0xghost", "n_return_days"] == 0
    assert by.loc["0xgood", "regime"] in {"IMPROVING", "DETERIORATING", "STABLE"}
    assert not any(
        isinstance(v, float) and np.isnan(v) for v in out.drop(columns="n_return_days").to_numpy().ravel()
    )


def test_the_credible_interval_is_scipys_quantile_of_every_pair_to_the_bit():
    """The quantiles are computed once per distinct (alpha, beta): shared pairs, a NaN count, an invalid count and
    prior, and 0-d input give exactly ``stats.beta.ppf`` of each value."""
    rng = np.random.default_rng(2)
    n = rng.integers(0, 40, 5_000).astype(float)
    wins = np.floor(n * rng.uniform(0.2, 0.8, n.size))
    prior = rng.choice([0.5, 0.513, 0.521, 1.2], n.size)
    wins[::97], n[3::89] = np.nan, -1.0
    post = m.bayesian_win_rate(wins, n, prior)
    assert len(np.unique(post.alpha[np.isfinite(post.alpha)])) < n.size / 10  # pairs are shared
    for q, got in ((0.025, post.lower), (0.975, post.upper)):
        want = stats.beta.ppf(q, post.alpha, post.beta)
        assert np.array_equal(got, want, equal_nan=True) and np.isnan(got).any()
    one = m.bayesian_win_rate(3, 10, 0.5)
    assert isinstance(one.lower, np.float64) and one.lower == stats.beta.ppf(0.025, 13.0, 17.0)
