"""Numeric edge cases (issue 7): wallets with one trade, zero variance, all wins, all losses, one huge day, a
total loss. No score, and no backtest metric, may be NaN-ranked first or infinite: a value is finite or NULL with
a reason."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from assets.evaluate import stats
from assets.score import model as m

pytestmark = pytest.mark.reliability

START = date(2025, 1, 1)
DAYS = 200
EPOCH0 = (START - date(1970, 1, 1)).days * 86400

#: wallet -> its daily returns over DAYS days (NaN: no return that day)
CASES = {
    "one_trade": np.r_[np.full(DAYS - 1, np.nan), 0.5],
    "zero_variance": np.full(DAYS, 0.001),
    "all_zero": np.zeros(DAYS),
    "all_wins": np.abs(np.random.default_rng(1).normal(0.01, 0.005, DAYS)),
    "all_losses": -np.abs(np.random.default_rng(2).normal(0.01, 0.005, DAYS)),
    "total_loss": np.r_[np.full(DAYS - 1, 0.0), -1.0],
    "one_huge_day": np.r_[np.zeros(DAYS - 1), 1e6],
    "tiny_noise": np.random.default_rng(3).normal(0, 1e-15, DAYS),
    "normal": np.random.default_rng(4).normal(0.002, 0.03, DAYS),
}
#: resolved positions per wallet: (n, share won)
POSITIONS = {"one_trade": (1, 1.0), "all_wins": (40, 1.0), "all_losses": (40, 0.0), "zero_variance": (30, 0.5),
             "normal": (50, 0.55), "one_huge_day": (3, 1.0), "total_loss": (5, 0.0)}  # fmt: skip


def _inputs():
    rows = []
    for w, r in CASES.items():
        for d, v in enumerate(r):
            if np.isfinite(v):
                rows.append((w, START + timedelta(days=d), v, v * 1000))
    ret = pd.DataFrame(rows, columns=["wallet", "day", "daily_return", "pnl_net"])
    act = ret[["wallet", "day"]].assign(volume=1_000.0, volume_sq=1e6)
    pos = []
    for w, (n, won) in POSITIONS.items():
        for k in range(n):
            win = float(k < round(n * won))
            pos.append({"wallet": w, "category": "Politics", "resolved_ts": EPOCH0 + (k + 1) * 3 * 86400.0,
                        "cut_ts": np.nan, "price_paid": 0.5, "payout": win, "won": win})  # fmt: skip
    return ret, act, pd.DataFrame(pos)


def test_scores_of_degenerate_wallets_are_finite_or_null_with_a_reason():
    ret, act, pos = _inputs()
    dates = [START + timedelta(days=d) for d in (1, 30, 100, DAYS)]
    h = m.score_history(ret, act, pos, dates)
    floats = h.select_dtypes("number")
    assert not np.isinf(floats.to_numpy(dtype=float)).any(), floats.columns[np.isinf(floats).any()].tolist()
    assert h.loc[h["wqs"].isna(), "reason"].notna().all()
    assert h["wqs"].dropna().between(0, 100).all()
    for col in ("raw_win_rate", "win_rate_mean", "win_rate_lower", "win_rate_upper"):
        assert h[col].dropna().between(0, 1).all(), col
    last = h[h["as_of"] == pd.Timestamp(START + timedelta(days=DAYS)).date()].set_index("wallet")
    assert last.loc["all_wins", "win_rate_mean"] > last.loc["all_losses", "win_rate_mean"]
    # NaN never ranks first: the rank-1 row of every date has a score
    first = h[h["rank"] == 1]
    assert first["wqs"].notna().all()


@pytest.mark.parametrize("name", list(CASES))
def test_backtest_metrics_of_degenerate_paths_are_finite_or_nan(name):
    r = CASES[name]
    values = [stats.cagr(r), stats.sharpe_ratio(r), stats.sortino_ratio(r), stats.max_drawdown(r),
              stats.calmar_ratio(r), stats.tail_return(r)]  # fmt: skip
    assert not any(np.isinf(v) for v in values), values
    matrix = stats.metrics_matrix(np.nan_to_num(r)[None, :])
    assert not any(np.isinf(v).any() for v in matrix.values())
    pnl = np.nan_to_num(r)[None, :] * 100.0
    boot = stats.cluster_bootstrap(pnl, 10_000.0, 50, seed=0)
    assert not np.isinf(boot[["estimate", "ci_low", "ci_high"]].to_numpy(dtype=float)).any()
