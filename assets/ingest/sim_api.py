"""The simulated Polymarket served over HTTP semantics: an ``httpx`` transport answering the real endpoints.

The same client code that talks to the live APIs talks to this. It answers with the real JSON shapes (bare
camelCase arrays on the Data API, JSON-encoded string arrays and Postgres-style ``closedTime`` on Gamma,
``{"history": [{"t", "p"}]}`` on the CLOB) and the real traps: ``takerOnly`` defaults to true and hides maker
fills, ``/markets`` hides closed markets unless ``closed=true``, pages are capped (500 rows) whatever ``limit``
asks, and offsets past the cap answer 400. ``FaultInjector`` wraps any transport with 429s (with and without
``Retry-After``), 5xx, timeouts, resets, HTML pages and truncated bodies.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import numpy as np
import orjson
import pandas as pd

from .sim import ACTIVITY_KINDS, CATEGORIES, SimWorld, polymarket_positions

CATEGORY_IDS = {c: i for i, c in enumerate(CATEGORIES)}

DATA_HOST = "sim-data-api.polymarket.local"
GAMMA_HOST = "sim-gamma-api.polymarket.local"
CLOB_HOST = "sim-clob.polymarket.local"
DATA_URL = f"http://{DATA_HOST}"
GAMMA_URL = f"http://{GAMMA_HOST}"
CLOB_URL = f"http://{CLOB_HOST}"


def _json(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body), headers={"content-type": "application/json"})


def _records(frame: pd.DataFrame) -> httpx.Response:
    """A frame's rows as a bare JSON array of objects, written by pandas (in C)."""
    return httpx.Response(200, content=frame.to_json(orient="records", double_precision=15).encode(),
                          headers={"content-type": "application/json"})  # fmt: skip


def _error(status: int, message: str) -> httpx.Response:
    return _json(status, {"error": message})


def _iso(ts: int | np.integer) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pg(ts: int | np.integer) -> str:
    """Gamma's Postgres-style ``closedTime``: '2026-01-05 04:22:25+00'."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "yes")


class SimPolymarket(httpx.BaseTransport):
    """Answers Data API, Gamma and CLOB requests from a ``SimWorld``."""

    def __init__(
        self,
        world: SimWorld,
        *,
        page_cap: int = 500,
        offset_cap: int = 3000,
        gamma_page_cap: int = 500,
        dirty_share: float = 0.001,
    ):
        self.world = world
        self.dirty_share = dirty_share
        self.page_cap = page_cap
        self.offset_cap = offset_cap
        self.gamma_page_cap = gamma_page_cap
        self.requests = 0
        tape = world.tape
        self._by_market = np.lexsort((np.arange(len(tape)), tape.market))  # rows of each market, time order
        self._market_bounds = np.searchsorted(tape.market[self._by_market], np.arange(len(world.markets) + 1))
        self._by_wallet = np.lexsort((np.arange(len(tape)), tape.wallet))
        self._wallet_bounds = np.searchsorted(tape.wallet[self._by_wallet], np.arange(len(world.wallets) + 1))
        self._market_index = {cid: i for i, cid in enumerate(world.markets.condition_id)}
        self._wallet_index = {a: i for i, a in enumerate(world.wallets["address"])}
        tokens = np.concatenate([world.markets.token_yes, world.markets.token_no])
        self._token_index = {t: i for i, t in enumerate(tokens)}
        self._queries: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._market_json: list[dict] | None = None
        self._boards: dict[tuple, dict[str, pd.DataFrame]] = {}
        self._notional = tape.size * tape.price
        act = world.activity
        self._activity_wallets = frozenset(np.unique(act.wallet).tolist()) if act is not None else frozenset()

    # ------------------------------------------------------------------------------------------ routing
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        host, path = request.url.host, request.url.path
        params = request.url.params
        try:
            if host == DATA_HOST and path == "/trades":
                return self._trades(params)
            if host == DATA_HOST and path == "/activity":
                return self._activity(params)
            if host == DATA_HOST and path in ("/positions", "/closed-positions"):
                return self._positions(params, closed=path == "/closed-positions")
            if host == DATA_HOST and path == "/v1/leaderboard":
                return self._leaderboard(params)
            if host == GAMMA_HOST and path == "/markets":
                return self._markets_offset(params)
            if host == GAMMA_HOST and path == "/markets/keyset":
                return self._markets_keyset(params)
            if host == CLOB_HOST and path == "/prices-history":
                return self._prices_history(params)
        except ValueError as exc:
            return _error(400, str(exc))
        return _error(404, f"no such endpoint: {host}{path}")

    # ------------------------------------------------------------------------------------------ Data API
    def _select(self, params: httpx.QueryParams) -> np.ndarray:
        """Row numbers matching the filters, newest first (cached per filter set, as a server's query plan)."""
        key = tuple(sorted((k, v) for k, v in params.multi_items() if k not in ("limit", "offset")))
        hit = self._queries.get(key)
        if hit is not None:
            self._queries.move_to_end(key)
            return hit
        tape = self.world.tape
        markets = [m for m in (params.get("market") or "").split(",") if m]
        user = params.get("user")
        if markets and params.get("eventId"):
            raise ValueError("market and eventId cannot be combined")
        if markets:
            idx = [self._market_index.get(m) for m in markets]
            parts = [
                self._by_market[self._market_bounds[i] : self._market_bounds[i + 1]]
                for i in idx
                if i is not None
            ]
            rows = np.concatenate(parts) if parts else np.empty(0, np.int64)
            if user is not None:
                w = self._wallet_index.get(user.lower(), -1)
                rows = rows[tape.wallet[rows] == w]
        elif user is not None:
            w = self._wallet_index.get(user.lower())
            rows = (
                np.empty(0, np.int64)
                if w is None
                else self._by_wallet[self._wallet_bounds[w] : self._wallet_bounds[w + 1]]
            )
        else:
            rows = np.arange(len(tape))
        now = self.world.now
        default_start = (
            1 if user is not None else now - 3 * 365 * 86400
        )  # market/global queries: 3-year floor
        start = int(params.get("start", default_start))
        end = int(params.get("end", now))
        keep = (tape.ts[rows] >= start) & (tape.ts[rows] <= end)
        if _bool(params.get("takerOnly"), True):
            keep &= ~tape.is_maker[rows]
        side = params.get("side")
        if side is not None:
            if side not in ("BUY", "SELL"):
                raise ValueError(f"invalid side {side!r}")
            keep &= tape.side[rows] == (0 if side == "BUY" else 1)
        ftype, famount = params.get("filterType"), params.get("filterAmount")
        if (ftype is None) != (famount is None):
            raise ValueError("filterType and filterAmount must be sent together")
        if ftype is not None:
            amount = float(famount)
            keep &= (self._notional[rows] if ftype == "CASH" else tape.size[rows]) >= amount
        rows = np.sort(rows[keep])[::-1]  # row order is time order: newest first
        self._queries[key] = rows
        if len(self._queries) > 16:
            self._queries.popitem(last=False)
        return rows

    def _trades(self, params: httpx.QueryParams) -> httpx.Response:
        limit = int(params.get("limit", 100))
        offset = int(params.get("offset", 0))
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must be non-negative")
        if offset > self.offset_cap:
            return _error(
                400, f"offset {offset} exceeds the maximum of {self.offset_cap}; use start/end windows"
            )
        rows = self._select(params)
        page = rows[offset : offset + min(limit, self.page_cap)]
        return httpx.Response(
            200, content=self.trades_json(page), headers={"content-type": "application/json"}
        )

    def trades_json(self, rows: np.ndarray) -> bytes:
        """The Data API ``Trade`` objects for tape rows, as one JSON array (pandas writes it, in C)."""
        if len(rows) == 0:
            return b"[]"
        return self.trades_frame(rows).to_json(orient="records", double_precision=15).encode()

    def trades_frame(self, rows: np.ndarray) -> pd.DataFrame:
        """The Data API ``Trade`` objects for tape rows as a frame, a column per field (the malformed share
        included): what a dump of the tape holds."""
        w, t = self.world, self.world.tape
        m = t.market[rows]
        oi = t.outcome_index[rows]
        wallets = w.wallets["address"].to_numpy()[t.wallet[rows]]
        frame = pd.DataFrame(
            {
                "proxyWallet": wallets,
                "side": np.where(t.side[rows] == 0, "BUY", "SELL"),
                "asset": np.where(oi == 0, w.markets.token_yes[m], w.markets.token_no[m]),
                "conditionId": w.markets.condition_id[m],
                "size": t.size[rows],
                "price": t.price[rows],
                "timestamp": t.ts[rows],
                "title": self._titles()[m],
                "slug": self._slugs()[m],
                "icon": "",
                "eventSlug": self._event_slugs()[m],
                "outcome": np.where(oi == 0, "Yes", "No"),
                "outcomeIndex": oi.astype(np.int64),
                "name": "",
                "pseudonym": "",
                "bio": "",
                "profileImage": "",
                "profileImageOptimized": "",
                "transactionHash": w.tx_hash[t.tx[rows]],
            }
        )
        dirty = self.dirty_rows(rows)
        if dirty.any():
            kind = rows[dirty] % 3
            sub = frame.loc[dirty]
            frame.loc[dirty, "size"] = np.where(kind == 0, 0.0, sub["size"])  # a dust fill
            frame.loc[dirty, "timestamp"] = np.where(
                kind == 1, sub["timestamp"] * 1000, sub["timestamp"]
            )  # millis
            upper = "0x" + sub["proxyWallet"].str[2:].str.upper()
            frame.loc[dirty, "proxyWallet"] = np.where(kind == 2, upper, sub["proxyWallet"])  # mixed case
        return frame

    def dirty_rows(self, rows: np.ndarray) -> np.ndarray:
        """The tape rows this server corrupts (a fixed set per seed: the same row is always served the same way):
        a third are dust fills (size 0), a third have millisecond timestamps, a third a mixed-case wallet."""
        if self.dirty_share <= 0:
            return np.zeros(len(rows), dtype=bool)
        mixed = (
            rows.astype(np.uint64) * np.uint64(2654435761) + np.uint64(self.world.config.seed)
        ) % np.uint64(2**32)
        return mixed < np.uint64(self.dirty_share * 2**32)

    def _paging(self, params: httpx.QueryParams, cap: int) -> tuple[int, int]:
        limit = int(params.get("limit", 100))
        offset = int(params.get("offset", 0))
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must be non-negative")
        return min(limit, cap), offset

    def _activity(self, params: httpx.QueryParams) -> httpx.Response:
        """``/activity`` of one user (required): its SPLIT, MERGE and REDEEM rows and its fills as TRADE rows,
        ``type`` a csv filter, newest first; pages of at most 500, offsets past the cap answer 400."""
        user = params.get("user")
        if not user:
            raise ValueError("user is required")
        limit, offset = self._paging(params, 500)
        if offset > self.offset_cap:
            return _error(
                400, f"offset {offset} exceeds the maximum of {self.offset_cap}; use start/end windows"
            )
        types = {t.strip().upper() for t in (params.get("type") or "").split(",") if t.strip()}
        wallet = self._wallet_index.get(user.lower(), -1)
        if types and "TRADE" not in types and wallet not in self._activity_wallets:
            return httpx.Response(200, content=b"[]", headers={"content-type": "application/json"})
        frame = self.activity_frame(wallet, types or None)
        start, end = int(params.get("start", 1)), int(params.get("end", self.world.now))
        frame = frame[(frame["timestamp"] >= start) & (frame["timestamp"] <= end)]
        return _records(frame.iloc[offset : offset + limit])

    def activity_frame(self, wallet: int, types: set[str] | None = None) -> pd.DataFrame:
        """A wallet's ``/activity`` rows, newest first (within a second: the row the API would list last first)."""
        w, act = self.world, self.world.activity
        parts = []
        if act is not None and (types is None or types - {"TRADE"}):
            idx = np.flatnonzero(act.wallet == wallet)
            kind = ACTIVITY_KINDS[act.kind[idx]]
            if types is not None:
                wanted = np.isin(kind, list(types))
                idx, kind = idx[wanted], kind[wanted]
            m = act.market[idx]
            parts.append(pd.DataFrame({
                "proxyWallet": w.wallets["address"].to_numpy()[act.wallet[idx]] if len(idx) else [],
                "timestamp": act.ts[idx], "conditionId": w.markets.condition_id[m], "type": kind,
                "size": act.size[idx], "usdcSize": act.usdc[idx], "transactionHash": w.tx_hash[act.tx[idx]],
                "price": 0.0, "asset": "", "side": "", "outcomeIndex": 999, "title": self._titles()[m],
                "slug": self._slugs()[m], "eventSlug": self._event_slugs()[m], "outcome": "", "_order": 0,
            }))  # fmt: skip
        if types is None or "TRADE" in types:
            rows = np.flatnonzero(w.tape.wallet == wallet) if wallet >= 0 else np.empty(0, np.int64)
            trades = self.trades_frame(rows)
            trades = trades.assign(type="TRADE", usdcSize=trades["size"] * trades["price"], _order=1)
            parts.append(
                trades[[c for c in parts[0].columns if c in trades.columns] if parts else trades.columns]
            )
        if not parts:
            return pd.DataFrame(columns=["timestamp"])
        frame = pd.concat(parts, ignore_index=True)
        order = np.lexsort((-frame["_order"].to_numpy(), -frame["timestamp"].to_numpy()))
        return frame.iloc[order].drop(columns="_order").reset_index(drop=True)

    def _positions(self, params: httpx.QueryParams, *, closed: bool) -> httpx.Response:
        """``/positions`` (shares still held; ``sizeThreshold`` defaults to 1) or ``/closed-positions`` (none
        held) of one user, as Polymarket's books keep them (``sim.polymarket_positions``)."""
        user = params.get("user")
        if not user:
            raise ValueError("user is required")
        limit, offset = self._paging(params, 50 if closed else 500)
        w = self.world
        wallet = self._wallet_index.get(user.lower())
        book = polymarket_positions(w, wallet) if wallet is not None else None
        if book is None or book.empty:
            return _json(200, [])
        mk = w.markets
        m, oi = book["market"].to_numpy(), book["outcome_index"].to_numpy()
        outcome = mk.outcome[m]
        resolved = (mk.status[m] == "resolved") & np.isfinite(outcome)
        last_yes = w.price_grid[mk.grid_start[m] + mk.grid_len[m] - 1]
        yes = np.where(resolved, np.nan_to_num(outcome), last_yes)
        cur = np.where(oi == 0, yes, 1.0 - yes)
        held = book["size"].to_numpy()
        keep = held <= 1e-9 if closed else (held > 1e-9) & (held >= float(params.get("sizeThreshold", 1)))
        out = pd.DataFrame({
            "proxyWallet": user.lower(),
            "asset": np.where(oi == 0, mk.token_yes[m], mk.token_no[m]),
            "conditionId": mk.condition_id[m],
            "avgPrice": book["avg_price"].to_numpy(),
            "totalBought": book["total_bought"].to_numpy(),
            "realizedPnl": book["realized_pnl"].to_numpy(),
            "curPrice": np.round(cur, 6),
            "title": self._titles()[m],
            "slug": self._slugs()[m],
            "eventSlug": self._event_slugs()[m],
            "outcome": np.where(oi == 0, "Yes", "No"),
            "outcomeIndex": oi,
            "size": held,
            "redeemable": resolved & (held > 1e-9),
        })[keep]  # fmt: skip
        if closed:
            out = out.drop(columns=["size", "redeemable"])
        return _records(
            out.sort_values("realizedPnl", ascending=False, kind="stable").iloc[offset : offset + limit]
        )

    def _leaderboard(self, params: httpx.QueryParams) -> httpx.Response:
        limit = int(params.get("limit", 25))
        offset = int(params.get("offset", 0))
        if not 1 <= limit <= 50:
            return _error(400, "limit must be between 1 and 50")
        if offset > 1000:
            return _error(400, "offset must be at most 1000")
        period = params.get("timePeriod", "DAY").upper()
        order_by = params.get("orderBy", "PNL").upper()
        category = params.get("category", "OVERALL").upper()
        board = self._ranked_board(period, category, order_by)
        page = board.iloc[offset : offset + limit].copy()
        page.insert(0, "rank", [str(offset + i + 1) for i in range(len(page))])
        page["userName"] = page["proxyWallet"]
        page["profileImage"] = ""
        page["xUsername"] = ""
        page["verifiedBadge"] = False
        return httpx.Response(200, content=page.to_json(orient="records", double_precision=10).encode(),
                              headers={"content-type": "application/json"})  # fmt: skip

    def _ranked_board(self, period: str, category: str, order_by: str) -> pd.DataFrame:
        """The board in rank order, computed once per world time and kept for the pages after the first: a client
        pages through it (twenty pages of two orderings in a run), and the real API serves a precomputed board, so
        the simulator's own groupby over every fill is not the client's cost."""
        key = (period, category, self.world.now)
        if key not in self._boards:
            if len(self._boards) >= 8:
                self._boards.pop(next(iter(self._boards)))
            self._boards[key] = {"frame": self.leaderboard_frame(period, category)}
        boards = self._boards[key]
        if order_by not in boards:
            boards[order_by] = boards["frame"].sort_values(
                ["vol" if order_by == "VOL" else "pnl", "proxyWallet"], ascending=[False, True]
            )
        return boards[order_by]

    def leaderboard_frame(self, period: str, category: str) -> pd.DataFrame:
        """PnL (resolved positions at their payout, open ones at the current price) and volume per wallet."""
        w, t = self.world, self.world.tape
        span = {"DAY": 86400, "WEEK": 7 * 86400, "MONTH": 30 * 86400, "ALL": None}.get(period)
        if period not in ("DAY", "WEEK", "MONTH", "ALL"):
            raise ValueError(f"invalid timePeriod {period!r}")
        rows = np.arange(len(t)) if span is None else np.flatnonzero(t.ts > w.now - span)
        if category != "OVERALL":
            rows = rows[w.markets.category[t.market[rows]] == category.title()]
        m = t.market[rows]
        yes_last = w.price_grid[w.markets.grid_start[m] + w.markets.grid_len[m] - 1]
        payout_yes = np.where(np.isnan(w.markets.outcome[m]), yes_last, w.markets.outcome[m])
        payout = np.where(t.outcome_index[rows] == 0, payout_yes, 1.0 - payout_yes)
        sign = np.where(t.side[rows] == 0, 1.0, -1.0)
        pnl = sign * t.size[rows] * (payout - t.price[rows])
        frame = pd.DataFrame({"w": t.wallet[rows], "pnl": pnl, "vol": t.size[rows] * t.price[rows]})
        agg = frame.groupby("w").sum()
        agg["proxyWallet"] = w.wallets["address"].to_numpy()[agg.index.to_numpy()]
        return agg.reset_index(drop=True)[["proxyWallet", "vol", "pnl"]]

    # ------------------------------------------------------------------------------------------ Gamma
    def _titles(self) -> np.ndarray:
        if not hasattr(self, "_title_cache"):
            mk = self.world.markets
            n = len(mk)
            self._title_cache = np.array(
                [f"Will {c} question #{i} resolve YES?" for i, c in zip(range(n), mk.category, strict=True)],
                dtype=object,
            )
            self._slug_cache = np.array([f"sim-market-{i}" for i in range(n)], dtype=object)
            self._event_slug_cache = np.array([f"sim-event-{e}" for e in mk.event], dtype=object)
        return self._title_cache

    def _slugs(self) -> np.ndarray:
        self._titles()
        return self._slug_cache

    def _event_slugs(self) -> np.ndarray:
        self._titles()
        return self._event_slug_cache

    def market_objects(self) -> list[dict]:
        """Gamma Market objects, in id order (thousands of markets: built once, per market)."""
        if self._market_json is not None:
            return self._market_json
        w = self.world
        mk = w.markets
        now = w.now
        volume = np.bincount(w.tape.market, weights=self._notional, minlength=len(mk))
        last_yes = w.price_grid[mk.grid_start + mk.grid_len - 1]
        titles, slugs, event_slugs = self._titles(), self._slugs(), self._event_slugs()
        event_size = np.bincount(mk.event)
        out = []
        for i in range(len(mk)):
            closed = bool(mk.close_ts[i] <= now)
            status = mk.status[i]
            if status == "resolved":
                o = mk.outcome[i]
                prices = ["0.5", "0.5"] if o == 0.5 else (["1", "0"] if o == 1.0 else ["0", "1"])
            else:
                y = round(float(last_yes[i]), 3)
                prices = [f"{y:g}", f"{round(1 - y, 3):g}"]
            label = mk.category[i]
            tag = {"id": str(100 + CATEGORY_IDS[label]), "label": label, "slug": label.lower()}
            market = {
                "id": str(500000 + i),
                "question": titles[i],
                "conditionId": mk.condition_id[i],
                "questionID": "0x" + f"{i:064x}",
                "slug": slugs[i],
                "description": "This market resolves YES if the event happens. It may resolve 50-50 if it is ambiguous.",
                "outcomes": '["Yes", "No"]',
                "outcomePrices": orjson.dumps(prices).decode(),
                "clobTokenIds": orjson.dumps([mk.token_yes[i], mk.token_no[i]]).decode(),
                "category": None,
                "active": True,
                "closed": closed,
                "archived": False,
                "acceptingOrders": not closed,
                "enableOrderBook": True,
                "startDate": _iso(mk.open_ts[i]),
                "createdAt": _iso(mk.open_ts[i]),
                "endDate": _iso(mk.close_ts[i]),
                "endDateIso": _iso(mk.close_ts[i])[:10],
                "volume": f"{volume[i]:.6f}",
                "volumeNum": float(round(volume[i], 6)),
                "liquidity": "0",
                "liquidityNum": 0.0,
                "negRisk": bool(event_size[mk.event[i]] > 2),
                "orderPriceMinTickSize": 0.001,
                "orderMinSize": 5,
                "umaResolutionStatuses": "[]",
                "tags": [tag],
                "events": [{"id": str(90000 + int(mk.event[i])), "slug": event_slugs[i],
                            "title": f"{label} event {int(mk.event[i])}", "tags": [tag]}],
            }  # fmt: skip
            if closed:
                market["closedTime"] = _pg(mk.close_ts[i])
                history = ["proposed"] + (["disputed", "proposed"] if status == "disputed" else [])
                market["umaResolutionStatus"] = status
                market["umaResolutionStatuses"] = orjson.dumps(history).decode()
                if status == "resolved":
                    market["umaEndDate"] = _iso(mk.resolved_ts[i])
            out.append(market)
        self._market_json = out
        return out

    def _filtered_markets(self, params: httpx.QueryParams) -> list[dict]:
        closed = _bool(params.get("closed"), False)  # the trap: no `closed` means closed=false
        objs = [m for m in self.market_objects() if m["closed"] == closed]
        ids = params.get_list("condition_ids")
        if ids:
            wanted = set(ids)
            objs = [m for m in objs if m["conditionId"] in wanted]
        if not _bool(params.get("include_tag"), False):
            objs = [{k: v for k, v in m.items() if k != "tags"} for m in objs]
        return objs

    def _markets_offset(self, params: httpx.QueryParams) -> httpx.Response:
        objs = self._filtered_markets(params)
        limit = min(int(params.get("limit", 20)), self.gamma_page_cap)
        offset = int(params.get("offset", 0))
        return _json(200, objs[offset : offset + limit])

    def _markets_keyset(self, params: httpx.QueryParams) -> httpx.Response:
        if "offset" in params:
            return _error(422, "offset is not accepted on keyset endpoints; use after_cursor")
        limit = int(params.get("limit", 20))
        if not 1 <= limit <= 500:
            return _error(422, "limit must be between 1 and 500")
        objs = self._filtered_markets(params)
        cursor = params.get("after_cursor")
        start = 0
        if cursor:
            try:
                start = int(cursor.removeprefix("c"), 16)
            except ValueError:
                return _error(422, f"invalid cursor {cursor!r}")
        page = objs[start : start + limit]
        body: dict = {"markets": page}
        if start + limit < len(objs):
            body["next_cursor"] = f"c{start + limit:x}"
        return _json(200, body)

    # ------------------------------------------------------------------------------------------ CLOB
    def _prices_history(self, params: httpx.QueryParams) -> httpx.Response:
        token = params.get("market")
        if not token:
            return _error(400, "market (token id) is required")
        i = self._token_index.get(token)
        if i is None:
            return _json(200, {"history": []})
        mk = self.world.markets
        n = len(mk)
        m, is_no = i % n, i >= n
        fidelity = max(1, int(params.get("fidelity", 60))) * 60
        last = min(int(mk.close_ts[m]), self.world.now)
        lo = max(int(params.get("startTs", mk.open_ts[m])), int(mk.open_ts[m]))
        hi = min(int(params.get("endTs", last)), last)
        if hi < lo:
            return _json(200, {"history": []})
        first = -(-lo // fidelity) * fidelity
        ts = np.arange(first, hi + 1, fidelity, dtype=np.int64)
        yes = self.world.yes_price_at(np.full(len(ts), m), ts)
        price = np.round(1.0 - yes if is_no else yes, 4)
        frame = pd.DataFrame({"t": ts, "p": price})
        body = b'{"history":' + frame.to_json(orient="records", double_precision=6).encode() + b"}"
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})


# ---------------------------------------------------------------------------------------------- faults


@dataclass
class FaultPlan:
    """Probabilities per request (each draw independent, seeded), plus scripted faults on given request numbers."""

    p_429: float = 0.0
    retry_after_share: float = 0.5
    retry_after_s: float = 1.0
    p_5xx: float = 0.0
    p_timeout: float = 0.0
    p_reset: float = 0.0
    p_truncated: float = 0.0
    # request number (1-based) -> "429" | "500" | "html403" | "truncated" | ...
    scripted: dict[int, str] | None = None
    seed: int = 0


class FaultInjector(httpx.BaseTransport):
    """Wraps a transport and injects faults before (or instead of) passing the request on."""

    def __init__(
        self, inner: httpx.BaseTransport, plan: FaultPlan, on_fault: Callable[[str], None] | None = None
    ):
        self.inner = inner
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.count = 0
        self.injected: dict[str, int] = {}
        self.on_fault = on_fault

    def _note(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1
        if self.on_fault:
            self.on_fault(kind)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        p = self.plan
        kind = (p.scripted or {}).get(self.count)
        if kind is None:
            r = self.rng.random()
            for name, prob in (("429", p.p_429), ("503", p.p_5xx), ("timeout", p.p_timeout), ("reset", p.p_reset),
                               ("truncated", p.p_truncated)):  # fmt: skip
                if r < prob:
                    kind = name
                    break
                r -= prob
        if kind is None:
            return self.inner.handle_request(request)
        if kind == "429":
            headers = {"content-type": "application/json"}
            if self.rng.random() < p.retry_after_share:
                headers["Retry-After"] = f"{p.retry_after_s:g}"
                kind = "429_retry_after"
            self._note(kind)
            return httpx.Response(429, content=b'{"error": "Too Many Requests"}', headers=headers)
        self._note(kind)
        if kind in ("500", "502", "503", "504"):
            return httpx.Response(int(kind), content=b'{"error": "upstream"}')
        if kind == "timeout":
            raise httpx.ReadTimeout("injected timeout", request=request)
        if kind == "reset":
            raise httpx.ReadError("injected connection reset by peer", request=request)
        if kind == "html403":
            html = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Cloudflare</body></html>"
            return httpx.Response(403, content=html, headers={"content-type": "text/html"})
        if kind == "html200":
            return httpx.Response(200, content=b"<html><body>Attention Required! | Cloudflare</body></html>",
                                  headers={"content-type": "text/html"})  # fmt: skip
        if kind == "truncated":
            good = self.inner.handle_request(request)
            body = good.read()
            return httpx.Response(
                good.status_code, content=body[: max(1, len(body) // 2)], headers=good.headers
            )
        raise ValueError(f"unknown fault kind {kind!r}")
