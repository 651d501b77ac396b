"""Writes to the raw schema: bulk loads through Arrow, idempotent by natural key, cursor in the same transaction.

DuckDB auto-commits each statement of a multi-statement string, so every load here is one explicit
``BEGIN ... COMMIT``: the rows, their quarantine and the ingest cursor land together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from assets.warehouse import Transaction
from quality.quarantine import ensure_quarantine, write_quarantine

RAW_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.trades (
    fill_key         UHUGEINT NOT NULL,   -- md5 of the natural key (tx hash, wallet, token, side, size, price, ts)
    proxy_wallet     VARCHAR NOT NULL,
    side             VARCHAR NOT NULL,
    asset            VARCHAR NOT NULL,    -- outcome token id, decimal string (does not fit int64)
    condition_id     VARCHAR NOT NULL,
    size             DOUBLE NOT NULL,     -- shares
    price            DOUBLE NOT NULL,     -- USDC per share, [0, 1]
    ts               BIGINT NOT NULL,     -- epoch seconds, UTC
    trade_date       DATE NOT NULL,       -- UTC day of ts (the daily partition)
    outcome          VARCHAR,
    outcome_index    INTEGER,
    title            VARCHAR,
    slug             VARCHAR,
    event_slug       VARCHAR,
    name             VARCHAR,
    pseudonym        VARCHAR,
    transaction_hash VARCHAR,
    source           VARCHAR NOT NULL,   -- sim | live | files (no per-row URL: it would outweigh the row)
    ingested_at      TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.activity (
    activity_key     UHUGEINT NOT NULL,   -- md5 of the natural key (tx hash, wallet, type, market, token, side, sizes, ts)
    proxy_wallet     VARCHAR NOT NULL,
    type             VARCHAR NOT NULL,    -- TRADE SPLIT MERGE REDEEM REWARD CONVERSION MAKER_REBATE TAKER_REBATE
    condition_id     VARCHAR,             -- null on REWARD and rebates (the API's "")
    asset            VARCHAR,             -- the token of a TRADE or a CONVERSION leg, else null
    side             VARCHAR,             -- BUY | SELL on a TRADE or a CONVERSION leg, else null
    size             DOUBLE NOT NULL,     -- shares (SPLIT, MERGE: of each outcome, REDEEM: as the API gives it)
    usdc_size        DOUBLE NOT NULL,     -- USDC: paid, received, redeemed or earned
    price            DOUBLE,
    ts               BIGINT NOT NULL,     -- epoch seconds, UTC
    activity_date    DATE NOT NULL,       -- UTC day of ts (the daily partition)
    outcome_index    INTEGER,             -- 999 where the API cannot label it
    outcome          VARCHAR,
    title            VARCHAR,
    slug             VARCHAR,
    event_slug       VARCHAR,
    transaction_hash VARCHAR,
    source           VARCHAR NOT NULL,
    ingested_at      TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.markets (
    condition_id            VARCHAR PRIMARY KEY,
    market_id               VARCHAR,
    question_id             VARCHAR,
    question                VARCHAR,
    slug                    VARCHAR,
    event_id                VARCHAR,
    event_slug              VARCHAR,
    event_title             VARCHAR,
    category                VARCHAR,
    tags                    VARCHAR,   -- JSON text: [{id, label, slug}] of the market and its events
    outcomes                VARCHAR,   -- JSON-encoded string array, as fetched
    outcome_prices          VARCHAR,   -- JSON-encoded string array of decimal strings, as fetched
    clob_token_ids          VARCHAR,   -- JSON-encoded string array of token ids, as fetched
    closed                  BOOLEAN,
    active                  BOOLEAN,
    archived                BOOLEAN,
    uma_resolution_status   VARCHAR,
    uma_resolution_statuses VARCHAR,
    start_date              VARCHAR,   -- ISO-8601 as fetched
    end_date                VARCHAR,   -- ISO-8601 as fetched (scheduled end, not the resolution time)
    closed_time             VARCHAR,   -- Postgres style as fetched, e.g. '2026-01-05 04:22:25+00'
    uma_end_date            VARCHAR,
    neg_risk                BOOLEAN,
    volume_num              DOUBLE,
    source                  VARCHAR NOT NULL,
    origin                  VARCHAR,
    content_hash            UHUGEINT NOT NULL,
    fetched_at              TIMESTAMPTZ NOT NULL   -- when this version of the row was first seen
);
CREATE TABLE IF NOT EXISTS raw.price_history (
    token_id    VARCHAR NOT NULL,
    ts          BIGINT NOT NULL,
    price_date  DATE NOT NULL,
    price       DOUBLE NOT NULL,
    source      VARCHAR NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (token_id, ts)
);
CREATE TABLE IF NOT EXISTS raw.leaderboard (
    snapshot_date DATE NOT NULL,
    category      VARCHAR NOT NULL,
    time_period   VARCHAR NOT NULL,
    order_by      VARCHAR NOT NULL,
    proxy_wallet  VARCHAR NOT NULL,
    rank          INTEGER,
    user_name     VARCHAR,
    vol           DOUBLE,
    pnl           DOUBLE,
    source        VARCHAR NOT NULL,
    origin        VARCHAR,
    PRIMARY KEY (snapshot_date, category, time_period, order_by, proxy_wallet)
);
CREATE TABLE IF NOT EXISTS raw.ingest_state (
    stream      VARCHAR PRIMARY KEY,   -- e.g. trades/market/<conditionId>, trades/user/<wallet>, prices/<token>
    start_ts    BIGINT NOT NULL,       -- [start_ts, cursor_ts] (epoch s, inclusive) is fetched completely
    cursor_ts   BIGINT NOT NULL,
    last_rows   BIGINT NOT NULL,       -- accepted rows the latest complete fetch of the stream returned
    updated_at  TIMESTAMPTZ NOT NULL   -- when the window or last_rows last changed
);
"""

UTC_DATE_SQL = "DATE '1970-01-01' + CAST(ts // 86400 AS INTEGER)"  # the UTC day of an epoch second
FILL_KEY_SQL = (
    "md5_number(concat_ws('|', coalesce(transaction_hash, ''), proxy_wallet, asset, side, "
    "CAST(size AS VARCHAR), CAST(price AS VARCHAR), CAST(ts AS VARCHAR)))"
)

ACTIVITY_KEY_SQL = (
    "md5_number(concat_ws('|', coalesce(transaction_hash, ''), proxy_wallet, type, coalesce(condition_id, ''), "
    "coalesce(asset, ''), coalesce(side, ''), CAST(size AS VARCHAR), CAST(usdc_size AS VARCHAR), CAST(ts AS VARCHAR)))"
)


def ensure_raw(con: duckdb.DuckDBPyConnection) -> None:
    for statement in RAW_DDL.split(";"):
        if statement.strip():
            con.execute(statement)
    ensure_quarantine(con)


@dataclass
class LoadResult:
    received: int = 0
    inserted: int = 0
    repeats: int = 0
    quarantined: int = 0

    def __iadd__(self, other: LoadResult) -> LoadResult:
        self.received += other.received
        self.inserted += other.inserted
        self.repeats += other.repeats
        self.quarantined += other.quarantined
        return self


def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register(name, table)


def _upsert_cursors(con: duckdb.DuckDBPyConnection, cursors: Mapping[str, tuple[int, int, int]]) -> None:
    """``cursors``: stream -> (start_ts, cursor_ts, rows): the window [start_ts, cursor_ts] was fetched completely
    and returned ``rows`` accepted rows.
    A window that overlaps or touches the stored one extends it; a disjoint one replaces it (so a later run
    refetches rather than skips: dedupe makes refetching safe, skipping would not be)."""
    if not cursors:
        return
    streams = list(cursors)
    table = pa.table(
        {
            "stream": pa.array(streams, pa.string()),
            "start_ts": pa.array([cursors[s][0] for s in streams], pa.int64()),
            "cursor_ts": pa.array([cursors[s][1] for s in streams], pa.int64()),
            "last_rows": pa.array([cursors[s][2] for s in streams], pa.int64()),
        }
    )
    _register(con, "_cursors_in", table)
    try:
        con.execute(
            """
            INSERT INTO raw.ingest_state AS s
            SELECT stream, start_ts, cursor_ts, last_rows, now() FROM _cursors_in
            ON CONFLICT (stream) DO UPDATE SET
                start_ts = CASE WHEN excluded.start_ts <= s.cursor_ts + 1 AND excluded.cursor_ts + 1 >= s.start_ts
                                THEN least(s.start_ts, excluded.start_ts) ELSE excluded.start_ts END,
                cursor_ts = CASE WHEN excluded.start_ts <= s.cursor_ts + 1 AND excluded.cursor_ts + 1 >= s.start_ts
                                 THEN greatest(s.cursor_ts, excluded.cursor_ts) ELSE excluded.cursor_ts END,
                last_rows = excluded.last_rows,
                updated_at = CASE WHEN excluded.last_rows <> s.last_rows OR excluded.cursor_ts > s.cursor_ts
                                    OR excluded.start_ts < s.start_ts OR excluded.start_ts > s.cursor_ts + 1
                                  THEN excluded.updated_at ELSE s.updated_at END
            """
        )
    finally:
        con.unregister("_cursors_in")


def covered(con: duckdb.DuckDBPyConnection, prefix: str, start: int, end: int) -> set[str]:
    """Streams under ``prefix`` whose fetched window already covers [start, end]."""
    rows = con.execute(
        "SELECT stream FROM raw.ingest_state WHERE starts_with(stream, ?) AND start_ts <= ? AND cursor_ts >= ?",
        [prefix, start, end],
    ).fetchall()
    return {r[0] for r in rows}


def _load_new_rows(
    con: duckdb.DuckDBPyConnection,
    accepted: pa.Table,
    rejected: pa.Table,
    *,
    view: str,
    insert_sql: str,
    source: str,
    cursors: Mapping[str, tuple[int, int, int]] | None,
) -> LoadResult:
    """One transaction: ``insert_sql`` (reading ``accepted`` as ``view``, bound to ``source``, returning the count
    it inserted) adds the rows not already stored, ``rejected`` goes to the quarantine, ``cursors`` advance."""
    result = LoadResult(received=accepted.num_rows + rejected.num_rows)
    with Transaction(con):
        if accepted.num_rows:
            _register(con, view, accepted)
            try:
                (inserted,) = con.execute(insert_sql, [source]).fetchone()
            finally:
                con.unregister(view)
            result.inserted = int(inserted)
            result.repeats = accepted.num_rows - result.inserted
        result.quarantined = write_quarantine(con, rejected)
        _upsert_cursors(con, cursors or {})
    return result


def load_trades(
    con: duckdb.DuckDBPyConnection,
    accepted: pa.Table,
    rejected: pa.Table,
    *,
    source: str,
    cursors: Mapping[str, tuple[int, int, int]] | None = None,
) -> LoadResult:
    """Insert new fills (exact repeats, in the batch or already stored, are dropped; distinct fills sharing a
    transaction hash are kept), quarantine the rejected rows and advance the cursors, in one transaction.

    Dedupe on the key alone (16 bytes + a row number per row), not on whole rows: the first row of each key is
    kept, keys already stored are dropped, and the rows left are joined back by row number. Memory stays small at
    10M rows. The key (an md5 of the natural key's text, about 2 us a row) is computed once a row: it was twice,
    for the dedupe and for the row, most of a bulk load's time."""
    numbered = accepted.append_column("_rn", pa.array(np.arange(accepted.num_rows, dtype=np.int64)))
    return _load_new_rows(con, numbered, rejected, view="_trades_in", source=source, cursors=cursors, insert_sql=f"""
        INSERT INTO raw.trades
        SELECT n.fill_key, proxy_wallet, side, asset, condition_id, size, price, ts,
               {UTC_DATE_SQL}, outcome, outcome_index, title, slug,
               event_slug, name, pseudonym, transaction_hash, ?, now()
        FROM _trades_in i
        JOIN (
            SELECT k.fill_key, k._rn
            FROM (SELECT {FILL_KEY_SQL} AS fill_key, min(_rn) AS _rn FROM _trades_in GROUP BY 1) k
            ANTI JOIN raw.trades t USING (fill_key)
        ) n USING (_rn)
    """)  # fmt: skip


def load_activity(
    con: duckdb.DuckDBPyConnection,
    accepted: pa.Table,
    rejected: pa.Table,
    *,
    source: str,
    cursors: Mapping[str, tuple[int, int, int]] | None = None,
) -> LoadResult:
    """Insert new activity rows (exact repeats dropped by natural key), quarantine the rejected ones and advance
    the cursors, in one transaction (as :func:`load_trades`)."""
    return _load_new_rows(con, accepted, rejected, view="_activity_in", source=source, cursors=cursors, insert_sql=f"""
        INSERT INTO raw.activity
        SELECT activity_key, proxy_wallet, type, condition_id, asset, side, size, usdc_size, price, ts,
               {UTC_DATE_SQL}, outcome_index, outcome, title, slug, event_slug, transaction_hash, ?, now()
        FROM (SELECT *, {ACTIVITY_KEY_SQL} AS activity_key FROM _activity_in)
        ANTI JOIN raw.activity USING (activity_key)
        QUALIFY row_number() OVER (PARTITION BY activity_key) = 1
    """)  # fmt: skip


MARKET_HASH_SQL = (
    "md5_number(concat_ws('|', market_id, question, slug, event_id, event_slug, category, tags, outcomes, "
    "outcome_prices, clob_token_ids, CAST(closed AS VARCHAR), CAST(active AS VARCHAR), CAST(archived AS VARCHAR), "
    "uma_resolution_status, uma_resolution_statuses, start_date, end_date, closed_time, uma_end_date, "
    "CAST(neg_risk AS VARCHAR), CAST(volume_num AS VARCHAR)))"
)


def load_markets(
    con: duckdb.DuckDBPyConnection, accepted: pa.Table, rejected: pa.Table, *, source: str
) -> LoadResult:
    """Upsert markets by condition id. A row is rewritten only when its content changed, so fetching the same
    markets twice leaves the table identical (``fetched_at`` marks when the current version was first seen)."""
    result = LoadResult(received=accepted.num_rows + rejected.num_rows)
    with Transaction(con):
        if accepted.num_rows:
            _register(con, "_markets_in", accepted)
            try:
                (changed,) = con.execute(
                    f"""
                    INSERT INTO raw.markets AS m
                    SELECT * EXCLUDE (origin, h), ? AS source, origin, h AS content_hash, now() AS fetched_at
                    FROM (
                        SELECT *, {MARKET_HASH_SQL} AS h FROM _markets_in
                        QUALIFY row_number() OVER (PARTITION BY condition_id ORDER BY origin DESC) = 1
                    ) i
                    WHERE NOT EXISTS (
                        SELECT 1 FROM raw.markets r WHERE r.condition_id = i.condition_id AND r.content_hash = i.h
                    )
                    ON CONFLICT (condition_id) DO UPDATE SET
                        market_id = excluded.market_id, question_id = excluded.question_id,
                        question = excluded.question, slug = excluded.slug, event_id = excluded.event_id,
                        event_slug = excluded.event_slug, event_title = excluded.event_title,
                        category = excluded.category, tags = excluded.tags, outcomes = excluded.outcomes,
                        outcome_prices = excluded.outcome_prices, clob_token_ids = excluded.clob_token_ids,
                        closed = excluded.closed, active = excluded.active, archived = excluded.archived,
                        uma_resolution_status = excluded.uma_resolution_status,
                        uma_resolution_statuses = excluded.uma_resolution_statuses,
                        start_date = excluded.start_date, end_date = excluded.end_date,
                        closed_time = excluded.closed_time, uma_end_date = excluded.uma_end_date,
                        neg_risk = excluded.neg_risk, volume_num = excluded.volume_num, source = excluded.source,
                        origin = excluded.origin, content_hash = excluded.content_hash,
                        fetched_at = excluded.fetched_at
                    """,
                    [source],
                ).fetchone()
            finally:
                con.unregister("_markets_in")
            result.inserted = int(changed)
            result.repeats = accepted.num_rows - result.inserted
        result.quarantined = write_quarantine(con, rejected)
    return result


def load_price_history(
    con: duckdb.DuckDBPyConnection,
    accepted: pa.Table,
    rejected: pa.Table,
    *,
    source: str,
    cursors: Mapping[str, tuple[int, int, int]] | None = None,
) -> LoadResult:
    """Insert price points; a (token, ts) already stored is kept as it is."""
    result = LoadResult(received=accepted.num_rows + rejected.num_rows)
    with Transaction(con):
        if accepted.num_rows:
            _register(con, "_prices_in", accepted)
            try:
                (inserted,) = con.execute(
                    f"""
                    INSERT INTO raw.price_history
                    SELECT token_id, ts, {UTC_DATE_SQL}, price, ?, now()
                    FROM (SELECT DISTINCT ON (token_id, ts) * FROM _prices_in)
                    ON CONFLICT DO NOTHING
                    """,
                    [source],
                ).fetchone()
            finally:
                con.unregister("_prices_in")
            result.inserted = int(inserted)
            result.repeats = accepted.num_rows - result.inserted
        result.quarantined = write_quarantine(con, rejected)
        _upsert_cursors(con, cursors or {})
    return result


def load_leaderboard(
    con: duckdb.DuckDBPyConnection, accepted: pa.Table, rejected: pa.Table, *, source: str, snapshot_date: str
) -> LoadResult:
    result = LoadResult(received=accepted.num_rows + rejected.num_rows)
    with Transaction(con):
        if accepted.num_rows:
            _register(con, "_lb_in", accepted)
            try:
                (inserted,) = con.execute(
                    """
                    INSERT INTO raw.leaderboard
                    SELECT CAST(? AS DATE), category, time_period, order_by, proxy_wallet, rank, user_name, vol, pnl,
                           ?, origin
                    FROM _lb_in
                    QUALIFY row_number() OVER (PARTITION BY category, time_period, order_by, proxy_wallet
                                               ORDER BY rank) = 1
                    ON CONFLICT DO NOTHING
                    """,
                    [snapshot_date, source],
                ).fetchone()
            finally:
                con.unregister("_lb_in")
            result.inserted = int(inserted)
            result.repeats = accepted.num_rows - result.inserted
        result.quarantined = write_quarantine(con, rejected)
    return result
