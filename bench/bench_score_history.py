"""The point-in-time score history: every wallet scored as of every week over a year (not part of `make test`).

    python bench/bench_score_history.py --wallets 20000 --days 365

Synthetic inputs shaped like the warehouse reads (assets/score/inputs.py): a return per wallet-day, activity on
about 40% of them, and resolved positions. Times ``score_history`` over weekly as-of dates and prints JSON.
"""

import argparse
import json
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.score import model


def inputs(n_wallets: int, n_days: int, positions_per_wallet: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    start = date(2025, 1, 1)
    first = rng.integers(0, n_days // 2, n_wallets)
    wallet_idx = np.repeat(np.arange(n_wallets), n_days - first)
    day_idx = np.concatenate([np.arange(f, n_days) for f in first])  # one array per wallet: set-up only
    names = np.array([f"0x{i:040x}" for i in range(n_wallets)])
    days = np.datetime64(start) + day_idx.astype("timedelta64[D]")
    r = rng.normal(0.001, 0.03, wallet_idx.size)
    returns = pd.DataFrame({"wallet": names[wallet_idx], "day": days, "daily_return": r, "pnl_net": r * 1000})
    active = rng.uniform(size=wallet_idx.size) < 0.4
    vol = rng.lognormal(5, 1, active.sum())
    activity = pd.DataFrame({"wallet": names[wallet_idx[active]], "day": days[active], "volume": vol,
                             "volume_sq": vol * vol * rng.uniform(0.2, 1, active.sum())})  # fmt: skip
    n_pos = n_wallets * positions_per_wallet
    epoch0 = (start - date(1970, 1, 1)).days * 86400
    price = rng.uniform(0.05, 0.95, n_pos)
    payout = (rng.uniform(size=n_pos) < price).astype(float)
    positions = pd.DataFrame({
        "wallet": names[rng.integers(0, n_wallets, n_pos)],
        "category": rng.choice(["Politics", "Crypto", "Sports", "Weather", "Tech", "Culture", "Economics"], n_pos),
        "resolved_ts": epoch0 + rng.uniform(0, n_days * 86400, n_pos), "cut_ts": np.nan,
        "won": payout, "payout": payout, "price_paid": price,
    })  # fmt: skip
    return returns, activity, positions, start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--wallets", type=int, default=20_000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--positions-per-wallet", type=int, default=50)
    args = p.parse_args()
    returns, activity, positions, start = inputs(args.wallets, args.days, args.positions_per_wallet)
    dates = model.as_of_dates(start, start + timedelta(days=args.days - 1), 7)
    t0 = time.perf_counter()
    history = model.score_history(returns, activity, positions, dates)
    elapsed = time.perf_counter() - t0
    print(json.dumps({
        "case": "score_history", "wallets": args.wallets, "days": args.days, "as_of_dates": len(dates),
        "return_rows": len(returns), "positions": len(positions), "rows_out": len(history),
        "scored_rows": int(history["wqs"].notna().sum()), "score_history_s": round(elapsed, 2),
        "rows_per_s": round(len(history) / elapsed),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
