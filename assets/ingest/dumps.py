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

The markets file (``--markets``: Gamma's market objects as for any file source, or poly_data's ``markets.csv``,
``market_csv_records``) maps each token to its market, outcome and title. A fill whose token, or whose (market, side), is not in it is quarantined (``unknown_token``,
``unknown_market``), as are an event with no USDC leg or with both (``no_usdc_leg``), an amount that is not a
whole number of 1e-6 units (``bad_amount``) and a timestamp that is neither epoch seconds nor a datetime
(``bad_timestamp``); the rest is the Data API's validation (``size_not_positive``, ``bad_wallet``, ...).

The files are read a batch of rows at a time (Arrow's streaming CSV reader re-cut into exact batches, Parquet by
record batches), every column as text (a token id has up to 78 digits), converted with vectorised pandas and handed
to the validation as columns: a 100M-row file is never held whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
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


#: poly_data's markets.csv of before its v2 (one row per market, two tokens): its columns -> Gamma's fields
V1_MARKET_FIELDS = {"id": "id", "question": "question", "market_slug": "slug", "condition_id": "conditionId",
                    "closedTime": "closedTime", "neg_risk": "negRisk", "volume": "volumeNum"}  # fmt: skip
_GAMMA_BOOLEANS = ("closed", "active", "archived", "negRisk")
_GAMMA_NUMBERS = ("volumeNum",)


def market_csv_records(path: str | Path) -> list[dict]:
    """poly_data's ``markets.csv`` as Gamma market objects (the markets file of a dump): its v2 form keeps every
    Gamma field as written (arrays as JSON text, booleans as true/false); its v1 form (``token1``, ``token2``,
    ``answer1``, ``answer2``, ``condition_id``, ``market_slug``, ...) is mapped to Gamma's names. The v1 form holds
    no resolution: its markets load as unresolved, and positions in them realise P&L from trading only."""
    path = Path(path)
    try:
        names = _csv_names(path)
        text = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True)
        table = pacsv.read_csv(path, convert_options=text)
    except pa.ArrowInvalid as exc:
        raise DumpFormatError(f"file source: {path} is not a markets CSV: {exc}") from exc
    rows = table.to_pylist()
    if "clobTokenIds" not in table.column_names and {"token1", "token2"} <= set(table.column_names):
        rows = [{**{gamma: r.get(col) for col, gamma in V1_MARKET_FIELDS.items()},
                 "clobTokenIds": orjson.dumps([r["token1"], r["token2"]]).decode(),
                 "outcomes": orjson.dumps([r.get("answer1"), r.get("answer2")]).decode()} for r in rows]  # fmt: skip
    for r in rows:
        for k in _GAMMA_BOOLEANS:
            if isinstance(r.get(k), str):
                r[k] = {"true": True, "false": False}.get(r[k].strip().lower(), r[k])
        for k in _GAMMA_NUMBERS:
            if isinstance(r.get(k), str):
                try:
                    r[k] = float(r[k])
                except ValueError:
                    pass
    return rows


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


def dump_files(path: str | Path) -> list[Path]:
    """The files of a dump: the file itself, or every .csv, .csv.gz and .parquet file below a folder (poly_data's
    Parquet store writes one folder per month, ``orderFilled/year=2026/month=5/*.parquet``), in path order."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and _readable(p.name))
    if not files:
        raise DumpFormatError(f"file source: {path} is a folder with no .csv, .csv.gz or .parquet file in it")
    return files


def _readable(name: str) -> bool:
    name = name.lower()
    return name.endswith(".parquet") or name.removesuffix(".gz").endswith(".csv")


def dump_frames(
    path: str | Path, fmt: str, batch_rows: int | None, columns: Sequence[str] | None = None
) -> Iterator[tuple[pd.DataFrame, Path, int]]:
    """(rows as text, the file, its first row number) ``batch_rows`` rows at a time (None: a file at once), file
    after file (``dump_files``): CSV (optionally .gz) through Arrow's streaming reader, Parquet by record batches.
    Every column is text (Arrow-backed strings); the empty string stands for a missing value. Row numbers count a
    file's data rows from 1 (a CSV's header is line 1, so row r is on line r + 1)."""
    for file in dump_files(path):
        for frame, first in _file_frames(file, fmt, batch_rows, columns):
            yield frame, file, first


def _file_frames(
    path: Path, fmt: str, batch_rows: int | None, columns: Sequence[str] | None
) -> Iterator[tuple[pd.DataFrame, int]]:
    name = path.name.lower()
    wanted = list(columns) if columns else None
    if name.endswith(".parquet"):
        pf = pq.ParquetFile(path)
        _require(path, fmt, pf.schema_arrow.names)
        batches = pf.iter_batches(batch_size=batch_rows or 1_000_000, columns=wanted)
    elif _readable(name):
        batches = _csv_batches(path, fmt, wanted)
    else:
        raise DumpFormatError(f"file source: {path}: a {fmt} dump is read from .csv, .csv.gz or .parquet")
    first = 1
    for table in _rebatch(batches, batch_rows):
        frame = table.cast(pa.schema([(n, pa.string()) for n in table.column_names])).to_pandas(
            types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get
        )
        yield frame.fillna(""), first
        first += len(frame)


def _csv_batches(path: Path, fmt: str, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    try:
        header = _csv_names(path)
    except pa.ArrowInvalid as exc:
        raise DumpFormatError(f"file source: {path} is empty or not CSV (a {fmt} dump starts with its header): "
                              f"{exc}") from exc  # fmt: skip
    _require(path, fmt, header)
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, include_columns=columns,
                                   strings_can_be_null=False)  # fmt: skip
    try:
        yield from pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=8 << 20),
                                  convert_options=convert)  # fmt: skip
    except pa.ArrowInvalid as exc:
        raise DumpFormatError(f"file source: {path}: {exc}") from exc


def _csv_names(path: Path) -> list[str]:
    """A CSV's column names, from its first block (every column is then read as text by name)."""
    return pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16)).schema.names


def _rebatch(batches: Iterator[pa.RecordBatch], rows: int | None) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last may be shorter; None: one table) from batches of any size."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while rows and held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if pending and held:
        yield pa.Table.from_batches(pending)


def dump_times(path: str | Path, fmt: str, batch_rows: int | None) -> Iterator[np.ndarray]:
    """Each row's epoch seconds (NaN where unusable), a batch at a time, reading the ``timestamp`` column alone
    (the run's partition range, before the load reads the whole file)."""
    for frame, _, _ in dump_frames(path, fmt, batch_rows, columns=["timestamp"]):
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


def orderfilled_records(frame: pd.DataFrame, tokens: TokenMap) -> pd.DataFrame:
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


def poly_data_records(frame: pd.DataFrame, tokens: TokenMap) -> pd.DataFrame:
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
             tokens: TokenMap, rejects: np.ndarray) -> pd.DataFrame:  # fmt: skip
    """The fills as columns named like the Data API's fields (``records.parse_trades`` reads them as they are),
    with ``dumpReject`` (the refusing rule, or None) and ``dumpRow`` (the dump's row, on refused rows only)."""
    info = tokens.tokens.reindex(token.to_numpy())
    ts = _seconds(frame["timestamp"])
    given = (frame["timestamp"] != "").to_numpy()
    rejects = np.where((rejects == None) & np.isnan(ts) & given, "bad_timestamp", rejects)  # noqa: E711
    out = pd.DataFrame({
        "proxyWallet": _text(frame["maker"].str.lower()),
        "side": _text(np.asarray(side, dtype=object)),
        "asset": _text(token.to_numpy(dtype=object, na_value=None)),
        "conditionId": _text(info["condition_id"].to_numpy(dtype=object)),
        "size": shares,
        "price": price,
        "timestamp": ts,
        "outcome": _text(info["outcome"].to_numpy(dtype=object)),
        "outcomeIndex": info["outcome_index"].to_numpy(dtype=np.float64),
        "title": _text(info["title"].to_numpy(dtype=object)),
        "slug": _text(info["slug"].to_numpy(dtype=object)),
        "transactionHash": _text(frame["transactionHash"].str.lower()),
        "dumpReject": rejects,
    })  # fmt: skip
    refused = np.flatnonzero(rejects != None)  # noqa: E711
    rows = np.full(len(out), None, dtype=object)
    if len(refused):
        rows[refused] = frame.iloc[refused].astype(object).to_dict("records")
    out["dumpRow"] = rows
    return out


def _text(s: pd.Series | np.ndarray) -> pd.Series:
    """Text as Arrow-backed strings (what ``records.parse_trades`` reads them as), missing where empty."""
    out = pd.Series(s).astype(pd.StringDtype("pyarrow")).reset_index(drop=True)
    return out.mask(out == "")


CONVERTERS = {"orderfilled": orderfilled_records, "poly-data": poly_data_records}
