"""What a user's daily run costs: the `sync` job for one new day against the run that built the days before it.

    python bench/bench_daily.py --scale 1        # the demo's world

Two fresh processes, as a user runs them (each is `whalecopy run` in this process, `orchestration/cli.py:run_sync`,
on the simulated Polymarket at ``--scale``, into a scratch warehouse):

1. every day of the world but the last (the history a daily user already has);
2. the last day alone (``--start D --end D``), every asset of the ``sync`` job (the backtest and report included);
3. the last day alone with ``--daily`` (the ``daily`` job the daily schedule runs: all but the evaluation group),
   on the warehouse and run storage as (1) left them (put back in place from a copy: a user's daily run is on the
   same file as their history, and dbt's partial parse holds only for the same warehouse path).

Each prints its wall time (process start to exit) and every step's time from the run's event log (`run_sync`'s
timings). The issue's target: a day at most a tenth of the history.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]


def phase(args: argparse.Namespace) -> None:
    """One run in this process; prints its steps' seconds as JSON."""
    sys.path.insert(0, str(ROOT))
    import dataclasses
    import io

    from orchestration.cli import run_sync
    from orchestration.jobs import DAILY_JOB
    from orchestration.settings import Settings

    settings = dataclasses.replace(
        Settings.from_env(), warehouse_path=Path(args.warehouse), source="sim", sim_scale=args.scale,
        report_path=Path(args.warehouse).with_suffix(".html"),
    )  # fmt: skip
    t0 = time.perf_counter()
    result = run_sync(settings, start=date.fromisoformat(args.start) if args.start else None,
                      end=date.fromisoformat(args.end) if args.end else None, out=io.StringIO(),
                      job_name=DAILY_JOB if args.daily else None)  # fmt: skip
    run_s = time.perf_counter() - t0
    if not result.success:
        raise SystemExit("the run failed")
    steps = {step: round(seconds, 2) for step, seconds, _ in result.timings}  # run_sync's, from the event log
    # the gates' own steps: those that evaluated checks and materialised nothing (dbt's tests run in `transform`)
    kinds = {(e.event_type_value, e.step_key) for e in result.all_events}
    gate_steps = sorted({k for t, k in kinds if t == "ASSET_CHECK_EVALUATION"}
                        - {k for t, k in kinds if t == "ASSET_MATERIALIZATION"})  # fmt: skip
    ordered = dict(sorted(steps.items(), key=lambda kv: -kv[1]))
    print(json.dumps({"run_s": round(run_s, 2), "steps_s": ordered, "gate_steps": gate_steps}))


def run_phase(
    warehouse: Path, home: Path, scale: float, start: str | None, end: str | None, daily: bool = False
) -> dict:
    env = {**os.environ, "DAGSTER_HOME": str(home), "GX_ANALYTICS_ENABLED": "false",
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}  # fmt: skip
    argv = [sys.executable, __file__, "--phase", "--warehouse", str(warehouse), "--scale", str(scale)]
    argv += (
        (["--start", start] if start else [])
        + (["--end", end] if end else [])
        + (["--daily"] if daily else [])
    )
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return {"wall_s": round(wall, 2), **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--warehouse", help=argparse.SUPPRESS)
    p.add_argument("--start", help=argparse.SUPPRESS)
    p.add_argument("--end", help=argparse.SUPPRESS)
    p.add_argument("--daily", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase:
        phase(args)
        return
    sys.path.insert(0, str(ROOT))
    import dataclasses

    from orchestration.cli import partition_range
    from orchestration.settings import Settings

    lo, hi = partition_range(dataclasses.replace(Settings.from_env(), source="sim", sim_scale=args.scale))
    with tempfile.TemporaryDirectory() as tmp:
        db, home = Path(tmp) / "w.duckdb", Path(tmp) / "dagster_home"
        home.mkdir()
        history = run_phase(db, home, args.scale, None, str(hi - timedelta(days=1)))
        live = Path(tmp) / "live"  # the live hand-off beside the warehouse (Settings.live_root)
        saved = Path(tmp) / "history"
        saved.mkdir()
        wal = db.with_name(db.name + ".wal")
        if wal.exists():
            raise SystemExit(f"{wal}: the history's process left a write-ahead log (not checkpointed)")
        shutil.copy(db, saved / db.name)
        for d in (home, live):
            if d.exists():
                shutil.copytree(d, saved / d.name)
        day = run_phase(db, home, args.scale, str(hi), str(hi))
        with duckdb.connect(str(db), read_only=True) as con:
            fills = con.execute("SELECT count(*) FROM marts.fct_fills").fetchone()[0]
        # the history put back in the same place for the daily job
        wal.unlink(missing_ok=True)
        shutil.copy(saved / db.name, db)
        for d in (home, live):
            shutil.rmtree(d, ignore_errors=True)
            if (saved / d.name).exists():
                shutil.copytree(saved / d.name, d)
        daily = run_phase(db, home, args.scale, str(hi), str(hi), daily=True)
    out = {"case": "daily_run", "scale": args.scale, "fills": fills, "first_day": str(lo), "day": str(hi),
           "history": history, "day_run": day, "daily_job": daily,
           "ratio": round(day["wall_s"] / history["wall_s"], 3),
           "daily_ratio": round(daily["wall_s"] / history["wall_s"], 3)}  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
