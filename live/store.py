"""The live loop's own store: one SQLite file per data directory (``<live dir>/live.sqlite``), in WAL mode.

Why not the DuckDB warehouse: DuckDB allows one writing process, and while one holds the file no other process may
read it. The live loop commits a decision every few milliseconds for days on end, and the batch, the Dagster
sensor and the dashboard must read while it runs. SQLite in WAL mode gives exactly that: one writer, readers that
never block it nor wait on it. The sync copies these tables into the warehouse (``live.*``) for SQL next to the
rest (``live.assets.LIVE_TABLES``: fills, decisions, intents, paper_fills, nav, alerts, loss_events);
``whalecopy live --status`` and the sensor read them here.

Every tick of the loop is one transaction (``Commit``): the new fills, the decisions and the order intents they
make, the book's inputs (to rebuild it after a crash), the feed's aggregates, positions and boundaries. The
decision is committed before anything is emitted (``intents.emitted_at`` is set after the intent is written out):
a crash costs at most a missed emission, never a second one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills (
    identity TEXT PRIMARY KEY,          -- tx|wallet|condition|token|side|outcome|price|size|ts: the full identity
    fill_key TEXT NOT NULL,             -- the batch's natural key (md5_number), decimal
    decision_key TEXT NOT NULL,         -- wallet|tx|token|side: the order it is a leg of
    wallet TEXT NOT NULL, token_id TEXT NOT NULL, condition_id TEXT NOT NULL, side TEXT NOT NULL,
    outcome_index INTEGER, price REAL NOT NULL, size REAL NOT NULL, ts INTEGER NOT NULL, transaction_hash TEXT,
    source TEXT NOT NULL,               -- the first source that delivered it: rtds_trades | rtds_orders_matched |
                                        -- rtds_unlabelled | poll | snapshot
    sources TEXT NOT NULL,              -- every source that delivered it, comma-separated
    received_at REAL NOT NULL,          -- market time when it first arrived
    received_wall REAL NOT NULL         -- epoch seconds of this machine when it first arrived
);
CREATE INDEX IF NOT EXISTS fills_by_decision ON fills (decision_key);
CREATE TABLE IF NOT EXISTS decisions (
    decision_key TEXT PRIMARY KEY,      -- at most one decision per leader order
    seq INTEGER NOT NULL UNIQUE,
    fill_key TEXT NOT NULL, wallet TEXT NOT NULL, token_id TEXT NOT NULL, side TEXT NOT NULL,
    ts INTEGER NOT NULL, day INTEGER NOT NULL, legs INTEGER NOT NULL, size REAL, whale_price REAL,
    stage_reached TEXT NOT NULL,        -- whale | trade | portfolio | copied | skipped_stale | exit | not_held
    copied INTEGER NOT NULL, reason TEXT,
    copy_price REAL, daily_notional REAL, days_to_resolution REAL, wqs REAL, edge_at_copy REAL, slippage REAL,
    whale_volatility REAL, nav REAL, correlation REAL,
    fraction REAL,                      -- a BUY's order as a share of NAV (sizing's f)
    whale_sold_fraction REAL,           -- a SELL: the share of its position the whale sold
    shares REAL, price REAL, notional REAL,
    fee REAL, sources TEXT,
    received_at REAL, decided_at REAL,  -- market time
    decided_wall REAL,                  -- epoch seconds of this machine when it was committed
    first_seen_to_decision_s REAL,      -- this machine's clock: first leg received -> committed (includes the wait
                                        -- for the copy latency to pass in market time)
    frame_to_decision_s REAL,           -- the frame that released it -> committed
    fill_to_decision_s REAL,            -- the fill's own timestamp -> committed, market time
    late INTEGER NOT NULL DEFAULT 0     -- released after market time had passed it (a poll found it late)
);
CREATE TABLE IF NOT EXISTS intents (
    intent_id TEXT PRIMARY KEY, decision_key TEXT NOT NULL, created_at TEXT NOT NULL, kind TEXT NOT NULL,
    side TEXT NOT NULL, token_id TEXT NOT NULL, shares REAL NOT NULL, limit_price REAL NOT NULL,
    notional REAL NOT NULL, copied_wallet TEXT, emitted_at REAL
);
CREATE TABLE IF NOT EXISTS paper_fills (
    seq INTEGER PRIMARY KEY, key TEXT NOT NULL, kind TEXT NOT NULL, day INTEGER NOT NULL, ts REAL NOT NULL,
    token_id TEXT NOT NULL, shares REAL NOT NULL, price REAL NOT NULL, fee REAL NOT NULL, cash_after REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS nav (
    day INTEGER PRIMARY KEY, cash REAL, positions_value REAL, nav REAL, exposure_share REAL,
    max_category_share REAL, open_positions INTEGER, drawdown REAL, daily_return REAL, var REAL,
    entries_blocked INTEGER
);
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY, day INTEGER, kind TEXT, message TEXT, posted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS loss_events (
    id INTEGER PRIMARY KEY, reason TEXT NOT NULL, start_ts REAL NOT NULL, end_ts REAL NOT NULL, detail TEXT,
    wallets TEXT, opened_at REAL NOT NULL, closed_at REAL, closed_by TEXT
);
CREATE TABLE IF NOT EXISTS boundaries (wallet TEXT PRIMARY KEY, complete_through REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY, received_at REAL, source TEXT, reason_code TEXT, reasons TEXT, record TEXT
);
CREATE TABLE IF NOT EXISTS token_hours (token_id TEXT, hour INTEGER, units TEXT, PRIMARY KEY (token_id, hour));
CREATE TABLE IF NOT EXISTS day_prints (token_id TEXT, day INTEGER, ts INTEGER, price REAL,
                                       PRIMARY KEY (token_id, day));
CREATE TABLE IF NOT EXISTS prints (token_id TEXT, ts INTEGER, price REAL, PRIMARY KEY (token_id, ts));
CREATE TABLE IF NOT EXISTS history (token_id TEXT, day INTEGER, price REAL, PRIMARY KEY (token_id, day));
CREATE TABLE IF NOT EXISTS history_through (token_id TEXT PRIMARY KEY, day INTEGER);
CREATE TABLE IF NOT EXISTS positions (wallet TEXT, token_id TEXT, units TEXT, PRIMARY KEY (wallet, token_id));
CREATE TABLE IF NOT EXISTS book_log (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL);
"""


class StoreError(RuntimeError):
    """The live store cannot be written: the loop stops (state ``failed``) rather than decide without it."""


@dataclass
class Commit:
    """One tick's writes, committed together."""

    fills: list[dict] = field(default_factory=list)
    fill_sources: list[tuple[str, str]] = field(default_factory=list)  # (identity, source) of repeats
    decisions: list[dict] = field(default_factory=list)
    intents: list[dict] = field(default_factory=list)
    paper_fills: list[dict] = field(default_factory=list)
    nav: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    losses_opened: list[dict] = field(default_factory=list)
    losses_closed: list[dict] = field(default_factory=list)
    boundaries: dict[str, float] = field(default_factory=dict)
    rejected: list[dict] = field(default_factory=list)
    token_hours: dict[tuple[str, int], int] = field(default_factory=dict)
    day_prints: dict[tuple[str, int], tuple[int, float]] = field(default_factory=dict)
    prints: dict[tuple[str, int], float] = field(default_factory=dict)
    history: dict[tuple[str, int], float] = field(default_factory=dict)
    history_through: dict[str, int] = field(default_factory=dict)
    positions: dict[tuple[str, str], int] = field(default_factory=dict)
    book_log: list[tuple[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def empty(self) -> bool:
        return not any(v for v in self.__dict__.values())


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A reader that never blocks the live loop (WAL): the sensor, the CLI and the dashboard use it."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no live store at {path}: start `whalecopy live` first")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
    con.row_factory = sqlite3.Row
    return con


class Store:
    """The writer. Used by one task of the loop only."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")  # WAL: a process crash loses nothing committed
        self.con.executescript(SCHEMA)
        self._seq = {
            t: self._max("seq", t) for t in ("decisions", "paper_fills", "alerts", "rejected", "book_log")
        }

    def _max(self, col: str, table: str) -> int:
        return int(self.con.execute(f"SELECT coalesce(max({col}), 0) FROM {table}").fetchone()[0])

    def close(self) -> None:
        self.con.close()

    # -------------------------------------------------------------------------------------------- reads
    def state(self, key: str, default: Any = None) -> Any:
        row = self.con.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else default

    def rows(self, sql: str, params: Iterable = ()) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, list(params))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def known_identities(self, identities: Iterable[str]) -> set[str]:
        ids = list(identities)
        out: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = f"SELECT identity FROM fills WHERE identity IN ({','.join('?' * len(chunk))})"
            out |= {r[0] for r in self.con.execute(q, chunk).fetchall()}
        return out

    def intents_with_base(self, base: str) -> int:
        """How many intents have the id ``base`` or a numbered repeat of it (``base-2``, ...)."""
        q = "SELECT count(*) FROM intents WHERE intent_id = ? OR intent_id GLOB ?"
        return int(self.con.execute(q, [base, f"{base}-[0-9]*"]).fetchone()[0])

    def decided(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT decision_key FROM decisions").fetchall()}

    def next_seq(self, table: str) -> int:
        self._seq[table] += 1
        return self._seq[table]

    # -------------------------------------------------------------------------------------------- the tick
    def commit(self, c: Commit) -> None:
        """Write one tick in one transaction; a failure rolls all of it back and raises ``StoreError``."""
        if c.empty():
            return
        con = self.con
        try:
            con.execute("BEGIN IMMEDIATE")
            if c.fills:
                con.executemany(
                    "INSERT OR IGNORE INTO fills VALUES (:identity, :fill_key, :decision_key, :wallet, :token_id, "
                    ":condition_id, :side, :outcome_index, :price, :size, :ts, :transaction_hash, :source, :source, "
                    ":received_at, :received_wall)",
                    c.fills,
                )
            for identity, source in c.fill_sources:
                con.execute(
                    "UPDATE fills SET sources = sources || ',' || ? WHERE identity = ? AND instr(sources, ?) = 0",
                    [source, identity, source],
                )
            for d in c.decisions:
                cols = list(d)
                con.execute(f"INSERT INTO decisions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            [d[k] for k in cols])  # fmt: skip
            _insert(con, "intents", c.intents)
            _insert(con, "paper_fills", c.paper_fills)
            if c.nav:
                _insert(con, "nav", c.nav, replace=True)
            _insert(con, "alerts", c.alerts)
            _insert(con, "loss_events", c.losses_opened)
            for e in c.losses_closed:
                con.execute("UPDATE loss_events SET closed_at = ?, closed_by = ? WHERE id = ?",
                            [e["closed_at"], e["closed_by"], e["id"]])  # fmt: skip
            con.executemany("INSERT OR REPLACE INTO boundaries VALUES (?, ?)", list(c.boundaries.items()))
            _insert(con, "rejected", c.rejected)
            con.executemany("INSERT OR REPLACE INTO token_hours VALUES (?, ?, ?)",
                            [(t, h, str(u)) for (t, h), u in c.token_hours.items()])  # fmt: skip
            con.executemany("INSERT OR REPLACE INTO day_prints VALUES (?, ?, ?, ?)",
                            [(t, d, ts, p) for (t, d), (ts, p) in c.day_prints.items()])  # fmt: skip
            con.executemany("INSERT OR REPLACE INTO prints VALUES (?, ?, ?)",
                            [(t, ts, p) for (t, ts), p in c.prints.items()])  # fmt: skip
            con.executemany("INSERT OR REPLACE INTO history VALUES (?, ?, ?)",
                            [(t, d, p) for (t, d), p in c.history.items()])  # fmt: skip
            con.executemany(
                "INSERT OR REPLACE INTO history_through VALUES (?, ?)", list(c.history_through.items())
            )
            con.executemany("INSERT OR REPLACE INTO positions VALUES (?, ?, ?)",
                            [(w, t, str(u)) for (w, t), u in c.positions.items()])  # fmt: skip
            con.executemany("INSERT INTO book_log VALUES (?, ?, ?)",
                            [(self.next_seq("book_log"), k, json.dumps(p)) for k, p in c.book_log])  # fmt: skip
            con.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)",
                            [(k, json.dumps(v, default=str)) for k, v in c.state.items()])  # fmt: skip
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise StoreError(f"the live store {self.path} could not be written: {exc}") from exc

    def mark_emitted(self, intent_ids: Iterable[str], at: float | None = None) -> None:
        ids = list(intent_ids)
        if ids:
            self.con.executemany("UPDATE intents SET emitted_at = ? WHERE intent_id = ?",
                                 [(at or time.time(), i) for i in ids])  # fmt: skip

    def mark_posted(self, seqs: Iterable[int]) -> None:
        self.con.executemany("UPDATE alerts SET posted = 1 WHERE seq = ?", [(s,) for s in seqs])


def _insert(con: sqlite3.Connection, table: str, rows: list[Mapping], replace: bool = False) -> None:
    if not rows:
        return
    cols = list(rows[0])
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    con.executemany(
        f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})", rows
    )
