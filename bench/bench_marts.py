"""Build the dbt marts on ~10M simulated fills (not part of `make test`).

    python bench/bench_marts.py --scale 10

Loads the simulated world's markets (through the Gamma parser and loader) and its fills (the bulk path) into a
fresh warehouse, then times `dbt run` (all models) and `dbt test` (all data tests) as subprocesses, each with its
own peak memory (the dbt process runs DuckDB in process, so its peak is the build's).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assets.ingest.clients import Page
from assets.ingest.records import Batch, parse_markets
from assets.ingest.sim import SimConfig, generate_world, tape_table
from assets.ingest.sim_api import SimPolymarket
from assets.ingest.store import ensure_raw, load_markets, load_trades
from quality.quarantine import QUARANTINE_SCHEMA

DBT = str(Path(sys.executable).parent / "dbt")


def dbt(command: str, db: Path, target: Path) -> dict:
    env = {**os.environ, "WHALECOPY_DBT_DATABASE": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run(
        [DBT, command, "--project-dir", str(ROOT / "dbt_project"), "--profiles-dir", str(ROOT / "dbt_project"),
         "--target-path", str(target), "--log-path", str(target / "logs"), "--exclude", "test_type:unit"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"dbt {command} failed:\n{out.stdout[-4000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    results = json.loads((target / "run_results.json").read_text())["results"]
    slowest = sorted(((r["unique_id"].split(".")[-1], round(r["execution_time"], 2)) for r in results),
                     key=lambda x: -x[1])[:6]  # fmt: skip
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(max(peak, before) / 1024),
        "slowest": dict(slowest),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=10.0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db, target = Path(tmp) / "bench.duckdb", Path(tmp) / "target"
        world = generate_world(SimConfig.scaled(args.scale))
        con = duckdb.connect(str(db))
        ensure_raw(con)
        batch = Batch()
        batch.add(Page("sim", SimPolymarket(world).market_objects()))
        parsed = parse_markets(batch, source="sim")
        load_markets(con, parsed.accepted, parsed.rejected, source="sim")
        load_trades(con, tape_table(world), QUARANTINE_SCHEMA.empty_table(), source="sim")
        (fills,) = con.execute("SELECT count(*) FROM raw.trades").fetchone()
        con.close()
        build = dbt("run", db, target)
        tests = dbt("test", db, target)
        with duckdb.connect(str(db), read_only=True) as con:
            counts = {t: con.execute(f"SELECT count(*) FROM marts.{t}").fetchone()[0]
                      for t in ("fct_fills", "fct_positions", "wallet_daily_returns", "wallet_features")}  # fmt: skip
    print(json.dumps({"case": "marts", "scale": args.scale, "fills": fills, "markets": len(world.markets),
                      "wallets": len(world.wallets), "dbt_run_s": build["seconds"], "dbt_run_peak_rss_mb": build["peak_rss_mb"],
                      "dbt_test_s": tests["seconds"], "slowest_models_s": build["slowest"], "rows": counts}))  # fmt: skip


if __name__ == "__main__":
    main()
