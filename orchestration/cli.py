"""The ``whalecopy`` command.

whalecopy demo                         the main job on the simulated Polymarket, then a summary
whalecopy run --source sim|live|files  the same job on any source (files: --trades PATH --markets PATH)
whalecopy summary                      what the warehouse holds
whalecopy report                       the HTML report of the backtest (and of real trades, with --real)
whalecopy tune-score --seed 11         tune the scoring constants on another simulated seed
whalecopy sql "SELECT ..."             a read-only query on the warehouse, sandboxed (no other file, no writes)
whalecopy ui                           the Dagster web UI on 127.0.0.1
whalecopy dashboard                    the monitoring dashboard on 127.0.0.1 (warehouse and live store, read-only)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import sys
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from .settings import SOURCES, TRADE_FORMATS, Settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="whalecopy", description="Copy Polymarket whales, honestly measured.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--warehouse", help="DuckDB file (default: WAREHOUSE_PATH or data/warehouse.duckdb)")
        sp.add_argument("--seed", type=int, help="simulator seed (default 7)")
        sp.add_argument(
            "--scale", type=float, help="simulator scale: 1 = 2,000 markets, 5,000 wallets, ~1M fills"
        )
        sp.add_argument("--scope", choices=["markets", "wallets"], default=None,
                        help="trades: every market's tape (default) or the whale universe's fills")  # fmt: skip
        sp.add_argument("--refetch", action="store_true", help="fetch windows already covered again")
        sp.add_argument("--rebuild-scores", action="store_true",
                        help="drop the stored score history and score every as-of date again")  # fmt: skip
        sp.add_argument("--full-refresh", action="store_true",
                        help="rebuild the incremental marts from scratch instead of applying what changed")  # fmt: skip
        sp.add_argument("--keep-flagged", action="store_true",
                        help="keep wallets flagged as market makers, farmers, bots or wash traders in the universe, "
                             "stage 1 and the backtest (strategy setting keep_flagged_wallets; default: left out)")  # fmt: skip

    demo = sub.add_parser("demo", help="run everything on the simulated Polymarket and print a summary")
    common(demo)
    run = sub.add_parser("run", help="run the sync job on a source")
    run.add_argument("--source", choices=SOURCES, default=None)
    run.add_argument(
        "--trades",
        help="file source: trades (.json, .jsonl[.gz] or .parquet; a dump: .csv[.gz] or .parquet, or a folder of them)",
    )
    run.add_argument("--format", choices=TRADE_FORMATS, default=None, dest="trades_format",
                     help="file source: how the trades file is written: data-api (default: the Data API's trade "
                          "objects), poly-data (poly_data's processed trades.csv), orderfilled (the on-chain "
                          "OrderFilled events); a dump's row is its maker's fill")  # fmt: skip
    run.add_argument("--markets", help="file source: markets (.json, .jsonl[.gz] or .parquet)")
    run.add_argument("--activity", help="file source: the wallets' /activity rows (.json, .jsonl[.gz] or .parquet): "
                                        "splits, merges, redemptions, conversions, rewards, rebates")  # fmt: skip
    run.add_argument("--start", type=date.fromisoformat, help="first UTC day (default: the source's history)")
    run.add_argument("--end", type=date.fromisoformat, help="last UTC day (inclusive)")
    run.add_argument("--daily", action="store_true",
                     help="the daily job: everything but the evaluation (backtest, IC, report), which need not run "
                          "every day (a run without --daily, or the weekly_evaluation schedule, runs it)")  # fmt: skip
    common(run)
    summary = sub.add_parser("summary", help="print what the warehouse holds")
    summary.add_argument("--warehouse")
    tune = sub.add_parser(
        "tune-score", help="tune the scoring constants on a simulated seed (not the demo's)"
    )
    tune.add_argument("--seed", type=int, default=11, help="tuning seed (default 11; the demo reports on 7)")
    tune.add_argument("--scale", type=float, default=1.0, help="simulator scale (default 1)")
    tune.add_argument("--warehouse", default=None, help="tuning warehouse (default data/tune-seed<N>.duckdb)")
    intents = sub.add_parser("intents", help="export the paper portfolio's orders as intents (CSV or JSON)")
    intents.add_argument("--warehouse")
    intents.add_argument("--format", choices=["csv", "json"], default="csv")
    intents.add_argument("--out", help="file to write (default: standard output)")
    intents.add_argument("--since", type=date.fromisoformat, help="only orders on or after this UTC day")
    rep = sub.add_parser("report", help="write the HTML report from the warehouse")
    rep.add_argument("--warehouse")
    rep.add_argument("--out", help="HTML file (default WHALECOPY_REPORT_PATH or data/report.html)")
    rep.add_argument("--real", help="a warehouse built from real trades, for the second section")
    sql = sub.add_parser(
        "sql",
        help="run a read-only SQL query on the warehouse (sandboxed: no other file, no network, no writes)",
    )
    sql.add_argument("query", help='the SQL, quoted (e.g. "SELECT count(*) FROM marts.fct_fills")')
    sql.add_argument("--warehouse")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.add_argument("--limit", type=int, default=100, help="rows printed (default 100; 0 prints every row)")
    rec = sub.add_parser(
        "reconcile",
        help="Polymarket's realised P&L per position (/closed-positions, /positions) against the warehouse's, "
        "naming the missing input where they differ",
    )
    rec.add_argument("--wallet", action="append", default=[],
                     help="fetch this wallet's positions from the source's Data API (repeatable)")  # fmt: skip
    rec.add_argument(
        "--closed-positions", dest="closed_positions", help="a JSON array of /closed-positions rows"
    )
    rec.add_argument("--positions", help="a JSON array of /positions rows")
    rec.add_argument("--source", choices=SOURCES, default=None, help="where --wallet's positions come from")
    rec.add_argument("--warehouse")
    rec.add_argument("--seed", type=int)
    rec.add_argument("--scale", type=float)
    rec.add_argument("--format", choices=["table", "csv", "json"], default="table")
    live = sub.add_parser(
        "live",
        help="the live loop: see tracked whales' fills within seconds, decide, write intents (no orders)",
    )
    live.add_argument("--source", choices=["polymarket", "sim"], default="polymarket",
                      help="polymarket: RTDS and the Data API (default); sim: the simulated world replayed after "
                      "the batch's last day, on loopback")  # fmt: skip
    live.add_argument(
        "--speed", type=float, default=60.0, help="sim: market seconds per wall second (default 60)"
    )
    live.add_argument("--days", type=float, default=1.0, help="sim: days to replay (default 1)")
    live.add_argument("--json", action="store_true", help="one JSON status object per line instead of text")
    live.add_argument("--status", action="store_true", help="print what the live store holds and exit")
    live.add_argument(
        "--watchlist", help="a file of wallets to track beside the batch's universe (one per line)"
    )
    live.add_argument("--live-dir", help="the live loop's directory (default WHALECOPY_LIVE_DIR or live/ beside the "
                      "warehouse)")  # fmt: skip
    live.add_argument("--warehouse")
    live.add_argument("--seed", type=int, help="sim: the world's seed (the batch's)")
    live.add_argument("--scale", type=float, help="sim: the world's scale (the batch's)")
    ldemo = sub.add_parser("live-demo", help="a batch through a few days before the simulated world's end, then "
                           "those days live on loopback, then the decisions, intents, book and latency")  # fmt: skip
    ldemo.add_argument("--days", type=float, default=3.0)
    ldemo.add_argument(
        "--speed", type=float, default=4320.0, help="market seconds per wall second (default 4320)"
    )
    ldemo.add_argument("--scale", type=float, default=1.0, help="the world's scale (default 1, the demo's)")
    ldemo.add_argument("--warehouse")
    ui = sub.add_parser("ui", help="start the Dagster web UI (127.0.0.1:3000)")
    ui.add_argument("--port", type=int, default=3000)
    dash = sub.add_parser("dashboard", help="start the monitoring dashboard on 127.0.0.1 (default port 8501)")
    dash.add_argument("--port", type=int, help="default: WHALECOPY_DASHBOARD_PORT or 8501")
    dash.add_argument("--warehouse", help="DuckDB file (default: WAREHOUSE_PATH or data/warehouse.duckdb)")
    dash.add_argument("--live-dir", help="the live loop's directory (default: WHALECOPY_LIVE_DIR or live/ beside "
                      "the warehouse)")  # fmt: skip
    return p


def dashboard_command(settings: Settings, port: int | None = None) -> list[str]:
    """The Streamlit server the dashboard runs as (``dashboard.serve``: its modules imported first): bound to
    127.0.0.1, headless, no usage statistics, no file watcher. Its environment carries the settings (the app reads
    them through ``Settings.from_env``)."""
    import dashboard

    app = Path(dashboard.__file__).parent / "app.py"
    return [sys.executable, "-m", "dashboard.serve", "run", str(app), "--server.address", "127.0.0.1",
            "--server.port", str(port or settings.dashboard_port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "minimal", "--global.developmentMode", "false"]  # fmt: skip


def dashboard_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "WAREHOUSE_PATH": str(settings.warehouse_path.resolve()),
            "WHALECOPY_LIVE_DIR": str(settings.live_root.resolve()), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}  # fmt: skip


def _settings(args: argparse.Namespace) -> Settings:
    s = Settings.from_env()
    changes: dict = {}
    if getattr(args, "warehouse", None):
        changes["warehouse_path"] = Path(args.warehouse)
        if "WHALECOPY_REPORT_PATH" not in os.environ:  # its report beside it, not over the demo's
            changes["report_path"] = Path(args.warehouse).with_suffix(".html")
    if getattr(args, "seed", None) is not None:
        changes["sim_seed"] = args.seed
    if getattr(args, "scale", None) is not None:
        changes["sim_scale"] = args.scale
    if getattr(args, "source", None):
        changes["source"] = args.source
    if getattr(args, "trades", None):
        changes["trades_path"] = args.trades
    if getattr(args, "markets", None):
        changes["markets_path"] = args.markets
    if getattr(args, "trades_format", None):
        changes["trades_format"] = args.trades_format
    if getattr(args, "activity", None):
        changes["activity_path"] = args.activity
    settings = dataclasses.replace(s, **changes)
    if getattr(args, "activity", None) and settings.source != "files":
        raise UsageError("--activity is a file of the file source: it needs --source files")
    if getattr(args, "trades_format", None) and settings.source != "files":
        raise UsageError(
            f"--format {args.trades_format} is how a trades file is written: it needs --source files"
        )
    return settings


#: the run tags Dagster reads for a run over a range of partitions (the documented tag names of a single-run
#: backfill; dagster exports no public constant for them, and its private module is not an API)
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


class UsageError(SystemExit):
    def __init__(self, message: str):
        super().__init__(f"whalecopy: {message}")


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def partition_range(
    settings: Settings, start: date | None = None, end: date | None = None
) -> tuple[date, date]:
    """The days a run covers: the source's whole history unless --start/--end narrow it."""
    from orchestration.resources import build_resources

    pm = build_resources(settings)["polymarket"]
    if settings.source == "live":
        yesterday = datetime.now(UTC).date() - timedelta(days=1)  # the last complete day
        lo, hi = yesterday - timedelta(days=settings.live_days - 1), yesterday
    else:
        bounds = pm.history()
        if bounds is None:
            raise UsageError("the trades file holds no usable timestamp: nothing to load")
        lo, hi = _day(bounds[0]), _day(bounds[1])
    lo, hi = start or lo, end or hi
    first = date.fromisoformat(settings.partition_start)
    if lo < first:
        raise UsageError(f"--start {lo} is before the first partition {first} (WHALECOPY_PARTITION_START)")
    if hi < lo:
        raise UsageError(f"--end {hi} is before --start {lo}")
    return lo, hi


def _check_inputs(settings: Settings) -> None:
    if settings.source == "files":
        for flag, path in (("--trades", settings.trades_path), ("--markets", settings.markets_path)):
            if not path:
                raise UsageError(f"--source files needs {flag} PATH")
            if not Path(path).exists():
                raise UsageError(f"{flag} {path}: no such file")
        if settings.activity_path and not Path(settings.activity_path).exists():
            raise UsageError(f"--activity {settings.activity_path}: no such file")


def run_sync(settings: Settings, *, start: date | None = None, end: date | None = None, scope: str | None = None,
             refetch: bool = False, rebuild_scores: bool = False, full_refresh: bool = False,
             strategy: dict | None = None, skip_groups: tuple[str, ...] = (), job_name: str | None = None,
             out=sys.stdout):  # fmt: skip
    """Run the ``sync`` job in this process over the source's history; returns the Dagster result. ``strategy``:
    fields of the run's ``StrategyConfig`` (every asset and gate of the run, and the live snapshot, see them).
    ``skip_groups``: asset groups left out (the live tests skip ``evaluation``, which nothing live reads).
    ``job_name``: another job of the definitions instead of ``sync`` (``daily``: ``whalecopy run --daily``)."""
    import dagster as dg

    from orchestration.definitions import build_definitions
    from orchestration.jobs import SYNC_JOB

    _check_inputs(settings)
    lo, hi = partition_range(settings, start, end)
    defs = build_definitions(settings)
    job = defs.resolve_job_def(job_name or SYNC_JOB)
    home = os.environ.get("DAGSTER_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
        instance = dg.DagsterInstance.get()
    else:
        instance = dg.DagsterInstance.ephemeral()
    trades_cfg: dict = {"refetch": refetch}
    if scope:
        trades_cfg["scope"] = scope
    run_config = {
        "ops": {
            "raw__trades": {"config": trades_cfg},
            "raw__price_history": {"config": {"refetch": refetch}},
            "analytics__whale_scores": {"config": {"rebuild_scores": rebuild_scores}},
            "transform": {"config": {"full_refresh": full_refresh}},
        },
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
    }
    if strategy:
        run_config["resources"] = {"strategy": {"config": dict(strategy)}}
    print(
        f"whalecopy: source={settings.source} days {lo}..{hi} warehouse={settings.warehouse_path}",
        file=out,
        flush=True,
    )
    selection = None
    if skip_groups:
        wanted = dg.AssetSelection.all() - dg.AssetSelection.groups(*skip_groups)
        selection = sorted(wanted.resolve(defs.resolve_asset_graph()), key=lambda k: k.to_user_string())
    result = job.execute_in_process(
        instance=instance,
        asset_selection=selection,
        run_config=run_config,
        tags={PARTITION_RANGE_START_TAG: lo.isoformat(), PARTITION_RANGE_END_TAG: hi.isoformat()},
        raise_on_error=False,
    )
    result.timings = step_timings(instance, result.run_id)
    return result


def step_timings(instance, run_id: str) -> list[tuple[str, float, str]]:
    """(step, seconds, status) in the order the steps ran, from the run's event log."""
    started: dict[str, float] = {}
    rows: list[tuple[str, float, str]] = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        kind, step = event.event_type_value, event.step_key
        if kind == "STEP_START":
            started[step] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and step in started:
            rows.append((step, entry.timestamp - started[step], "ok" if kind == "STEP_SUCCESS" else "FAILED"))
    return rows


def export_intents(args: argparse.Namespace, settings: Settings, out=sys.stdout) -> int:
    """Write the paper portfolio's fills that need an order (entries, mirrored sells, stops, time exits)."""
    import duckdb

    from assets.paper.intents import INTENTS_SQL, intents_frame, write_intents
    from assets.warehouse import table_exists

    if not Path(settings.warehouse_path).exists():
        raise UsageError(f"no warehouse at {settings.warehouse_path} (run `make demo` first)")
    since = datetime.combine(args.since, datetime.min.time(), UTC).timestamp() if args.since else 0.0
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        if not table_exists(con, "analytics.paper_fills"):
            raise UsageError("the warehouse has no paper portfolio yet (run `whalecopy run` first)")
        intents = intents_frame(con.execute(INTENTS_SQL, [since]).df())
    text = write_intents(intents, Path(args.out) if args.out else None, args.format)
    if args.out:
        print(f"whalecopy: {len(intents):,} intents written to {args.out}", file=out)
    else:
        out.write(text)
    return 0


SQL_CELL_WIDTH = 80  # the text table cuts longer values (ids fit); csv and json print them whole


def _sql_failure(exc: Exception) -> str:
    """One line saying why DuckDB refused or failed a query."""
    import duckdb

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.PermissionException):
        return f"refused: {first} (`whalecopy sql` reads the warehouse only: no other file, no network, no extension)"
    if "configuration has been locked" in first:
        return f"refused: {first} (`whalecopy sql` locks its sandbox's settings)"
    if "read-only mode" in first:
        return f"refused: {first} (`whalecopy sql` opens the warehouse read-only)"
    if isinstance(exc, duckdb.IOException) and "lock" in first.lower():
        return f"the warehouse is locked by another process (a run writing to it?): {first}"
    return first


def _sql_cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= SQL_CELL_WIDTH else text[: SQL_CELL_WIDTH - 3] + "..."


def _sql_json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN, inf: JSON has no such number
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_sql_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _sql_json_value(v) for k, v in value.items()}
    return value


def format_rows(columns: list[str], rows: list[tuple], fmt: str) -> str:
    """``rows`` as an aligned text table (numbers to the right), CSV with a header, or a JSON array of objects."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["true" if v is True else "false" if v is False else v for v in r] for r in rows])
        return buf.getvalue()
    if fmt == "json":
        objects = [dict(zip(columns, map(_sql_json_value, r), strict=True)) for r in rows]
        return (
            "[\n" + ",\n".join(json.dumps(o, default=str) for o in objects) + ("\n]\n" if objects else "]\n")
        )
    cells = [[_sql_cell(v) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [
        any(isinstance(r[i], int | float | Decimal) and not isinstance(r[i], bool) for r in rows)
        for i in range(len(columns))
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]) + "\n"


def run_sql(args: argparse.Namespace, settings: Settings, out=None, err=None) -> int:
    """``whalecopy sql``: the query on a sandboxed connection (orchestration/sandbox.py); 2 and one line on stderr
    when it is refused or fails."""
    import duckdb

    out, err = out or sys.stdout, err or sys.stderr

    from .sandbox import connect_sandboxed

    def fail(message: str) -> int:
        print(f"whalecopy sql: {message}", file=err)
        return 2

    if args.limit < 0:
        return fail(f"--limit {args.limit}: give 0 (every row) or a positive number")
    if not args.query.strip():
        return fail("the query is empty")
    try:
        con = connect_sandboxed(settings.warehouse_path)
    except FileNotFoundError as exc:
        return fail(f"{exc} (run `make demo` first, or give --warehouse PATH)")
    except duckdb.Error as exc:
        return fail(_sql_failure(exc))
    try:
        con.execute(args.query)
        columns = [d[0] for d in con.description] if con.description else []
        rows, more = [], 0
        if columns:
            rows = con.fetchmany(args.limit) if args.limit else con.fetchall()
            # the rest is counted, not kept, in Arrow batches (DuckDB warns of "an extra copy": one batch at a time)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                rest = con.to_arrow_reader(100_000) if args.limit else None
                more = sum(batch.num_rows for batch in rest) if rest is not None else 0
    except duckdb.Error as exc:
        return fail(_sql_failure(exc))
    finally:
        con.close()
    if not columns:
        print("whalecopy sql: the statement ran and returned no rows", file=err)
        return 0
    out.write(format_rows(columns, rows, args.format))
    total = len(rows) + more
    note = (
        f"({total:,} row{'' if total == 1 else 's'})"
        if not more
        else f"(first {len(rows):,} of {total:,} rows; {more:,} more not shown: raise --limit, 0 for all)"
    )
    print(note, file=out if args.format == "table" else err)
    return 0


def reconcile_positions(args: argparse.Namespace, settings: Settings, out=None) -> int:
    """``whalecopy reconcile``: 0 when every position matches or names its missing input, 1 when one differs
    with its inputs complete (a defect), 2 on bad input."""
    import duckdb
    import orjson
    import pandas as pd

    from assets.transform.reconcile import (
        OURS_SQL,
        QUARANTINED_SQL,
        polymarket_frame,
        reconcile,
        summary_line,
    )

    out = out or sys.stdout
    frames = []
    for path, closed in ((args.closed_positions, True), (args.positions, False)):
        if path:
            try:
                rows = orjson.loads(Path(path).read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise UsageError(f"{path}: not a JSON file ({exc})") from exc
            if not isinstance(rows, list):
                raise UsageError(f"{path}: expected a JSON array of position rows")
            try:
                frames.append(polymarket_frame(rows, closed=closed))
            except ValueError as exc:
                raise UsageError(f"{path}: {exc}") from exc
    if args.wallet:
        if settings.source == "files":
            raise UsageError("--wallet fetches from an API: use --source sim or live, or give the files")
        from orchestration.resources import build_resources

        with build_resources(settings)["polymarket"].open() as src:
            for wallet in args.wallet:
                for closed in (True, False):
                    rows = [r for page in src.data.positions(user=wallet, closed=closed) for r in page.rows]
                    if rows:
                        frames.append(polymarket_frame(rows, closed=closed))
    if not frames:
        raise UsageError("give --wallet W, --closed-positions FILE or --positions FILE")
    theirs = pd.concat(frames, ignore_index=True)
    if not Path(settings.warehouse_path).exists():
        raise UsageError(f"no warehouse at {settings.warehouse_path}")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        wallets = {"wallets": sorted(theirs["wallet"].unique())}
        ours = con.execute(OURS_SQL, wallets).df()
        quarantined = con.execute(QUARANTINED_SQL, wallets).df()
    result = reconcile(theirs, ours, quarantined)
    shown = result.drop(columns=["why"]) if args.format == "table" else result
    print(format_rows(list(shown.columns), [tuple(r) for r in shown.itertuples(index=False)], args.format),
          file=out)  # fmt: skip
    if args.format == "table":
        print(summary_line(result), file=out)
        for status, why in result.groupby("status")["why"].first().items():
            print(f"  {status}: {why}", file=out)
    return 1 if (result["status"] == "mismatch").any() else 0


def tune_score(args: argparse.Namespace, settings: Settings) -> int:
    """Build (or reuse) a simulated warehouse for the tuning seed, then grid-search the scoring constants."""
    import duckdb

    from assets.evaluate.tuning import tune

    if args.seed == Settings().sim_seed:
        raise UsageError(f"tune on a seed other than the demo's ({args.seed}): the demo reports on it")
    path = Path(args.warehouse or f"data/tune-seed{args.seed}.duckdb")
    settings = dataclasses.replace(
        settings, source="sim", sim_seed=args.seed, sim_scale=args.scale, warehouse_path=path
    )
    if not path.exists():
        result = run_sync(settings)
        if not result.success:
            from orchestration.summary import print_run_report

            return print_run_report(result, settings, 0.0)
    print(f"tuning on seed {args.seed} ({path}):", flush=True)
    with duckdb.connect(str(path)) as con:
        table = tune(con)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    best = table.iloc[0]
    print(f"best: consistency_scale={best['consistency_scale']}, min_return_days={int(best['min_return_days'])} "
          f"(mean IC {best['mean_ic']:+.4f})")  # fmt: skip
    return 0


def write_report(args: argparse.Namespace, settings: Settings) -> int:
    import duckdb

    from assets.evaluate import report
    from assets.evaluate.report_assets import render, report_data

    if not Path(settings.warehouse_path).exists():
        raise UsageError(f"no warehouse at {settings.warehouse_path} (run `make demo` first)")
    real = Path(args.real) if args.real else settings.real_warehouse_path
    if real is not None and not real.exists():
        raise UsageError(f"--real {real}: no such warehouse")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        html = render(report_data(con), settings.warehouse_path, real, settings.source_description)
    path = report.write_report(html, Path(args.out) if args.out else settings.report_path)
    print(f"whalecopy: report written to {path} ({len(html) / 1e6:.1f} MB)")
    return 0


def run_real_dump(settings: Settings) -> Path | None:
    """The demo's second run: the real 2022 midterms trades through the same job, into their own warehouse."""
    trades, markets = settings.real_dump_dir / "trades.jsonl.gz", settings.real_dump_dir / "markets.json"
    if not (trades.exists() and markets.exists()):
        print(f"whalecopy: no real dump at {settings.real_dump_dir} (WHALECOPY_REAL_DUMP): the report has no "
              "real-data section", flush=True)  # fmt: skip
        return None
    path = settings.warehouse_path.with_name("midterms.duckdb")
    real = dataclasses.replace(settings, source="files", trades_path=str(trades), markets_path=str(markets),
                               warehouse_path=path, report_path=path.with_suffix(".html"))  # fmt: skip
    t0 = time.perf_counter()
    result = run_sync(real)
    if not result.success:
        from orchestration.summary import print_run_report

        print_run_report(result, real, time.perf_counter() - t0)
        raise SystemExit("whalecopy: the real-dump run failed (above)")
    print(f"whalecopy: real trades ({trades}) -> {path} in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def run_live_command(args: argparse.Namespace, settings: Settings) -> int:
    """``whalecopy live`` and ``whalecopy live-demo`` (live/run.py)."""
    import asyncio

    from live import run as live_run
    from live.loop import LiveLocked

    if args.command == "live-demo":
        return live_run.demo(settings, days=args.days, speed=args.speed, scale=args.scale)
    if getattr(args, "live_dir", None):
        settings = dataclasses.replace(settings, live_dir=Path(args.live_dir))
    if args.watchlist:
        if not Path(args.watchlist).exists():
            raise UsageError(f"--watchlist {args.watchlist}: no such file")
        settings = dataclasses.replace(settings, live_watchlist=Path(args.watchlist))
    if args.status:
        live_run.report(settings)
        return 0
    if args.speed <= 0 or args.days <= 0:
        raise UsageError("--speed and --days must be positive")
    try:
        if args.source == "sim":
            settings = dataclasses.replace(settings, source="sim")
            status = asyncio.run(live_run.run_simulated(settings, days=args.days, speed=args.speed,
                                                        json_status=args.json))  # fmt: skip
            live_run.report(settings)
        else:
            status = live_run.run_polymarket(settings, json_status=args.json)
    except (LiveLocked, FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    return 0 if status.state != "failed" else 1


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    args = _parser().parse_args(argv)
    if args.command == "ui":
        os.execvp(
            "dagster", ["dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(args.port)]
        )
    settings = _settings(args)
    if args.command == "dashboard":
        if args.live_dir:
            settings = dataclasses.replace(settings, live_dir=Path(args.live_dir))
        cmd = dashboard_command(settings, args.port)
        print(f"whalecopy dashboard: http://127.0.0.1:{cmd[cmd.index('--server.port') + 1]} (warehouse "
              f"{settings.warehouse_path}, live store {settings.live_root / 'live.sqlite'}; read-only)", flush=True)  # fmt: skip
        os.execvpe(cmd[0], cmd, dashboard_env(settings))
    if args.command == "summary":
        from orchestration.summary import print_summary

        print_summary(settings.warehouse_path)
        return 0
    if args.command == "intents":
        return export_intents(args, settings)
    if args.command == "sql":
        return run_sql(args, settings)
    if args.command == "reconcile":
        return reconcile_positions(args, settings)
    if args.command == "tune-score":
        return tune_score(args, settings)
    if args.command == "report":
        return write_report(args, settings)
    if args.command in ("live", "live-demo"):
        return run_live_command(args, settings)
    if args.command == "demo":
        settings = dataclasses.replace(settings, source="sim")
        real = run_real_dump(settings)
        if real is not None:
            settings = dataclasses.replace(settings, real_warehouse_path=real)
    from orchestration.jobs import DAILY_JOB

    t0 = time.perf_counter()
    result = run_sync(
        settings,
        start=getattr(args, "start", None),
        end=getattr(args, "end", None),
        scope=args.scope,
        refetch=args.refetch,
        rebuild_scores=args.rebuild_scores,
        full_refresh=args.full_refresh,
        strategy={"keep_flagged_wallets": True} if args.keep_flagged else None,
        job_name=DAILY_JOB if getattr(args, "daily", False) else None,
    )
    from orchestration.summary import print_run_report

    code = print_run_report(result, settings, time.perf_counter() - t0)
    if result.success and Path(settings.report_path).exists():
        print(f"report: {Path(settings.report_path).resolve()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
