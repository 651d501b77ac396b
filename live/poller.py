"""The Data API, CLOB and Gamma requests of the live loop, on the batch's HTTP client (``assets/ingest/http.py``:
retries with full jitter, ``Retry-After`` honoured, attempts bounded, errors that name the URL, token buckets).

- ``/trades?user=W&takerOnly=false&limit=N`` for one tracked wallet at a time, with a changing dummy parameter
  (``_=<nanoseconds>``) on every request: responses carry ``cache-control: public, max-age=300`` and the CDN
  ignores ``no-cache``, so an unchanged URL can return a body minutes old (polymarket_realtime.md §3);
- paced under half the documented limit (``/trades``: 100 of the 200 requests per 10 s);
- ``/v2/status`` for how far behind the chain head the API serves (503 before its first refresh);
- CLOB ``/prices-history`` for the marks of the tokens the book may hold; Gamma markets for held markets.

The calls are synchronous and run in a worker thread (``asyncio.to_thread``), so the event loop never waits on
the network. Request times are market time (``clock``: on the simulated market it runs ``speed`` times faster);
pacing and backoff are wall-clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from assets.ingest.http import (
    CLOB_LIMITS,
    DATA_API_LIMITS,
    GAMMA_LIMITS,
    ApiClient,
    PolymarketError,
    RetryPolicy,
)


def _share(limits: dict[str, int], share: float) -> dict[str, int]:
    return {prefix: max(1, int(n * share)) for prefix, n in limits.items()}


class Poller:
    def __init__(self, data_url: str, clob_url: str, gamma_url: str, *, clock: Callable[[], float],
                 speed: float = 1.0, share: float = 0.5, page_limit: int = 100, timeout_s: float = 10.0,
                 max_attempts: int = 4, cache_buster: bool = True, transport: httpx.BaseTransport | None = None):  # fmt: skip
        self.clock, self.speed = clock, speed
        self.page_limit, self.cache_buster = page_limit, cache_buster
        # pacing, backoff and Retry-After are wall-clock: a rate limit is about the server's real load, whatever
        # speed the simulated market replays at
        retry = RetryPolicy(max_attempts=max_attempts, base_s=0.5, cap_s=10.0)
        kw = dict(transport=transport, retry=retry, timeout_s=timeout_s)
        # a share of every documented limit: the batch may be calling the same APIs from this machine
        self.data = ApiClient(data_url, limits=_share(DATA_API_LIMITS, share), **kw)
        self.clob = ApiClient(clob_url, limits=_share(CLOB_LIMITS, share), **kw)
        self.gamma = ApiClient(gamma_url, limits=_share(GAMMA_LIMITS, share), **kw)

    def close(self) -> None:
        for c in (self.data, self.clob, self.gamma):
            c.close()

    def _buster(self) -> dict[str, Any]:
        return {"_": time.time_ns()} if self.cache_buster else {}

    def trades(self, wallet: str, start: int | None = None, offset: int = 0) -> tuple[list, float, str]:
        """The wallet's newest fills (maker and taker) since ``start``: (rows, market time of the request, URL).
        Asking from a little before what is already covered keeps the pages small; a full page says there may be
        more, and the caller pages on."""
        params = {
            "user": wallet,
            "takerOnly": False,
            "limit": self.page_limit,
            "offset": offset,
            "start": start,
            **self._buster(),
        }
        requested_at = self.clock()
        rows = self.data.get_json("/trades", params)
        if not isinstance(rows, list):
            raise PolymarketError(f"expected a JSON array of trades, got {type(rows).__name__}",
                                  self.data.url_for("/trades", params))  # fmt: skip
        return rows, requested_at, self.data.url_for("/trades", params)

    def lag(self) -> float | None:
        """How far behind the chain head the Data API serves, or None (503 before its first refresh)."""
        try:
            body = self.data.get_json("/v2/status", self._buster())
        except PolymarketError:
            return None
        serving = body.get("serving") if isinstance(body, dict) else None
        lag = serving.get("lag_seconds") if isinstance(serving, dict) else None
        return float(lag) if isinstance(lag, int | float) else None

    def prices(self, token: str, start_ts: int, end_ts: int, fidelity_min: int) -> list[tuple[int, float]]:
        body = self.clob.get_json("/prices-history", {"market": token, "startTs": start_ts, "endTs": end_ts,
                                                      "fidelity": fidelity_min})  # fmt: skip
        history = body.get("history") if isinstance(body, dict) else None
        if not isinstance(history, list):
            raise PolymarketError(
                "expected {'history': [...]}", self.clob.url_for("/prices-history", {"market": token})
            )
        return [
            (int(p["t"]), float(p["p"])) for p in history if isinstance(p, dict) and "t" in p and "p" in p
        ]

    def markets(self, condition_ids: list[str]) -> list[dict]:
        out: list[dict] = []
        for i in range(0, len(condition_ids), 50):
            ids = condition_ids[i : i + 50]
            for closed in (False, True):
                rows = self.gamma.get_json(
                    "/markets", {"condition_ids": ids, "closed": closed, "limit": len(ids)}
                )
                out += [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
        return out
