"""Rolling Sharpe at five windows and WQS for 100,000 wallets x 365 days (not part of `make test`).

    python bench/bench_score.py --wallets 100000 --days 365

Side by side in one run: the vectorised kernels (assets/score/model.py, prefix sums on a wallets x days array)
and a plain pandas groupby-rolling implementation of the same rolling Sharpes, on the same random returns (with
NaN before each wallet's first day). Prints JSON with both times, the ratio, peak memory and the largest
difference between the two results.
"""

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.score import model

WINDOWS = (7, 14, 30, 60, 90)


def make_returns(n_wallets: int, n_days: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.001, 0.03, size=(n_wallets, n_days))
    start = rng.integers(0, n_days // 2, n_wallets)
    r[np.arange(n_days)[None, :] < start[:, None]] = np.nan  # wallets appear over time
    return r


def pandas_rolling(r: np.ndarray) -> dict[int, np.ndarray]:
    """What a user would write: long format, groupby wallet, rolling mean / std per window."""
    n_w, n_d = r.shape
    long = pd.DataFrame({"wallet": np.repeat(np.arange(n_w), n_d), "ret": r.ravel()})
    g = long.groupby("wallet")["ret"]
    out = {}
    for w in WINDOWS:
        mean = g.rolling(w, min_periods=w).mean().to_numpy()
        std = g.rolling(w, min_periods=w).std().to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            out[w] = np.where(std > 0, mean / std * np.sqrt(365), np.nan).reshape(n_w, n_d)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--wallets", type=int, default=100_000)
    p.add_argument("--days", type=int, default=365)
    args = p.parse_args()
    r = make_returns(args.wallets, args.days)
    t0 = time.perf_counter()
    fast = model.rolling_sharpes(r, WINDOWS)
    t_roll = time.perf_counter() - t0
    t1 = time.perf_counter()
    sharpe = model.annualised_sharpe(r)
    drawdown = model.max_drawdown(r)
    calmar = model.calmar(r)
    bench = np.nanmean(r, axis=0)
    ir = model.information_ratio(r, bench)
    consistency = model.consistency_score(fast[30])
    volume = np.full(args.wallets, 250_000.0)
    factors = model.factor_scores(sharpe, ir, calmar, consistency, volume, max_drawdown=drawdown)
    score = model.wqs(factors, np.full(args.wallets, 60), np.full(args.wallets, 900.0))
    t_wqs = time.perf_counter() - t1
    peak_fast = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t2 = time.perf_counter()
    slow = pandas_rolling(r)
    t_pandas = time.perf_counter() - t2
    diff = max(float(np.nanmax(np.abs(fast[w] - slow[w]))) for w in WINDOWS)
    same_nan = all(np.array_equal(np.isnan(fast[w]), np.isnan(slow[w])) for w in WINDOWS)
    print(json.dumps({
        "case": "score", "wallets": args.wallets, "days": args.days,
        "rolling_sharpe_5_windows_s": round(t_roll, 2), "metrics_and_wqs_s": round(t_wqs, 2),
        "kernels_total_s": round(t_roll + t_wqs, 2), "pandas_groupby_rolling_s": round(t_pandas, 2),
        "ratio_pandas_over_kernels_rolling": round(t_pandas / t_roll, 1),
        "max_abs_diff": diff, "same_nan_pattern": same_nan, "wallets_scored": int(np.isfinite(score).sum()),
        "peak_rss_mb_after_kernels": round(peak_fast),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
