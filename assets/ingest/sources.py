"""Where records come from: the Polymarket APIs (live or simulated, one client code path) or files.

A source yields ``Page`` objects (decoded rows plus where they came from); parsing, validation and loading
are the same for every source.
"""

from __future__ import annotations

import gzip
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .clients import ClobApi, DataApi, GammaApi, Page
from .dumps import CONVERTERS, FORMATS, DumpFormatError, TokenMap, dump_frames, dump_times, market_csv_records
from .http import ApiClient
from .records import ACTIVITY_TYPES, Batch, NonJsonLine

#: the ``/activity`` types ingestion asks for: all but TRADE (the fills come from ``/trades``, maker fills included)
ACTIVITY_FETCHED = tuple(t for t in ACTIVITY_TYPES if t != "TRADE")


@dataclass
class ApiSource:
    """The Data API, Gamma and CLOB behind one object. ``name`` is 'live' or 'sim'."""

    name: str
    data: DataApi
    gamma: GammaApi
    clob: ClobApi
    now_ts: int
    history: tuple[int, int] | None = None  # the sim's known history; None for live

    def close(self) -> None:
        for api in (self.data.api, self.gamma.api, self.clob.api):
            api.close()

    def market_pages(self) -> Iterator[Page]:
        # /markets hides closed markets unless closed=true: ask for both.
        yield from self.gamma.markets(closed=False)
        yield from self.gamma.markets(closed=True)

    def trade_pages(
        self, *, start: int, end: int, markets: Sequence[str] | None = None, user: str | None = None
    ) -> Iterator[Page]:
        yield from self.data.trades(markets=markets, user=user, start=start, end=end, taker_only=False)

    def resolved_among(self, condition_ids: Sequence[str]) -> list[str]:
        """Which of these markets Gamma now reports closed and resolved (UMA status ``resolved``)."""
        found = []
        for page in self.gamma.markets_by_condition(list(condition_ids), closed=True):
            found.extend(
                m["conditionId"] for m in page.rows
                if isinstance(m, dict) and m.get("closed") is True and m.get("umaResolutionStatus") == "resolved"
            )  # fmt: skip
        return sorted(set(found))

    def activity_pages(self, *, user: str, start: int, end: int) -> Iterator[Page]:
        """The wallet's ``/activity`` rows in [start, end] that are not trades (its fills come from ``/trades``)."""
        yield from self.data.activity(user=user, start=start, end=end, types=ACTIVITY_FETCHED)

    def large_trade_pages(self, *, min_cash: float, start: int, end: int) -> Iterator[Page]:
        yield from self.data.trades(min_cash=min_cash, start=start, end=end, taker_only=False)

    def leaderboard_pages(self, *, order_by: str, limit: int, category: str = "OVERALL") -> Iterator[Page]:
        yield from self.data.leaderboard(category=category, time_period="ALL", order_by=order_by, limit=limit)

    def price_pages(
        self, windows: Sequence[tuple[str, int]], *, end: int, fidelity_min: int
    ) -> Iterator[Page]:
        """One page per (token, start): the token's price history over [start, end]."""
        for token, start in windows:
            yield self.clob.prices_history(token, start, end, fidelity_min)

    def call_stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, api in (("data", self.data.api), ("gamma", self.gamma.api), ("clob", self.clob.api)):
            s = api.stats
            out[name] = {
                "requests": s.requests,
                "retries": s.retries,
                "throttled": s.throttled,
                "slept_s": round(s.slept_s, 3),
            }
        return out


def build_api_source(
    name: str,
    *,
    data_url: str,
    gamma_url: str,
    clob_url: str,
    transport=None,
    limits: dict[str, dict[str, int]] | None = None,
    timeout_s: float = 30.0,
    max_attempts: int = 6,
    now_ts: int | None = None,
    history: tuple[int, int] | None = None,
    sleep=time.sleep,
    page_limit: int = 500,
    offset_cap: int | None = None,
) -> ApiSource:
    from .clients import DATA_OFFSET_CAP
    from .http import CLOB_LIMITS, DATA_API_LIMITS, GAMMA_LIMITS, RetryPolicy

    limits = (
        limits
        if limits is not None
        else {"data": DATA_API_LIMITS, "gamma": GAMMA_LIMITS, "clob": CLOB_LIMITS}
    )
    retry = RetryPolicy(max_attempts=max_attempts)

    def client(url: str, key: str) -> ApiClient:
        return ApiClient(
            url, transport=transport, limits=limits.get(key), retry=retry, timeout_s=timeout_s, sleep=sleep
        )

    return ApiSource(
        name=name,
        data=DataApi(
            client(data_url, "data"), page_limit=page_limit, offset_cap=offset_cap or DATA_OFFSET_CAP
        ),
        gamma=GammaApi(client(gamma_url, "gamma")),
        clob=ClobApi(client(clob_url, "clob")),
        now_ts=int(time.time()) if now_ts is None else now_ts,
        history=history,
    )


# ---------------------------------------------------------------------------------------------- files


FileFormatError = DumpFormatError  # a file the file source cannot read as the format it was given as


#: the records a file source reads, parses and loads at a time (``WHALECOPY_FILE_BATCH_ROWS``)
FILE_BATCH_ROWS = 100_000


def read_records(path: str | Path) -> Batch:
    """Every record of a file in one batch (``iter_records``): for small files (the markets, the tests)."""
    return next(iter_records(path, batch_rows=None), _batch(Path(path), [], []))


def iter_records(
    path: str | Path, batch_rows: int | None = FILE_BATCH_ROWS, *, columns: bool = False
) -> Iterator[Batch]:
    """Records from a JSON array (or an object holding one under data/trades/markets), JSONL (.gz) or Parquet, in
    batches of at most ``batch_rows`` (None: one batch), so a dump larger than memory is read a batch at a time:
    Parquet by record batches, JSONL line by line. A JSON array is one document and is read whole (a dump too large
    for memory should be JSONL or Parquet).

    JSONL lines that are not JSON are kept (as ``NonJsonLine``) so they are quarantined with ``non_json_body``;
    ``record_ref`` is ``path:line`` (``path:row`` for Parquet and JSON), whatever the batch size, so identical
    lines stay distinct and a record read again is the same record.

    ``columns``: a Parquet file's batches come as columns (``Batch.frame``), not a list of dicts, for the trades'
    validation, which reads them as they are; a rejected record is built from its Arrow row as the dicts are.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file source: {path} does not exist")
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"file source: batch_rows must be at least 1, got {batch_rows}")
    name = path.name.lower()
    if name.endswith(".parquet"):
        yield from _parquet_batches(path, batch_rows, columns)
        return
    opener = gzip.open if name.endswith(".gz") else open
    stem = name.removesuffix(".gz")
    if stem.endswith((".jsonl", ".ndjson")):
        yield from _jsonl_batches(path, opener, batch_rows)
        return
    if stem.endswith(".json"):
        with opener(path, "rb") as fh:
            data = fh.read()
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FileFormatError(f"file source: {path} is not valid JSON ({exc})") from exc
        if isinstance(body, dict):
            for key in ("data", "trades", "markets", "history"):
                if isinstance(body.get(key), list):
                    body = body[key]
                    break
        if not isinstance(body, list):
            raise FileFormatError(f"file source: {path} holds no JSON array of records")
        step = batch_rows or max(len(body), 1)
        for lo in range(0, len(body), step):
            yield _batch(
                path, body[lo : lo + step], [f"{path}:{i}" for i in range(lo, min(lo + step, len(body)))]
            )
        return
    raise FileFormatError(
        f"file source: {path}: expected .json, .jsonl, .ndjson (optionally .gz) or .parquet"
    )


def _batch(path: Path, rows: list[Any], refs: list[str]) -> Batch:
    return Batch(rows=rows, refs=refs, origins=[str(path)], counts=[len(rows)])


def _jsonl_batches(path: Path, opener, batch_rows: int | None) -> Iterator[Batch]:
    """A JSONL file line by line. Lines are numbered as ``bytes.splitlines`` numbers them (``\n``, ``\r\n`` and
    ``\r`` end a line); blank lines count but hold no record."""
    rows: list[Any] = []
    refs: list[str] = []
    number = 0
    with opener(path, "rb") as fh:
        for chunk in fh:  # split at b"\n"; a bare b"\r" inside is split below
            for line in chunk.splitlines():
                number += 1
                if not line.strip():
                    continue
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    rows.append(NonJsonLine(line[:2000].decode("utf-8", "replace")))
                refs.append(f"{path}:{number}")
                if batch_rows is not None and len(rows) >= batch_rows:
                    yield _batch(path, rows, refs)
                    rows, refs = [], []
    if rows or batch_rows is None:
        yield _batch(path, rows, refs)


def _parquet_batches(path: Path, batch_rows: int | None, columns: bool = False) -> Iterator[Batch]:
    offset = 0
    if batch_rows is None:
        tables = [pq.read_table(path)]
    else:
        tables = (
            pa.Table.from_batches([b]) for b in pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
        )
    for table in tables:
        refs = [f"{path}:{i}" for i in range(offset, offset + table.num_rows)]
        offset += table.num_rows
        if columns:
            yield Batch(refs=refs, origins=[str(path)], counts=[table.num_rows], frame=_parquet_frame(table),
                        record=lambda i, t=table: _parquet_rows(t.slice(int(i), 1))[0])  # fmt: skip
        else:
            yield _batch(path, _parquet_rows(table), refs)


def _parquet_frame(table: pa.Table) -> pd.DataFrame:
    """A Parquet batch's columns as the trades' validation reads them, each as its records would give it: numbers,
    booleans and text as pandas reads them, a float column holding a NaN as ``_given_nan`` gives it, and any other
    type (a timestamp, a decimal, a dictionary) as the Python objects of ``_parquet_rows``."""
    frame = table.to_pandas()
    for name in table.column_names:
        values = _given_nan(table[name])
        if values is None and (isinstance(frame[name].dtype, pd.CategoricalDtype)
                               or frame[name].dtype.kind not in "biufO"):  # fmt: skip
            values = np.asarray(table[name].to_pylist(), dtype=object)
        if values is not None:
            frame[name] = values
    return frame


def _parquet_rows(table: pa.Table) -> list[dict]:
    columns = {}
    for name in table.column_names:
        values = _given_nan(table[name])
        columns[name] = table[name].to_pylist() if values is None else values.tolist()
    names = list(columns)
    return (
        [dict(zip(names, vals, strict=True)) for vals in zip(*columns.values(), strict=True)] if names else []
    )


def _given_nan(col: pa.ChunkedArray) -> np.ndarray | None:
    """A float column that holds a NaN, as objects with "NaN" there and None at its nulls (None if it holds no
    NaN): a NaN is a value that was given (``non_finite``), a null is missing (``missing_value``)."""
    if not pa.types.is_floating(col.type):
        return None
    nan = pc.fill_null(pc.is_nan(col), False).to_numpy(zero_copy_only=False)
    if not nan.any():
        return None
    values = np.asarray(col.to_pylist(), dtype=object)
    values[nan] = "NaN"
    return values


@dataclass
class FileSource:
    """Data-API-shaped trades and Gamma-shaped markets from files."""

    trades_path: str | None
    markets_path: str | None
    now_ts: int
    name: str = "files"
    history: tuple[int, int] | None = None
    batch_rows: int = FILE_BATCH_ROWS
    #: how the trades file is written (``dumps.FORMATS``): the Data API's trade objects (JSON, JSONL, Parquet),
    #: poly_data's processed trades or the on-chain ``OrderFilled`` events (CSV or Parquet, dumps.py)
    trade_format: str = "data-api"
    #: the Data API's ``/activity`` rows (JSON, JSONL or Parquet), or None: no activity
    activity_path: str | None = None

    def __post_init__(self) -> None:
        if self.trade_format not in FORMATS:
            raise FileFormatError(
                f"file source: unknown trades format {self.trade_format!r} (one of {', '.join(FORMATS)})"
            )

    def close(self) -> None:
        pass

    def resolved_among(self, condition_ids: Sequence[str]) -> list[str]:
        wanted = set(condition_ids)
        rows = self.market_batch().rows if self.markets_path else []
        return sorted(
            m["conditionId"] for m in rows
            if isinstance(m, dict) and m.get("conditionId") in wanted and m.get("closed") is True
            and m.get("umaResolutionStatus") == "resolved"
        )  # fmt: skip

    def market_batch(self) -> Batch:
        if not self.markets_path:
            raise FileFormatError("file source: no markets file given (--markets / WHALECOPY_MARKETS_PATH)")
        if (
            Path(self.markets_path).name.lower().removesuffix(".gz").endswith(".csv")
        ):  # poly_data's markets.csv
            rows = market_csv_records(self.markets_path)
            return _batch(
                Path(self.markets_path), rows, [f"{self.markets_path}:{i + 2}" for i in range(len(rows))]
            )
        return read_records(self.markets_path)

    def trade_batches(self) -> Iterator[Batch]:
        """The trades file a batch of ``batch_rows`` records at a time (``iter_records``)."""
        if not self.trades_path:
            raise FileFormatError("file source: no trades file given (--trades / WHALECOPY_TRADES_PATH)")
        if self.trade_format == "data-api":
            return iter_records(self.trades_path, self.batch_rows, columns=True)
        return self._dump_batches()

    def activity_batches(self) -> Iterator[Batch]:
        """The activity file a batch of ``batch_rows`` records at a time, as records (``iter_records``)."""
        if not self.activity_path:
            return iter(())
        return iter_records(self.activity_path, self.batch_rows)

    def _dump_batches(self) -> Iterator[Batch]:
        """A public dump (a file, or a folder of them) a batch at a time, each row turned into the fill of its maker
        (dumps.py); a record's ``record_ref`` is ``file:row``, the file's data row counted from 1."""
        path = Path(self.trades_path)
        if not path.exists():
            raise FileNotFoundError(f"file source: {path} does not exist")
        tokens = TokenMap.from_markets(self.market_batch().rows)
        convert = CONVERTERS[self.trade_format]
        for frame, file, first in dump_frames(path, self.trade_format, self.batch_rows):
            fills = convert(frame, tokens)
            refs = [f"{file}:{first + i}" for i in range(len(fills))]
            yield Batch(refs=refs, origins=[str(file)], counts=[len(fills)], frame=fills)

    def trade_bounds(self) -> tuple[int, int] | None:
        """First and last usable timestamp in the trades file and the activity file (for the partition range of a
        run: a redemption comes after the market's last fill), read a batch at a time (a Parquet trades file: its
        ``timestamp`` column alone)."""
        lo, hi = np.inf, -np.inf
        activity = (batch_times(b) for b in self.activity_batches())
        for ts in itertools.chain(self._trade_times(), activity):
            with np.errstate(invalid="ignore"):
                good = ts[(ts >= 1.5e9) & (ts < 1e11)]
            if len(good):
                lo, hi = min(lo, good.min()), max(hi, good.max())
        return (int(lo), int(hi)) if np.isfinite(lo) else None

    def _trade_times(self) -> Iterator[np.ndarray]:
        path = str(self.trades_path)
        if self.trade_format != "data-api":
            yield from dump_times(path, self.trade_format, self.batch_rows)
            return
        if path.lower().endswith(".parquet"):
            schema = pq.ParquetFile(path).schema_arrow
            kind = schema.field("timestamp").type if "timestamp" in schema.names else None
            if kind is not None and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
                for b in pq.ParquetFile(path).iter_batches(batch_size=self.batch_rows, columns=["timestamp"]):
                    yield b.column(0).to_numpy(zero_copy_only=False).astype(np.float64)
                return
        for batch in self.trade_batches():
            yield batch_times(batch)


def batch_times(batch: Batch) -> np.ndarray:
    """Each record's ``timestamp`` as a float (NaN where it is missing or not a number), the records given as rows
    or as columns."""
    return record_times(batch.rows) if batch.frame is None else column_times(batch.frame)


def column_times(frame: pd.DataFrame) -> np.ndarray:
    """``record_times`` of records given as columns: a numeric ``timestamp`` column as floats; in a column of
    objects, a number is its value and anything else (text, a boolean, None) NaN."""
    if "timestamp" not in frame.columns:
        return np.full(len(frame), np.nan)
    col = frame["timestamp"]
    if col.dtype.kind in "fiu":
        return col.to_numpy(dtype=np.float64)
    return record_times([{"timestamp": v} for v in col.tolist()])


def record_times(rows: Sequence[Any]) -> np.ndarray:
    """Each record's ``timestamp`` as a float (NaN where it is missing or not a number)."""
    return np.array(
        [r.get("timestamp") if isinstance(r, dict) and isinstance(r.get("timestamp"), int | float)
         and not isinstance(r.get("timestamp"), bool) else np.nan for r in rows], dtype=np.float64,
    )  # fmt: skip
