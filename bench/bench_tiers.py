"""Scale tiers: the full build from Parquet, stage by stage, beside its floor and a plain pandas version.

    python bench/bench_tiers.py --tier S                        1M fills, 10k wallets, 5k markets (make bench)
    python bench/bench_tiers.py --tier M                        10M fills, 100k wallets, 50k markets (make bench)
    python bench/bench_tiers.py --tier L --memory-limit 16GB    100M fills, 1M wallets, 500k markets (by hand)

(``--tier XS``, 50k fills, and ``--tier XS2``, two worlds of 50k like tier L's ten, are for development.) The tier's world is simulated once (``assets/ingest/sim.py``, its
``SimConfig`` set to the tier's counts) and cached as Parquet under ``--workdir``: the fills of every day but the
last (``fills_base_*``), the last day's fills (``fills_day_*``) and the markets as the project's Gamma parser
accepts them (``markets_*``). Tier L is ten worlds of tier M's size with seeds 7..16 (one world of 100M fills
would not fit in memory while it is generated): ten disjoint sets of markets and wallets over the same two years.
Generation is timed apart and is not part of the build.

Stages of the full build (every fill), each in a process of its own, so that each peak memory is that process's
own maximum resident set (``VmHWM``; ``ru_maxrss`` would also count the driver, which a vfork-and-exec child
inherits), Python included; for the marts, the dbt process's:

- **load**: the Parquet read with pyarrow and loaded by the project's loaders (``store.load_markets``, then
  ``store.load_trades``: the natural-key ``fill_key``, dedupe within the batch and against the table, one
  transaction per batch of at most ``--batch-rows`` rows). Floor: ``CREATE TABLE AS SELECT * FROM
  read_parquet(...)`` (no key, no dedupe). pandas: ``pd.read_parquet`` and ``drop_duplicates`` on the natural key.
- **marts**: the real ``dbt run`` (every model; dbt's parse is warmed first, as the Dagster assets run on a
  prepared manifest). Floor: one hand-written DuckDB script computing the same per-position P&L (average cost),
  daily returns and wallet features (volume, resolved positions, market HHI, net P&L) from ``raw.*`` with the
  marts' formulas, on narrow rows keyed by hashes, nothing else materialised. pandas: the same three results with
  groupby, cumsum, shift and merge on the deduplicated fills (reading and deduplicating them is not timed).
- **score**: ``model.score_wallets`` (the whole-history kernels: Sharpe, information ratio, drawdown, Calmar,
  rolling Sharpes, consistency, WQS) on ``marts.wallet_daily_returns`` and ``marts.wallet_features`` read through
  Arrow. Floor: the bare numpy primitives for the same per-wallet numbers (a dense wallets x days array filled from
  integer ids; sums and cumulative sums for means, sds and the rolling 30-day Sharpe; cumprod and a running max
  for drawdowns). pandas: groupby mean/std/cumprod/cummax and groupby-rolling(30) mean/std/max/min on the long rows.

A pandas stage is stopped past ``--pandas-timeout`` seconds or ``--pandas-max-gb`` resident, any other stage past
``--max-gb`` (the stage's processes killed by pid), and reported as not finished. Agreement is checked after the
timings, by DuckDB in the driver with a 3 GB limit: row counts and keys, and the largest absolute difference of
the key numeric columns.

The daily incremental sync: a second warehouse is built from every day but the last (not timed), then the last
day is synced and timed (that day's Parquet and the markets loaded, ``dbt run``, incremental, the scores) and the result is
compared with the full build: a content hash per table (``bit_xor`` of a row hash; ``ingested_at`` and
``fetched_at`` left out) and, where a hash differs, a keyed comparison (rows in one only, differing values,
largest float difference) that tells float summation order from a real difference. A control then compares a
second full build from scratch with the first. Tier L skips pandas and the sync. Prints one JSON line (also
written to ``<workdir>/<tier>/result.json``); the warehouses are deleted unless ``--keep``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

DBT = str(Path(sys.executable).parent / "dbt")
DAY = 86_400
#: fills per simulator trade (10M trades gave 10,253,937 fills: exits, extra legs and wash round trips)
FILLS_PER_TRADE = 1.0254
#: tier -> (fills, wallets, markets, worlds it is generated as)
TIERS = {
    "XS": (50_000, 500, 250, 1),  # development only
    "XS2": (100_000, 1_000, 500, 2),  # development only: tier L's layout (several worlds) at a small size
    "S": (1_000_000, 10_000, 5_000, 1),
    "M": (10_000_000, 100_000, 50_000, 1),
    "L": (100_000_000, 1_000_000, 500_000, 10),
}
NATURAL_KEY = ["transaction_hash", "proxy_wallet", "asset", "side", "size", "price", "ts"]
TARGETS = {"build_s": 120.0, "build_x_floor": 2.5, "sync_s": 10.0}  # issue 15 (bench/run.py:TIER_TARGETS)


def log(msg: str) -> None:
    print(f"[bench_tiers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_mb(children: bool = False) -> int:
    """This process's peak resident set (VmHWM: its own address space since exec; ``ru_maxrss`` would also count
    the parent's, which a vfork-and-exec child inherits), or with ``children`` the largest of its children's."""
    status = Path("/proc/self/status").read_text()
    own = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1])
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if children else 0
    return round(max(own, kids) / 1024)


def dbt_vars() -> dict:
    return yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())["vars"]


def connect(db: str, memory_limit: str | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(db, read_only=read_only)
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


# ------------------------------------------------------------------------------------------------ generate


def st_generate(a: argparse.Namespace) -> dict:
    """One world (tier L: one of ten) -> fills_base_XX, fills_day_XX and markets_XX Parquet files."""
    from assets.ingest.clients import Page
    from assets.ingest.records import Batch, parse_markets
    from assets.ingest.sim import SimConfig, generate_world, tape_table
    from assets.ingest.sim_api import SimPolymarket

    fills, wallets, markets, worlds = TIERS[a.tier]
    cfg = SimConfig(seed=7 + a.chunk, n_markets=markets // worlds, n_wallets=wallets // worlds,
                    n_trades=round(fills / worlds / FILLS_PER_TRADE))  # fmt: skip
    out = Path(a.dir)
    t0 = time.perf_counter()
    world = generate_world(cfg)
    table = tape_table(world)
    t_world = time.perf_counter() - t0
    batch = Batch()
    batch.add(Page("sim", SimPolymarket(world).market_objects()))
    parsed = parse_markets(batch, source="sim")
    t_markets = time.perf_counter() - t0 - t_world
    cut = world.now - DAY  # the last day of the history: the day the incremental sync adds
    last = pc.greater_equal(table["ts"], cut)
    t1 = time.perf_counter()
    pq.write_table(table.filter(pc.invert(last)), out / f"fills_base_{a.chunk:02d}.parquet")
    pq.write_table(table.filter(last), out / f"fills_day_{a.chunk:02d}.parquet")
    pq.write_table(parsed.accepted, out / f"markets_{a.chunk:02d}.parquet")
    return {
        "seed": cfg.seed, "fills": table.num_rows, "day_fills": int(pc.sum(last).as_py() or 0),
        "wallets": cfg.n_wallets, "markets": len(world.markets), "markets_rejected": parsed.n_rejected,
        "simulate_s": round(t_world, 2), "markets_s": round(t_markets, 2),
        "write_parquet_s": round(time.perf_counter() - t1, 2), "last_day_start": cut,
        "seconds": round(time.perf_counter() - t0, 2), "peak_rss_mb": peak_mb(),
    }  # fmt: skip


# ------------------------------------------------------------------------------------------------ load


def st_load(a: argparse.Namespace) -> dict:
    """The project's loaders: markets upserted by content hash, fills inserted by natural key (deduplicated)."""
    from assets.ingest.store import ensure_raw, load_markets, load_trades
    from quality.quarantine import QUARANTINE_SCHEMA

    t0 = time.perf_counter()
    con = connect(a.db, a.memory_limit)
    ensure_raw(con)
    markets = pa.concat_tables([pq.read_table(m) for m in a.markets])
    m = load_markets(con, markets, QUARANTINE_SCHEMA.empty_table(), source="sim")
    del markets
    t_markets = time.perf_counter() - t0
    inserted = repeats = batches = 0
    pending: list[pa.Table] = []

    def flush() -> None:
        nonlocal inserted, repeats, batches
        if pending:
            r = load_trades(con, pa.concat_tables(pending), QUARANTINE_SCHEMA.empty_table(), source="sim")
            inserted, repeats, batches = inserted + r.inserted, repeats + r.repeats, batches + 1
            pending.clear()

    t_read = 0.0
    for f in a.fills:
        t1 = time.perf_counter()
        t = pq.read_table(f)
        t_read += time.perf_counter() - t1
        if pending and sum(p.num_rows for p in pending) + t.num_rows > a.batch_rows:
            flush()
        pending.append(t)
    flush()
    seconds = time.perf_counter() - t0
    n, notional = con.execute("SELECT count(*), sum(size * price) FROM raw.trades").fetchone()
    (n_markets,) = con.execute("SELECT count(*) FROM raw.markets").fetchone()
    con.close()
    return {"seconds": round(seconds, 2), "markets_s": round(t_markets, 2), "read_parquet_s": round(t_read, 2),
            "peak_rss_mb": peak_mb(),
            "rows": n, "notional": notional, "markets": n_markets, "markets_changed": m.inserted,
            "inserted": inserted, "repeats": repeats, "batches": batches}  # fmt: skip


def st_load_floor(a: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    con = connect(a.db, a.memory_limit)
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("CREATE TABLE raw.markets AS SELECT * FROM read_parquet(?)", [a.markets])
    con.execute("CREATE TABLE raw.trades AS SELECT * FROM read_parquet(?)", [a.fills])
    seconds = time.perf_counter() - t0
    n, notional = con.execute("SELECT count(*), sum(size * price) FROM raw.trades").fetchone()
    (n_markets,) = con.execute("SELECT count(*) FROM raw.markets").fetchone()
    con.close()
    return {"seconds": round(seconds, 2), "peak_rss_mb": peak_mb(), "rows": n, "notional": notional,
            "markets": n_markets}  # fmt: skip


def read_fills_pandas(files: list[str], columns: list[str] | None = None) -> pd.DataFrame:
    fills = pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True)
    return fills.drop_duplicates(subset=NATURAL_KEY, ignore_index=True)


def st_load_pandas(a: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    fills = read_fills_pandas(a.fills)
    markets = pd.concat([pd.read_parquet(m) for m in a.markets], ignore_index=True)
    markets = markets.drop_duplicates(subset="condition_id", keep="last")
    seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 2), "peak_rss_mb": peak_mb(), "rows": len(fills),
            "notional": float((fills["size"] * fills["price"]).sum()), "markets": len(markets)}  # fmt: skip


# ------------------------------------------------------------------------------------------------ marts


def write_profiles(directory: Path, memory_limit: str | None) -> None:
    """The project's dbt profile, with DuckDB's memory limit added when one is given."""
    profiles = yaml.safe_load((ROOT / "dbt_project" / "profiles.yml").read_text())
    if memory_limit:
        for output in profiles["whalecopy"]["outputs"].values():
            output.setdefault("settings", {})["memory_limit"] = memory_limit
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))


def dbt_args(command: str, target: str, profiles: str) -> list[str]:
    """A dbt command's arguments on the project, with its own profiles, target and log directories."""
    return [command, "--project-dir", str(ROOT / "dbt_project"), "--profiles-dir", profiles,
            "--target-path", target, "--log-path", str(Path(target) / "logs")]  # fmt: skip


def dbt_command(command: str, db: str, target: str, profiles: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WHALECOPY_DBT_DATABASE": db, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    out = subprocess.run([DBT, *dbt_args(command, target, profiles)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"dbt {command} failed:\n{out.stdout[-4000:]}\n{out.stderr[-2000:]}")
    return out


def st_marts(a: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    dbt_command("run", a.db, a.target, a.profiles)
    seconds = time.perf_counter() - t0
    results = json.loads((Path(a.target) / "run_results.json").read_text())["results"]
    models = sorted(((r["unique_id"].split(".")[-1], round(r["execution_time"], 2)) for r in results),
                    key=lambda x: -x[1])  # fmt: skip
    return {"seconds": round(seconds, 2), "peak_rss_mb": peak_mb(children=True), "models_s": dict(models)}


def st_marts_inprocess(a: argparse.Namespace) -> dict:
    """``dbt run`` through dbt's programmatic runner, twice in one process: the first pays dbt's start-up (imports,
    project and manifest load, adapter), the second is what a long-lived process pays per run."""
    from dbt.cli.main import dbtRunner

    os.environ.update({"WHALECOPY_DBT_DATABASE": a.db, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    argv = [*dbt_args("run", a.target, a.profiles), "--quiet"]
    runner, seconds = dbtRunner(), []
    for _ in range(2):
        t0 = time.perf_counter()
        result = runner.invoke(argv)
        seconds.append(round(time.perf_counter() - t0, 2))
        if not result.success:
            raise SystemExit(f"dbt run failed: {result.exception}")
    return {"seconds": seconds[1], "first_s": seconds[0], "peak_rss_mb": peak_mb()}


def st_marts_sync(a: argparse.Namespace) -> dict:
    """``dbt build`` in this process through the pipeline's runner (``assets/transform/runner.py:run_dbt``), as the
    ``transform`` asset runs it on a day's sync: the models and their data tests, the key tests reading the keys the
    build wrote (``WHALECOPY_DBT_TEST_SCOPE=increment``, the unit tests left out: macros/test_scope.sql); with
    ``--command test`` only the data tests, reading ``--test-scope`` (to time what a whole read costs). dbt's modules
    are imported first and timed apart (a Dagster run has them loaded with its definitions), on the target the
    warehouse's last build left (its partial parse)."""
    t0 = time.perf_counter()
    from dbt.cli.main import dbtRunner  # noqa: F401 - imported before the clock starts

    from assets.transform.runner import run_dbt

    import_s = time.perf_counter() - t0
    os.environ.update({"WHALECOPY_DBT_DATABASE": a.db, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                       "WHALECOPY_DBT_TEST_SCOPE": a.test_scope})  # fmt: skip
    t0 = time.perf_counter()
    outcome = run_dbt(
        [a.command, "--quiet", "--exclude-resource-type", "unit_test"],
        project_dir=ROOT / "dbt_project", profiles_dir=a.profiles, target_path=a.target,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if not outcome.success:
        raise SystemExit(f"dbt {a.command} failed: {outcome.exception or outcome.failures}")
    timed = sorted(((name, round(t, 2)) for name, t in outcome.timings.items()), key=lambda x: -x[1])
    return {"seconds": round(seconds, 2), "import_s": round(import_s, 2), "peak_rss_mb": peak_mb(),
            "models_s": {n: t for n, t in timed if n not in outcome.tests},
            "tests_s": round(sum(outcome.timings[n] for n in outcome.tests), 2), "tests": len(outcome.tests),
            "slowest_tests_s": dict([(n, t) for n, t in timed if n in outcome.tests][:4])}  # fmt: skip


FLOOR_MARTS_SQL = """
CREATE SCHEMA IF NOT EXISTS floor;
CREATE OR REPLACE TABLE floor.tokens AS
WITH m AS (
    SELECT condition_id, from_json(clob_token_ids, '["VARCHAR"]') AS tokens,
           try_cast(from_json(outcome_prices, '["VARCHAR"]') AS DOUBLE[]) AS prices,
           coalesce(closed, false) AND coalesce(uma_resolution_status, '') = 'resolved' AS is_resolved,
           coalesce(try_cast(uma_end_date AS TIMESTAMPTZ), try_cast(closed_time AS TIMESTAMPTZ)) AS resolved_at
    FROM raw.markets
), v AS (
    SELECT *, is_resolved AND len(prices) = len(tokens) AND (
        (len(list_filter(prices, lambda p: p = 1.0)) = 1 AND len(list_filter(prices, lambda p: p = 0.0)) = len(prices) - 1)
        OR len(list_filter(prices, lambda p: p = 0.5)) = len(prices)) AS valid
    FROM m
)
SELECT unnest(tokens) AS token_id, unnest(CASE WHEN valid THEN prices ELSE list_transform(tokens, lambda t: NULL::DOUBLE) END) AS payout,
       coalesce(valid, false) AS valid, CASE WHEN is_resolved THEN resolved_at END AS resolved_at
FROM v;

CREATE OR REPLACE TABLE floor.fill_state AS
WITH f AS (
    -- the windows run on narrow rows keyed by a 64-bit position hash, the text columns joined back once
    SELECT hash(proxy_wallet, asset) AS pid, fill_key, ts, side = 'BUY' AS buy, size, size * price AS notional
    FROM raw.trades
), h AS (
    SELECT *, sum(CASE WHEN buy THEN size ELSE -size END) OVER (PARTITION BY pid ORDER BY ts, fill_key
              ROWS UNBOUNDED PRECEDING) AS shares_after
    FROM f
), s AS (
    SELECT *, NOT buy AND shares_after <= {eps} AS ends_segment, NOT buy AND shares_after < -{eps} AS oversold,
           CASE WHEN NOT buy AND shares_after > {eps} THEN ln(shares_after / (shares_after + size)) ELSE 0.0 END AS log_a,
           CASE WHEN buy THEN notional ELSE 0.0 END AS c
    FROM h
), g AS (
    SELECT *, coalesce(sum(ends_segment::INTEGER) OVER (PARTITION BY pid ORDER BY ts, fill_key
              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS seg
    FROM s
), l AS (
    SELECT *, greatest(sum(log_a) OVER (PARTITION BY pid, seg ORDER BY ts, fill_key ROWS UNBOUNDED PRECEDING), -700.0)
              AS cum_log
    FROM g
), b AS (
    SELECT *, CASE WHEN ends_segment THEN 0.0 ELSE round(exp(cum_log) * sum(c * exp(-cum_log)) OVER (
              PARTITION BY pid, seg ORDER BY ts, fill_key ROWS UNBOUNDED PRECEDING), 9) END AS basis_after
    FROM l
), w AS (
    SELECT pid, ts, fill_key, buy, notional, size, shares_after, basis_after, oversold,
           coalesce(lag(basis_after) OVER o, 0.0) AS basis_before, lead(fill_key) OVER o IS NULL AS is_last
    FROM b
    WINDOW o AS (PARTITION BY pid ORDER BY ts, fill_key)
)
SELECT w.*, t.proxy_wallet AS wallet, t.condition_id, t.asset AS token_id
FROM w JOIN raw.trades t USING (fill_key);

CREATE OR REPLACE TABLE floor.positions AS
WITH a AS (
    SELECT pid, any_value(wallet) AS wallet, any_value(condition_id) AS condition_id, any_value(token_id) AS token_id,
           sum(CASE WHEN buy THEN size ELSE 0.0 END) AS bought, sum(CASE WHEN buy THEN 0.0 ELSE size END) AS sold,
           sum(CASE WHEN buy THEN notional ELSE 0.0 END) AS cost, sum(CASE WHEN buy THEN 0.0 ELSE notional END) AS proceeds,
           sum(notional) * {fee} AS fees,
           sum(CASE WHEN buy THEN 0.0 ELSE notional - (basis_before - basis_after) END) AS realised_at_sells,
           any_value(basis_after) FILTER (WHERE is_last) AS open_basis, bool_or(oversold) AS has_negative_shares
    FROM floor.fill_state GROUP BY pid
), r AS (
    SELECT a.*, t.valid, t.payout, t.resolved_at,
           CASE WHEN t.valid THEN proceeds - cost + t.payout * (bought - sold) END AS pnl_at_resolution
    FROM a LEFT JOIN floor.tokens t USING (token_id)
)
SELECT pid, wallet, condition_id, token_id, coalesce(valid, false) AS is_resolved, resolved_at, open_basis,
       NOT has_negative_shares AS is_scorable, coalesce(pnl_at_resolution, realised_at_sells) AS pnl_gross,
       coalesce(pnl_at_resolution, realised_at_sells) - fees AS pnl_net,
       coalesce(pnl_at_resolution - realised_at_sells, 0.0) AS realised_at_resolution,
       CASE WHEN valid THEN pnl_at_resolution > 0 END AS won
FROM r;

CREATE OR REPLACE TABLE floor.wallet_daily_returns AS
WITH cut AS (
    -- wallets keyed by a 64-bit hash for the spine and its window, the address joined back at the end
    SELECT pid, ts AS cut_ts, fill_key AS cut_key, hash(wallet) AS wid, basis_before AS written_off
    FROM floor.fill_state WHERE oversold
    QUALIFY row_number() OVER (PARTITION BY pid ORDER BY ts, fill_key) = 1
), events AS (
    SELECT hash(f.wallet) AS wid, f.ts // 86400 AS d, sum(CASE WHEN f.buy THEN f.notional ELSE 0.0 END) AS buys,
           sum(CASE WHEN f.buy THEN 0.0 ELSE f.basis_before - f.basis_after END) AS basis_removed,
           sum(CASE WHEN f.buy THEN 0.0 ELSE f.notional - (f.basis_before - f.basis_after) END) AS realised,
           sum(f.notional) * {fee} AS fees
    FROM floor.fill_state f LEFT JOIN cut c USING (pid)
    WHERE c.cut_ts IS NULL OR f.ts < c.cut_ts OR (f.ts = c.cut_ts AND f.fill_key < c.cut_key)
    GROUP BY 1, 2
    UNION ALL
    SELECT wid, cut_ts // 86400, 0.0, sum(written_off), 0.0, 0.0 FROM cut GROUP BY 1, 2
    UNION ALL
    SELECT hash(wallet), CAST(floor(epoch(resolved_at) / 86400) AS BIGINT), 0.0, sum(open_basis),
           sum(realised_at_resolution), 0.0
    FROM floor.positions WHERE is_resolved AND is_scorable GROUP BY 1, 2
), e AS (
    SELECT wid, d, sum(buys) AS buys, sum(basis_removed) AS basis_removed, sum(realised) AS realised,
           sum(fees) AS fees
    FROM events GROUP BY 1, 2
), spine AS (
    SELECT wid, unnest(range(min(d), (SELECT max(d) FROM e) + 1)) AS d FROM e GROUP BY wid
), run AS (
    SELECT s.wid, s.d, coalesce(e.buys, 0.0) AS buys, coalesce(e.realised, 0.0) - coalesce(e.fees, 0.0) AS pnl_net,
           greatest(coalesce(sum(coalesce(e.buys, 0.0) - coalesce(e.basis_removed, 0.0)) OVER (PARTITION BY s.wid
               ORDER BY s.d ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0.0), 0.0) AS open_basis_start
    FROM spine s LEFT JOIN e USING (wid, d)
), names AS (
    SELECT DISTINCT hash(wallet) AS wid, wallet FROM floor.positions
)
SELECT n.wallet, CAST(DATE '1970-01-01' + CAST(d AS INTEGER) AS DATE) AS day, pnl_net,
       CASE WHEN open_basis_start + buys >= 0.01 THEN pnl_net / (open_basis_start + buys)
            WHEN abs(pnl_net) < 0.01 THEN 0.0 END AS daily_return
FROM run JOIN names n USING (wid);

CREATE OR REPLACE TABLE floor.wallet_features AS
WITH act AS (
    SELECT wallet, count(*) AS n_fills, sum(notional) AS volume FROM floor.fill_state GROUP BY wallet
), bm AS (
    SELECT wallet, condition_id, sum(notional) AS v FROM floor.fill_state GROUP BY ALL
), hhi AS (
    SELECT wallet, 10000.0 * sum(power(v / total, 2)) AS market_hhi
    FROM (SELECT *, sum(v) OVER (PARTITION BY wallet) AS total FROM bm) WHERE total > 0 GROUP BY wallet
), rec AS (
    SELECT wallet, count(*) FILTER (WHERE is_resolved AND is_scorable) AS n_resolved_positions,
           coalesce(sum(pnl_net) FILTER (WHERE is_scorable), 0.0) AS pnl_net
    FROM floor.positions GROUP BY wallet
)
SELECT wallet, n_fills, volume, n_resolved_positions, market_hhi, pnl_net
FROM act LEFT JOIN rec USING (wallet) LEFT JOIN hhi USING (wallet);
"""


def st_marts_floor(a: argparse.Namespace) -> dict:
    v = dbt_vars()
    sql = FLOOR_MARTS_SQL.format(eps=v["share_epsilon"], fee=v["fee_rate"])
    con = connect(a.db, a.memory_limit)
    t0 = time.perf_counter()
    for statement in sql.split(";"):
        if statement.strip():
            con.execute(statement)
    seconds = time.perf_counter() - t0
    con.execute("DROP TABLE floor.fill_state")  # not a result; only the warehouse's size
    con.close()
    return {"seconds": round(seconds, 2), "peak_rss_mb": peak_mb()}


def pandas_tokens(markets: pd.DataFrame) -> pd.DataFrame:
    """One row per token of a two-outcome market (the simulator's): payout where the market resolved validly."""
    pair = r'^\["([^"]*)",\s*"([^"]*)"\]$'
    tokens = markets["clob_token_ids"].str.extract(pair)
    prices = markets["outcome_prices"].str.extract(pair).apply(pd.to_numeric, errors="coerce")
    resolved = markets["closed"].fillna(False).astype(bool) & (
        markets["uma_resolution_status"].fillna("") == "resolved"
    )
    one_hot = ((prices[0] == 1) & (prices[1] == 0)) | ((prices[0] == 0) & (prices[1] == 1))
    valid = resolved & (one_hot | ((prices[0] == 0.5) & (prices[1] == 0.5))) & tokens[1].notna()
    at = pd.to_datetime(markets["uma_end_date"], utc=True, errors="coerce", format="ISO8601")
    at = at.fillna(pd.to_datetime(markets["closed_time"], utc=True, errors="coerce", format="ISO8601"))
    resolved_ts = (at - pd.Timestamp(0, tz="UTC")).dt.total_seconds().where(resolved)
    return pd.concat(
        [pd.DataFrame({"token_id": tokens[i], "payout": prices[i].where(valid), "valid": valid,
                       "resolved_ts": resolved_ts}) for i in (0, 1)],
        ignore_index=True,
    ).dropna(subset=["token_id"])  # fmt: skip


def pandas_marts(fills: pd.DataFrame, markets: pd.DataFrame, fee_rate: float, eps: float) -> dict:
    """Positions (average cost), daily returns and wallet features with plain pandas (file order breaks ties)."""
    f = fills
    f["notional"] = f["size"] * f["price"]
    f["pos"] = f.groupby(["proxy_wallet", "asset"], sort=False).ngroup()
    f = f.sort_values(["pos", "ts"], kind="stable", ignore_index=True)
    buy = f["side"] == "BUY"
    signed = f["size"].where(buy, -f["size"])
    f["shares_after"] = signed.groupby(f["pos"]).cumsum()
    f["ends"] = ~buy & (f["shares_after"] <= eps)
    f["oversold"] = ~buy & (f["shares_after"] < -eps)
    partial = ~buy & (f["shares_after"] > eps)
    ratio = (f["shares_after"] / (f["shares_after"] + f["size"])).where(partial, 1.0)
    log_a = np.log(ratio)
    seg = f["ends"].astype(np.int64).groupby(f["pos"]).cumsum() - f["ends"].astype(np.int64)
    cum_log = log_a.groupby([f["pos"], seg]).cumsum().clip(lower=-700.0)
    c = f["notional"].where(buy, 0.0)
    basis = (np.exp(cum_log) * (c * np.exp(-cum_log)).groupby([f["pos"], seg]).cumsum()).round(9)
    f["basis_after"] = basis.where(~f["ends"], 0.0)
    f["basis_before"] = f["basis_after"].groupby(f["pos"]).shift(1).fillna(0.0)
    f["basis_removed"] = (f["basis_before"] - f["basis_after"]).where(~buy, 0.0)
    f["realised"] = (f["notional"] - f["basis_removed"]).where(~buy, 0.0)
    f["fee"] = f["notional"] * fee_rate
    f["buy_size"], f["sell_size"] = f["size"].where(buy, 0.0), f["size"].where(~buy, 0.0)
    f["cost"], f["proceeds"] = f["notional"].where(buy, 0.0), f["notional"].where(~buy, 0.0)

    p = f.groupby("pos").agg(
        wallet=("proxy_wallet", "first"), token_id=("asset", "first"), bought=("buy_size", "sum"),
        sold=("sell_size", "sum"), cost=("cost", "sum"), proceeds=("proceeds", "sum"), fees=("fee", "sum"),
        realised_at_sells=("realised", "sum"), open_basis=("basis_after", "last"),
        has_negative_shares=("oversold", "any"),
    )  # fmt: skip
    p = p.merge(pandas_tokens(markets), on="token_id", how="left")
    p["valid"] = p["valid"].fillna(False).astype(bool)
    at_resolution = (p["proceeds"] - p["cost"] + p["payout"] * (p["bought"] - p["sold"])).where(p["valid"])
    p["pnl_gross"] = at_resolution.fillna(p["realised_at_sells"])
    p["pnl_net"] = p["pnl_gross"] - p["fees"]
    p["realised_at_resolution"] = (at_resolution - p["realised_at_sells"]).fillna(0.0)
    p["is_scorable"] = ~p["has_negative_shares"]

    # daily returns: fills before a position's first oversold fill, its write-off, and resolutions
    over_seen = f["oversold"].astype(np.int64).groupby(f["pos"]).cumsum()
    f["d"] = f["ts"] // DAY
    counted = f[over_seen == 0]
    fill_days = counted.groupby(["proxy_wallet", "d"]).agg(
        n_fills=("ts", "size"), buys=("cost", "sum"), basis_removed=("basis_removed", "sum"),
        realised=("realised", "sum"), fees=("fee", "sum"),
    )  # fmt: skip
    cuts = f[f["oversold"] & (over_seen == 1)]
    write_offs = cuts.groupby(["proxy_wallet", "d"]).agg(basis_removed=("basis_before", "sum"))
    res = p[p["valid"] & p["is_scorable"]].assign(
        d=lambda x: np.floor(x["resolved_ts"] / DAY).astype(np.int64)
    )
    res_days = res.groupby(["wallet", "d"]).agg(basis_removed=("open_basis", "sum"),
                                                realised=("realised_at_resolution", "sum"))  # fmt: skip
    res_days.index.names = ["proxy_wallet", "d"]
    events = (
        pd.concat([fill_days, write_offs, res_days]).fillna(0.0).groupby(level=[0, 1]).sum().reset_index()
    )
    first = events.groupby("proxy_wallet")["d"].min()
    last_day = events["d"].max()
    length = (last_day - first + 1).to_numpy()
    starts = np.repeat(np.cumsum(length) - length, length)
    spine = pd.DataFrame({"proxy_wallet": np.repeat(first.index.to_numpy(), length),
                          "d": np.repeat(first.to_numpy(), length) + np.arange(length.sum()) - starts})  # fmt: skip
    r = spine.merge(events, on=["proxy_wallet", "d"], how="left").fillna(0.0)
    flow = r["buys"] - r["basis_removed"]
    r["open_basis_start"] = (flow.groupby(r["proxy_wallet"]).cumsum() - flow).clip(lower=0.0)
    capital = r["open_basis_start"] + r["buys"]
    r["pnl_net"] = r["realised"] - r["fees"]
    r["daily_return"] = np.where(capital >= 0.01, r["pnl_net"] / capital.where(capital >= 0.01, 1.0),
                                 np.where(r["pnl_net"].abs() < 0.01, 0.0, np.nan))  # fmt: skip
    daily = pd.DataFrame({"wallet": r["proxy_wallet"], "day": pd.to_datetime(r["d"], unit="D").dt.date,
                          "daily_return": r["daily_return"], "pnl_net": r["pnl_net"]})  # fmt: skip

    # wallet features
    act = f.groupby("proxy_wallet").agg(n_fills=("ts", "size"), volume=("notional", "sum"))
    v = f.groupby(["proxy_wallet", "condition_id"])["notional"].sum()
    total = v.groupby(level=0).transform("sum")
    hhi = (10_000.0 * (v / total) ** 2)[total > 0].groupby(level=0).sum().rename("market_hhi")
    scorable = p[p["is_scorable"]]
    rec = pd.DataFrame({
        "n_resolved_positions": scorable.groupby("wallet")["valid"].sum(),
        "pnl_net": scorable.groupby("wallet")["pnl_net"].sum(),
    })  # fmt: skip
    features = act.join(rec).join(hhi).rename_axis("wallet").reset_index()
    features["n_resolved_positions"] = features["n_resolved_positions"].fillna(0).astype(np.int64)
    features["pnl_net"] = features["pnl_net"].fillna(0.0)
    positions = p[["wallet", "token_id", "pnl_gross", "pnl_net"]]
    return {"positions": positions, "wallet_daily_returns": daily, "wallet_features": features}


def st_marts_pandas(a: argparse.Namespace) -> dict:
    v = dbt_vars()
    fills = read_fills_pandas(a.fills, ["proxy_wallet", "side", "asset", "condition_id", "size", "price", "ts",
                                        "transaction_hash"])  # fmt: skip
    fills = fills.drop(columns="transaction_hash")
    markets = pd.concat([pd.read_parquet(m) for m in a.markets], ignore_index=True)
    t0 = time.perf_counter()
    out = pandas_marts(fills, markets, v["fee_rate"], v["share_epsilon"])
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    for name, frame in out.items():
        frame.to_parquet(Path(a.out) / f"{name}.parquet", index=False)
    return {"seconds": round(seconds, 2), "peak_rss_mb": peak, "rows": {k: len(x) for k, x in out.items()}}


# ------------------------------------------------------------------------------------------------ score

RETURNS_SQL = "SELECT wallet, day, daily_return FROM marts.wallet_daily_returns"
FEATURES_SQL = "SELECT wallet, n_resolved_positions, volume, market_hhi FROM marts.wallet_features"
SCORE_COLUMNS = ["wallet", "n_return_days", "sharpe", "information_ratio", "max_drawdown", "calmar",
                 "consistency", "wqs"]  # fmt: skip


def st_score(a: argparse.Namespace) -> dict:
    from assets.score import model

    t0 = time.perf_counter()
    con = connect(a.db, a.memory_limit, read_only=True)
    # wallets as Arrow's dictionary and days as datetime64, as the pipeline's scoring reads them (no Python objects)
    returns = (
        con.sql(RETURNS_SQL).arrow().read_all().to_pandas(date_as_object=False, strings_to_categorical=True)
    )
    features = con.sql(FEATURES_SQL).arrow().read_all().to_pandas()
    con.close()
    t_read = time.perf_counter() - t0
    scored = model.score_wallets(features, returns)
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    t1 = time.perf_counter()
    model.returns_matrix(returns)  # how much of score_wallets is the pivot (after the stage: not in its peak)
    t_pivot = time.perf_counter() - t1
    out = scored[SCORE_COLUMNS].copy()
    for col in SCORE_COLUMNS[1:]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    out.to_parquet(a.out, index=False)
    return {"seconds": round(seconds, 2), "read_s": round(t_read, 2), "returns_matrix_s": round(t_pivot, 2),
            "peak_rss_mb": peak, "wallets": len(out), "return_rows": len(returns),
            "scored": int(out["wqs"].notna().sum())}  # fmt: skip


def st_history(a: argparse.Namespace) -> dict:
    """The pipeline's scoring (``assets/score/incremental.py``, what the ``whale_scores`` asset runs): the as-of
    dates the warehouse does not hold yet, carried on from its stored state when there is one, written to
    ``analytics.whale_scores``."""
    from datetime import UTC, datetime

    from assets.score import model
    from assets.score.assets import WHALE_SCORES_COLUMNS
    from assets.score.incremental import read_grid, score_increment
    from assets.strategy import StrategyConfig
    from assets.warehouse import create_table_sql

    t0 = time.perf_counter()
    con = connect(a.db, a.memory_limit)
    con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
    con.execute(create_table_sql("analytics.whale_scores", WHALE_SCORES_COLUMNS, key="as_of, wallet"))
    grid = read_grid(con)
    held = {r[0] for r in con.execute("SELECT DISTINCT as_of FROM analytics.whale_scores").fetchall()}
    strategy = StrategyConfig()
    todo = [
        d
        for d in model.as_of_dates(grid.first_day, grid.last_day, strategy.score_every_days)
        if d not in held
    ]
    if not todo:  # every as-of date is held already (a by-hand rerun on a scored warehouse)
        con.close()
        return {"seconds": round(time.perf_counter() - t0, 2), "peak_rss_mb": peak_mb(), "plan": "nothing to score",
                "as_of_dates": 0, "rows": 0, "days_read": 0, "buckets": 0, "wallets": 0, "phases_s": {}}  # fmt: skip
    run = score_increment(con, grid, todo, strategy.score_params(), scored_at=pd.Timestamp(datetime.now(UTC)),
                          log=log)  # fmt: skip
    con.close()
    return {"seconds": round(time.perf_counter() - t0, 2), "peak_rss_mb": peak_mb(), "plan": run.plan.reason,
            "as_of_dates": len(todo), "rows": run.rows, "days_read": run.days_read, "buckets": run.buckets,
            "wallets": run.wallets, "phases_s": {k: round(v, 2) for k, v in run.seconds.items()}}  # fmt: skip


def compare_histories(full: Path, inc: Path) -> dict:
    """The rows both warehouses hold at the full build's last as-of date: how many, and how many differ in any
    column (``scored_at`` apart)."""
    from assets.score.assets import WHALE_SCORES_COLUMNS

    cols = [c for c in WHALE_SCORES_COLUMNS if c not in ("as_of", "wallet", "scored_at")]
    con = duckdb.connect(config=CHECK_CONFIG)
    con.execute(f"ATTACH '{full}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{inc}' AS b (READ_ONLY)")
    differ = " OR ".join(f'x."{c}" IS DISTINCT FROM y."{c}"' for c in cols)
    rows, only, diff = con.execute(
        f"""WITH t AS (SELECT max(as_of) AS t FROM a.analytics.whale_scores)
            SELECT count(*), count(*) FILTER (WHERE x.wallet IS NULL OR y.wallet IS NULL),
                   count(*) FILTER (WHERE {differ})
            FROM (SELECT * FROM a.analytics.whale_scores WHERE as_of = (SELECT t FROM t)) x
            FULL JOIN (SELECT * FROM b.analytics.whale_scores WHERE as_of = (SELECT t FROM t)) y USING (as_of, wallet)"""
    ).fetchone()  # fmt: skip
    con.close()
    return {"rows": rows, "rows_only_in_one": only, "rows_differing": diff, "same": only == 0 and diff == 0}


def _sharpe_rows(cnt, s1, s2, valid_any_change, annual: float = np.sqrt(365.0)):
    """Sharpe from count, sum and sum of squares (uncentred), NaN on <2 values or (near) zero variance."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        sd = np.sqrt(np.maximum(s2 - s1 * mean, 0.0) / (cnt - 1))
        ok = (cnt >= 2) & valid_any_change & (sd > 0) & (sd > 1e-6 * np.abs(mean))
        return np.where(ok, mean / sd * annual, np.nan), mean, sd


def st_score_floor(a: argparse.Namespace) -> dict:
    from assets.score import model

    t0 = time.perf_counter()
    con = connect(a.db, a.memory_limit, read_only=True)
    ids = """
        WITH ids AS (
            SELECT wallet, CAST(row_number() OVER (ORDER BY wallet) - 1 AS INTEGER) AS w
            FROM (SELECT DISTINCT wallet FROM marts.wallet_daily_returns)
        )
    """
    cells = con.sql(
        f"""{ids}
        SELECT i.w, CAST(r.day - (SELECT min(day) FROM marts.wallet_daily_returns) AS INTEGER) AS d,
               coalesce(r.daily_return, 'NaN'::DOUBLE) AS x
        FROM marts.wallet_daily_returns r JOIN ids i USING (wallet)
        """
    ).fetchnumpy()
    feats = con.sql(
        f"""{ids}
        SELECT wallet, coalesce(volume, 'NaN'::DOUBLE) AS volume, coalesce(market_hhi, 'NaN'::DOUBLE) AS market_hhi,
               coalesce(CAST(n_resolved_positions AS DOUBLE), 'NaN'::DOUBLE) AS n_resolved_positions
        FROM ids LEFT JOIN marts.wallet_features USING (wallet)
        ORDER BY w
        """
    ).fetchnumpy()
    wallets = feats["wallet"]
    con.close()
    t_read = time.perf_counter() - t0
    n_w, n_d = len(wallets), int(cells["d"].max()) + 1
    r = np.full((n_w, n_d), np.nan)
    r[cells["w"], cells["d"]] = cells["x"]
    del cells
    # whole-history Sharpe: count, sum and sum of squares; zero variance where the largest value is the smallest
    valid = ~np.isnan(r)
    cnt = valid.sum(axis=1)
    x = np.where(valid, r, 0.0)
    sharpe, _, _ = _sharpe_rows(cnt, x.sum(axis=1), np.einsum("ij,ij->i", x, x),
                                np.fmax.reduce(r, axis=1) > np.fmin.reduce(r, axis=1))  # fmt: skip
    # information ratio: the same on the active return against the mean return of the wallets there that day
    with np.errstate(invalid="ignore", divide="ignore"):
        bench = x.sum(axis=0) / valid.sum(axis=0)
    act = r - bench
    del r
    changes = np.fmax.reduce(act, axis=1) > np.fmin.reduce(act, axis=1)
    a_cnt = (~np.isnan(act)).sum(axis=1)
    np.nan_to_num(act, copy=False, nan=0.0)
    ir, _, _ = _sharpe_rows(a_cnt, act.sum(axis=1), np.einsum("ij,ij->i", act, act), changes)
    del act
    # drawdowns: compounded wealth from 1 and its running peak
    wealth = np.clip(x, -1.0, None)
    wealth += 1.0
    np.cumprod(wealth, axis=1, out=wealth)
    peak = np.maximum.accumulate(wealth, axis=1)
    np.maximum(peak, 1.0, out=peak)
    np.divide(wealth, peak, out=peak)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mdd = np.where(cnt > 0, np.minimum(peak.min(axis=1) - 1.0, 0.0), np.nan)
        ar = np.where(cnt > 0, wealth[:, -1] ** (365.0 / np.maximum(cnt, 1)) - 1.0, np.nan)
        ratio = ar / np.abs(mdd)
    cal = np.where((mdd < 0) & np.isfinite(ratio) & (cnt >= 2), ratio, np.nan)
    del wealth, peak
    # rolling 30-day Sharpe: window sums from cumulative sums of x, x^2 and the valid-day count
    k = 30
    c = np.zeros((n_w, n_d + 1))
    np.cumsum(x, axis=1, out=c[:, 1:])
    s1 = c[:, k:] - c[:, :-k]
    np.square(x, out=x)
    np.cumsum(x, axis=1, out=c[:, 1:])
    s2 = c[:, k:] - c[:, :-k]
    del x
    np.cumsum(valid, axis=1, out=c[:, 1:])
    full = (c[:, k:] - c[:, :-k]) == k
    del c, valid
    with np.errstate(invalid="ignore", divide="ignore"):
        s1 /= k  # the window mean
        s2 -= s1 * s1 * k
        np.maximum(s2, 0.0, out=s2)
        s2 /= k - 1
        np.sqrt(s2, out=s2)  # the window sd
        ok = full & (s2 > 1e-6 * np.abs(s1)) & (s2 > 0)
        roll = np.where(ok, s1 / s2 * np.sqrt(365.0), np.nan)
    del s1, s2, ok, full
    rv = ~np.isnan(roll)
    np.nan_to_num(roll, copy=False, nan=0.0)
    r_cnt = rv.sum(axis=1)
    _, _, rsd = _sharpe_rows(r_cnt, roll.sum(axis=1), np.einsum("ij,ij->i", roll, roll), np.ones(n_w, bool))
    with np.errstate(invalid="ignore"):
        cons = np.where(r_cnt >= 30, 100.0 * np.exp(-rsd / 2.5), np.nan)
    enough = cnt >= model.MIN_RETURN_DAYS
    sharpe, ir, mdd, cal = (np.where(enough, v, np.nan) for v in (sharpe, ir, mdd, cal))
    factors = model.factor_scores(sharpe, ir, cal, cons, feats["volume"], max_drawdown=mdd)
    score = model.wqs(factors, feats["n_resolved_positions"], feats["market_hhi"])
    seconds = time.perf_counter() - t0
    peak_rss = peak_mb()
    out = pd.DataFrame({"wallet": wallets, "n_return_days": cnt, "sharpe": sharpe, "information_ratio": ir,
                        "max_drawdown": mdd, "calmar": cal, "consistency": cons, "wqs": score})  # fmt: skip
    out.to_parquet(a.out, index=False)
    return {"seconds": round(seconds, 2), "read_s": round(t_read, 2), "peak_rss_mb": peak_rss, "wallets": n_w}


def _pandas_sharpe(g, min_periods: int = 2) -> pd.Series:
    """Per-group Sharpe of a grouped series (NaN on too few values or zero variance), plain pandas."""
    n, mean, sd, hi, lo = g.count(), g.mean(), g.std(), g.max(), g.min()
    ok = (n >= min_periods) & (hi > lo) & (sd > 0) & (sd > 1e-6 * mean.abs())
    return (mean / sd * np.sqrt(365.0)).where(ok)


def st_score_pandas(a: argparse.Namespace) -> dict:
    from assets.score import model

    t0 = time.perf_counter()
    con = connect(a.db, a.memory_limit, read_only=True)
    df = con.sql(RETURNS_SQL).arrow().read_all().to_pandas()  # the same read as ours (strings deduplicated)
    feats = con.sql(FEATURES_SQL).arrow().read_all().to_pandas().set_index("wallet")
    con.close()
    t_read = time.perf_counter() - t0
    df = df.sort_values(["wallet", "day"], ignore_index=True)
    g = df.groupby("wallet")["daily_return"]
    out = pd.DataFrame({"n_return_days": g.count()})
    out["sharpe"] = _pandas_sharpe(g)
    active = df["daily_return"] - df["day"].map(df.groupby("day")["daily_return"].mean())
    out["information_ratio"] = _pandas_sharpe(active.groupby(df["wallet"]))
    wealth = (1.0 + df["daily_return"].fillna(0.0).clip(lower=-1.0)).groupby(df["wallet"]).cumprod()
    peak = wealth.groupby(df["wallet"]).cummax().clip(lower=1.0)
    mdd = ((wealth - peak) / peak).groupby(df["wallet"]).min().clip(upper=0.0)
    out["max_drawdown"] = mdd.where(out["n_return_days"] > 0)
    ar = wealth.groupby(df["wallet"]).last() ** (365.0 / out["n_return_days"].clip(lower=1)) - 1.0
    ratio = ar / out["max_drawdown"].abs()
    out["calmar"] = ratio.where((out["max_drawdown"] < 0) & np.isfinite(ratio) & (out["n_return_days"] >= 2))
    roll = g.rolling(30, min_periods=30)
    mean, sd = roll.mean(), roll.std()
    const = roll.max() <= roll.min()
    sharpe30 = (mean / sd * np.sqrt(365.0)).where(~const & (sd > 0) & (sd > 1e-6 * mean.abs()))
    g30 = sharpe30.groupby(level=0)
    out["consistency"] = (100.0 * np.exp(-g30.std() / 2.5)).where(g30.count() >= 30)
    enough = out["n_return_days"] >= model.MIN_RETURN_DAYS
    for col in ("sharpe", "information_ratio", "max_drawdown", "calmar"):
        out[col] = out[col].where(enough)
    f = feats.reindex(out.index)
    factors = model.factor_scores(out["sharpe"].to_numpy(), out["information_ratio"].to_numpy(),
                                  out["calmar"].to_numpy(), out["consistency"].to_numpy(),
                                  f["volume"].to_numpy(dtype=float), max_drawdown=out["max_drawdown"].to_numpy())  # fmt: skip
    out["wqs"] = model.wqs(
        factors, f["n_resolved_positions"].to_numpy(dtype=float), f["market_hhi"].to_numpy(dtype=float)
    )
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    out.rename_axis("wallet").reset_index()[SCORE_COLUMNS].to_parquet(a.out, index=False)
    return {
        "seconds": round(seconds, 2),
        "read_s": round(t_read, 2),
        "peak_rss_mb": peak,
        "wallets": len(out),
    }


STAGES = {
    "generate": st_generate, "load": st_load, "load_floor": st_load_floor, "load_pandas": st_load_pandas,
    "marts": st_marts, "marts_floor": st_marts_floor, "marts_pandas": st_marts_pandas,
    "marts_inprocess": st_marts_inprocess, "marts_sync": st_marts_sync,
    "score": st_score, "score_floor": st_score_floor, "score_pandas": st_score_pandas, "history": st_history,
}  # fmt: skip


# ------------------------------------------------------------------------------------------------ driver


#: resident-memory cap (GB) for stages without their own (set from --max-gb)
STAGE_CAP_GB = 20.0


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the stage process and, for the marts, its dbt process)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _rss_kb(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
        except (OSError, StopIteration):
            pass
    return total


def run_stage(stage: str, *, timeout: float | None = None, max_rss_gb: float | None = None, **kw) -> dict:
    """Run one stage in a fresh process. Past ``timeout`` seconds, or past ``max_rss_gb`` resident over the
    process and its children (sampled every 0.2 s), the stage's processes are killed, each by its pid."""
    cap = max_rss_gb or STAGE_CAP_GB
    argv = [sys.executable, __file__, "--stage", stage]
    for k, v in kw.items():
        if v is None:
            continue
        argv += [f"--{k.replace('_', '-')}", *(map(str, v) if isinstance(v, list) else [str(v)])]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        why, rss_max = None, 0
        while proc.poll() is None:
            time.sleep(0.2)
            pids = _tree(proc.pid)
            rss_max = max(rss_max, _rss_kb(pids))
            elapsed = time.perf_counter() - t0
            if timeout and elapsed > timeout:
                why = f"did not finish in {timeout:.0f} s"
            elif rss_max > cap * 1024 * 1024:
                why = f"stopped at {rss_max / 1024 / 1024:.1f} GB resident (cap {cap:g} GB) after {elapsed:.0f} s"
            if why:
                for p in reversed(pids):  # children first, then the stage process
                    try:
                        os.kill(p, 9)
                    except ProcessLookupError:
                        pass
                proc.wait()
                log(f"{stage}: {why}")
                return {"failed": why}
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        log(f"{stage} failed:\n{stderr[-3000:]}")
        if proc.returncode < 0:
            return {"failed": f"killed by signal {-proc.returncode} (out of memory?)"}
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        return {"failed": f"exit {proc.returncode}: {last}"}
    row = json.loads(stdout.strip().splitlines()[-1])
    log(f"{stage}: {row.get('seconds')} s, peak {row.get('peak_rss_mb')} MB")
    return row


def dbt_parse(db: Path, target: str, profiles: str) -> None:
    """Warm dbt's partial parse for this warehouse path (the Dagster assets run on a prepared manifest)."""
    env = {**os.environ, "WHALECOPY_DBT_DATABASE": str(db)}
    subprocess.run([DBT, "parse", "--project-dir", str(ROOT / "dbt_project"), "--profiles-dir", profiles,
                    "--target-path", target, "--log-path", f"{target}/logs"], env=env,
                   capture_output=True, check=True)  # fmt: skip


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def remove_db(path: Path) -> None:
    for p in (path, Path(f"{path}.wal"), Path(f"{path}.tmp")):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def settle(path: Path) -> None:
    """Before a timed sync: flush every pending write to disk (``os.sync``: the warehouse copy just written back
    would otherwise be written out while the sync runs, and compete with it for the disk) and read the warehouse
    file once, so each run starts from the same warm page cache (a daily sync on a machine whose memory holds its
    warehouse), not from whatever the copies before it left cached."""
    os.sync()
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


def generate(tier: str, tdir: Path) -> dict:
    meta_path = tdir / "meta.json"
    fills, wallets, markets, worlds = TIERS[tier]
    want = {"tier": tier, "fills": fills, "wallets": wallets, "markets": markets, "worlds": worlds,
            "fills_per_trade": FILLS_PER_TRADE}  # fmt: skip
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("config") == want and all((tdir / f).exists() for f in meta["files"]):
            log(f"tier {tier}: Parquet cached in {tdir}")
            return {**meta, "cached": True}
    tdir.mkdir(parents=True, exist_ok=True)
    chunks = []
    for i in range(worlds):
        log(f"tier {tier}: simulating world {i + 1}/{worlds} ...")
        row = run_stage("generate", tier=tier, chunk=i, dir=tdir)
        if "failed" in row:
            raise SystemExit(f"generation failed: {row['failed']}")
        chunks.append(row)
    files = [
        f"{kind}_{i:02d}.parquet" for i in range(worlds) for kind in ("fills_base", "fills_day", "markets")
    ]
    meta = {
        "config": want, "files": files, "chunks": chunks,
        "fills": sum(c["fills"] for c in chunks), "day_fills": sum(c["day_fills"] for c in chunks),
        "markets": sum(c["markets"] for c in chunks), "wallets": sum(c["wallets"] for c in chunks),
        "seconds": round(sum(c["seconds"] for c in chunks), 2),
        "peak_rss_mb": max(c["peak_rss_mb"] for c in chunks),
        "parquet_mb": round(sum((tdir / f).stat().st_size for f in files) / 2**20),
    }  # fmt: skip
    meta_path.write_text(json.dumps(meta, indent=1))
    return {**meta, "cached": False}


def compare_marts(con: duckdb.DuckDBPyConnection, positions: str, daily: str, features: str) -> dict:
    """The warehouse's marts against another implementation's three results (relations given as SQL)."""
    p = con.execute(f"""
        SELECT (SELECT count(*) FROM marts.fct_positions), (SELECT count(*) FROM {positions}),
               count(*) FILTER (WHERE a.wallet IS NULL OR b.wallet IS NULL),
               {_maxdiff('pnl_net')}, max(abs(a.pnl_net))
        FROM marts.fct_positions a FULL JOIN {positions} b USING (wallet, token_id)""").fetchone()  # fmt: skip
    d = con.execute(f"""
        SELECT (SELECT count(*) FROM marts.wallet_daily_returns), (SELECT count(*) FROM {daily}),
               count(*) FILTER (WHERE a.wallet IS NULL OR b.wallet IS NULL),
               count(*) FILTER (WHERE (a.daily_return IS NULL) <> (b.daily_return IS NULL)),
               {_maxdiff('daily_return')}, {_maxdiff('pnl_net')}
        FROM marts.wallet_daily_returns a FULL JOIN {daily} b USING (wallet, day)""").fetchone()  # fmt: skip
    f = con.execute(f"""
        SELECT (SELECT count(*) FROM marts.wallet_features), (SELECT count(*) FROM {features}),
               count(*) FILTER (WHERE a.wallet IS NULL OR b.wallet IS NULL),
               count(*) FILTER (WHERE a.n_resolved_positions <> b.n_resolved_positions),
               {_maxdiff('volume')}, {_maxdiff('market_hhi')}, {_maxdiff('pnl_net')}
        FROM marts.wallet_features a FULL JOIN {features} b USING (wallet)""").fetchone()  # fmt: skip
    res = {
        "positions": {"rows": p[0], "other_rows": p[1], "unmatched": p[2], "max_abs_diff_pnl_net": p[3],
                      "max_abs_pnl_net": p[4]},
        "daily_returns": {"rows": d[0], "other_rows": d[1], "unmatched": d[2], "null_mismatch": d[3],
                          "max_abs_diff_daily_return": d[4], "max_abs_diff_pnl_net": d[5]},
        "wallet_features": {"rows": f[0], "other_rows": f[1], "unmatched": f[2], "n_resolved_mismatch": f[3],
                            "max_abs_diff_volume": f[4], "max_abs_diff_market_hhi": f[5], "max_abs_diff_pnl_net": f[6]},
    }  # fmt: skip
    same_rows = all(v["rows"] == v["other_rows"] and v["unmatched"] == 0 for v in res.values())
    res["text"] = (
        f"{'same rows' if same_rows else 'ROWS DIFFER'} (positions {p[1]:,}, daily returns {d[1]:,}, wallets {f[1]:,}); "
        f"max |Δ| pnl_net/position {_g(p[3])}, daily_return {_g(d[4])} ({d[3]} NULL mismatches), "
        f"HHI {_g(f[5])}, resolved-count mismatches {f[3]}"
    )
    return res


#: DuckDB settings of the driver's own comparisons (they run between stages: keep the driver small)
CHECK_CONFIG = {"memory_limit": "3GB"}


def compare_scores(ours: Path, other: Path) -> dict:
    con = duckdb.connect(config=CHECK_CONFIG)
    row = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE a.wallet IS NULL OR b.wallet IS NULL),
               count(*) FILTER (WHERE coalesce(isnan(a.wqs), true) <> coalesce(isnan(b.wqs), true)),
               {_maxdiff("wqs")}, {_maxdiff("sharpe")}, {_maxdiff("consistency")}, {_maxdiff("max_drawdown")},
               count(*) FILTER (WHERE NOT coalesce(isnan(a.wqs), true)),
               count(*) FILTER (WHERE a.n_return_days <> b.n_return_days),
               count(*) FILTER (WHERE abs(a.wqs - b.wqs) > 1e-6)
        FROM read_parquet('{ours}') a FULL JOIN read_parquet('{other}') b USING (wallet)
        """
    ).fetchone()
    con.close()
    keys = ["unmatched", "wqs_nan_mismatch", "max_abs_diff_wqs", "max_abs_diff_sharpe", "max_abs_diff_consistency",
            "max_abs_diff_max_drawdown", "scored", "n_days_mismatch", "wqs_diff_over_1e-6"]  # fmt: skip
    res = dict(zip(keys, row, strict=True))
    res["text"] = (
        f"{'same wallets' if row[0] == 0 else 'WALLETS DIFFER'}; WQS defined for the same wallets: "
        f"{'yes' if row[1] == 0 else f'NO ({row[1]} differ)'}; max |Δ| WQS {_g(row[2])}, Sharpe {_g(row[3])}, "
        f"consistency {_g(row[4])}; {row[8]:,} of {row[6]:,} scored wallets differ by more than 1e-6"
    )
    return res


def _json_default(o):
    return o.item() if hasattr(o, "item") else str(o)


def _maxdiff(col: str, a: str = "a", b: str = "b") -> str:
    """Largest |a.col - b.col| over rows where both are numbers (NULL and NaN left out: max() ranks NaN first)."""
    return f'max(abs({a}."{col}" - {b}."{col}")) FILTER (WHERE NOT isnan({a}."{col}" - {b}."{col}"))'


def _g(x) -> str:
    return "n/a" if x is None else f"{x:.1e}"


def digest(con: duckdb.DuckDBPyConnection, table: str, exclude: tuple[str, ...] = ()) -> tuple[int, int]:
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in exclude]
    expr = "hash(" + ", ".join(f'"{c}"' for c in cols) + ")"
    return tuple(con.execute(f"SELECT count(*), bit_xor({expr}) FROM {table}").fetchone())


SYNC_TABLES = {  # table -> (key columns, columns that record when a row was written)
    "raw.trades": (["fill_key"], ("ingested_at",)),
    "raw.markets": (["condition_id"], ("fetched_at",)),
    "intermediate.int_market_resolutions": (["condition_id"], ()),
    "intermediate.int_market_tokens": (["token_id"], ()),
    "intermediate.int_position_fills": (["fill_key"], ()),
    "marts.dim_markets": (["condition_id"], ()),
    "marts.fct_positions": (["wallet", "token_id"], ()),
    "marts.wallet_daily_returns": (["wallet", "day"], ()),
    "marts.wallet_markets": (["wallet", "condition_id"], ()),
    "marts.wallet_features": (["wallet"], ()),
    "marts.wallet_category_features": (["wallet", "category"], ()),
}


def compare_warehouses(full: Path, inc: Path) -> dict:
    """Content hash per table; where one differs, a keyed comparison of every column."""
    con = duckdb.connect(config=CHECK_CONFIG)
    con.execute(f"ATTACH '{full}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{inc}' AS b (READ_ONLY)")
    out = {}
    for table, (keys, exclude) in SYNC_TABLES.items():
        ha, hb = digest(con, f"a.{table}", exclude), digest(con, f"b.{table}", exclude)
        row = {"rows": ha[0], "rows_sync": hb[0], "hash_equal": ha == hb}
        if ha != hb:
            types = dict((r[0], r[1]) for r in con.execute(f"DESCRIBE a.{table}").fetchall())
            cols = [c for c in types if c not in keys and c not in exclude]
            exprs = [f"count(*) FILTER (WHERE x.{keys[0]} IS NULL OR y.{keys[0]} IS NULL)"]
            for c in cols:
                if types[c] == "DOUBLE":
                    exprs.append(_maxdiff(c, "x", "y"))
                else:
                    exprs.append(f'count(*) FILTER (WHERE x."{c}" IS DISTINCT FROM y."{c}")')
            vals = con.execute(
                f"SELECT {', '.join(exprs)} FROM a.{table} x FULL JOIN b.{table} y USING ({', '.join(keys)})"
            ).fetchone()
            row["rows_only_in_one"] = vals[0]
            row["differences"] = {c: v for c, v in zip(cols, vals[1:], strict=True) if v}
            row["max_float_diff"] = max([v for c, v in zip(cols, vals[1:], strict=True) if types[c] == "DOUBLE"
                                         and v is not None] or [0.0])  # fmt: skip
            row["non_float_columns"] = [c for c in row["differences"] if types[c] != "DOUBLE"]
            if table == "marts.fct_positions" and "won" in row["differences"]:
                # `won` is pnl_at_resolution > 0: a position whose P&L is zero up to float noise can flip
                row["won_flips_max_abs_pnl_gross"] = con.execute(
                    "SELECT max(greatest(abs(x.pnl_gross), abs(y.pnl_gross))) FROM a.marts.fct_positions x "
                    "JOIN b.marts.fct_positions y USING (wallet, token_id) WHERE x.won IS DISTINCT FROM y.won"
                ).fetchone()[0]
        out[table] = row
    con.close()
    exact = all(r["hash_equal"] for r in out.values())
    same_rows = all(r["rows"] == r["rows_sync"] and not r.get("rows_only_in_one") for r in out.values())
    flips = out["marts.fct_positions"].get("won_flips_max_abs_pnl_gross")
    # non-float differences allowed only where they follow from `won` flipping on a zero (to 1e-6) P&L
    explained = (flips is None or flips < 1e-6) and all(
        set(r.get("non_float_columns", [])) <= {"won", "wins", "losses"} for r in out.values()
    )
    worst = max((r.get("max_float_diff", 0.0) for r in out.values()), default=0.0)
    return {
        "tables": out, "identical": exact, "same_rows": same_rows,
        "same_up_to_float_order": same_rows and explained, "max_float_diff": worst,
        "identical_tables": [t for t, r in out.items() if r["hash_equal"]],
        "won_flips": out["marts.fct_positions"].get("differences", {}).get("won", 0),
        "won_flips_max_abs_pnl_gross": flips,
    }  # fmt: skip


def storage(db: Path) -> dict:
    """The built warehouse on disk (issue 15, item 4): the file and each table's share of it (its distinct DuckDB
    blocks, ``pragma_storage_info``), the floor's own ``floor.*`` tables left out. The tiers build the raw tables, the
    marts and the scores: no signals, paper book or evaluation."""
    with duckdb.connect(str(db), read_only=True, config=CHECK_CONFIG) as con:
        (block,) = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name <> 'floor' AND NOT temporary"
        ).fetchall()
        mb = {}
        for schema, table in tables:
            (blocks,) = con.execute(
                f'SELECT count(DISTINCT block_id) FROM pragma_storage_info(\'"{schema}"."{table}"\') '
                "WHERE block_id >= 0"
            ).fetchone()
            mb[f"{schema}.{table}"] = round(blocks * block / 1e6, 1)
    return {
        "file_mb": round(db.stat().st_size / 1e6, 1),
        "tables_mb": round(sum(mb.values()), 1),
        "by_table_mb": dict(sorted(mb.items(), key=lambda kv: -kv[1])),
    }


def ratio(a, b) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tier", choices=list(TIERS))
    p.add_argument("--memory-limit", help="DuckDB memory_limit for every connection and dbt, e.g. 16GB")
    p.add_argument("--workdir", default=str(ROOT / "data" / "bench" / "tiers"))
    p.add_argument("--batch-rows", type=int, default=10_000_000, help="fills per load_trades call")
    p.add_argument("--skip-pandas", action="store_true", help="default for tier L")
    p.add_argument(
        "--pandas-timeout", type=float, default=900.0, help="seconds before a pandas stage is stopped"
    )
    p.add_argument(
        "--pandas-max-gb", type=float, default=12.0, help="resident GB at which a pandas stage is stopped"
    )
    p.add_argument("--no-sync", action="store_true", help="skip the incremental sync (default for tier L)")
    p.add_argument(
        "--max-gb", type=float, default=20.0, help="resident GB at which any other stage is stopped"
    )
    p.add_argument(
        "--no-control", action="store_true", help="skip the second full rebuild (the float-order control)"
    )
    p.add_argument("--keep", action="store_true", help="keep the warehouses (the Parquet is always kept)")
    p.add_argument(
        "--sync-repeats",
        type=int,
        default=3,
        help="runs of the one-day sync, from the same warehouse (median reported)",
    )
    # one stage in this process (what the driver launches)
    p.add_argument("--stage", choices=list(STAGES), help=argparse.SUPPRESS)
    for name in ("db", "target", "profiles", "out", "dir"):
        p.add_argument(f"--{name}", help=argparse.SUPPRESS)
    p.add_argument("--chunk", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--command", default="build", help=argparse.SUPPRESS)
    p.add_argument("--test-scope", default="increment", help=argparse.SUPPRESS)
    p.add_argument("--fills", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--markets", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.stage:
        print(json.dumps(STAGES[a.stage](a), default=_json_default))
        return
    if not a.tier:
        p.error("--tier is required")
    if TIERS[a.tier][3] > 1:  # tier L (and its small copy XS2): no pandas, no sync
        a.skip_pandas, a.no_sync = True, True
    tier, ml = a.tier, a.memory_limit
    global STAGE_CAP_GB
    STAGE_CAP_GB = a.max_gb
    tdir = Path(a.workdir) / tier
    gen = generate(tier, tdir)
    worlds = TIERS[tier][3]
    base = [str(tdir / f"fills_base_{i:02d}.parquet") for i in range(worlds)]
    day = [str(tdir / f"fills_day_{i:02d}.parquet") for i in range(worlds)]
    every = [f for i in range(worlds) for f in (base[i], day[i])]
    markets = [str(tdir / f"markets_{i:02d}.parquet") for i in range(worlds)]
    full, inc, fl = tdir / "full.duckdb", tdir / "sync.duckdb", tdir / "floor_load.duckdb"
    for db in (full, inc, fl):
        remove_db(db)
    write_profiles(tdir / "profiles", ml)
    profiles = str(tdir / "profiles")
    pandas_kw = {"timeout": a.pandas_timeout, "max_rss_gb": a.pandas_max_gb}
    t_all, load_start = time.perf_counter(), loadavg()

    # ---- the full build, stage by stage, each beside its floor and pandas
    log(f"tier {tier}: full build from {len(every)} fill files ({gen['fills']:,} fills)")
    load = run_stage("load", db=full, fills=every, markets=markets, memory_limit=ml, batch_rows=a.batch_rows)
    load_floor = run_stage("load_floor", db=fl, fills=every, markets=markets, memory_limit=ml)
    remove_db(fl)
    load_pd = {"failed": "not run"} if a.skip_pandas else run_stage("load_pandas", fills=every, markets=markets,
                                                                     **pandas_kw)  # fmt: skip
    target_full = str(tdir / "target_full")
    dbt_parse(full, target_full, profiles)
    marts = run_stage("marts", db=full, target=target_full, profiles=profiles)
    marts_floor = run_stage("marts_floor", db=full, memory_limit=ml)
    pd_dir = tdir / "pandas_marts"
    marts_pd = {"failed": "not run"} if a.skip_pandas else run_stage("marts_pandas", fills=every, markets=markets,
                                                                      out=pd_dir, **pandas_kw)  # fmt: skip
    score = run_stage("score", db=full, out=tdir / "score_full.parquet", memory_limit=ml)
    score_floor = run_stage("score_floor", db=full, out=tdir / "score_floor.parquet", memory_limit=ml)
    score_pd = {"failed": "not run"} if a.skip_pandas else run_stage("score_pandas", db=full,
                                                                      out=tdir / "score_pandas.parquet", **pandas_kw)  # fmt: skip
    history = run_stage("history", db=full, memory_limit=ml)
    disk = storage(full) if "failed" not in marts else None

    # ---- agreement (not timed)
    agree: dict = {}
    if "failed" not in load:
        for name, other in (("floor", load_floor), ("pandas", load_pd)):
            if "failed" not in other:
                agree.setdefault("load", {})[name] = {
                    "rows": load["rows"], "other_rows": other["rows"], "markets": load["markets"],
                    "other_markets": other["markets"], "abs_diff_sum_notional": abs(load["notional"] - other["notional"]),
                    "text": f"{'same rows' if other['rows'] == load['rows'] else 'ROWS DIFFER'} ({other['rows']:,} fills, "
                    f"{other['markets']:,} markets); |Δ| Σ notional {_g(abs(load['notional'] - other['notional']))} "
                    f"of {load['notional']:.3e}",
                }  # fmt: skip
    if "failed" not in marts:
        with duckdb.connect(str(full), read_only=True, config=CHECK_CONFIG) as con:
            facts = con.execute("SELECT count(DISTINCT proxy_wallet), count(DISTINCT condition_id), "
                                "min(trade_date), max(trade_date) FROM raw.trades").fetchone()  # fmt: skip
            if "failed" not in marts_floor:
                agree.setdefault("marts", {})["floor"] = compare_marts(
                    con, "floor.positions", "floor.wallet_daily_returns", "floor.wallet_features"
                )
            if "failed" not in marts_pd:
                agree.setdefault("marts", {})["pandas"] = compare_marts(
                    con, *(f"read_parquet('{pd_dir / n}.parquet')" for n in
                           ("positions", "wallet_daily_returns", "wallet_features")))  # fmt: skip
            rows = {t: con.execute(f"SELECT count(*) FROM marts.{t}").fetchone()[0]
                    for t in ("fct_positions", "wallet_daily_returns", "wallet_features")}  # fmt: skip
    else:
        facts, rows = (None, None, None, None), {}
    if "failed" not in score:
        for name, other, path in (
            ("floor", score_floor, "score_floor"),
            ("pandas", score_pd, "score_pandas"),
        ):
            if "failed" not in other:
                agree.setdefault("score", {})[name] = compare_scores(
                    tdir / "score_full.parquet", tdir / f"{path}.parquet"
                )
        if "failed" not in score_floor and "failed" not in score_pd:
            # the two independent versions against each other: tells the kernels' own error from theirs
            agree["score"]["floor_vs_pandas"] = compare_scores(
                tdir / "score_floor.parquet", tdir / "score_pandas.parquet"
            )

    # ---- the daily incremental sync
    sync: dict = {"skipped": True}
    if not a.no_sync:
        log(f"tier {tier}: building the warehouse of every day but the last (set-up, not timed)")
        target_inc = str(tdir / "target_sync")
        dbt_parse(inc, target_inc, profiles)
        setup_load = run_stage(
            "load", db=inc, fills=base, markets=markets, memory_limit=ml, batch_rows=a.batch_rows
        )
        setup_marts = run_stage("marts", db=inc, target=target_inc, profiles=profiles)
        setup_history = run_stage("history", db=inc, memory_limit=ml)  # the day before's scores and state
        # the sync, measured `--sync-repeats` times from the same warehouse (put back from a copy between runs):
        # its median run is reported, its spread beside it
        repeats, runs = max(a.sync_repeats, 1), []
        saved = tdir / "sync_before.duckdb"
        if repeats > 1 or a.keep:
            shutil.copyfile(inc, saved)
        for r in range(repeats):
            if r:
                remove_db(inc)
                shutil.copyfile(saved, inc)
            settle(inc)
            log(f"tier {tier}: syncing the last day ({gen['day_fills']:,} fills), run {r + 1} of {repeats}")
            s_load = run_stage(
                "load", db=inc, fills=day, markets=markets, memory_limit=ml, batch_rows=a.batch_rows
            )
            # the sync's dbt as the pipeline runs it: in process, on the target the set-up build left
            s_marts = run_stage("marts_sync", db=inc, target=target_inc, profiles=profiles)
            s_history = run_stage("history", db=inc, memory_limit=ml)
            runs.append((s_load, s_marts, s_history))
            if any("failed" in s for s in runs[-1]):
                break
        if not a.keep:  # --keep leaves the warehouse before the sync too (to profile the sync by hand)
            remove_db(saved)
        totals = [sum(s.get("seconds") or 0.0 for s in run) for run in runs]
        median = sorted(range(len(runs)), key=lambda i: totals[i])[(len(runs) - 1) // 2]
        s_load, s_marts, s_history = steps = runs[median]
        # the comparisons below read the warehouse the last run left: every run syncs the same day onto the same copy
        # the whole-history kernels again (not a step of the sync): their agreement with the full build's
        s_score = run_stage("score", db=inc, out=tdir / "score_sync.parquet", memory_limit=ml)
        failed = [
            s["failed"]
            for s in (setup_load, setup_marts, setup_history, *(x for run in runs for x in run), s_score)
            if "failed" in s
        ]
        sync = {"skipped": False, "day_fills": gen["day_fills"], "failed": failed or None,
                "setup_load_s": setup_load.get("seconds"), "setup_marts_s": setup_marts.get("seconds")}  # fmt: skip
        if not failed:
            same = compare_warehouses(full, inc)
            scores = compare_scores(tdir / "score_full.parquet", tdir / "score_sync.parquet")
            sync.update({
                "load_s": s_load["seconds"], "inserted": s_load["inserted"], "markets_changed": s_load["markets_changed"],
                "marts_s": s_marts["seconds"], "marts_import_s": s_marts.get("import_s"),
                "history_s": s_history["seconds"], "history": s_history,
                "setup_history": setup_history, "score_kernels_s": s_score["seconds"],
                "seconds": round(sum(s["seconds"] for s in steps), 2),
                "runs_s": [round(x, 2) for x in totals],
                "peak_rss_mb": max(s["peak_rss_mb"] for s in steps),
                "slowest_models_s": dict(list(s_marts["models_s"].items())[:4]), "models_s": s_marts["models_s"],
                "tests_s": s_marts.get("tests_s"), "tests": s_marts.get("tests"),
                "slowest_tests_s": s_marts.get("slowest_tests_s"),
                "warehouse": same, "scores": scores,
                "histories": compare_histories(full, inc) if "failed" not in history else None,
                "same_as_full_rebuild": same["same_up_to_float_order"] and scores["unmatched"] == 0
                and scores["wqs_nan_mismatch"] == 0,
            })  # fmt: skip
            # the sync's data tests again on the synced warehouse, the key tests reading the build's keys and then
            # every key (what they cost before macros/test_scope.sql)
            tests = {scope: run_stage("marts_sync", db=inc, target=target_inc, profiles=profiles, command="test",
                                      test_scope=scope) for scope in ("increment", "all")}  # fmt: skip
            if not any("failed" in t for t in tests.values()):
                sync["tests_alone"] = {scope: {"seconds": t["seconds"], "tests_s": t["tests_s"],
                                               "slowest_tests_s": t["slowest_tests_s"]}
                                       for scope, t in tests.items()}  # fmt: skip
            # what dbt costs when nothing changed: a fresh `dbt run` process against runs in one long-lived process
            noop = run_stage("marts", db=inc, target=target_inc, profiles=profiles)
            inproc = run_stage(
                "marts_inprocess", db=inc, target=str(tdir / "target_inprocess"), profiles=profiles
            )
            if "failed" not in noop and "failed" not in inproc:
                sync["noop"] = {"subprocess_s": noop["seconds"], "models_s": round(sum(noop["models_s"].values()), 2),
                                "inprocess_first_s": inproc["first_s"], "inprocess_s": inproc["seconds"]}  # fmt: skip
        if not a.no_control and "failed" not in load and "failed" not in marts:
            # control: a second full rebuild from scratch against the first (what float summation order alone does)
            remove_db(inc)
            log(f"tier {tier}: control: a second full build from scratch (not timed)")
            dbt_parse(inc, target_inc, profiles)
            c_load = run_stage(
                "load", db=inc, fills=every, markets=markets, memory_limit=ml, batch_rows=a.batch_rows
            )
            c_marts = run_stage("marts", db=inc, target=target_inc, profiles=profiles)
            if "failed" not in c_load and "failed" not in c_marts:
                ctl = compare_warehouses(full, inc)
                sync["control_full_vs_full"] = {k: v for k, v in ctl.items() if k != "tables"}

    # ---- the table
    def stage_row(name: str, ours: dict, floor: dict, pand: dict) -> dict:
        ok = "failed" not in ours
        row = {"stage": name, "seconds": ours.get("seconds"), "peak_rss_mb": ours.get("peak_rss_mb"),
               "failed": ours.get("failed"), "floor_s": floor.get("seconds"),
               "floor_peak_rss_mb": floor.get("peak_rss_mb"), "floor_failed": floor.get("failed"),
               "pandas_s": pand.get("seconds"), "pandas_peak_rss_mb": pand.get("peak_rss_mb"),
               "pandas_failed": pand.get("failed")}  # fmt: skip
        row["x_floor"] = ratio(row["seconds"], row["floor_s"]) if ok else None
        row["pandas_over_ours"] = ratio(row["pandas_s"], row["seconds"]) if ok else None
        row["agreement"] = {k: v["text"] for k, v in agree.get(name, {}).items()}
        return row

    stages = [stage_row("load", load, load_floor, load_pd), stage_row("marts", marts, marts_floor, marts_pd),
              stage_row("score", score, score_floor, score_pd)]  # fmt: skip
    for s, detail in zip(stages, (load, marts, score), strict=True):
        s["detail"] = {k: v for k, v in detail.items() if k not in ("seconds", "peak_rss_mb", "failed")}
    complete = all(s["seconds"] is not None for s in stages)
    floors = all(s["floor_s"] is not None for s in stages)
    pandas_all = all(s["pandas_s"] is not None for s in stages)
    build = {
        "seconds": round(sum(s["seconds"] for s in stages), 2) if complete else None,
        "peak_rss_mb": max((s["peak_rss_mb"] or 0) for s in stages),
        "floor_s": round(sum(s["floor_s"] for s in stages), 2) if floors else None,
        "pandas_s": round(sum(s["pandas_s"] for s in stages), 2) if pandas_all else None,
    }  # fmt: skip
    build["x_floor"] = ratio(build["seconds"], build["floor_s"])
    build["pandas_over_ours"] = ratio(build["pandas_s"], build["seconds"])
    result = {
        "case": f"tier_{tier}", "tier": tier, "memory_limit": ml,
        "target": dict(zip(("fills", "wallets", "markets"), TIERS[tier][:3], strict=False)),
        "fills": load.get("rows"), "fills_generated": gen["fills"], "wallets_traded": facts[0],
        "markets": gen["markets"], "markets_traded": facts[1], "first_day": str(facts[2]), "last_day": str(facts[3]),
        "mart_rows": rows, "worlds": worlds,
        "generate": {k: gen[k] for k in ("seconds", "peak_rss_mb", "parquet_mb", "cached")},
        "stages": stages, "build": build, "history": history, "storage": disk, "sync": sync, "agreement": agree,
        "pandas_limits": None if a.skip_pandas else {"timeout_s": a.pandas_timeout, "max_gb": a.pandas_max_gb},
        "targets": TARGETS, "total_wall_s": round(time.perf_counter() - t_all, 1),
        "loadavg_1min": {"start": load_start, "end": loadavg()}, "cores": os.cpu_count(),
    }  # fmt: skip
    (tdir / "result.json").write_text(json.dumps(result, indent=1, default=_json_default))
    if not a.keep:
        for db in (full, inc):
            remove_db(db)
        shutil.rmtree(pd_dir, ignore_errors=True)
    print(json.dumps(result, default=_json_default))


if __name__ == "__main__":
    main()
