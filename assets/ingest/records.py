"""Turn API pages (lists of JSON objects) into validated Arrow tables, and rejected rows into quarantine rows.

Vectorised with pandas: the per-row cost is in C, except for rejected rows (serialised back to JSON for the
quarantine) and the few small entities (markets, leaderboard) whose JSON-in-string fields are decoded per row.

Raw tables keep the values as fetched (JSON-encoded string arrays stay strings; Gamma dates stay strings): the
dbt staging models type and decode them. What is checked here is what would make a row meaningless or harmful
downstream: the id formats, the side, finite and in-range numbers, and second-resolution, non-future times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from .clients import Page

WALLET_RE = r"0x[0-9a-f]{40}"
HEX64_RE = r"0x[0-9a-f]{64}"
TOKEN_RE = r"[0-9]{1,78}"
MAX_TOKEN_ID = str(2**256 - 1)  # 78 digits
MIN_TS = 1_500_000_000  # 2017-07-14: before any Polymarket trade
MILLIS_TS = 100_000_000_000  # above this a "seconds" timestamp would be year 5138: it is milliseconds
FUTURE_SLACK_S = 300
MAX_SIZE = 1e11

TRADE_FIELDS = {  # API field -> raw.trades column
    "proxyWallet": "proxy_wallet",
    "side": "side",
    "asset": "asset",
    "conditionId": "condition_id",
    "size": "size",
    "price": "price",
    "timestamp": "ts",
    "outcome": "outcome",
    "outcomeIndex": "outcome_index",
    "title": "title",
    "slug": "slug",
    "eventSlug": "event_slug",
    "name": "name",
    "pseudonym": "pseudonym",
    "transactionHash": "transaction_hash",
}

#: fields the Data API documents for a trade that raw.trades does not keep
TRADE_FIELDS_IGNORED = frozenset({"icon", "bio", "profileImage", "profileImageOptimized"})
#: fields a trade converted from a public dump carries besides the Data API's (``dumps.py``): the dump's own row,
#: on a record the conversion refused, and the code of the rule it failed (that record's first reason)
DUMP_FIELDS = ("dumpRow", "dumpReject")
#: a trade without one of these is quarantined (``missing_value``, and ``missing:<field>`` for each one absent)
TRADE_REQUIRED = ("proxyWallet", "side", "asset", "conditionId", "size", "price", "timestamp")

TRADES_SCHEMA = pa.schema(
    [
        ("proxy_wallet", pa.string()),
        ("side", pa.string()),
        ("asset", pa.string()),
        ("condition_id", pa.string()),
        ("size", pa.float64()),
        ("price", pa.float64()),
        ("ts", pa.int64()),
        ("outcome", pa.string()),
        ("outcome_index", pa.int32()),
        ("title", pa.string()),
        ("slug", pa.string()),
        ("event_slug", pa.string()),
        ("name", pa.string()),
        ("pseudonym", pa.string()),
        ("transaction_hash", pa.string()),
    ]
)

#: the Data API's ``/activity`` types (polymarket_api.md §2.2; ``TAKER_REBATE`` is seen though not documented).
#: A row of any other type is quarantined (``unknown_activity_type``): its meaning for P&L is unknown.
ACTIVITY_TYPES = (
    "TRADE", "SPLIT", "MERGE", "REDEEM", "REWARD", "CONVERSION", "MAKER_REBATE", "TAKER_REBATE",
)  # fmt: skip
#: the types that move shares of one market and so must name it
ACTIVITY_MARKET_TYPES = ("TRADE", "SPLIT", "MERGE", "REDEEM", "CONVERSION")

ACTIVITY_FIELDS = {  # API field -> raw.activity column
    "proxyWallet": "proxy_wallet",
    "type": "type",
    "conditionId": "condition_id",
    "asset": "asset",
    "side": "side",
    "size": "size",
    "usdcSize": "usdc_size",
    "price": "price",
    "timestamp": "ts",
    "outcomeIndex": "outcome_index",
    "outcome": "outcome",
    "title": "title",
    "slug": "slug",
    "eventSlug": "event_slug",
    "transactionHash": "transaction_hash",
}
ACTIVITY_FIELDS_IGNORED = frozenset(
    {"icon", "bio", "profileImage", "profileImageOptimized", "name", "pseudonym"}
)

ACTIVITY_SCHEMA = pa.schema(
    [
        ("proxy_wallet", pa.string()),
        ("type", pa.string()),
        ("condition_id", pa.string()),
        ("asset", pa.string()),
        ("side", pa.string()),
        ("size", pa.float64()),
        ("usdc_size", pa.float64()),
        ("price", pa.float64()),
        ("ts", pa.int64()),
        ("outcome_index", pa.int32()),
        ("outcome", pa.string()),
        ("title", pa.string()),
        ("slug", pa.string()),
        ("event_slug", pa.string()),
        ("transaction_hash", pa.string()),
    ]
)

MARKETS_SCHEMA = pa.schema(
    [
        ("condition_id", pa.string()),
        ("market_id", pa.string()),
        ("question_id", pa.string()),
        ("question", pa.string()),
        ("slug", pa.string()),
        ("event_id", pa.string()),
        ("event_slug", pa.string()),
        ("event_title", pa.string()),
        ("category", pa.string()),
        ("tags", pa.string()),
        ("outcomes", pa.string()),
        ("outcome_prices", pa.string()),
        ("clob_token_ids", pa.string()),
        ("closed", pa.bool_()),
        ("active", pa.bool_()),
        ("archived", pa.bool_()),
        ("uma_resolution_status", pa.string()),
        ("uma_resolution_statuses", pa.string()),
        ("start_date", pa.string()),
        ("end_date", pa.string()),
        ("closed_time", pa.string()),
        ("uma_end_date", pa.string()),
        ("neg_risk", pa.bool_()),
        ("volume_num", pa.float64()),
        ("origin", pa.string()),
    ]
)

PRICES_SCHEMA = pa.schema([("token_id", pa.string()), ("ts", pa.int64()), ("price", pa.float64())])

LEADERBOARD_SCHEMA = pa.schema(
    [
        ("proxy_wallet", pa.string()),
        ("rank", pa.int32()),
        ("user_name", pa.string()),
        ("vol", pa.float64()),
        ("pnl", pa.float64()),
        ("category", pa.string()),
        ("time_period", pa.string()),
        ("order_by", pa.string()),
        ("origin", pa.string()),
    ]
)


class NonJsonLine(str):
    """A line of a file that did not parse as JSON (kept to be quarantined as ``non_json_body``)."""


def _not_objects(reasons: Reasons, rows: Sequence[Any], is_obj: np.ndarray) -> None:
    if is_obj.all():
        return
    bad_json = np.fromiter((isinstance(r, NonJsonLine) for r in rows), dtype=bool, count=len(rows))
    reasons.add("non_json_body", bad_json)
    reasons.add("not_an_object", ~is_obj & ~bad_json)


@dataclass
class Batch:
    """Rows gathered from many pages, with where each came from. Parse in large batches: pandas has a fixed
    cost per call, so a batch of 100k rows costs far less per row than 200 pages of 500."""

    rows: list[Any] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    refs: list[str] | None = None  # per-row record_ref (file:line) for file sources
    #: the records as columns named like their fields, in place of ``rows`` (a Parquet file's trades, a converted
    #: dump: dumps.py), so a batch of a 100M-row file is never a list of dicts
    frame: pd.DataFrame | None = None
    #: with ``frame``, the record of row i as a dict as the file held it (what a quarantined record shows); None:
    #: the row's fields that hold a value
    record: Callable[[int], dict] | None = None

    def add(self, page: Page) -> None:
        self.rows.extend(page.rows)
        self.origins.append(page.url)
        self.counts.append(len(page.rows))

    def __len__(self) -> int:
        return len(self.rows) if self.frame is None else len(self.frame)

    def take(self, idx: np.ndarray, origin: str) -> Batch:
        """The rows at ``idx`` (records or columns, with their refs and their records as the file held them), as
        one batch from ``origin``."""
        record = self.record
        return Batch(
            rows=[self.rows[i] for i in idx] if self.frame is None else [],
            origins=[origin],
            counts=[len(idx)],
            refs=list(self.ref_array()[idx]),
            frame=None if self.frame is None else self.frame.iloc[idx].reset_index(drop=True),
            record=None if record is None else (lambda i: record(idx[i])),
        )

    def origin_array(self) -> np.ndarray:
        return np.repeat(np.asarray(self.origins, dtype=object), self.counts)

    def ref_array(self) -> np.ndarray:
        if self.refs is not None:
            return np.asarray(self.refs, dtype=object)
        return np.full(len(self.rows), "", dtype=object)


class FrameRecords(Sequence):
    """A frame's rows as records, built only for the rows asked for (the quarantine dumps its rejected records
    through it): ``record(i)`` where the batch has it, else a dict of the fields that hold a value."""

    def __init__(self, frame: pd.DataFrame, record: Callable[[int], dict] | None = None):
        self.frame = frame
        self.record = record

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, i):
        if self.record is not None:
            return self.record(i)
        row = self.frame.iloc[int(i)].to_dict()
        return {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()
                if v is not None and not (isinstance(v, float) and np.isnan(v))}  # fmt: skip


@dataclass
class Parsed:
    accepted: pa.Table
    rejected: pa.Table  # quality.quarantine.QUARANTINE_SCHEMA
    #: fields the rows carried that the API reference does not list (schema drift: ignored, and logged)
    unknown_fields: tuple[str, ...] = ()
    #: the positions, in the batch, of the accepted rows (their order in ``accepted``)
    accepted_rows: np.ndarray | None = None

    @property
    def n_accepted(self) -> int:
        return self.accepted.num_rows

    @property
    def n_rejected(self) -> int:
        return self.rejected.num_rows


# --------------------------------------------------------------------------------------------- column helpers


def _frame(rows: Sequence[Any], fields: Iterable[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """A DataFrame of the wanted fields (absent keys -> missing), and a mask of rows that are JSON objects."""
    fields = list(fields)
    is_obj = np.fromiter((isinstance(r, dict) for r in rows), dtype=bool, count=len(rows))
    if is_obj.all():
        frame = pd.DataFrame.from_records(rows, columns=fields) if rows else pd.DataFrame(columns=fields)
    else:
        safe = [r if ok else {} for r, ok in zip(rows, is_obj, strict=True)]
        frame = pd.DataFrame.from_records(safe, columns=fields)
    return frame.reindex(columns=fields), is_obj


def unknown_fields(rows: Sequence[Any], known: Iterable[str]) -> tuple[str, ...]:
    """Keys of the JSON objects in ``rows`` outside ``known``, sorted (one set union over the key views)."""
    keys: set[str] = set().union(*(r.keys() for r in rows if isinstance(r, dict)))
    return tuple(sorted(keys - set(known)))


def _text(s: pd.Series) -> pd.Series:
    """Strings as strings; numbers rendered as text; null stays null. NUL bytes are removed."""
    out = s.astype("string[pyarrow]")
    if out.str.contains("\x00", regex=False).any():
        out = out.str.replace("\x00", "", regex=False)
    return out


def _matches(s: pd.Series, pattern: str) -> np.ndarray:
    return s.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)


@dataclass
class Number:
    values: np.ndarray  # float64, NaN where not usable
    present: np.ndarray  # a value was given
    bad: np.ndarray  # given but not a number (text, boolean)
    non_finite: np.ndarray  # NaN or +-inf given


def _number(s: pd.Series) -> Number:
    n = len(s)
    if s.dtype.kind in "fiu":
        values = s.to_numpy(dtype=np.float64)
        present = ~np.isnan(values) if s.dtype.kind == "f" else np.ones(n, bool)
        return Number(values, present, np.zeros(n, bool), present & ~np.isfinite(values))
    if s.dtype.kind == "b":
        return Number(np.full(n, np.nan), np.ones(n, bool), np.ones(n, bool), np.zeros(n, bool))
    present = s.notna().to_numpy()
    is_bool = s.map(type).eq(bool).to_numpy()
    text = s.where(~is_bool)
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    said_nan = (
        text.astype("string")
        .str.strip()
        .str.lower()
        .isin(["nan", "+nan", "-nan"])
        .fillna(False)
        .to_numpy(bool)
    )
    non_finite = present & (np.isinf(values) | said_nan)
    bad = present & ((np.isnan(values) & ~said_nan) | is_bool)
    return Number(values, present, bad, non_finite)


class Reasons:
    """Failing rules per row, in priority order. The first is the row's ``reason_code``."""

    def __init__(self, n: int):
        self.n = n
        self.codes: list[str] = []
        self.masks: list[np.ndarray] = []

    def add(self, code: str, mask: np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.codes.append(code)
            self.masks.append(mask)

    def rejected(self) -> np.ndarray:
        if not self.masks:
            return np.zeros(self.n, dtype=bool)
        return np.logical_or.reduce(self.masks)

    def table(self, rows, idx: np.ndarray, entity: str, source: str, origins, refs) -> pa.Table:
        """Quarantine rows for the rejected indices ``idx`` (``rows`` is indexable by them)."""
        if len(idx) == 0:
            return empty_quarantine()
        stacked = np.vstack([m[idx] for m in self.masks])  # (codes, rejected rows)
        first = np.asarray(self.codes, dtype=object)[stacked.argmax(axis=0)]
        joined = [
            "|".join(c for c, hit in zip(self.codes, col, strict=True) if hit) for col in stacked.T
        ]  # rejected rows only
        records = [_dump(rows[i]) for i in idx]
        return pa.table(
            {
                "entity": pa.array([entity] * len(idx), pa.string()),
                "source": pa.array([source] * len(idx), pa.string()),
                "origin": pa.array(origins[idx], pa.string()),
                "reason_code": pa.array(first, pa.string()),
                "reasons": pa.array(joined, pa.string()),
                "record": pa.array(records, pa.string()),
                "record_ref": pa.array(refs[idx], pa.string()),
            }
        )


def _dump(row: Any) -> str:
    try:
        return orjson.dumps(row, default=str, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return repr(row)


def empty_quarantine() -> pa.Table:
    from quality.quarantine import QUARANTINE_SCHEMA

    return QUARANTINE_SCHEMA.empty_table()


def _token_ok(s: pd.Series) -> np.ndarray:
    ok = _matches(s, TOKEN_RE)
    longest = s.str.len().fillna(0).to_numpy() == 78
    if (ok & longest).any():
        too_big = (s > MAX_TOKEN_ID).fillna(False).to_numpy(bool) & longest
        ok &= ~too_big
    return ok


# --------------------------------------------------------------------------------------------- entities


def parse_trades(batch: Batch, *, source: str, now_ts: int) -> Parsed:
    """Validate Data API ``/trades`` rows. Accepted rows follow ``TRADES_SCHEMA``."""
    fields = [*TRADE_FIELDS, "dumpReject"]
    if batch.frame is not None:  # columns already (Parquet, a converted dump): every row is a record
        rows = FrameRecords(batch.frame, batch.record)
        frame, is_obj = batch.frame.reindex(columns=fields), np.ones(len(batch.frame), dtype=bool)
    else:
        rows = batch.rows
        frame, is_obj = _frame(rows, fields)
    n = len(frame)
    reasons = Reasons(n)
    _not_objects(reasons, rows, is_obj)
    refused = frame["dumpReject"]
    for code in refused.dropna().unique():  # a dump row the conversion refused (dumps.py): its reason first
        reasons.add(str(code), (refused == code).to_numpy(dtype=bool))

    wallet = _text(frame["proxyWallet"])
    condition = _text(frame["conditionId"])
    asset = _text(frame["asset"])
    side = _text(frame["side"])
    tx = _text(frame["transactionHash"])
    size = _number(frame["size"])
    price = _number(frame["price"])
    ts = _number(frame["timestamp"])

    required_missing = (
        wallet.isna().to_numpy() | condition.isna().to_numpy() | asset.isna().to_numpy()
        | side.isna().to_numpy() | ~size.present | ~price.present | ~ts.present
    )  # fmt: skip
    # Priority order: the first failing rule is the row's reason_code (a zero-size dust row with a null price
    # is size_not_positive first).
    reasons.add("bad_wallet", wallet.notna().to_numpy() & ~_matches(wallet, WALLET_RE))
    reasons.add("bad_condition_id", condition.notna().to_numpy() & ~_matches(condition, HEX64_RE))
    reasons.add("bad_token_id", asset.notna().to_numpy() & ~_token_ok(asset))
    reasons.add("bad_tx_hash", tx.notna().to_numpy() & ~_matches(tx, HEX64_RE))
    reasons.add(
        "bad_side", side.notna().to_numpy() & ~side.isin(["BUY", "SELL"]).fillna(False).to_numpy(bool)
    )
    with np.errstate(invalid="ignore"):
        finite_size = np.isfinite(size.values)
        reasons.add("size_not_positive", finite_size & (size.values <= 0))
        reasons.add("size_out_of_range", finite_size & (size.values > MAX_SIZE))
    reasons.add("missing_value", is_obj & required_missing)
    reasons.add("bad_number", size.bad | price.bad | ts.bad)
    reasons.add("non_finite", size.non_finite | price.non_finite | ts.non_finite)
    with np.errstate(invalid="ignore"):
        finite_price = np.isfinite(price.values)
        reasons.add("price_out_of_range", finite_price & ((price.values < 0) | (price.values > 1)))
    _timestamp_rules(reasons, ts, now_ts)
    for name in TRADE_REQUIRED:  # last, so the code stays missing_value: the list names each absent field
        reasons.add(f"missing:{name}", is_obj & frame[name].isna().to_numpy())

    bad = reasons.rejected()
    good = ~bad
    origins = batch.origin_array()
    refs = batch.ref_array()
    accepted = pa.table(
        {
            "proxy_wallet": pa.array(wallet[good], pa.string()),
            "side": pa.array(side[good], pa.string()),
            "asset": pa.array(asset[good], pa.string()),
            "condition_id": pa.array(condition[good], pa.string()),
            "size": pa.array(size.values[good], pa.float64()),
            "price": pa.array(price.values[good] + 0.0, pa.float64()),  # +0.0 turns -0.0 into 0.0
            "ts": pa.array(ts.values[good].astype(np.int64), pa.int64()),
            "outcome": pa.array(_text(frame["outcome"])[good], pa.string()),
            "outcome_index": _int32_or_null(frame["outcomeIndex"][good]),
            "title": pa.array(_text(frame["title"])[good], pa.string()),
            "slug": pa.array(_text(frame["slug"])[good], pa.string()),
            "event_slug": pa.array(_text(frame["eventSlug"])[good], pa.string()),
            "name": pa.array(_text(frame["name"])[good], pa.string()),
            "pseudonym": pa.array(_text(frame["pseudonym"])[good], pa.string()),
            "transaction_hash": pa.array(tx[good], pa.string()),
        },
        schema=TRADES_SCHEMA,
    )
    rejected = reasons.table(rows, np.flatnonzero(bad), "trades", source, origins, refs)
    return Parsed(
        accepted,
        rejected,
        unknown_fields(rows, TRADE_FIELDS.keys() | TRADE_FIELDS_IGNORED | set(DUMP_FIELDS))
        if batch.frame is None
        else tuple(
            sorted(set(batch.frame.columns) - TRADE_FIELDS.keys() - TRADE_FIELDS_IGNORED - set(DUMP_FIELDS))
        ),
        np.flatnonzero(good),
    )


def _timestamp_rules(reasons: Reasons, ts: Number, now_ts: int) -> None:
    with np.errstate(invalid="ignore"):
        t = ts.values
        finite_t = np.isfinite(t)
        millis = finite_t & (t >= MILLIS_TS)
        reasons.add("timestamp_millis", millis)
        reasons.add("timestamp_future", finite_t & ~millis & (t > now_ts + FUTURE_SLACK_S))
        reasons.add("timestamp_invalid", finite_t & ((t < MIN_TS) | (np.floor(t) != t)))


def _int32_or_null(s: pd.Series) -> pa.Array:
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(values) & (values == np.floor(values)) & (np.abs(values) < 2**31)
    return pa.array(np.where(ok, values, 0).astype(np.int32), pa.int32(), mask=~ok)


def _blank_to_null(s: pd.Series) -> pd.Series:
    """The Data API writes an absent id as ``""`` on activity rows that are not trades: read it as null."""
    return s.mask(s.str.strip().eq("").fillna(False))


def parse_activity(batch: Batch, *, source: str, now_ts: int) -> Parsed:
    """Validate Data API ``/activity`` rows (polymarket_api.md §2.2). Accepted rows follow ``ACTIVITY_SCHEMA``.

    Every row needs a wallet, a type, ``size``, ``usdcSize`` and a timestamp; a type outside
    :data:`ACTIVITY_TYPES` is quarantined (``unknown_activity_type``), never guessed at. The types that move
    shares (:data:`ACTIVITY_MARKET_TYPES`) must name their market (``conditionId``); a TRADE also its token, side
    and price, and a CONVERSION leg its token and side (SELL for a NO token given up, BUY for a YES token received:
    the reading docs/metrics.md#conversions declares). Empty ids (``""``) on the other types read as null. Sizes
    are not negative (a losing REDEEM pays 0)."""
    rows = batch.rows
    fields = list(ACTIVITY_FIELDS)
    frame, is_obj = _frame(rows, fields)
    n = len(frame)
    reasons = Reasons(n)
    _not_objects(reasons, rows, is_obj)

    wallet = _text(frame["proxyWallet"])
    kind = _text(frame["type"]).str.strip().str.upper()
    condition = _blank_to_null(_text(frame["conditionId"]))
    asset = _blank_to_null(_text(frame["asset"]))
    side = _blank_to_null(_text(frame["side"]))
    tx = _blank_to_null(_text(frame["transactionHash"]))
    size = _number(frame["size"])
    usdc = _number(frame["usdcSize"])
    price = _number(frame["price"])
    ts = _number(frame["timestamp"])

    is_type = {t: kind.eq(t).fillna(False).to_numpy(bool) for t in ACTIVITY_TYPES}
    known = np.logical_or.reduce(list(is_type.values()))
    moves_shares = np.logical_or.reduce([is_type[t] for t in ACTIVITY_MARKET_TYPES])
    legged = is_type["TRADE"] | is_type["CONVERSION"]
    missing = {
        "proxyWallet": wallet.isna().to_numpy(),
        "type": kind.isna().to_numpy(),
        "size": ~size.present,
        "usdcSize": ~usdc.present,
        "timestamp": ~ts.present,
        "conditionId": moves_shares & condition.isna().to_numpy(),
        "asset": legged & asset.isna().to_numpy(),
        "side": legged & side.isna().to_numpy(),
        "price": is_type["TRADE"] & ~price.present,
    }
    reasons.add("bad_wallet", wallet.notna().to_numpy() & ~_matches(wallet, WALLET_RE))
    reasons.add("unknown_activity_type", kind.notna().to_numpy() & ~known)
    reasons.add("bad_condition_id", condition.notna().to_numpy() & ~_matches(condition, HEX64_RE))
    reasons.add("bad_token_id", asset.notna().to_numpy() & ~_token_ok(asset))
    reasons.add("bad_tx_hash", tx.notna().to_numpy() & ~_matches(tx, HEX64_RE))
    reasons.add(
        "bad_side",
        legged & side.notna().to_numpy() & ~side.isin(["BUY", "SELL"]).fillna(False).to_numpy(bool),
    )
    with np.errstate(invalid="ignore"):
        reasons.add("amount_negative", (size.values < 0) | (usdc.values < 0))
        reasons.add("size_out_of_range", (size.values > MAX_SIZE) | (usdc.values > MAX_SIZE))
        reasons.add("size_not_positive", legged & np.isfinite(size.values) & (size.values <= 0))
    reasons.add("missing_value", is_obj & np.logical_or.reduce(list(missing.values())))
    reasons.add("bad_number", size.bad | usdc.bad | price.bad | ts.bad)
    reasons.add("non_finite", size.non_finite | usdc.non_finite | price.non_finite | ts.non_finite)
    with np.errstate(invalid="ignore"):
        reasons.add("price_out_of_range", is_type["TRADE"] & ((price.values < 0) | (price.values > 1)))
    _timestamp_rules(reasons, ts, now_ts)
    for name, mask in missing.items():  # last: the code stays missing_value, the list names each absent field
        reasons.add(f"missing:{name}", is_obj & mask)

    bad = reasons.rejected()
    good = ~bad
    price_ok = np.isfinite(price.values)
    accepted = pa.table(
        {
            "proxy_wallet": pa.array(wallet[good], pa.string()),
            "type": pa.array(kind[good], pa.string()),
            "condition_id": pa.array(condition[good], pa.string()),
            "asset": pa.array(asset[good], pa.string()),
            "side": pa.array(side[good], pa.string()),
            "size": pa.array(size.values[good] + 0.0, pa.float64()),
            "usdc_size": pa.array(usdc.values[good] + 0.0, pa.float64()),
            "price": pa.array(
                np.where(price_ok, price.values, 0.0)[good] + 0.0, pa.float64(), mask=~price_ok[good]
            ),  # fmt: skip
            "ts": pa.array(ts.values[good].astype(np.int64), pa.int64()),
            "outcome_index": _int32_or_null(frame["outcomeIndex"][good]),
            "outcome": pa.array(_blank_to_null(_text(frame["outcome"]))[good], pa.string()),
            "title": pa.array(_blank_to_null(_text(frame["title"]))[good], pa.string()),
            "slug": pa.array(_blank_to_null(_text(frame["slug"]))[good], pa.string()),
            "event_slug": pa.array(_blank_to_null(_text(frame["eventSlug"]))[good], pa.string()),
            "transaction_hash": pa.array(tx[good], pa.string()),
        },
        schema=ACTIVITY_SCHEMA,
    )
    rejected = reasons.table(
        rows, np.flatnonzero(bad), "activity", source, batch.origin_array(), batch.ref_array()
    )
    return Parsed(
        accepted,
        rejected,
        unknown_fields(rows, ACTIVITY_FIELDS.keys() | ACTIVITY_FIELDS_IGNORED),
        np.flatnonzero(good),
    )


MARKET_FIELDS = [
    "id", "conditionId", "questionID", "question", "slug", "category", "outcomes", "outcomePrices",
    "clobTokenIds", "closed", "active", "archived", "umaResolutionStatus", "umaResolutionStatuses",
    "startDate", "endDate", "closedTime", "umaEndDate", "negRisk", "volumeNum", "tags", "events",
]  # fmt: skip


def _json_array_text(value: Any) -> tuple[str | None, int | None]:
    """(JSON text, length) of a field that should be a JSON-encoded array; decoded arrays are re-encoded. An absent
    field is None (a row without the key reads as NaN from the frame)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None, None
    if isinstance(value, list):
        return orjson.dumps(value).decode(), len(value)
    if isinstance(value, str):
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value, -1
        return value, len(decoded) if isinstance(decoded, list) else -1
    return str(value), -1


def _tags_text(market: dict) -> tuple[str, str | None, str | None, str | None]:
    """Market tags plus the tags of its events, as JSON text of [{id,label,slug}], and the first event."""
    tags: list[dict] = []
    seen: set = set()
    events = market.get("events") if isinstance(market.get("events"), list) else []
    for holder in [market, *[e for e in events if isinstance(e, dict)]]:
        for tag in holder.get("tags") or []:
            if isinstance(tag, dict) and tag.get("label") and tag.get("label") not in seen:
                seen.add(tag["label"])
                tags.append({"id": str(tag.get("id", "")), "label": tag["label"], "slug": tag.get("slug")})
    first = events[0] if events and isinstance(events[0], dict) else {}
    ev_id = first.get("id")
    return (
        orjson.dumps(tags).decode(),
        None if ev_id is None else str(ev_id),
        first.get("slug"),
        first.get("title"),
    )


def parse_markets(batch: Batch, *, source: str) -> Parsed:
    """Validate Gamma market objects. Small entity (thousands of rows): per-row decoding is fine here."""
    rows = batch.rows
    frame, is_obj = _frame(rows, MARKET_FIELDS)
    n = len(frame)
    reasons = Reasons(n)
    _not_objects(reasons, rows, is_obj)
    condition = _text(frame["conditionId"])
    reasons.add("missing_value", is_obj & condition.isna().to_numpy())
    reasons.add("bad_condition_id", condition.notna().to_numpy() & ~_matches(condition, HEX64_RE))

    decoded = {
        col: [_json_array_text(v) for v in frame[col]]
        for col in ("outcomes", "outcomePrices", "clobTokenIds")
    }
    lengths = np.array([[d[1] if d[1] is not None else -2 for d in decoded[c]] for c in decoded]).reshape(
        3, n
    )
    outcomes_len, prices_len, tokens_len = lengths
    bad_arrays = (outcomes_len < 1) | (tokens_len < 1) | (tokens_len != outcomes_len)
    bad_arrays |= (prices_len != -2) & (prices_len != outcomes_len)  # prices may be absent on new markets
    reasons.add("bad_outcomes", is_obj & ~condition.isna().to_numpy() & bad_arrays)
    token_lists = []
    for text, ln in decoded["clobTokenIds"]:
        token_lists.append(orjson.loads(text) if ln and ln > 0 else [])
    flat = pd.Series([str(t) for lst in token_lists for t in lst], dtype="string")
    if len(flat):
        owner = np.repeat(np.arange(n), [len(lst) for lst in token_lists])
        bad_tok = np.zeros(n, bool)
        np.logical_or.at(bad_tok, owner, ~_token_ok(flat))
        reasons.add("bad_token_id", is_obj & bad_tok)

    bad = reasons.rejected()
    good = np.flatnonzero(~bad)
    origins = batch.origin_array()
    extra = [_tags_text(rows[i]) for i in good]
    volume = _number(frame["volumeNum"]).values

    def b(col: str) -> pa.Array:
        s = frame[col].iloc[good]
        return pa.array([v if isinstance(v, bool) else None for v in s], pa.bool_())

    def t(col: str) -> pa.Array:
        return pa.array(_text(frame[col]).iloc[good], pa.string())

    statuses = [
        None if v is None or (isinstance(v, float) and np.isnan(v))
        else (orjson.dumps(v).decode() if isinstance(v, list) else str(v))
        for v in frame["umaResolutionStatuses"].iloc[good]
    ]  # fmt: skip
    accepted = pa.table(
        {
            "condition_id": t("conditionId"),
            "market_id": t("id"),
            "question_id": t("questionID"),
            "question": t("question"),
            "slug": t("slug"),
            "event_id": pa.array([e[1] for e in extra], pa.string()),
            "event_slug": pa.array([e[2] for e in extra], pa.string()),
            "event_title": pa.array([e[3] for e in extra], pa.string()),
            "category": t("category"),
            "tags": pa.array([e[0] for e in extra], pa.string()),
            "outcomes": pa.array([decoded["outcomes"][i][0] for i in good], pa.string()),
            "outcome_prices": pa.array([decoded["outcomePrices"][i][0] for i in good], pa.string()),
            "clob_token_ids": pa.array([decoded["clobTokenIds"][i][0] for i in good], pa.string()),
            "closed": b("closed"),
            "active": b("active"),
            "archived": b("archived"),
            "uma_resolution_status": t("umaResolutionStatus"),
            "uma_resolution_statuses": pa.array(statuses, pa.string()),
            "start_date": t("startDate"),
            "end_date": t("endDate"),
            "closed_time": t("closedTime"),
            "uma_end_date": t("umaEndDate"),
            "neg_risk": b("negRisk"),
            "volume_num": pa.array(volume[good], pa.float64(), mask=~np.isfinite(volume[good])),
            "origin": pa.array(origins[good], pa.string()),
        },
        schema=MARKETS_SCHEMA,
    )
    rejected = reasons.table(rows, np.flatnonzero(bad), "markets", source, origins, batch.ref_array())
    return Parsed(accepted, rejected)


def parse_price_history(pages: Sequence[Page], *, source: str, now_ts: int) -> Parsed:
    """CLOB ``/prices-history`` points ``{t, p}`` for one token per page."""
    batch = Batch()
    tokens: list[str] = []
    for page in pages:
        batch.add(page)
        tokens.append(str((page.context or {}).get("token_id", "")))
    token = pd.Series(np.repeat(np.asarray(tokens, dtype=object), batch.counts), dtype="string")
    frame, is_obj = _frame(batch.rows, ["t", "p"])
    reasons = Reasons(len(frame))
    _not_objects(reasons, batch.rows, is_obj)
    t = _number(frame["t"])
    p = _number(frame["p"])
    reasons.add("missing_value", is_obj & (~t.present | ~p.present))
    reasons.add("bad_token_id", ~_token_ok(token))
    reasons.add("bad_number", t.bad | p.bad)
    reasons.add("non_finite", t.non_finite | p.non_finite)
    with np.errstate(invalid="ignore"):
        reasons.add("price_out_of_range", np.isfinite(p.values) & ((p.values < 0) | (p.values > 1)))
        millis = np.isfinite(t.values) & (t.values >= MILLIS_TS)
        reasons.add("timestamp_millis", millis)
        reasons.add(
            "timestamp_future", np.isfinite(t.values) & ~millis & (t.values > now_ts + FUTURE_SLACK_S)
        )
        reasons.add(
            "timestamp_invalid",
            np.isfinite(t.values) & ((t.values < MIN_TS) | (np.floor(t.values) != t.values)),
        )
    bad = reasons.rejected()
    good = ~bad
    origins = batch.origin_array()
    accepted = pa.table(
        {
            "token_id": pa.array(token[good], pa.string()),
            "ts": pa.array(t.values[good].astype(np.int64), pa.int64()),
            "price": pa.array(p.values[good] + 0.0, pa.float64()),
        },
        schema=PRICES_SCHEMA,
    )
    bad_idx = np.flatnonzero(bad)
    # the token id lives in the request, not the point: put it into the quarantined record
    records = [
        {
            "token_id": token.iloc[i],
            **(batch.rows[i] if isinstance(batch.rows[i], dict) else {"value": batch.rows[i]}),
        }
        for i in bad_idx
    ]
    records_by_index = dict(zip(bad_idx.tolist(), records, strict=True))
    rejected = reasons.table(records_by_index, bad_idx, "price_history", source, origins, batch.ref_array())
    return Parsed(accepted, rejected)


def parse_leaderboard(batch: Batch, *, source: str, category: str, time_period: str, order_by: str) -> Parsed:
    frame, is_obj = _frame(batch.rows, ["rank", "proxyWallet", "userName", "vol", "pnl"])
    reasons = Reasons(len(frame))
    _not_objects(reasons, batch.rows, is_obj)
    wallet = _text(frame["proxyWallet"])
    reasons.add("missing_value", is_obj & wallet.isna().to_numpy())
    reasons.add("bad_wallet", wallet.notna().to_numpy() & ~_matches(wallet, WALLET_RE))
    vol, pnl, rank = _number(frame["vol"]), _number(frame["pnl"]), _number(frame["rank"])
    reasons.add("bad_number", vol.bad | pnl.bad)
    reasons.add("non_finite", vol.non_finite | pnl.non_finite)
    bad = reasons.rejected()
    good = ~bad
    origins = batch.origin_array()
    r = rank.values[good]
    r_ok = np.isfinite(r)
    n_good = int(good.sum())
    accepted = pa.table(
        {
            "proxy_wallet": pa.array(wallet[good], pa.string()),
            "rank": pa.array(np.where(r_ok, r, 0).astype(np.int32), pa.int32(), mask=~r_ok),
            "user_name": pa.array(_text(frame["userName"])[good], pa.string()),
            "vol": pa.array(vol.values[good], pa.float64()),
            "pnl": pa.array(pnl.values[good], pa.float64()),
            "category": pa.array([category] * n_good, pa.string()),
            "time_period": pa.array([time_period] * n_good, pa.string()),
            "order_by": pa.array([order_by] * n_good, pa.string()),
            "origin": pa.array(origins[good], pa.string()),
        },
        schema=LEADERBOARD_SCHEMA,
    )
    rejected = reasons.table(
        batch.rows, np.flatnonzero(bad), "leaderboard", source, origins, batch.ref_array()
    )
    return Parsed(accepted, rejected)
