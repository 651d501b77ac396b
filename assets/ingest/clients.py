"""Polymarket clients: Data API (/trades, /activity, /v1/leaderboard), Gamma (/markets), CLOB (/prices-history).

Every loop is bounded. Pagination reads the page size it actually got, switches to ``start``/``end`` time windows
when the offset cap is reached (or answered with a 400), and stops with an error naming the URL on a repeated
page or a cursor that does not advance.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .http import ApiClient, ApiStatusError, PaginationError

DATA_OFFSET_CAP = 10_000  # documented; live servers have answered 400 far earlier (polymarket_api.md §2.1)
MAX_PAGES = 200_000  # hard bound for one query, whatever the server does


@dataclass(frozen=True)
class Page:
    """One decoded page and the URL it came from (kept for provenance and quarantine records)."""

    url: str
    rows: list[dict[str, Any]]
    context: dict[str, Any] | None = None


class _Url:
    """A request URL, rendered only when needed (a page's provenance, an error message)."""

    def __init__(self, api: ApiClient, path: str, params: dict[str, Any]):
        self.api, self.path, self.params = api, path, params
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self.api.url_for(self.path, self.params)
        return self._text


def _page_fingerprint(rows: list[dict[str, Any]]) -> tuple:
    first, last = rows[0], rows[-1]
    return (
        len(rows),
        first.get("transactionHash"), first.get("proxyWallet"), first.get("timestamp"), first.get("size"),
        last.get("transactionHash"), last.get("proxyWallet"), last.get("timestamp"), last.get("size"),
    )  # fmt: skip


class DataApi:
    """Data API v1 (bare JSON arrays, camelCase)."""

    def __init__(self, api: ApiClient, page_limit: int = 500, offset_cap: int = DATA_OFFSET_CAP):
        self.api = api
        self.page_limit = page_limit
        self.offset_cap = offset_cap

    def trades(
        self,
        *,
        user: str | None = None,
        markets: Sequence[str] | None = None,
        start: int | None = None,
        end: int | None = None,
        taker_only: bool = False,
        min_cash: float | None = None,
        side: str | None = None,
    ) -> Iterator[Page]:
        """All fills matching the filters in [start, end] (epoch seconds, inclusive), newest first.

        ``taker_only`` defaults to False here (the API's default is True, which hides maker fills).
        ``min_cash`` asks for large trades only (``filterType=CASH&filterAmount=...``).
        Pages through offsets; at the offset cap (or a 400 at a deep offset) it narrows the window's ``end`` to
        the oldest timestamp seen and starts again at offset 0. Rows at the boundary second are fetched twice;
        the loader drops exact repeats by natural key.
        """
        if user is None and not markets and min_cash is None:
            raise ValueError("trades(): give user=, markets= or min_cash= (the bare feed is not a history)")
        base: dict[str, Any] = {"takerOnly": taker_only}
        if user is not None:
            base["user"] = user
        if markets:
            base["market"] = ",".join(markets)
        if min_cash is not None:
            base["filterType"] = "CASH"
            base["filterAmount"] = min_cash
        if side is not None:
            base["side"] = side
        return self._windowed("/trades", base, 1 if start is None and user is not None else start, end)

    def activity(
        self,
        *,
        user: str,
        start: int | None = None,
        end: int | None = None,
        types: Sequence[str] | None = None,
    ) -> Iterator[Page]:
        """The ``/activity`` rows of ``user`` in [start, end] (polymarket_api.md §2.2), of ``types`` (a csv
        filter; None: every type), newest first, paged as :meth:`trades` (``limit`` at most 500, the offset cap
        met by narrowing the window)."""
        base: dict[str, Any] = {"user": user, "sortBy": "TIMESTAMP", "sortDirection": "DESC"}
        if types:
            base["type"] = ",".join(types)
        return self._windowed("/activity", base, 1 if start is None else start, end, limit_cap=500)

    def _windowed(
        self, path: str, base: dict[str, Any], window_start: int | None, window_end: int | None,
        limit_cap: int | None = None,
    ) -> Iterator[Page]:  # fmt: skip
        """Every row of ``path`` for ``base`` in [window_start, window_end], newest first, by offsets; at the
        offset cap (or a 400 at a deep offset) the window's end narrows to the oldest timestamp seen."""
        limit = self.page_limit if limit_cap is None else min(self.page_limit, limit_cap)
        offset = 0
        page_size = 0  # the largest page the server has actually returned
        seen: set[tuple] = set()
        oldest_in_window: int | None = None
        for _ in range(MAX_PAGES):
            params = {
                **base,
                "start": window_start,
                "end": window_end,
                "limit": limit,
                "offset": offset,
            }
            url = _Url(self.api, path, params)
            try:
                rows = self.api.get_json(path, params)
            except ApiStatusError as exc:
                if exc.status == 400 and offset > 0:
                    # The server's offset cap is lower than ours: continue in a narrower time window.
                    window_end = self._narrow(window_end, oldest_in_window, url)
                    offset, oldest_in_window, seen = 0, None, set()
                    continue
                raise
            if not isinstance(rows, list):
                raise PaginationError(f"expected a JSON array of rows, got {type(rows).__name__}", url)
            if not rows:
                return
            fingerprint = _page_fingerprint(rows)
            if fingerprint in seen:
                raise PaginationError("the server returned the same page twice (offset ignored?)", url)
            seen.add(fingerprint)
            yield Page(str(url), rows)
            page_size = max(page_size, len(rows))
            ts = [r.get("timestamp") for r in rows if isinstance(r.get("timestamp"), int)]
            if ts:
                oldest = min(ts)
                oldest_in_window = oldest if oldest_in_window is None else min(oldest_in_window, oldest)
            if len(rows) < page_size:
                return  # a short page: the end of this window, and so of the query
            offset += len(rows)
            if offset > self.offset_cap:
                window_end = self._narrow(window_end, oldest_in_window, url)
                offset, oldest_in_window, seen = 0, None, set()
        raise PaginationError(f"more than {MAX_PAGES} pages for one query", self.api.url_for(path, base))

    @staticmethod
    def _narrow(window_end: int | None, oldest: int | None, url: str) -> int:
        if oldest is None:
            raise PaginationError("offset cap reached but no timestamp to narrow the window on", url)
        if window_end is not None and oldest >= window_end:
            raise PaginationError(
                f"time window cannot advance: more rows at timestamp {oldest} than the offset cap allows", url
            )
        return oldest

    def positions(self, *, user: str, closed: bool) -> Iterator[Page]:
        """``/closed-positions`` (pages of at most 50) or ``/positions`` (at most 500, every size:
        ``sizeThreshold=0``) of ``user``, by offsets until a short page (polymarket_api.md §2.3, §2.4)."""
        path = "/closed-positions" if closed else "/positions"
        limit = 50 if closed else min(self.page_limit, 500)
        base: dict[str, Any] = {"user": user} if closed else {"user": user, "sizeThreshold": 0}
        seen: set[tuple] = set()
        for page_no in range(MAX_PAGES):
            params = {**base, "limit": limit, "offset": page_no * limit}
            url = self.api.url_for(path, params)
            rows = self.api.get_json(path, params)
            if not isinstance(rows, list):
                raise PaginationError(f"expected a JSON array of positions, got {type(rows).__name__}", url)
            if not rows:
                return
            key = tuple((r.get("asset"), r.get("realizedPnl")) for r in rows if isinstance(r, dict))
            if key in seen:
                raise PaginationError("the server returned the same page of positions twice", url)
            seen.add(key)
            yield Page(url, rows)
            if len(rows) < limit:
                return
        raise PaginationError(f"more than {MAX_PAGES} pages for one query", self.api.url_for(path, base))

    def leaderboard(
        self, *, category: str = "OVERALL", time_period: str = "ALL", order_by: str = "PNL", limit: int = 500
    ) -> Iterator[Page]:
        """``/v1/leaderboard`` (pages of at most 50, offset at most 1,000). ``timePeriod`` defaults to ALL here."""
        fetched = 0
        offset = 0
        seen: set[tuple] = set()
        while fetched < limit and offset <= 1000:
            n = min(50, limit - fetched)
            params = {
                "category": category,
                "timePeriod": time_period,
                "orderBy": order_by,
                "limit": n,
                "offset": offset,
            }
            url = self.api.url_for("/v1/leaderboard", params)
            rows = self.api.get_json("/v1/leaderboard", params)
            if not isinstance(rows, list):
                raise PaginationError(f"expected a JSON array, got {type(rows).__name__}", url)
            if not rows:
                return
            key = tuple(r.get("proxyWallet") for r in rows)
            if key in seen:
                raise PaginationError("the server returned the same leaderboard page twice", url)
            seen.add(key)
            yield Page(url, rows)
            fetched += len(rows)
            offset += len(rows)
            if len(rows) < n:
                return


class GammaApi:
    """Gamma API: markets, open and closed, keyset pagination where the server offers it."""

    def __init__(self, api: ApiClient, page_limit: int = 500):
        self.api = api
        self.page_limit = page_limit

    def markets(self, *, closed: bool, **filters: Any) -> Iterator[Page]:
        """All markets with ``closed`` as given (``/markets`` hides closed ones unless ``closed=true``)."""
        try:
            yield from self._keyset(closed=closed, **filters)
        except ApiStatusError as exc:
            if exc.status not in (404, 405, 501):
                raise
            yield from self._offset(closed=closed, **filters)

    def markets_by_condition(
        self, condition_ids: list[str], *, closed: bool, batch: int = 50
    ) -> Iterator[Page]:
        """Markets by condition id (repeated ``condition_ids`` params, batched under Gamma's URL-length limit)."""
        for i in range(0, len(condition_ids), batch):
            ids = condition_ids[i : i + batch]
            params = {"condition_ids": ids, "closed": closed, "limit": len(ids)}
            url = self.api.url_for("/markets", params)
            rows = self.api.get_json("/markets", params)
            if not isinstance(rows, list):
                raise PaginationError(f"expected a JSON array of markets, got {type(rows).__name__}", url)
            yield Page(url, rows)

    def _keyset(self, **filters: Any) -> Iterator[Page]:
        cursor: str | None = None
        seen_cursors: set[str] = set()
        for _ in range(MAX_PAGES):
            params = {**filters, "limit": self.page_limit, "after_cursor": cursor, "include_tag": True}
            url = self.api.url_for("/markets/keyset", params)
            body = self.api.get_json("/markets/keyset", params)
            if not isinstance(body, dict) or not isinstance(body.get("markets"), list):
                raise PaginationError("expected {'markets': [...], 'next_cursor': ...}", url)
            rows = body["markets"]
            if rows:
                yield Page(url, rows)
            nxt = body.get("next_cursor")
            if not nxt:
                return
            if nxt == cursor or nxt in seen_cursors:
                raise PaginationError(f"keyset cursor did not advance ({nxt!r})", url)
            seen_cursors.add(nxt)
            cursor = nxt
        raise PaginationError(
            f"more than {MAX_PAGES} keyset pages", self.api.url_for("/markets/keyset", filters)
        )

    def _offset(self, **filters: Any) -> Iterator[Page]:
        offset = 0
        page_size = 0
        seen: set[tuple] = set()
        for _ in range(MAX_PAGES):
            params = {**filters, "limit": self.page_limit, "offset": offset, "include_tag": True}
            url = self.api.url_for("/markets", params)
            rows = self.api.get_json("/markets", params)
            if not isinstance(rows, list):
                raise PaginationError(f"expected a JSON array of markets, got {type(rows).__name__}", url)
            if not rows:
                return
            key = (len(rows), rows[0].get("conditionId"), rows[-1].get("conditionId"))
            if key in seen:
                raise PaginationError("the server returned the same page of markets twice", url)
            seen.add(key)
            yield Page(url, rows)
            page_size = max(page_size, len(rows))
            if len(rows) < page_size:
                return
            offset += len(rows)
        raise PaginationError(
            f"more than {MAX_PAGES} pages of markets", self.api.url_for("/markets", filters)
        )


class ClobApi:
    """CLOB public endpoints: ``/prices-history`` for one outcome token."""

    def __init__(self, api: ApiClient):
        self.api = api

    def prices_history(self, token_id: str, start: int, end: int, fidelity_min: int = 60) -> Page:
        params = {"market": token_id, "startTs": start, "endTs": end, "fidelity": fidelity_min}
        url = self.api.url_for("/prices-history", params)
        body = self.api.get_json("/prices-history", params)
        if not isinstance(body, dict) or not isinstance(body.get("history"), list):
            raise PaginationError("expected {'history': [{'t': ..., 'p': ...}, ...]}", url)
        return Page(url, body["history"], context={"token_id": token_id, "start": start})
