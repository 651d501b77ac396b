"""The hand-off from the batch to the live loop: what the live loop needs to decide as the batch would, written by
the sync (the ``live/snapshot`` asset) as Parquet files the live loop reads without ever opening the warehouse.

DuckDB allows one writing process, and no other process may read a file one holds for writing. So the live loop,
a long-lived writer of its own store, never touches the warehouse: the batch publishes a snapshot directory and
then, atomically, a ``CURRENT`` pointer to it; the live loop checks the pointer every few seconds and picks up a
new generation when a batch completes. Neither process waits on the other.

A generation holds (``live/decider.py:Snapshot``): the run's strategy config and fee, the whales (every scored
wallet's latest score, quarantine state and volatility; ``tracked`` marks the whale universe), every token's
market, the exact hourly flow of the last 169 hours (an order's flow is the 168 whole hours before its hour, and
the orders of the data's last hour are decided live), the marks of the last 45 days, the tracked wallets'
positions and the fills and prints of the last minutes (orders due after the data's end are decided live).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assets.score.flags import FLAGS_AT_SQL
from assets.signal.assets import FLOW_HOURS, TOKEN_DAYS_SQL, TOKEN_HOURS_SQL, whale_volatility
from assets.signal.model import score_day
from assets.strategy import StrategyConfig

from .decider import Snapshot

DAY = 86_400
MARK_DAYS = 45  # the marks handed over: the book's 31-day look-back, with room
RECENT_MARGIN_S = 120  # fills and prints handed over from the copy latency plus this before the data's end
KEEP_GENERATIONS = 3
TABLES = ("whales", "markets", "token_hours", "marks", "positions", "prints", "recent_fills")

WHALES_SQL = f"""
WITH s AS (
    SELECT wallet, as_of AS score_as_of, wqs, rolling_sharpe_30, rolling_sharpe_90, current_drawdown,
           edge_mean AS whale_edge
    FROM analytics.whale_scores QUALIFY row_number() OVER (PARTITION BY wallet ORDER BY as_of DESC) = 1
), q AS (
    SELECT wallet, quarantined
    FROM analytics.whale_quarantine QUALIFY row_number() OVER (PARTITION BY wallet ORDER BY as_of DESC) = 1
)
SELECT s.*, coalesce(q.quarantined, false) AS quarantined, fl.flags,
       s.wallet IN (SELECT wallet FROM analytics.whale_universe)
           OR (s.wqs >= $min_wqs AND (fl.flags IS NULL OR $keep)) AS tracked
FROM s LEFT JOIN q USING (wallet)
LEFT JOIN ({FLAGS_AT_SQL}) fl ON fl.wallet = s.wallet AND fl.as_of = s.score_as_of
ORDER BY wallet
"""

MARKETS_SQL = """
SELECT t.token_id, t.condition_id, m.event_id, m.category,
       epoch(try_cast(m.end_date AS TIMESTAMPTZ)) AS end_epoch, epoch(m.end_date) AS end_ts,
       CASE WHEN t.has_valid_payout THEN epoch(t.resolved_at) END AS resolved_ts,
       CASE WHEN t.has_valid_payout THEN t.payout END AS payout
FROM intermediate.int_market_tokens t JOIN marts.dim_markets m USING (condition_id)
ORDER BY token_id
"""

HOURS_SQL = f"""
SELECT token_id, hour, notional::VARCHAR AS units
FROM ({TOKEN_HOURS_SQL}) WHERE hour >= $from_hour ORDER BY token_id, hour
"""

MARKS_SQL = f"""
WITH history AS (
    SELECT token_id, CAST(floor(ts / 86400) AS BIGINT) AS day, arg_max(price, ts) AS price
    FROM raw.price_history WHERE ts >= $from_day * 86400 GROUP BY ALL
), trades AS (SELECT token_id, day, last_price AS price FROM ({TOKEN_DAYS_SQL}) WHERE day >= $from_day)
SELECT token_id, day, coalesce(h.price, t.price) AS price
FROM history h FULL JOIN trades t USING (token_id, day) ORDER BY token_id, day
"""

POSITIONS_SQL = """
SELECT wallet, token_id,
       sum(CAST(CASE WHEN side = 'BUY' THEN size ELSE -size END AS DECIMAL(38, 12)))::VARCHAR AS shares
FROM intermediate.int_position_fills
WHERE ts < $recent AND wallet IN (SELECT UNNEST($tracked::VARCHAR[]))
GROUP BY ALL ORDER BY wallet, token_id
"""

PRINTS_SQL = """
SELECT token_id, ts, max(price) AS price FROM intermediate.int_position_fills WHERE ts >= $recent AND kind = 'trade'
GROUP BY ALL ORDER BY token_id, ts
"""

RECENT_FILLS_SQL = """
SELECT CAST(fill_key AS VARCHAR) AS fill_key, wallet AS proxy_wallet, side, token_id AS asset, condition_id,
       size, price, ts, outcome_index, transaction_hash
FROM intermediate.int_position_fills
WHERE ts >= $recent AND kind = 'trade' AND wallet IN (SELECT UNNEST($tracked::VARCHAR[]))
ORDER BY ts, fill_key
"""

FIDELITY_SQL = """
SELECT median(d) FROM (SELECT ts - lag(ts) OVER (PARTITION BY token_id ORDER BY ts) AS d FROM raw.price_history)
WHERE d > 0
"""


def build_frames(
    con: duckdb.DuckDBPyConnection, strategy: StrategyConfig, fee_rate: float
) -> tuple[dict, dict]:
    """(meta, frames) of a snapshot, read from the warehouse; an empty warehouse gives ``data_end_ts`` None."""
    (last_ts,) = con.execute("SELECT max(ts) FROM intermediate.int_position_fills").fetchall()[0]
    if last_ts is None:
        return {"data_end_ts": None}, {}
    data_end = (int(last_ts) // DAY + 1) * DAY
    recent = data_end - int(strategy.copy_latency_seconds) - RECENT_MARGIN_S
    # tracked: the universe, and any unflagged wallet whose score can pass stage 1 (so nothing the batch would copy
    # is missed when the universe's bound is above stage 1's)
    whales = con.execute(
        WHALES_SQL, {"min_wqs": float(strategy.min_wqs), "keep": strategy.keep_flagged_wallets}
    ).df()
    whales["whale_volatility"] = whale_volatility(
        con, whales["wallet"], score_day(whales["score_as_of"]), whales["wqs"], strategy.volatility_min_wqs()
    )
    (fidelity,) = con.execute(FIDELITY_SQL).fetchall()[0]
    tracked = sorted(whales.loc[whales["tracked"], "wallet"])
    frames = {
        "whales": whales,
        "markets": con.execute(MARKETS_SQL).df(),
        "token_hours": con.execute(HOURS_SQL, {"from_hour": data_end // 3600 - FLOW_HOURS - 1}).df(),
        "marks": con.execute(MARKS_SQL, {"from_day": data_end // DAY - MARK_DAYS}).df(),
        "positions": con.execute(POSITIONS_SQL, {"recent": recent, "tracked": tracked}).df(),
        "prints": con.execute(PRINTS_SQL, {"recent": recent}).df(),
        "recent_fills": con.execute(RECENT_FILLS_SQL, {"recent": recent, "tracked": tracked}).df(),
    }
    meta = {
        "data_end_ts": data_end,
        "recent_start_ts": recent,
        "as_of": str(whales["score_as_of"].max()) if len(whales) else None,
        "fee_rate": fee_rate,
        "fidelity_minutes": int(round(float(fidelity) / 60)) if fidelity else 1440,
        "strategy": strategy.model_dump(),
        "tracked": int(whales["tracked"].sum()),
    }
    return meta, frames


@dataclass(frozen=True)
class Published:
    generation: str
    path: Path
    meta: dict


def content_key(meta: dict, frames: dict[str, pd.DataFrame]) -> str:
    """A digest of what a generation holds: the same warehouse gives the same generation (a rerun of the sync
    publishes nothing new, and the live loop reloads only when the batch's state changed)."""
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    for name in sorted(frames):
        f = frames[name]
        h.update(name.encode() + json.dumps([list(map(str, f.columns)), list(map(str, f.dtypes))]).encode())
        h.update(pd.util.hash_pandas_object(f.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def publish(root: Path, meta: dict, frames: dict[str, pd.DataFrame]) -> Published:
    """Write a generation under ``root`` (Parquet per frame, ``meta.json``), then point ``CURRENT`` at it with an
    atomic rename: a reader sees the old generation or the new one, never half of one. A generation is named by
    its data's last day and a digest of its content, so publishing the same state again changes nothing."""
    root.mkdir(parents=True, exist_ok=True)
    day = time.strftime("%Y%m%d", time.gmtime(meta["data_end_ts"] - 1))
    generation = f"{day}-{content_key(meta, frames)}"
    path = root / generation
    if not path.exists():
        tmp = root / f".{generation}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, frame in frames.items():
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp / f"{name}.parquet")
        (tmp / "meta.json").write_text(json.dumps({**meta, "generation": generation}, default=str, indent=1))
        tmp.rename(path)
    pointer = root / f".CURRENT.{os.getpid()}.tmp"
    pointer.write_text(generation)
    os.replace(pointer, root / "CURRENT")
    kept = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.stat().st_mtime)  # fmt: skip
    for old in kept[:-KEEP_GENERATIONS]:
        if old.name != generation:
            shutil.rmtree(old, ignore_errors=True)
    return Published(generation, path, {**meta, "generation": generation})


def current_generation(root: Path) -> str | None:
    try:
        return (root / "CURRENT").read_text().strip() or None
    except FileNotFoundError:
        return None


def _units(values) -> list[int]:
    return [int(Decimal(str(v)).scaleb(12)) for v in values]


def load(root: Path, generation: str | None = None) -> Snapshot:
    """Read a generation (the current one by default) into a ``Snapshot``."""
    generation = generation or current_generation(root)
    if generation is None:
        raise FileNotFoundError(
            f"no batch snapshot under {root}: run the batch first (`make demo` or `whalecopy run`), whose sync "
            "publishes the whale universe and the state the live loop starts from"
        )
    path = root / generation
    meta = json.loads((path / "meta.json").read_text())
    frames = {name: pq.read_table(path / f"{name}.parquet").to_pandas() for name in TABLES}
    hours = frames["token_hours"]
    hours["units"] = _units(hours["units"])
    pos = frames["positions"]
    pos["units"] = [int(Decimal(v).scaleb(12)) for v in pos.pop("shares")]
    fills = frames["recent_fills"]
    fills["fill_key"] = [int(k) for k in fills["fill_key"]]
    return Snapshot(meta=meta, **frames)
