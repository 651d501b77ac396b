"""Where records come from: the Polymarket APIs (live or simulated, one client code path) or files.

A source yields ``Page`` objects (decoded rows plus where they came from); parsing, validation and loading
are the same for every source.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .clients import ClobApi, DataApi, GammaApi, Page
from .http import ApiClient
from .records import Batch, NonJsonLine


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


class FileFormatError(ValueError):
    pass


def read_records(path: str | Path) -> Batch:
    """Records from a JSON array (or an object holding one under data/trades/markets), JSONL (.gz) or Parquet.

    JSONL lines that are not JSON are kept (as ``NonJsonLine``) so they are quarantined with ``non_json_body``;
    ``record_ref`` is ``path:line`` so identical lines stay distinct.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file source: {path} does not exist")
    name = path.name.lower()
    if name.endswith(".parquet"):
        return _read_parquet(path)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    stem = name.removesuffix(".gz")
    batch = Batch()
    if stem.endswith((".jsonl", ".ndjson")):
        rows: list[Any] = []
        refs: list[str] = []
        for i, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                rows.append(NonJsonLine(line[:2000].decode("utf-8", "replace")))
            refs.append(f"{path}:{i}")
        batch.rows, batch.refs = rows, refs
        batch.origins, batch.counts = [str(path)], [len(rows)]
        return batch
    if stem.endswith(".json"):
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
        batch.rows = body
        batch.refs = [f"{path}:{i}" for i in range(len(body))]
        batch.origins, batch.counts = [str(path)], [len(body)]
        return batch
    raise FileFormatError(
        f"file source: {path}: expected .json, .jsonl, .ndjson (optionally .gz) or .parquet"
    )


def _read_parquet(path: Path) -> Batch:
    table = pq.read_table(path)
    # Keep a NaN apart from a null: a NaN is a value that was given (non_finite), a null is missing.
    columns = {}
    for name in table.column_names:
        col = table[name]
        if pa.types.is_floating(col.type):
            nan = pc.fill_null(pc.is_nan(col), False).to_numpy(zero_copy_only=False)
            if nan.any():
                values = np.asarray(col.to_pylist(), dtype=object)
                values[nan] = "NaN"
                columns[name] = values.tolist()
                continue
        columns[name] = col.to_pylist()
    names = list(columns)
    rows = (
        [dict(zip(names, vals, strict=True)) for vals in zip(*columns.values(), strict=True)] if names else []
    )
    batch = Batch(rows=rows, origins=[str(path)], counts=[len(rows)])
    batch.refs = [f"{path}:{i}" for i in range(len(rows))]
    return batch


@dataclass
class FileSource:
    """Data-API-shaped trades and Gamma-shaped markets from files."""

    trades_path: str | None
    markets_path: str | None
    now_ts: int
    name: str = "files"
    history: tuple[int, int] | None = None
    _trades: Batch | None = None

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
        return read_records(self.markets_path)

    def trades_batch(self) -> Batch:
        if not self.trades_path:
            raise FileFormatError("file source: no trades file given (--trades / WHALECOPY_TRADES_PATH)")
        if self._trades is None:
            self._trades = read_records(self.trades_path)
        return self._trades

    def trade_bounds(self) -> tuple[int, int] | None:
        """First and last usable timestamp in the trades file (for the partition range of a run)."""
        ts = [r.get("timestamp") for r in self.trades_batch().rows if isinstance(r, dict)]
        good = [t for t in ts if isinstance(t, int | float) and not isinstance(t, bool) and 1.5e9 <= t < 1e11]
        return (int(min(good)), int(max(good))) if good else None
