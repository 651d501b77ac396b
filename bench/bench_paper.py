"""The paper book's daily run: the history replayed against going on from the book a run kept (not in `make test`).

    python bench/bench_paper.py --scale 10     # data/bench/scale10.duckdb, built once (as bench_backtest.py builds it)
    python bench/bench_paper.py --scale 1      # data/bench/scale1.duckdb

On a built warehouse, in this process, with the default strategy and the warehouse's fee rate, what the
`paper_portfolio` asset computes (writing its tables, milliseconds, is left out):

1. the inputs, read as the asset reads them (`assets/paper/assets.py:paper_inputs`);
2. `run_paper` over the whole history: what every run did before a run kept its book;
3. `run_paper_carried` without a kept book (the same replay, keeping the book 4 days before the last day): what a
   first run does;
4. `run_paper_carried` from that book, keeping the next one 3 days before the last day: a daily run's work when the
   last day is new (4 days replayed), its digest check and the next book's digest and pickle included.

(4)'s tables are checked equal to (2)'s, every column to the bit. Medians of ``--repeats``.
"""

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_backtest import world  # this directory: the world is built as the backtest's is

from assets.paper import model
from assets.paper.assets import paper_inputs
from assets.strategy import StrategyConfig
from orchestration.settings import Settings


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=10.0)
    p.add_argument(
        "--warehouse", help="an existing warehouse (default: data/bench/scale<N>.duckdb, built once)"
    )
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    source, built_s = world(args.scale, args.warehouse)
    config = StrategyConfig()
    params = config.paper_params(Settings.from_env().fee_rate)
    with duckdb.connect(str(source), read_only=True) as con:
        fills = con.sql("SELECT count(*) FROM marts.fct_fills").fetchall()[0][0]
        first, last = con.execute(
            "SELECT CAST(floor(epoch(min(day)) / 86400) AS BIGINT), CAST(floor(epoch(max(day)) / 86400) AS BIGINT) "
            "FROM marts.wallet_daily_returns"
        ).fetchall()[0]
        reads = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            inputs = paper_inputs(con, config)
            reads.append(time.perf_counter() - t0)
    cands, marks, sells, markets = inputs
    timed: dict[str, list[float]] = {"replay": [], "first": [], "daily": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        full = model.run_paper(cands, marks, sells, markets, first, last, params)
        t1 = time.perf_counter()
        _, kept, _ = model.run_paper_carried(
            cands, marks, sells, markets, first, last, params, None, keep_lag=4
        )
        t2 = time.perf_counter()
        daily, nxt, how = model.run_paper_carried(cands, marks, sells, markets, first, last, params, kept)
        t3 = time.perf_counter()
        for k, v in zip(timed, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            timed[k].append(round(v, 3))
    if not how.startswith("went on"):
        raise SystemExit(f"the daily run did not go on from the kept book: {how}")
    for a, b in zip(full, daily, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    med = {k: round(statistics.median(v), 3) for k, v in timed.items()}
    print(json.dumps({
        "case": f"paper_{Path(args.warehouse).stem if args.warehouse else f'scale{args.scale:g}'}",
        "scale": None if args.warehouse else args.scale, "warehouse": str(source), "fills": fills,
        "built_warehouse_s": built_s, "days": last - first + 1, "candidates": len(cands), "marks": len(marks),
        "whale_sells": len(sells), "decisions": len(full.decisions), "fills_booked": len(full.fills),
        "read_s": round(statistics.median(reads), 3), "replay_s": med["replay"], "first_run_s": med["first"],
        "daily_s": med["daily"], "runs_s": timed, "kept_through": kept.through, "next_through": nxt.through,
        "book_bytes": len(nxt.book), "same_as_replay": True,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
