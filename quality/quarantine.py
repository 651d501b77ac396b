"""The quarantine writer: every rejected row is kept in ``raw.quarantine`` with its source and a reason code.

``REASONS`` is the closed list of reason codes (docs/warehouse.md explains each). An API row that is refetched
(a page boundary read twice, a second ingest) is kept once; identical lines of a file are kept apart by
``record_ref`` (file and line).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

REASONS: dict[str, str] = {
    "not_an_object": "the record is not a JSON object",
    "non_json_body": "the response body or file line is not JSON (HTML page, truncated or empty body)",
    "missing_value": "a required field is absent or null",
    "bad_wallet": "wallet is not 0x + 40 lowercase hex",
    "bad_condition_id": "conditionId is not 0x + 64 lowercase hex",
    "bad_token_id": "token id is not a decimal string below 2**256",
    "bad_tx_hash": "transactionHash present but not 0x + 64 lowercase hex",
    "bad_side": "side is not BUY or SELL",
    "bad_number": "a numeric field does not parse as a number",
    "non_finite": "a numeric field is NaN or infinite",
    "size_not_positive": "size (shares) is zero or negative",
    "size_out_of_range": "size above 1e11 shares",
    "price_out_of_range": "price outside [0, 1]",
    "timestamp_millis": "timestamp looks like epoch milliseconds, not seconds",
    "timestamp_future": "timestamp is in the future",
    "timestamp_invalid": "timestamp is not a whole number of seconds after 2017-07-14",
    "bad_outcomes": "outcomes / outcomePrices / clobTokenIds are not JSON arrays of one length",
    # a Data API /activity row (records.parse_activity)
    "unknown_activity_type": "activity: a type outside TRADE, SPLIT, MERGE, REDEEM, REWARD, CONVERSION, "
    "MAKER_REBATE, TAKER_REBATE (its effect on P&L is unknown)",
    "amount_negative": "activity: size or usdcSize is negative",
    # a row of a public dump (assets/ingest/dumps.py) the conversion to a fill refused
    "unknown_token": "dump: the outcome token is in no market of the markets file",
    "unknown_market": "dump: the (market_id, nonusdc_side) is in no market of the markets file",
    "no_usdc_leg": "dump: an OrderFilled event with no USDC side, or with two",
    "bad_amount": "dump: an amount is not a whole number of 1e-6 units (processed trades: not a number)",
    "exchange_as_maker": "dump: the maker is one of Polymarket's exchange contracts, not a trader",
    "bad_timestamp": "dump: timestamp is neither epoch seconds nor a datetime",
}

QUARANTINE_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.quarantine (
    entity        VARCHAR NOT NULL,     -- trades | activity | markets | price_history | leaderboard
    source        VARCHAR NOT NULL,     -- sim | live | files
    origin        VARCHAR,              -- the URL or file (and line) the record came from
    reason_code   VARCHAR NOT NULL,     -- the first failing rule, one of quality.quarantine.REASONS
    reasons       VARCHAR NOT NULL,     -- every failing rule, '|'-joined
    record        VARCHAR,              -- the record as received (JSON text)
    record_ref    VARCHAR NOT NULL,     -- what tells this record from an identical one: file:line, '' for API rows
    record_key    UHUGEINT NOT NULL,    -- md5 of (entity, record_ref, record): makes re-ingestion idempotent
    quarantined_at TIMESTAMPTZ NOT NULL
);
"""

QUARANTINE_SCHEMA = pa.schema(
    [
        ("entity", pa.string()),
        ("source", pa.string()),
        ("origin", pa.string()),
        ("reason_code", pa.string()),
        ("reasons", pa.string()),
        ("record", pa.string()),
        ("record_ref", pa.string()),
    ]
)


def ensure_quarantine(con: duckdb.DuckDBPyConnection) -> None:
    for statement in QUARANTINE_DDL.split(";"):
        if statement.strip():
            con.execute(statement)


def write_quarantine(con: duckdb.DuckDBPyConnection, rejected: pa.Table) -> int:
    """Append rejected rows (inside the caller's transaction). Exact repeats of a row already held are skipped,
    so ingesting the same bad input twice keeps one copy. Returns the number of rows added."""
    if rejected.num_rows == 0:
        return 0
    unknown = set(rejected.column("reason_code").to_pylist()) - set(REASONS)
    if unknown:
        raise ValueError(f"unknown quarantine reason codes: {sorted(unknown)}")
    con.register("_quarantine_in", rejected.select(QUARANTINE_SCHEMA.names))
    try:
        (added,) = con.execute(
            """
            INSERT INTO raw.quarantine
            SELECT entity, source, origin, reason_code, reasons, record, record_ref, record_key, now()
            FROM (
                SELECT *, md5_number(concat_ws('|', entity, record_ref, coalesce(record, ''))) AS record_key
                FROM _quarantine_in
                QUALIFY row_number() OVER (PARTITION BY record_key) = 1
            ) q
            WHERE NOT EXISTS (SELECT 1 FROM raw.quarantine r WHERE r.record_key = q.record_key)
            """
        ).fetchone()
    finally:
        con.unregister("_quarantine_in")
    return int(added)
