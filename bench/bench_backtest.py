"""The walk-forward backtest on a built warehouse (not part of `make test`).

    python bench/bench_backtest.py --scale 10      # builds data/bench/scale10.duckdb once (the whole job), then times
    python bench/bench_backtest.py --warehouse data/warehouse.duckdb   # the demo's warehouse, as the comparison

Times what the `backtest` asset does, in this process: reading the candidates, marks, sells and scores from the
warehouse, the walk-forward (every strategy, every fold's in-sample grid, the fixed-threshold trials) and the tables
(bootstrap included); writing them to DuckDB (milliseconds) is left out. Peak memory is this process's maximum resident set. The warehouse is
copied first so the measured run writes to a scratch file.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assets.evaluate import backtest
from assets.evaluate.backtest_assets import DAY, load_inputs
from assets.strategy import StrategyConfig


def build(scale: float, path: Path) -> float:
    """The whole sync job on the simulated world at ``scale`` into ``path`` (kept for the next run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WHALECOPY_REPORT_PATH": str(path.with_suffix(".html")), "GX_ANALYTICS_ENABLED": "false",
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run([str(Path(sys.executable).parent / "whalecopy"), "run", "--source", "sim", "--scale",
                          str(scale), "--warehouse", str(path)], env=env, capture_output=True, text=True)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"building {path} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
    return time.perf_counter() - t0


def world(scale: float, warehouse: str | None) -> tuple[Path, float | None]:
    """``warehouse``, or the simulated world at ``scale`` (data/bench/scale<N>.duckdb, built once); and the seconds
    building it took (None when it was there)."""
    source = Path(warehouse) if warehouse else ROOT / "data" / "bench" / f"scale{scale:g}.duckdb"
    return source, None if source.exists() else round(build(scale, source), 1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=10.0)
    p.add_argument(
        "--warehouse", help="an existing warehouse (default: data/bench/scale<N>.duckdb, built once)"
    )
    args = p.parse_args()
    source, built_s = world(args.scale, args.warehouse)
    config = StrategyConfig()
    params, base = config.backtest_params(), config.paper_params(0.02)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w.duckdb"
        shutil.copy(source, db)
        with duckdb.connect(str(db)) as con:
            fills = con.sql("SELECT count(*) FROM marts.fct_fills").fetchall()[0][0]
            candidates = con.sql("SELECT count(*) FROM analytics.signals").fetchall()[0][0]
            t0 = time.perf_counter()
            first, last = con.execute(
                f"SELECT {DAY.format('min(day)')}, {DAY.format('max(day)')} FROM marts.wallet_daily_returns"
            ).fetchall()[0]
            cands, marks, sells, markets, scores, complement, monthly, live = load_inputs(
                con, config, params, first, last
            )
            t1 = time.perf_counter()
            bt = backtest.walk_forward(
                cands, marks, sells, markets, scores, complement, first, last, base, params
            )
            t2 = time.perf_counter()
            start = int(bt.folds["origin"].min())
            summary = backtest.summary_table(bt, start, last, base.starting_nav, params)
            backtest.daily_table(bt)
            brinson = backtest.brinson_table(bt, last)
            backtest.validation_table(bt, summary, monthly, live, config.var_confidence)
            backtest.regression_table(bt)
            backtest.contribution_table(bt, last)
            backtest.targets_table(summary, brinson)
            t3 = time.perf_counter()
    print(json.dumps({
        "case": f"backtest_{source.stem}", "warehouse": str(source), "fills": fills, "signal_candidates": candidates,
        "offered_candidates": len(cands), "folds": len(bt.folds), "strategies": len(backtest.STRATEGIES),
        "paper_runs": len(bt.runs) + len(bt.folds) * len(params.min_wqs_grid), "bootstrap": params.n_boot,
        "load_s": round(t1 - t0, 2), "walk_forward_s": round(t2 - t1, 2), "tables_s": round(t3 - t2, 2),
        "total_s": round(t3 - t0, 2), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "built_warehouse_s": built_s,
        "sharpe": {r.strategy: round(float(r.sharpe), 2) for r in summary.itertuples()},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
