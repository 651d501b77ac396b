"""The public full-history dumps as a file source: warproxxx/poly_data's processed trades and the on-chain
``OrderFilled`` events it reads, turned into Data-API-shaped fills that go through the same validation, quarantine
and loader as every other source (docs/warehouse.md#the-public-dumps).

What a row means, read from poly_data's own code (``update_utils/process_live.py``, its README):

- An ``OrderFilled`` event is one order's fill seen from the order's owner, ``maker``. ``makerAssetId`` is what the
  maker gives and ``takerAssetId`` what it receives; ``"0"`` is USDC, any other value the outcome token's id.
  Amounts are integers in 1e-6 units (USDC and outcome tokens both have 6 decimals). So the maker BUYs when it
  gives USDC and SELLs when it gives the token; the fill's shares are the token amount and its price the USDC
  amount over the token amount.
- ``taker`` is the counterparty of that fill, and it is not a fill of the taker's: a taker order matched against
  N maker orders is the ``taker`` of those N events and, besides, the ``maker`` of one event of its own, whose
  ``taker`` is the exchange contract (the CTF Exchange, the NegRisk CTF Exchange, or since 2026-04-28 the CTF
  Exchange V2 acting as intermediary). Booking a fill for the taker of every event would count each taker order
  once per maker it matched and once more in its own event; poly_data says to read a user's trades on ``maker``.
  So every event gives exactly one fill, the maker's, and a wallet's side of a trade is always the row where it is
  the maker. The exchange is never a trader: an event whose maker is one of its addresses is quarantined.
- poly_data's processed ``trades.csv`` is those events joined to the markets: ``market_id`` (Gamma's market
  ``id``), ``nonusdc_side`` (``token1`` or ``token2``: the first or second of the market's ``clobTokenIds``),
  ``maker_direction``, ``price``, ``token_amount`` and ``usd_amount`` already in USDC and shares, and
  ``timestamp`` written as a UTC datetime. Its rows are the same events, so the same rule holds.

The markets file (``--markets``, Gamma's market objects as for any file source) maps each token to its market,
outcome and title. A fill whose token, or whose (market, side), is not in it is quarantined (``unknown_token``,
``unknown_market``), as are an event with no USDC leg or with both (``no_usdc_leg``), an amount that is not a
whole number of 1e-6 units (``bad_amount``) and a timestamp that is neither epoch seconds nor a datetime
(``bad_timestamp``); the rest is the Data API's validation (``size_not_positive``, ``bad_wallet``, ...).

The files are read a batch of rows at a time (CSV in chunks, Parquet by record batches), every column as text
(a token id has up to 78 digits), and converted with vectorised pandas: a 100M-row file is never held whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq

#: the trades file formats of the file source (``--format``): the Data API's trade objects, poly_data's processed
#: trades, the on-chain ``OrderFilled`` events
FORMATS = ("data-api", "poly-data", "orderfilled")

#: addresses of Polymarket's exchange contracts, lower case: the CTF Exchange and the NegRisk CTF Exchange, and
#: the CTF Exchange V2 of 2026-04-28 (poly_data's README). As ``taker`` they mark a taker order's own event.
EXCHANGES = frozenset({
    "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e",
    "0xc5d563a36ae78145c45a50134d48a1215220f80a",
    "0xe111180000d2663c0091e4f400237545b87b996b",
})  # fmt: skip

USDC_ASSET = "0"
UNITS = 1_000_000  # 1e-6: USDC and outcome tokens both have 6 decimals

ORDERFILLED_COLUMNS = ("timestamp", "maker", "makerAssetId", "makerAmountFilled", "taker", "takerAssetId",
                       "takerAmountFilled", "transactionHash")  # fmt: skip
POLY_DATA_COLUMNS = ("timestamp", "market_id", "maker", "taker", "nonusdc_side", "maker_direction",
                     "taker_direction", "price", "usd_amount", "token_amount", "transactionHash")  # fmt: skip
REQUIRED = {"orderfilled": ORDERFILLED_COLUMNS, "poly-data": POLY_DATA_COLUMNS}


class DumpFormatError(ValueError):
    """A dump that cannot be read as the format it was given as (a missing column, an unknown extension)."""


@dataclass(frozen=True)
class TokenMap:
    """Each outcome token of the markets file: its market, outcome and titles; and each market's tokens."""

    tokens: pd.DataFrame  # index token_id; columns condition_id, outcome_index, outcome, title, slug
    by_market: pd.DataFrame  # index (market_id, nonusdc_side "token1"/"token2"); column token_id

    @classmethod
    def from_markets(cls, rows: Sequence[Any]) -> TokenMap:
        """From Gamma market objects (``clobTokenIds`` and ``outcomes`` as JSON text or as arrays). Rows that are
        not usable markets are skipped here: the markets' own validation quarantines them."""
        records = []
        for m in rows:
            if not isinstance(m, dict):
                continue
            tokens, outcomes = _array(m.get("clobTokenIds")), _array(m.get("outcomes"))
            for i, token in enumerate(tokens):
                records.append((str(token), m.get("conditionId"), i, outcomes[i] if i < len(outcomes) else None,
                                m.get("question"), m.get("slug"), None if m.get("id") is None else str(m["id"])))  # fmt: skip
        cols = ["token_id", "condition_id", "outcome_index", "outcome", "title", "slug", "market_id"]
        frame = pd.DataFrame.from_records(records, columns=cols).drop_duplicates("token_id", keep="last")
        by_market = frame.loc[frame["market_id"].notna() & (frame["outcome_index"] < 2)].assign(
            nonusdc_side=lambda f: "token" + (f["outcome_index"] + 1).astype(str)
        )
        return cls(
            tokens=frame.set_index("token_id")[cols[1:6]],
            by_market=by_market.set_index(["market_id", "nonusdc_side"])[["token_id"]],
        )


def _array(value: Any) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return []
        return decoded if isinstance(decoded, list) else []
    return []


def dump_frames(
    path: str | Path, fmt: str, batch_rows: int | None, columns: Sequence[str] | None = None
) -> Iterator[tuple[pd.DataFrame, int]]:
    """(rows as text, first row number) a batch at a time: CSV (optionally .gz) in chunks of ``batch_rows``,
    Parquet by record batches. Every column is read as text; the empty string stands for a missing value. Row
    numbers count data rows from 1 (a CSV's header is line 1, so row r is on line r + 1)."""
    path = Path(path)
    name = path.name.lower()
    size = batch_rows or 1_000_000
    if name.endswith(".parquet"):
        pf = pq.ParquetFile(path)
        _require(path, fmt, pf.schema_arrow.names)
        first = 1
        for batch in pf.iter_batches(batch_size=size, columns=list(columns) if columns else None):
            frame = batch.to_pandas().astype("string").fillna("")
            yield frame, first
            first += len(frame)
        return
    if not name.removesuffix(".gz").endswith(".csv"):
        raise DumpFormatError(f"file source: {path}: a {fmt} dump is read from .csv, .csv.gz or .parquet")
    try:
        header = pd.read_csv(path, dtype=str, nrows=0, compression="infer")
        _require(path, fmt, list(header.columns))
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=size, compression="infer",
                             usecols=list(columns) if columns else None)  # fmt: skip
    except pd.errors.EmptyDataError as exc:
        raise DumpFormatError(f"file source: {path} is empty (a {fmt} dump starts with its header)") from exc
    first = 1
    with reader:
        for chunk in reader:
            yield chunk, first
            first += len(chunk)


def dump_times(path: str | Path, fmt: str, batch_rows: int | None) -> Iterator[np.ndarray]:
    """Each row's epoch seconds (NaN where unusable), a batch at a time, reading the ``timestamp`` column alone
    (the run's partition range, before the load reads the whole file)."""
    path = Path(path)
    if path.name.lower().endswith(".parquet"):
        pf = pq.ParquetFile(path)
        _require(path, fmt, pf.schema_arrow.names)
        for batch in pf.iter_batches(batch_size=batch_rows or 1_000_000, columns=["timestamp"]):
            yield _seconds(batch.to_pandas()["timestamp"].astype("string").fillna(""))
        return
    for frame, _ in dump_frames(path, fmt, batch_rows, columns=["timestamp"]):
        yield _seconds(frame["timestamp"])


def _require(path: Path, fmt: str, columns: Sequence[str]) -> None:
    missing = [c for c in REQUIRED[fmt] if c not in columns]
    if missing:
        raise DumpFormatError(
            f"file source: {path} is not a {fmt} dump: it has no column {', '.join(missing)} "
            f"(it has {', '.join(columns) or 'no columns'})"
        )


def _seconds(text: pd.Series) -> np.ndarray:
    """Epoch seconds from epoch-seconds text or a datetime (UTC when it names no zone); NaN where neither."""
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    words = np.isnan(values) & (text != "").to_numpy()
    if words.any():
        when = pd.to_datetime(text[words], errors="coerce", utc=True, format="ISO8601")
        values[words] = (when - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)
    return values


def _units(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(amount in units of 1, ok) from whole numbers of 1e-6 units given as text."""
    digits = text.str.fullmatch(r"[0-9]{1,30}").to_numpy(dtype=bool)
    values = np.full(len(text), np.nan)
    values[digits] = text[digits].astype(np.float64).to_numpy() / UNITS
    return values, digits


def orderfilled_records(frame: pd.DataFrame, tokens: TokenMap) -> list[dict]:
    """One Data-API-shaped fill per ``OrderFilled`` event, the maker's (the module's docstring says why)."""
    maker_usdc = (frame["makerAssetId"] == USDC_ASSET).to_numpy()
    taker_usdc = (frame["takerAssetId"] == USDC_ASSET).to_numpy()
    token = frame["makerAssetId"].where(~maker_usdc, frame["takerAssetId"])
    maker_amount, maker_ok = _units(frame["makerAmountFilled"])
    taker_amount, taker_ok = _units(frame["takerAmountFilled"])
    usd = np.where(maker_usdc, maker_amount, taker_amount)
    shares = np.where(maker_usdc, taker_amount, maker_amount)
    with np.errstate(divide="ignore", invalid="ignore"):
        price = np.where(shares > 0, usd / shares, np.nan)
    rejects = _rejects(
        len(frame),
        ("exchange_as_maker", frame["maker"].str.lower().isin(EXCHANGES).to_numpy()),
        ("no_usdc_leg", maker_usdc == taker_usdc),
        ("bad_amount", ~(maker_ok & taker_ok)),
        ("unknown_token", ~token.isin(tokens.tokens.index).to_numpy()),
    )
    return _records(frame, token, np.where(maker_usdc, "BUY", "SELL"), shares, price, tokens, rejects)


def poly_data_records(frame: pd.DataFrame, tokens: TokenMap) -> list[dict]:
    """One Data-API-shaped fill per row of poly_data's processed trades, the maker's."""
    key = pd.MultiIndex.from_arrays([frame["market_id"], frame["nonusdc_side"]])
    token = pd.Series(tokens.by_market["token_id"].reindex(key).to_numpy(), index=frame.index, dtype=object)
    known = token.notna().to_numpy()
    shares = pd.to_numeric(frame["token_amount"], errors="coerce").to_numpy(dtype=np.float64)
    price = pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype=np.float64)
    rejects = _rejects(
        len(frame),
        ("exchange_as_maker", frame["maker"].str.lower().isin(EXCHANGES).to_numpy()),
        ("unknown_market", ~known),
        ("bad_amount", np.isnan(shares) | np.isnan(price)),
    )
    side = frame["maker_direction"].str.upper().to_numpy(dtype=object)
    return _records(frame, token.fillna(""), side, shares, price, tokens, rejects)


def _rejects(n: int, *rules: tuple[str, np.ndarray]) -> np.ndarray:
    """The first failing rule's code per row (None where none fails)."""
    out = np.full(n, None, dtype=object)
    for code, mask in reversed(rules):
        out[mask] = code
    return out


def _records(frame: pd.DataFrame, token: pd.Series, side, shares: np.ndarray, price: np.ndarray,
             tokens: TokenMap, rejects: np.ndarray) -> list[dict]:  # fmt: skip
    info = tokens.tokens.reindex(token.to_numpy())
    ts = _seconds(frame["timestamp"])
    given = (frame["timestamp"] != "").to_numpy()
    rejects = np.where((rejects == None) & np.isnan(ts) & given, "bad_timestamp", rejects)  # noqa: E711
    index = info["outcome_index"].to_numpy(dtype=np.float64)
    columns = {
        "proxyWallet": _objects(frame["maker"].str.lower()),
        "side": _objects(pd.Series(side, dtype=object)),
        "asset": _objects(token),
        "conditionId": _objects(info["condition_id"]),
        "size": _numbers(shares, whole=False),
        "price": _numbers(price, whole=False),
        "timestamp": _numbers(ts, whole=True),
        "outcome": _objects(info["outcome"]),
        "outcomeIndex": _numbers(index, whole=True),
        "title": _objects(info["title"]),
        "slug": _objects(info["slug"]),
        "transactionHash": _objects(frame["transactionHash"].str.lower()),
    }
    names = list(columns)
    records = [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    bad = np.flatnonzero(rejects != None)  # noqa: E711
    if len(bad):
        raw = frame.iloc[bad].to_dict("records")
        for i, row in zip(bad, raw, strict=True):
            records[i]["dumpRow"] = row
            records[i]["dumpReject"] = rejects[i]
    return records


def _objects(s: pd.Series) -> list:
    """Text values, None where missing or empty."""
    values = s.to_numpy(dtype=object)
    missing = pd.isna(values) | (values == "")
    return [None if m else v for v, m in zip(values.tolist(), missing.tolist(), strict=True)]


def _numbers(values: np.ndarray, *, whole: bool) -> list:
    """Floats, None where NaN; with ``whole`` an integral value is an int (the Data API's timestamps and
    indices), a fraction stays a float (and fails validation as such)."""
    nan = np.isnan(values)
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**62) & whole
    return [None if n else (int(v) if i else v)
            for v, n, i in zip(values.tolist(), nan.tolist(), integral.tolist(), strict=True)]  # fmt: skip


CONVERTERS = {"orderfilled": orderfilled_records, "poly-data": poly_data_records}
