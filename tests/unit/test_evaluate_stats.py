"""VaR backtests, performance metrics, the market-clustered bootstrap, the deflated Sharpe ratio, Brinson-Fachler
attribution and alpha/beta (assets/evaluate/stats.py), checked against published examples, hand computations,
scipy and empyrical."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from assets.evaluate import stats as s

NAN = np.nan

# Small named daily-return series in the style of empyrical's own tests.
SERIES = {
    "simple_benchmark": [0.0, 0.01, 0.0, 0.01, 0.0, 0.01, 0.0, 0.01, 0.0],
    "mixed_returns": [NAN, 0.01, 0.1, -0.04, 0.02, 0.03, 0.02, 0.01, -0.1],
    "mixed_no_nan": [0.01, 0.1, -0.04, 0.02, 0.03, 0.02, 0.01, -0.1],
    "negative_returns": [0.0, -0.06, -0.07, -0.01, -0.09, -0.02, -0.06, -0.08, -0.05],
    "all_negative_returns": [-0.02, -0.06, -0.07, -0.01, -0.09, -0.02, -0.06, -0.08, -0.05],
    "one_loss_first": [-0.1, 0.2, 0.05, -0.02, 0.03],
    "noise_500": list(np.random.default_rng(42).normal(0.001, 0.02, 500)),
}


def _series(*names: str) -> list:
    return [pytest.param(np.array(SERIES[n], dtype=float), id=n) for n in names]


# --------------------------------------------------------------------------------------------------------------
# Kupiec
# --------------------------------------------------------------------------------------------------------------


def test_kupiec_reproduces_the_published_example():
    t = s.kupiec_pof(1043, 57, 0.05)
    assert (t.n, t.x, t.expected_rate) == (1043, 57, 0.05)
    assert t.observed_rate == pytest.approx(57 / 1043, abs=1e-15)
    assert t.lr == pytest.approx(0.46147, abs=1e-4)
    assert t.p_value == pytest.approx(0.49694, abs=1e-4)


@pytest.mark.parametrize(
    ("n", "x", "p"),
    [
        pytest.param(250, 12, 0.01, id="too_many"),
        pytest.param(250, 1, 0.05, id="too_few"),
        pytest.param(20, 3, 0.10, id="small"),
    ],
)
def test_kupiec_equals_the_likelihood_ratio_written_out(n, x, p):
    phat = x / n
    lr = -2 * ((n - x) * math.log(1 - p) + x * math.log(p)) + 2 * (
        (n - x) * math.log(1 - phat) + x * math.log(phat)
    )
    t = s.kupiec_pof(n, x, p)
    assert t.lr == pytest.approx(lr, rel=1e-12)
    assert t.p_value == pytest.approx(stats.chi2.sf(lr, 1), rel=1e-12)


@pytest.mark.parametrize(
    ("n", "x", "p", "lr"),
    [
        pytest.param(100, 0, 0.05, -2 * 100 * math.log(0.95), id="no_exception"),
        pytest.param(40, 40, 0.05, -2 * 40 * math.log(0.05), id="all_exceptions"),
        pytest.param(200, 10, 0.05, 0.0, id="exactly_expected"),
    ],
)
def test_kupiec_uses_zero_log_zero_at_the_edges(n, x, p, lr):
    t = s.kupiec_pof(n, x, p)
    assert t.lr == pytest.approx(lr, abs=1e-10)
    assert np.isfinite(t.p_value)


def test_kupiec_with_no_days_is_nan_and_bad_inputs_raise():
    t = s.kupiec_pof(0, 0, 0.05)
    assert np.isnan(t.lr) and np.isnan(t.p_value) and np.isnan(t.observed_rate)
    for args in [(10, 11, 0.05), (10, -1, 0.05), (10, 1, 0.0), (10, 1, 1.0)]:
        with pytest.raises(ValueError):
            s.kupiec_pof(*args)


# --------------------------------------------------------------------------------------------------------------
# Christoffersen
# --------------------------------------------------------------------------------------------------------------


def test_christoffersen_matches_a_hand_computed_example():
    seq = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0], dtype=bool)
    # pairs (I_{t-1}, I_t): 00 x5, 01 x3, 11 x3, 10 x3  ->  pi01 = 3/8, pi11 = 3/6, pi = 6/14
    lr = -2 * (8 * math.log(1 - 3 / 7) + 6 * math.log(3 / 7)) + 2 * (
        5 * math.log(5 / 8) + 3 * math.log(3 / 8) + 3 * math.log(1 / 2) + 3 * math.log(1 / 2)
    )
    t = s.christoffersen_independence(seq)
    assert (t.n00, t.n01, t.n10, t.n11) == (5, 3, 3, 3)
    assert t.lr == pytest.approx(lr, rel=1e-12)
    assert t.p_value == pytest.approx(stats.chi2.sf(lr, 1), rel=1e-12)


def test_christoffersen_zero_log_zero_when_no_exception_follows_an_exception():
    seq = np.array([0, 1, 0, 0, 0, 1, 0, 0, 0, 0], dtype=bool)  # 00 x5, 01 x2, 10 x2, 11 x0
    lr = -2 * (7 * math.log(1 - 2 / 9) + 2 * math.log(2 / 9)) + 2 * (
        5 * math.log(5 / 7) + 2 * math.log(2 / 7)
    )
    t = s.christoffersen_independence(seq)
    assert (t.n00, t.n01, t.n10, t.n11) == (5, 2, 2, 0)
    assert t.lr == pytest.approx(lr, rel=1e-12)


def test_clustered_exceptions_are_rejected():
    seq = np.zeros(500, dtype=bool)
    for start in (50, 150, 260, 380, 450):
        seq[start : start + 5] = True  # 25 exceptions (5%) in five runs of five days
    t = s.christoffersen_independence(seq)
    assert t.p_value < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_independent_exceptions_are_not_rejected(seed):
    seq = np.random.default_rng(seed).random(1000) < 0.05
    t = s.christoffersen_independence(seq)
    assert t.n11 + t.n10 > 0
    assert t.p_value > 0.01


def test_independent_exceptions_are_rarely_rejected():
    rng = np.random.default_rng(123)
    p = np.array([s.christoffersen_independence(rng.random(1000) < 0.05).p_value for _ in range(300)])
    assert np.isfinite(p).all()
    assert (
        p < 0.01
    ).mean() < 0.03  # about the nominal 1% (the chi2 approximation is crude when n11 is small)
    assert np.median(p) > 0.3


@pytest.mark.parametrize(
    "seq",
    [
        pytest.param([], id="empty"),
        pytest.param([True], id="one_day"),
        pytest.param([False] * 10, id="no_exception"),
        pytest.param([True] * 10, id="all_exceptions"),
        pytest.param([False, False, False, True], id="exception_only_last"),
    ],
)
def test_christoffersen_is_nan_where_undefined(seq):
    t = s.christoffersen_independence(np.array(seq, dtype=bool))
    assert np.isnan(t.lr) and np.isnan(t.p_value)


def test_christoffersen_rejects_missing_values():
    with pytest.raises(ValueError):
        s.christoffersen_independence(np.array([0.0, 1.0, NAN, 0.0]))


# --------------------------------------------------------------------------------------------------------------
# VaR exceptions
# --------------------------------------------------------------------------------------------------------------


def test_var_exceptions_are_strict_breaches_on_valid_days():
    r = [-0.05, -0.02, NAN, -0.03, 0.01, -0.10]
    var = [-0.03, -0.02, -0.03, NAN, -0.02, -0.04]
    ex, valid = s.var_exceptions(r, var)
    np.testing.assert_array_equal(valid, [True, True, False, False, True, True])
    np.testing.assert_array_equal(ex, [True, False, False, False, False, True])  # equal is not a breach
    assert ex.dtype == bool and valid.dtype == bool
    assert s.kupiec_pof(int(valid.sum()), int(ex[valid].sum()), 0.05).x == 2


def test_var_exceptions_need_aligned_inputs():
    with pytest.raises(ValueError):
        s.var_exceptions([0.1, 0.2], [0.1])


# --------------------------------------------------------------------------------------------------------------
# Performance metrics against empyrical
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "r", _series("simple_benchmark", "mixed_returns", "negative_returns", "one_loss_first", "noise_500")
)
def test_sharpe_matches_empyrical(r):
    assert s.sharpe_ratio(r) == pytest.approx(
        empyrical.sharpe_ratio(r, period="daily", annualization=365), rel=1e-12
    )


@pytest.mark.parametrize(
    "r", _series("mixed_returns", "negative_returns", "all_negative_returns", "one_loss_first", "noise_500")
)
def test_sortino_matches_empyrical(r):
    expected = empyrical.sortino_ratio(r, period="daily", annualization=365)
    assert s.sortino_ratio(r) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "r",
    _series(
        "simple_benchmark",
        "mixed_returns",
        "negative_returns",
        "all_negative_returns",
        "one_loss_first",
        "noise_500",
    ),
)
def test_max_drawdown_matches_empyrical_with_the_opposite_sign(r):
    assert s.max_drawdown(r) == pytest.approx(-empyrical.max_drawdown(r), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    "r", _series("simple_benchmark", "mixed_no_nan", "negative_returns", "all_negative_returns", "noise_500")
)
def test_cagr_matches_empyrical(r):
    assert s.cagr(r) == pytest.approx(empyrical.cagr(r, period="daily", annualization=365), rel=1e-10)
    assert s.cagr(r) == pytest.approx(
        empyrical.annual_return(r, period="daily", annualization=365), rel=1e-10
    )


@pytest.mark.parametrize(
    "r", _series("mixed_no_nan", "negative_returns", "all_negative_returns", "noise_500")
)
def test_calmar_matches_empyrical(r):
    expected = empyrical.calmar_ratio(r, period="daily", annualization=365)
    assert s.calmar_ratio(r) == pytest.approx(expected, rel=1e-10)


def test_cagr_drops_missing_days_where_empyrical_counts_them():
    r = np.array(SERIES["mixed_returns"])
    assert s.cagr(r) == pytest.approx(s.cagr(r[1:]), rel=1e-15)
    assert s.cagr(r) != pytest.approx(empyrical.cagr(r, annualization=365), rel=1e-3)


# --------------------------------------------------------------------------------------------------------------
# Performance metrics: conventions and edge cases
# --------------------------------------------------------------------------------------------------------------


def test_cagr_is_the_compounded_annual_rate():
    assert s.cagr(np.full(365, 0.001)) == pytest.approx(1.001**365 - 1, rel=1e-12)
    assert s.cagr(np.full(730, 0.001)) == pytest.approx(1.001**365 - 1, rel=1e-12)
    assert s.cagr([0.1, -1.0, 0.5]) == -1.0  # ruin


@pytest.mark.parametrize(
    ("fn", "r"),
    [
        pytest.param(s.cagr, [], id="cagr_empty"),
        pytest.param(s.cagr, [NAN, NAN], id="cagr_all_nan"),
        pytest.param(s.cagr, [10.0], id="cagr_overflow"),
        pytest.param(s.cagr, [0.1, -1.5], id="cagr_below_minus_one"),
        pytest.param(s.sharpe_ratio, [0.01], id="sharpe_one_return"),
        pytest.param(s.sharpe_ratio, [0.01] * 9, id="sharpe_flat_line"),
        pytest.param(s.sharpe_ratio, [0.0] * 9, id="sharpe_zeros"),
        pytest.param(s.sortino_ratio, [0.01, 0.02, 0.0], id="sortino_no_loss"),
        pytest.param(s.sortino_ratio, [-0.01], id="sortino_one_return"),
        pytest.param(s.max_drawdown, [], id="max_drawdown_empty"),
        pytest.param(s.calmar_ratio, [0.01, 0.02, 0.0], id="calmar_no_drawdown"),
        pytest.param(s.calmar_ratio, [], id="calmar_empty"),
        pytest.param(s.tail_return, [], id="tail_empty"),
    ],
)
def test_too_little_data_is_nan_never_inf(fn, r):
    assert np.isnan(fn(np.array(r, dtype=float)))


def test_max_drawdown_includes_the_starting_value_and_is_positive():
    assert s.max_drawdown([-0.1, 0.2]) == pytest.approx(0.1, abs=1e-15)
    assert s.max_drawdown([0.1, -0.5, 0.2, -0.5]) == pytest.approx(1 - 0.5 * 1.2 * 0.5, abs=1e-15)
    assert s.max_drawdown([0.01, 0.02]) == 0.0


def test_tail_return_is_the_numpy_quantile_of_finite_days():
    r = np.array(SERIES["noise_500"])
    assert s.tail_return(r) == np.quantile(r, 0.05)
    assert s.tail_return([NAN, -0.2, 0.1, 0.0], q=0.5) == 0.0
    with pytest.raises(ValueError):
        s.tail_return(r, q=1.5)


# --------------------------------------------------------------------------------------------------------------
# metrics_matrix
# --------------------------------------------------------------------------------------------------------------


def _rows() -> np.ndarray:
    rng = np.random.default_rng(3)
    rows = rng.normal(0.001, 0.03, size=(12, 60))
    rows[1, [3, 17, 40]] = NAN  # missing days
    rows[2] = 0.01  # flat line
    rows[3] = NAN  # no data
    rows[4] = np.abs(rows[4])  # never loses
    rows[5, 20:] = 0.0
    rows[5, 20] = -1.0  # ruin
    rows[6, :58] = NAN  # two days
    rows[7, :59] = NAN  # one day
    rows[8, 5] = np.inf  # non-finite is missing
    rows[9, 10] = -1.5  # impossible return
    return rows


def test_metrics_matrix_rows_equal_the_one_dimensional_functions():
    rows = _rows()
    m = s.metrics_matrix(rows, q=0.1)
    assert tuple(m) == s.METRICS
    for name in s.METRICS:
        fn = getattr(s, name)
        expected = [fn(row, q=0.1) if name == "tail_return" else fn(row) for row in rows]
        np.testing.assert_allclose(m[name], expected, rtol=1e-12, atol=1e-15, equal_nan=True, err_msg=name)
        assert not np.isinf(m[name]).any()


def test_metrics_matrix_of_a_one_dimensional_path_is_one_row():
    r = np.array(SERIES["noise_500"])
    m = s.metrics_matrix(r)
    assert all(v.shape == (1,) for v in m.values())
    assert m["sharpe_ratio"][0] == pytest.approx(s.sharpe_ratio(r), rel=1e-12)


# --------------------------------------------------------------------------------------------------------------
# returns_from_pnl and the cluster bootstrap
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pnl", "expected"),
    [
        pytest.param([10.0, -11.0, 5.0], [0.1, -0.1, 5.0 / 99.0], id="normal"),
        pytest.param([10.0, -150.0, 5.0, 20.0], [0.1, -1.0, 0.0, 0.0], id="ruin_below_zero"),
        pytest.param([-100.0, 50.0], [-1.0, 0.0], id="ruin_at_zero"),
    ],
)
def test_returns_from_pnl_and_the_ruin_guard(pnl, expected):
    out = s.returns_from_pnl(np.array(pnl), 100.0)
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    both = s.returns_from_pnl(np.array([pnl, pnl]), 100.0)
    np.testing.assert_array_equal(both, [out, out])


def _hand_returns(pnl: np.ndarray, start_nav: float) -> np.ndarray:
    total = pnl.sum(axis=0)
    nav = start_nav + np.cumsum(total)
    prev = np.concatenate(([start_nav], nav[:-1]))
    assert (nav > 0).all()
    return total / prev


def _factor_pnl(markets: int = 30, days: int = 250, seed: int = 7) -> np.ndarray:
    """Markets driven by one common daily factor plus their own drift and noise."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(0.0, 1.0, days)
    drift = rng.normal(2.0, 3.0, (markets, 1))
    loading = rng.uniform(5.0, 15.0, (markets, 1))
    return drift + loading * factor + rng.normal(0.0, 3.0, (markets, days))


def test_bootstrap_estimate_is_the_metric_of_the_column_sum_path():
    pnl = _factor_pnl()
    out = s.cluster_bootstrap(pnl, 20_000.0, 50, seed=1).set_index("metric")
    r = _hand_returns(pnl, 20_000.0)
    assert list(out.index) == list(s.METRICS)
    for name in s.METRICS:
        assert out.loc[name, "estimate"] == pytest.approx(getattr(s, name)(r), rel=1e-12), name
    assert (out["n_boot"] == 50).all()


def test_bootstrap_is_deterministic_for_a_seed():
    pnl = _factor_pnl()
    a = s.cluster_bootstrap(pnl, 20_000.0, 200, seed=5)
    pd.testing.assert_frame_equal(a, s.cluster_bootstrap(pnl, 20_000.0, 200, seed=5))
    assert not a["ci_low"].equals(s.cluster_bootstrap(pnl, 20_000.0, 200, seed=6)["ci_low"])


def test_bootstrap_interval_contains_the_estimate_for_a_well_behaved_portfolio():
    out = s.cluster_bootstrap(_factor_pnl(), 20_000.0, 2000, seed=11)
    assert np.isfinite(out[["estimate", "ci_low", "ci_high"]].to_numpy()).all()
    assert (out["ci_low"] < out["estimate"]).all() and (out["estimate"] < out["ci_high"]).all()


def test_a_single_market_gives_a_degenerate_interval():
    pnl = _factor_pnl(markets=1)
    out = s.cluster_bootstrap(pnl, 20_000.0, 300, seed=2)
    np.testing.assert_allclose(out["ci_low"], out["estimate"], rtol=1e-12)
    np.testing.assert_allclose(out["ci_high"], out["estimate"], rtol=1e-12)


def test_no_markets_is_a_flat_path_with_nan_intervals():
    out = s.cluster_bootstrap(np.zeros((0, 30)), 1_000.0, 100, seed=0).set_index("metric")
    assert out.loc["cagr", "estimate"] == 0.0
    assert out.loc["max_drawdown", "estimate"] == 0.0
    assert out.loc["tail_return", "estimate"] == 0.0
    assert np.isnan(out.loc["sharpe_ratio", "estimate"]) and np.isnan(out.loc["calmar_ratio", "estimate"])
    assert out[["ci_low", "ci_high"]].isna().all().all()


def test_ruinous_replicates_stay_finite():
    pnl = np.zeros((3, 20))
    pnl[0, 5] = -2_000.0  # alone, this market wipes out the 1,000 start
    pnl[1, 5] = 1_500.0
    pnl[2] += 1.0
    out = s.cluster_bootstrap(pnl, 1_000.0, 500, seed=3).set_index("metric")
    values = out[["estimate", "ci_low", "ci_high"]].to_numpy()
    assert not np.isinf(values).any()
    assert out.loc["max_drawdown", "ci_high"] == 1.0  # some replicates are ruined
    assert out.loc["cagr", "ci_low"] == -1.0


def test_bootstrap_reads_nan_pnl_as_zero():
    pnl = _factor_pnl(markets=8, days=40)
    holes = pnl.copy()
    holes[2, :10] = NAN
    pnl[2, :10] = 0.0
    pd.testing.assert_frame_equal(
        s.cluster_bootstrap(holes, 5_000.0, 100, seed=4), s.cluster_bootstrap(pnl, 5_000.0, 100, seed=4)
    )


def test_independent_markets_make_the_raw_bootstrap_sharpe_conservative_and_matching_recentres_it():
    """A redrawn market counted twice adds its noise twice, so raw replicates are noisier than the original;
    rescaling each replicate to the observed volatility puts the estimate back inside the interval."""
    rng = np.random.default_rng(9)
    pnl = rng.normal(1.0, 10.0, (40, 200))
    raw = s.cluster_bootstrap(pnl, 50_000.0, 1000, seed=9, match_volatility=False).set_index("metric")
    mid = (raw.loc["sharpe_ratio", "ci_low"] + raw.loc["sharpe_ratio", "ci_high"]) / 2
    assert mid < raw.loc["sharpe_ratio", "estimate"]
    matched = s.cluster_bootstrap(pnl, 50_000.0, 1000, seed=9).set_index("metric")
    est = matched.loc["sharpe_ratio", "estimate"]
    assert matched.loc["sharpe_ratio", "ci_low"] < est < matched.loc["sharpe_ratio", "ci_high"]
    low, high = matched.loc["sharpe_ratio", ["ci_low", "ci_high"]]
    assert abs((low + high) / 2 - est) < abs(mid - est)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"pnl": np.zeros(5)}, id="one_dimensional"),
        pytest.param({"n_boot": 0}, id="no_replicates"),
        pytest.param({"start_nav": 0.0}, id="no_capital"),
        pytest.param({"pnl": np.array([[1.0, np.inf]])}, id="infinite_pnl"),
    ],
)
def test_bootstrap_rejects_bad_inputs(kwargs):
    args = {"pnl": np.ones((2, 5)), "start_nav": 100.0, "n_boot": 10, "seed": 0} | kwargs
    with pytest.raises(ValueError):
        s.cluster_bootstrap(**args)


# --------------------------------------------------------------------------------------------------------------
# Deflated Sharpe ratio
# --------------------------------------------------------------------------------------------------------------

RETURNS_DSR = np.random.default_rng(21).standard_t(5, 750) * 0.01 + 0.0015


def test_one_trial_is_the_probabilistic_sharpe_ratio_against_zero():
    r = RETURNS_DSR
    t = len(r)
    sr = r.mean() / r.std(ddof=1)
    c = r - r.mean()
    m2, m3, m4 = (c**2).mean(), (c**3).mean(), (c**4).mean()
    skew, kurt = m3 / m2**1.5, m4 / m2**2
    psr = stats.norm.cdf(sr * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    d = s.deflated_sharpe_ratio(r, [sr])
    assert d.n_trials == 1 and d.sr0 == 0.0
    assert d.sharpe == pytest.approx(sr, rel=1e-12)
    assert d.dsr == pytest.approx(psr, rel=1e-12)


def test_deflated_sharpe_matches_a_worked_example():
    r = RETURNS_DSR
    trials = np.array([0.02, -0.01, 0.05, 0.0, 0.03, 0.01, -0.02, 0.04, 0.06, r.mean() / r.std(ddof=1)])
    n = len(trials)
    sr0 = math.sqrt(np.var(trials, ddof=1)) * (
        (1 - 0.5772156649) * stats.norm.ppf(1 - 1 / n) + 0.5772156649 * stats.norm.ppf(1 - 1 / (n * math.e))
    )
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    dsr = stats.norm.cdf((sr - sr0) * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))
    d = s.deflated_sharpe_ratio(r, trials)
    assert d.n_trials == 10
    assert d.sr0 == pytest.approx(sr0, rel=1e-12)
    assert d.dsr == pytest.approx(dsr, rel=1e-12)
    assert 0.0 < d.dsr < s.deflated_sharpe_ratio(r, trials[-1:]).dsr


def test_deflated_sharpe_reproduces_the_paper_example():
    """Bailey & Lopez de Prado (2014): annualised SR 2.5 over 5 years (T = 1250), 100 trials whose annualised
    Sharpes have variance 0.5, skew -3, kurtosis 10 -> SR0 = 0.1132 per day and DSR = 0.9004."""
    sr0 = s.expected_max_sharpe(100, math.sqrt(0.5 / 250))
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert s.probabilistic_sharpe_ratio(2.5 / math.sqrt(250), sr0, 1250, -3.0, 10.0) == pytest.approx(
        0.9004, abs=5e-4
    )


def test_deflated_sharpe_falls_as_trials_grow():
    base = np.random.default_rng(0).normal(size=2000)
    dsrs = []
    for n in (1, 2, 10, 100, 1000):
        trials = base[:n]
        if n > 1:
            trials = (trials - trials.mean()) / trials.std(ddof=1) * 0.02  # the same dispersion for every N
        dsrs.append(s.deflated_sharpe_ratio(RETURNS_DSR, trials).dsr)
    assert all(a > b for a, b in zip(dsrs, dsrs[1:], strict=False))


@pytest.mark.parametrize(
    ("returns", "trials", "sr0_nan", "dsr_nan"),
    [
        pytest.param([0.01, 0.02], [0.1], False, True, id="two_returns"),
        pytest.param([0.01] * 10, [0.1, 0.2], False, True, id="flat_returns"),
        pytest.param(RETURNS_DSR, [0.1, NAN], True, True, id="one_finite_trial_of_two"),
    ],
)
def test_deflated_sharpe_nan_cases(returns, trials, sr0_nan, dsr_nan):
    d = s.deflated_sharpe_ratio(np.array(returns), trials)
    assert np.isnan(d.sr0) == sr0_nan
    assert np.isnan(d.dsr) == dsr_nan


def test_deflated_sharpe_needs_a_trial():
    with pytest.raises(ValueError):
        s.deflated_sharpe_ratio(RETURNS_DSR, [])


# --------------------------------------------------------------------------------------------------------------
# Brinson-Fachler
# --------------------------------------------------------------------------------------------------------------

BACON = {
    "wp": [0.40, 0.30, 0.30],
    "wb": [0.40, 0.20, 0.40],
    "rp": [0.20, -0.05, 0.06],
    "rb": [0.10, -0.04, 0.08],
}


def test_brinson_fachler_reproduces_bacons_example():
    frame = s.brinson_fachler(**BACON)
    totals = s.brinson_totals(frame)
    assert totals["allocation"] == pytest.approx(-0.012, abs=1e-12)
    assert totals["selection"] == pytest.approx(0.030, abs=1e-12)
    assert totals["interaction"] == pytest.approx(0.001, abs=1e-12)
    active = np.dot(BACON["wp"], BACON["rp"]) - np.dot(BACON["wb"], BACON["rb"])
    assert totals["total"] == pytest.approx(active, abs=1e-12)
    expected = pd.DataFrame(
        {
            "allocation": [0.0, 0.1 * (-0.04 - 0.064), -0.1 * (0.08 - 0.064)],
            "selection": [0.04, 0.2 * -0.01, 0.4 * -0.02],
            "interaction": [0.0, 0.1 * -0.01, -0.1 * -0.02],
        }
    )
    np.testing.assert_allclose(frame[["allocation", "selection", "interaction"]], expected, atol=1e-12)
    np.testing.assert_allclose(frame["total"], frame[["allocation", "selection", "interaction"]].sum(axis=1))


def test_brinson_fachler_aligns_series_and_fills_missing_sectors():
    wp = pd.Series({"tech": 0.5, "energy": 0.3, "crypto": 0.2})
    rp = pd.Series({"tech": 0.10, "energy": 0.02, "crypto": 0.30})
    wb = pd.Series({"energy": 0.4, "tech": 0.4, "sports": 0.2})
    rb = pd.Series({"energy": 0.01, "tech": 0.05, "sports": -0.10})
    frame = s.brinson_fachler(wp, wb, rp, rb)
    assert set(frame.index) == {"tech", "energy", "crypto", "sports"} and frame.index.name == "sector"
    assert not frame.isna().any().any()
    total_b = 0.4 * 0.01 + 0.4 * 0.05 + 0.2 * -0.10
    # crypto: benchmark return filled with its total -> only interaction, wp (rp - R_b)
    assert frame.loc["crypto", "allocation"] == 0.0 and frame.loc["crypto", "selection"] == 0.0
    assert frame.loc["crypto", "interaction"] == pytest.approx(0.2 * (0.30 - total_b), abs=1e-15)
    # sports: portfolio return filled with the benchmark's -> only allocation, -wb (rb - R_b)
    assert frame.loc["sports", "selection"] == 0.0 and frame.loc["sports", "interaction"] == 0.0
    assert frame.loc["sports", "allocation"] == pytest.approx(-0.2 * (-0.10 - total_b), abs=1e-15)
    active = (wp * rp).sum() - (wb * rb).sum()
    assert s.brinson_totals(frame)["total"] == pytest.approx(active, abs=1e-15)
    shuffled = s.brinson_fachler(wp[::-1], wb[::-1], rp, rb[::-1])
    pd.testing.assert_frame_equal(shuffled.sort_index(), frame.sort_index())


def test_brinson_fachler_refuses_a_missing_return_on_a_held_sector():
    with pytest.raises(ValueError):
        s.brinson_fachler([0.5, 0.5], [0.5, 0.5], [0.1, NAN], [0.1, 0.2])


# --------------------------------------------------------------------------------------------------------------
# Alpha and beta
# --------------------------------------------------------------------------------------------------------------


def _pair(seed: int = 4, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    bench = rng.normal(0.0005, 0.02, n)
    strat = 0.001 + 0.6 * bench + rng.normal(0.0, 0.01, n)
    return strat, bench


def test_alpha_beta_matches_linregress_on_finite_pairs():
    strat, bench = _pair()
    strat[[5, 50]] = NAN
    bench[[7, 50]] = np.inf
    ok = np.isfinite(strat) & np.isfinite(bench)
    lr = stats.linregress(bench[ok], strat[ok])
    ab = s.alpha_beta(strat, bench)
    assert ab.n == ok.sum() == 297
    assert ab.beta == pytest.approx(lr.slope, rel=1e-10)
    assert ab.alpha == pytest.approx(lr.intercept, rel=1e-10)
    assert ab.r_squared == pytest.approx(lr.rvalue**2, rel=1e-10)
    assert ab.alpha_t == pytest.approx(lr.intercept / lr.intercept_stderr, rel=1e-10)
    assert ab.alpha_annualised == pytest.approx(365 * lr.intercept, rel=1e-12)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_alpha_beta_matches_empyrical(seed):
    strat, bench = _pair(seed)
    e_alpha, e_beta = empyrical.alpha_beta(strat, bench, period="daily", annualization=365)
    ab = s.alpha_beta(strat, bench)
    assert ab.beta == pytest.approx(e_beta, rel=1e-10)
    assert (1 + ab.alpha) ** 365 - 1 == pytest.approx(
        e_alpha, rel=1e-8
    )  # empyrical compounds the daily alpha


def test_alpha_beta_aligns_series_on_their_index():
    strat, bench = _pair()
    idx = pd.date_range("2025-01-01", periods=len(strat), freq="D")
    a = s.alpha_beta(pd.Series(strat, idx).iloc[::-1], pd.Series(bench, idx).iloc[10:])
    b = s.alpha_beta(strat[10:], bench[10:])
    assert a.n == b.n == len(strat) - 10
    assert a.beta == pytest.approx(b.beta, rel=1e-12)


@pytest.mark.parametrize(
    ("strat", "bench"),
    [
        pytest.param([0.01, 0.02], [0.01, 0.03], id="two_pairs"),
        pytest.param([0.01, NAN, 0.02, 0.05], [0.01, 0.02, NAN, 0.0], id="two_finite_pairs"),
        pytest.param([0.01, 0.02, 0.03, 0.04], [0.01] * 4, id="constant_benchmark"),
    ],
)
def test_alpha_beta_is_nan_without_enough_data(strat, bench):
    ab = s.alpha_beta(strat, bench)
    assert np.isnan([ab.alpha, ab.beta, ab.r_squared, ab.alpha_annualised, ab.alpha_t]).all()


def test_a_perfect_fit_has_no_alpha_t():
    bench = np.array([0.01, -0.02, 0.03, 0.0, 0.015])
    ab = s.alpha_beta(0.002 + 2 * bench, bench)
    assert ab.beta == pytest.approx(2.0, rel=1e-12) and ab.alpha == pytest.approx(0.002, rel=1e-9)
    assert ab.r_squared == pytest.approx(1.0, rel=1e-12)
    assert np.isnan(ab.alpha_t)
