"""Ingest benchmarks (one case per process, so each peak memory is its own). Not part of `make test`.

python bench/bench_ingest.py sim_bulk --scale 10     simulate ~10M fills and bulk-load them (Arrow) into raw.trades
python bench/bench_ingest.py http --scale 1          the demo path: simulated API -> httpx clients -> parse -> load
python bench/bench_ingest.py loader --rows 100000    Arrow bulk load vs executemany, same rows, same table
python bench/bench_ingest.py files --scale 1         a Data-API-shaped Parquet dump of the tape through the file
                                                     source, a batch at a time (--batch-rows 0: the whole file)
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.ingest import ingest
from assets.ingest.sim import SimConfig, generate_world, tape_table
from assets.ingest.sim_api import CLOB_URL, DATA_URL, GAMMA_URL, SimPolymarket
from assets.ingest.sources import FILE_BATCH_ROWS, FileSource, build_api_source
from assets.ingest.store import ensure_raw, load_trades
from quality.quarantine import QUARANTINE_SCHEMA


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sim_bulk(scale: float, db: Path) -> dict:
    t0 = time.perf_counter()
    world = generate_world(SimConfig.scaled(scale))
    t_gen = time.perf_counter() - t0
    t1 = time.perf_counter()
    table = tape_table(world)
    t_arrow = time.perf_counter() - t1
    con = duckdb.connect(str(db))
    ensure_raw(con)
    t2 = time.perf_counter()
    result = load_trades(con, table, QUARANTINE_SCHEMA.empty_table(), source="sim")
    t_load = time.perf_counter() - t2
    (n,) = con.execute("SELECT count(*) FROM raw.trades").fetchone()
    return {
        "case": "sim_bulk", "scale": scale, "fills": len(world.tape), "rows_in_warehouse": n,
        "markets": len(world.markets), "wallets": len(world.wallets), "inserted": result.inserted,
        "generate_s": round(t_gen, 2), "to_arrow_s": round(t_arrow, 2), "load_s": round(t_load, 2),
        "total_s": round(time.perf_counter() - t0, 2), "peak_rss_mb": round(peak_mb()),
    }  # fmt: skip


def http(scale: float, db: Path) -> dict:
    t0 = time.perf_counter()
    world = generate_world(SimConfig.scaled(scale))
    t_gen = time.perf_counter() - t0
    server = SimPolymarket(world)
    src = build_api_source("sim", data_url=DATA_URL, gamma_url=GAMMA_URL, clob_url=CLOB_URL, transport=server,
                           limits={}, now_ts=world.now, offset_cap=3000)  # fmt: skip
    con = duckdb.connect(str(db))
    ensure_raw(con)
    t1 = time.perf_counter()
    ingest.ingest_markets(con, src)
    report = ingest.ingest_trades(con, src, start=world.config.start_ts, end=world.now - 1)
    t_trades = time.perf_counter() - t1
    requests = server.requests
    # every wallet that traded: its /activity over the whole history (one request each)
    t2 = time.perf_counter()
    activity = ingest.ingest_activity(con, src, start=world.config.start_ts, end=world.now - 1)
    t_activity = time.perf_counter() - t2
    return {
        "case": "http", "scale": scale, "fills": len(world.tape), "rows_in_warehouse": report.load.inserted,
        "quarantined": report.load.quarantined, "requests": requests, "generate_s": round(t_gen, 2),
        "activity_rows": activity.load.inserted, "activity_wallets": activity.streams_done,
        "activity_requests": server.requests - requests, "activity_s": round(t_activity, 2),
        "ingest_s": round(t_trades, 2), "fills_per_s": round(report.load.inserted / t_trades),
        "total_s": round(time.perf_counter() - t0, 2), "peak_rss_mb": round(peak_mb()),
    }  # fmt: skip


def loader(rows: int, db: Path) -> dict:
    world = generate_world(SimConfig(n_markets=200, n_wallets=500, n_trades=rows))
    table = tape_table(world).slice(0, rows)
    con = duckdb.connect(str(db))
    ensure_raw(con)
    t0 = time.perf_counter()
    load_trades(con, table, QUARANTINE_SCHEMA.empty_table(), source="sim")
    t_arrow = time.perf_counter() - t0
    con.execute(
        "CREATE TABLE many AS SELECT * EXCLUDE (fill_key, trade_date, source, ingested_at) FROM raw.trades LIMIT 0"
    )
    values = [tuple(r.values()) for r in table.to_pylist()]
    t1 = time.perf_counter()
    con.executemany(f"INSERT INTO many VALUES ({', '.join('?' * table.num_columns)})", values)
    t_many = time.perf_counter() - t1
    return {
        "case": "loader", "rows": table.num_rows, "arrow_natural_key_load_s": round(t_arrow, 3),
        "executemany_plain_insert_s": round(t_many, 3), "ratio": round(t_many / t_arrow, 1),
        "peak_rss_mb": round(peak_mb()),
    }  # fmt: skip


ROOT = Path(__file__).resolve().parents[1]


def dump_path(scale: float) -> Path:
    return ROOT / "data" / "bench" / "files" / f"tape_scale{scale:g}.parquet"


def files_dump(scale: float) -> dict:
    """The world's whole tape as the Data API serves it (its malformed share too), one Parquet file: a dump."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    world = generate_world(SimConfig.scaled(scale))
    frame = SimPolymarket(world).trades_frame(np.arange(len(world.tape)))
    path = dump_path(scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=100_000)
    return {"rows": len(frame), "mb": round(path.stat().st_size / 1e6)}


def files(scale: float, batch_rows: int, db: Path) -> dict:
    """The dump through ``FileSource`` and ``ingest_trades``: read, validated and loaded ``batch_rows`` records at
    a time (0: the whole file at once, as the file source did before it streamed). The dump is written first by
    another process, so this process's peak memory is the load's."""
    path = dump_path(scale)
    if not path.exists():
        subprocess.run([sys.executable, __file__, "files_dump", "--scale", str(scale)], check=True)
    con = duckdb.connect(str(db))
    ensure_raw(con)
    src = FileSource(str(path), None, now_ts=2_000_000_000, batch_rows=batch_rows or 10**12)
    t0 = time.perf_counter()
    report = ingest.ingest_trades(con, src, start=1_500_000_000, end=2_000_000_000)
    seconds = time.perf_counter() - t0
    (n,) = con.execute("SELECT count(*) FROM raw.trades").fetchone()
    return {
        "case": "files_whole" if batch_rows == 0 else "files_stream", "scale": scale, "batch_rows": batch_rows,
        "records": report.load.received, "rows_in_warehouse": n, "quarantined": report.load.quarantined,
        "batches": report.pages, "dump_mb": round(path.stat().st_size / 1e6), "ingest_s": round(seconds, 2),
        "records_per_s": round(report.load.received / seconds), "peak_rss_mb": round(peak_mb()),
    }  # fmt: skip


def orderfilled_paths(scale: float) -> tuple[Path, Path]:
    d = ROOT / "data" / "bench" / "files"
    return d / f"orderfilled_scale{scale:g}.csv", d / f"markets_scale{scale:g}.json"


def orderfilled_dump(scale: float) -> dict:
    """The world's tape as on-chain ``OrderFilled`` events (dumps.py): each fill one event whose maker is the
    fill's wallet (``makerAssetId`` "0" when it buys), amounts as whole 1e-6 units, the exchange as taker; and the
    world's markets as Gamma objects. One CSV, as poly_data writes it."""
    import pandas as pd

    world = generate_world(SimConfig.scaled(scale))
    api = SimPolymarket(world)
    f = api.trades_frame(np.arange(len(world.tape)))
    f = f[f["proxyWallet"].str.fullmatch(r"0x[0-9a-f]{40}").fillna(False)]  # the served malformed share aside
    buy = (f["side"] == "BUY").to_numpy()
    shares = np.round(pd.to_numeric(f["size"], errors="coerce").to_numpy() * 1e6).astype(np.int64)
    usd = np.round(shares * pd.to_numeric(f["price"], errors="coerce").to_numpy()).astype(np.int64)
    asset = f["asset"].astype(str).to_numpy()
    events = pd.DataFrame({
        "timestamp": f["timestamp"].to_numpy(), "maker": f["proxyWallet"].to_numpy(),
        "makerAssetId": np.where(buy, "0", asset), "makerAmountFilled": np.where(buy, usd, shares),
        "taker": "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e", "takerAssetId": np.where(buy, asset, "0"),
        "takerAmountFilled": np.where(buy, shares, usd), "transactionHash": f["transactionHash"].to_numpy(),
    })  # fmt: skip
    trades, markets = orderfilled_paths(scale)
    trades.parent.mkdir(parents=True, exist_ok=True)
    events.to_csv(trades, index=False)
    markets.write_text(json.dumps(api.market_objects()))
    return {"rows": len(events), "mb": round(trades.stat().st_size / 1e6)}


def orderfilled(scale: float, batch_rows: int, db: Path, memory_limit: str | None = None) -> dict:
    """The events dump through ``FileSource(trade_format="orderfilled")`` and ``ingest_trades``: read, converted
    to fills, validated and loaded ``batch_rows`` rows at a time. Written first by another process."""
    trades, markets = orderfilled_paths(scale)
    if not trades.exists():
        subprocess.run([sys.executable, __file__, "orderfilled_dump", "--scale", str(scale)], check=True)
    con = duckdb.connect(str(db), config={"memory_limit": memory_limit} if memory_limit else {})
    ensure_raw(con)
    src = FileSource(str(trades), str(markets), now_ts=2_000_000_000, batch_rows=batch_rows or 10**12,
                     trade_format="orderfilled")  # fmt: skip
    t0 = time.perf_counter()
    report = ingest.ingest_trades(con, src, start=1_500_000_000, end=2_000_000_000)
    seconds = time.perf_counter() - t0
    (n,) = con.execute("SELECT count(*) FROM raw.trades").fetchone()
    return {
        "case": "orderfilled_whole" if batch_rows == 0 else "orderfilled_stream", "scale": scale,
        "memory_limit": memory_limit,
        "batch_rows": batch_rows, "records": report.load.received, "rows_in_warehouse": n,
        "quarantined": report.load.quarantined, "batches": report.pages,
        "dump_mb": round(trades.stat().st_size / 1e6), "ingest_s": round(seconds, 2),
        "records_per_s": round(report.load.received / seconds), "peak_rss_mb": round(peak_mb()),
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=["sim_bulk", "http", "loader", "files", "files_dump", "orderfilled",
                                    "orderfilled_dump"])  # fmt: skip
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument(
        "--batch-rows", type=int, default=FILE_BATCH_ROWS, help="files: records per batch (0: whole)"
    )
    p.add_argument("--memory-limit", default=None, help="orderfilled: DuckDB's memory_limit, e.g. 1GB")
    args = p.parse_args()
    if args.case in ("files_dump", "orderfilled_dump"):
        print(
            json.dumps(
                {"files_dump": files_dump, "orderfilled_dump": orderfilled_dump}[args.case](args.scale)
            )
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        out = {"sim_bulk": lambda: sim_bulk(args.scale, db), "http": lambda: http(args.scale, db),
               "loader": lambda: loader(args.rows, db),
               "files": lambda: files(args.scale, args.batch_rows, db),
               "orderfilled": lambda: orderfilled(args.scale, args.batch_rows, db, args.memory_limit)}[args.case]()  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
