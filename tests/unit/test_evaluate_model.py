"""Information coefficients and month-clustered statistics."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from assets.evaluate import model as e


def test_spearman_matches_scipy_and_skips_non_finite():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    x[3], y[7] = np.nan, np.inf
    ok = np.isfinite(x) & np.isfinite(y)
    assert e.spearman(x, y) == pytest.approx(stats.spearmanr(x[ok], y[ok]).statistic, abs=1e-12)
    assert np.isnan(e.spearman([1, 2], [3, 4]))
    assert np.isnan(e.spearman([1, 1, 1, 1], [1, 2, 3, 4]))


def _panel(seed: int = 1, dates: int = 30, wallets: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    as_of = np.repeat([date(2025, 1, 6) + timedelta(days=7 * i) for i in range(dates)], wallets)
    signal = rng.normal(size=dates * wallets)
    return pd.DataFrame(
        {
            "as_of": as_of,
            "good": signal,
            "noise": rng.normal(size=dates * wallets),
            "fwd": signal + rng.normal(scale=1.0, size=dates * wallets),
        }
    )


def test_information_coefficients_equal_scipy_per_date_on_a_common_sample():
    panel = _panel()
    panel.loc[5, "noise"] = np.nan  # drops row 5 for every predictor: a common sample
    ic = e.information_coefficients(panel, ["good", "noise"], "fwd")
    common = panel.drop(index=5)
    for (d, p), row in ic.set_index(["as_of", "predictor"]).iterrows():
        g = common[common["as_of"] == d]
        assert row["ic"] == pytest.approx(stats.spearmanr(g[p], g["fwd"]).statistic, abs=1e-12)
        assert row["n_wallets"] == len(g)


def test_a_perfect_predictor_has_ic_one_and_thin_dates_are_skipped():
    panel = _panel()
    panel["perfect"] = panel["fwd"] * 3 + 1
    ic = e.information_coefficients(panel, ["perfect"], "fwd", min_wallets=61)
    assert ic.empty
    ic = e.information_coefficients(panel, ["perfect"], "fwd")
    np.testing.assert_allclose(ic["ic"], 1.0)


def test_clustered_mean_uses_one_observation_per_month():
    values = [0.1, 0.3, 0.2, 0.2, 0.5]
    clusters = ["a", "a", "b", "b", "c"]  # month means 0.2, 0.2, 0.5
    c = e.clustered_mean(values, clusters)
    means = np.array([0.2, 0.2, 0.5])
    se = means.std(ddof=1) / np.sqrt(3)
    assert c.mean == pytest.approx(0.3) and c.se == pytest.approx(se) and c.t_stat == pytest.approx(0.3 / se)
    half = stats.t.ppf(0.975, 2) * se
    assert (c.ci_low, c.ci_high) == (pytest.approx(0.3 - half), pytest.approx(0.3 + half))
    assert c.n_clusters == 3
    one = e.clustered_mean([0.1, 0.2], ["a", "a"])
    assert one.mean == pytest.approx(0.15) and np.isnan(one.t_stat)


def test_summarise_ic_ranks_a_real_signal_above_noise_with_a_paired_difference():
    ic = e.information_coefficients(_panel(), ["good", "noise"], "fwd")
    s = e.summarise_ic(ic, baseline="noise").set_index("predictor")
    assert s.loc["good", "mean_ic"] > 0.5 and s.loc["good", "t_stat"] > 10
    assert abs(s.loc["noise", "mean_ic"]) < 0.1
    assert s.loc["good", "diff_vs_noise"] == pytest.approx(
        s.loc["good", "mean_ic"] - s.loc["noise", "mean_ic"]
    )
    assert s.loc["good", "n_months"] == len(e.month_of(ic["as_of"]).unique())
    assert s.loc["good", "ci_low"] < s.loc["good", "mean_ic"] < s.loc["good", "ci_high"]
    monthly = e.monthly_ic(ic)
    assert set(monthly.columns) == {"predictor", "month", "ic", "n_as_of", "mean_wallets"}
    assert monthly["n_as_of"].sum() == len(ic)
