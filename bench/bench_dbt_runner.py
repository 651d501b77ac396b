"""dbt in the run's process against dbt as a process: the `transform` asset both ways, on one warehouse.

    python bench/bench_dbt_runner.py --scale 1     # the demo's world (data/bench/scale1.duckdb, built once)

The `transform` asset (every dbt model and test, `dbt build`) is materialised through Dagster with the pipeline's
resource (`DbtRunnerResource`: dbt's programmatic runner in this process) and with dagster-dbt's `DbtCliResource`
(a `dbt` process per build), the same manifest, translator and arguments, alternately, on a scratch copy of the
warehouse:

- a sync with nothing new (the incremental models find no changes): what a build costs beyond its SQL;
- a full refresh (`--full-refresh`): every model from scratch.

The first materialisation in this process is reported apart (it imports what a fresh `whalecopy run` imports);
the others are what a long-lived process pays. Timings are wall clock of `dg.materialize`.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from bench_backtest import world


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3, help="materialisations of each kind and resource")
    p.add_argument(
        "--warehouse", help="an existing warehouse (default: data/bench/scale<N>.duckdb, built once)"
    )
    args = p.parse_args()
    source, built_s = world(args.scale, args.warehouse)

    t0 = time.perf_counter()
    import dagster as dg
    from dagster_dbt import DbtCliResource, dbt_assets

    from assets.transform.assets import TRANSLATOR, TransformConfig, build_args, build_dbt_assets
    from assets.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_project
    from assets.transform.runner import DbtRunnerResource
    from orchestration.resources import WarehouseResource

    import_s = time.perf_counter() - t0
    fee_rate = 0.02
    in_process = build_dbt_assets(fee_rate)

    @dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=TRANSLATOR,
                name="transform")  # fmt: skip
    def as_process(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: TransformConfig):
        # what the asset ran before: the same arguments, through dagster-dbt's CLI resource
        yield from dbt.cli(build_args(fee_rate, config.full_refresh), context=context).stream()

    kinds = {"in_process": in_process, "as_process": as_process}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w.duckdb"
        shutil.copy(source, db)
        os.environ["WHALECOPY_DBT_DATABASE"] = str(db)
        with duckdb.connect(str(db), read_only=True) as con:
            fills = con.execute("SELECT count(*) FROM marts.fct_fills").fetchone()[0]
        resources = {
            "warehouse": WarehouseResource(database=str(db)),
            "dbt": {
                "in_process": DbtRunnerResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR)),
                "as_process": DbtCliResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR),
                                             dbt_executable=DBT_EXECUTABLE),
            },
        }  # fmt: skip
        seconds: dict = {(k, f): [] for k in kinds for f in (False, True)}
        first = None
        for _ in range(args.repeats):
            for full_refresh in (False, True):
                for kind, assets_def in kinds.items():
                    config = {"ops": {"transform": {"config": {"full_refresh": full_refresh}}}}
                    t0 = time.perf_counter()
                    result = dg.materialize(
                        [assets_def],
                        resources={"warehouse": resources["warehouse"], "dbt": resources["dbt"][kind]},
                        run_config=config,
                        instance=dg.DagsterInstance.ephemeral(),
                    )
                    s = time.perf_counter() - t0
                    if not result.success:
                        raise SystemExit(f"the {kind} transform failed")
                    if first is None:
                        first = {"kind": kind, "full_refresh": full_refresh, "seconds": round(s, 2)}
                    else:
                        seconds[(kind, full_refresh)].append(s)

    def med(kind, full_refresh):
        xs = seconds[(kind, full_refresh)]
        return round(statistics.median(xs), 2) if xs else None

    out = {
        "case": "dbt_runner", "scale": args.scale, "fills": fills, "built_s": built_s, "repeats": args.repeats,
        "import_s": round(import_s, 2), "first": first,
        "noop_s": {k: med(k, False) for k in kinds}, "full_refresh_s": {k: med(k, True) for k in kinds},
        "all_s": {f"{k}{'_full' if f else ''}": [round(x, 2) for x in v] for (k, f), v in seconds.items()},
    }  # fmt: skip
    out["noop_saved_s"] = round(out["noop_s"]["as_process"] - out["noop_s"]["in_process"], 2)
    out["full_refresh_saved_s"] = round(
        out["full_refresh_s"]["as_process"] - out["full_refresh_s"]["in_process"], 2
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
