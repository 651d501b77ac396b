"""The live decision path, pure: the batch's snapshot and the fills the feed shows, turned into exactly the candidate
facts ``analytics.signals`` computes, decided by the one engine (``assets/paper/model.py:Book``).

What the live loop must rebuild from a stream, and how (each definition is the batch's, docs/metrics.md#signals):

- **orders**: the legs of one (wallet, transaction, token, side), decided once when market time passes the order's
  time plus the copy latency (by then every print the copy price needs has arrived);
- **flow**: exact per-(token, UTC hour) notional sums (``assets/warehouse.py:exact_units``), from the snapshot for
  the hours before it and from every fill of the feed after;
- **copy price**: the highest price of the token's last traded second at or before order + latency;
- **whale facts**: the tracked wallet's latest score row, quarantine state and volatility, from the snapshot;
- **whale positions**: exact share sums per (wallet, token), for the share of its position a whale's sell is;
- **marks**: the snapshot's daily marks, the CLOB's price history for the tokens the book may hold (fetched by the
  loop), else the day's last print of the feed.

No I/O here: the loop (``live/loop.py``) fetches what ``history_needed`` asks for and passes it in.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from assets.paper import model as paper
from assets.signal import model as signal
from assets.signal.assets import FLOW_HOURS
from assets.strategy import StrategyConfig
from assets.warehouse import exact_units, units_to_float

from .model import DueQueue, decision_key

DAY = 86_400


@dataclass
class Snapshot:
    """What the batch hands the live loop (``live/snapshot.py`` writes and reads it)."""

    meta: dict  # generation, data_end_ts, recent_start_ts, as_of, fee_rate, fidelity_minutes, strategy (dict)
    # wallet, tracked, score_as_of, wqs, rolling_sharpe_30/90, current_drawdown, whale_edge, quarantined,
    # flags (at the score's date), whale_volatility
    whales: pd.DataFrame
    markets: (
        pd.DataFrame
    )  # token_id, condition_id, event_id, category, end_epoch, end_ts, resolved_ts, payout
    token_hours: pd.DataFrame  # token_id, hour, units (exact notional, integer 1e-12)
    marks: pd.DataFrame  # token_id, day, price
    positions: pd.DataFrame  # wallet, token_id, units (exact shares before recent_start_ts)
    prints: pd.DataFrame  # token_id, ts, price (from recent_start_ts)
    recent_fills: pd.DataFrame  # raw.trades rows with fill_key, of tracked wallets, from recent_start_ts

    @property
    def data_end_ts(self) -> int:
        return int(self.meta["data_end_ts"])

    @property
    def start_day(self) -> int:
        """The first day the batch's data does not cover: the live loop's first day."""
        return self.data_end_ts // DAY

    def strategy(self) -> StrategyConfig:
        return StrategyConfig(**self.meta["strategy"])

    def tracked(self) -> list[str]:
        return sorted(self.whales.loc[self.whales["tracked"], "wallet"])


@dataclass
class Order:
    key: str  # wallet|txHash|token|side
    fill_key: int  # the first leg's (the smallest key, as the batch's min(fill_key))
    wallet: str
    token_id: str
    condition_id: str
    side: str
    ts: int
    legs: list[dict] = field(default_factory=list)
    received_at: float = math.inf  # when its first leg arrived (market time)
    received_wall: float = math.inf  # when its first leg arrived (this process's monotonic clock)
    sources: set[str] = field(default_factory=set)
    decided: bool = False
    shares_before: float = math.nan  # the whale's position before its first leg (SELL)

    @property
    def whale_price(self) -> float:
        prices = {leg["price"] for leg in self.legs}
        if len(prices) == 1:
            return next(iter(prices))
        return self.notional / units_to_float(sum(exact_units(leg["size"]) for leg in self.legs))

    @property
    def notional(self) -> float:
        if len(self.legs) == 1:
            return self.legs[0]["size"] * self.legs[0]["price"]
        return units_to_float(sum(exact_units(leg["size"] * leg["price"]) for leg in self.legs))

    @property
    def size(self) -> float:
        if len(self.legs) == 1:
            return self.legs[0]["size"]
        return units_to_float(sum(exact_units(leg["size"]) for leg in self.legs))


class Decision(dict):
    """One live decision (a ``live.decisions`` row)."""


class Decider:
    """The live decision path for one book. Feed it every new fill (``observe``), release what is due
    (``release``), ask what history a candidate needs (``history_needed``), then ``decide`` each released order;
    ``end_day`` closes a day at its marks."""

    def __init__(self, snap: Snapshot, strategy: StrategyConfig | None = None, start_day: int | None = None,
                 book_cls: type[paper.Book] = paper.Book):  # fmt: skip
        self.snap = snap
        self.strategy = strategy or snap.strategy()
        self.fee_rate = float(snap.meta["fee_rate"])
        self.latency = int(self.strategy.copy_latency_seconds)
        self.signal_params = self.strategy.signal_params()
        self.order_notional = self.strategy.max_position_nav * self.strategy.starting_nav
        params = self.strategy.paper_params(self.fee_rate)
        self.start_day = snap.start_day if start_day is None else start_day
        self.origin = self.start_day - params.correlation_days - 1
        self.book = book_cls(params, mark_origin=self.origin)
        self.day = self.start_day  # the first day not yet closed
        # the batch's state
        self.whales = {r["wallet"]: r for r in snap.whales.to_dict("records")}
        self.watch: set[str] = set()  # tracked beside the universe (a watchlist)
        self.tracked: set[str] = set(snap.tracked())
        self.markets = {r["token_id"]: r for r in snap.markets.to_dict("records")}
        for token, r in self.markets.items():
            self.book.on_market(token, _market_info(r))
        self.hours: dict[str, dict[int, int]] = defaultdict(dict)
        for t, h, u in snap.token_hours[["token_id", "hour", "units"]].itertuples(index=False):
            self.hours[t][int(h)] = int(u)
        self.snapshot_marks: dict[str, dict[int, float]] = defaultdict(dict)
        for t, d, p in snap.marks[["token_id", "day", "price"]].itertuples(index=False):
            self.snapshot_marks[t][int(d)] = float(p)
        self.positions: dict[tuple[str, str], int] = {
            (w, t): int(u)
            for w, t, u in snap.positions[["wallet", "token_id", "units"]].itertuples(index=False)
        }
        self.prints: dict[str, dict[int, float]] = defaultdict(dict)  # token -> second -> highest price
        for t, ts, p in snap.prints[["token_id", "ts", "price"]].itertuples(index=False):
            self._print(t, int(ts), float(p))
        self.day_prints: dict[tuple[str, int], tuple[int, float]] = {}  # (token, day) -> (last second, price)
        self.history: dict[str, dict[int, float]] = defaultdict(dict)  # token -> day -> the day's last point
        self.history_through: dict[str, int] = {}  # token -> last day fetched
        self.orders: dict[str, Order] = {}
        self.queue = DueQueue()
        self.late_legs = 0
        self.decided_keys: set[str] = set()  # every order decided in this process (late legs never re-decide)
        self.moved: set[tuple[str, str]] = set()  # positions changed since the store last took them
        self._seed_marks()

    # -------------------------------------------------------------------------------------------- inputs
    def _seed_marks(self) -> None:
        rows = [
            (t, d, p) for t, days in self.snapshot_marks.items() for d, p in days.items() if d >= self.origin
        ]
        if rows:
            tokens, days, prices = zip(*rows, strict=True)
            self.book.on_marks(np.array(tokens, dtype=object), np.array(days), np.array(prices))

    def _print(self, token: str, ts: int, price: float) -> None:
        seconds = self.prints[token]
        if price > seconds.get(ts, -math.inf):
            seconds[ts] = price

    def track(self, wallets) -> None:
        """Track ``wallets`` beside the batch's universe (a watchlist): they stay tracked across snapshots."""
        self.watch |= set(wallets)
        self.tracked |= set(wallets)

    def snap_update(self, snap: Snapshot) -> set[str]:
        """A new batch generation: its universe, scores and markets from now on; its flow and marks for the hours
        and days it covers (the batch saw every fill); the positions of the wallets it adds to the universe
        (returned). The book goes on."""
        old_tracked = set(self.tracked)
        self.snap = snap
        self.whales = {r["wallet"]: r for r in snap.whales.to_dict("records")}
        self.tracked = set(snap.tracked()) | self.watch
        for r in snap.markets.to_dict("records"):
            if not _same(self.markets.get(r["token_id"]), r):
                self.markets[r["token_id"]] = r
                self.book.on_market(r["token_id"], _market_info(r))
        end_hour = snap.data_end_ts // 3600
        for t, h, u in snap.token_hours[["token_id", "hour", "units"]].itertuples(index=False):
            if int(h) < end_hour:
                self.hours[t][int(h)] = int(u)
        self.snapshot_marks = defaultdict(dict)
        for t, d, p in snap.marks[["token_id", "day", "price"]].itertuples(index=False):
            self.snapshot_marks[t][int(d)] = float(p)
        for w, t, u in snap.positions[["wallet", "token_id", "units"]].itertuples(index=False):
            if w not in old_tracked:
                self.positions[(w, t)] = int(u)
                self.moved.add((w, t))
        return self.tracked - old_tracked

    def sync_book_markets(self) -> int:
        """Tell the book every market it knows differently (a restart replays the book of an older snapshot);
        returns how many."""
        n = 0
        for token, r in self.markets.items():
            info = _market_info(r)
            if not _same(self.book.markets.get(token), info):
                self.book.on_market(token, info)
                n += 1
        return n

    def recent_fills_of(self, wallets: set[str]) -> list[dict]:
        """The snapshot's recent fills of ``wallets`` (their shares since its positions were taken)."""
        rows = self.snap.recent_fills
        if rows.empty or not wallets:
            return []
        return rows[rows["proxy_wallet"].isin(wallets)].to_dict("records")

    def _move(self, row: dict) -> int:
        """The whale's position moves by a leg (exact units); returns the position after it."""
        pos = (row["proxy_wallet"], row["asset"])
        delta = exact_units(row["size"])
        after = self.positions[pos] = self.positions.get(pos, 0) + (delta if row["side"] == "BUY" else -delta)
        self.moved.add(pos)
        return after

    def take_moved(self) -> dict[tuple[str, str], int]:
        """The positions changed since the last call (the loop commits them with the tick)."""
        out = {pos: self.positions.get(pos, 0) for pos in self.moved}
        self.moved.clear()
        return out

    def observe(self, row: dict, *, received_at: float, received_wall: float = math.inf, tracked: bool,
                applied: bool = False) -> Order | None:  # fmt: skip
        """A new fill (every wallet's; deduplicated by the caller). ``applied``: the snapshot already holds it in
        its flow, prints and positions (the recent fills it hands over). Returns the order it joined when the
        wallet is tracked."""
        token, ts, price = row["asset"], int(row["ts"]), float(row["price"])
        if not applied:
            h = ts // 3600
            self.hours[token][h] = self.hours[token].get(h, 0) + exact_units(row["size"] * price)
            self._print(token, ts, price)
            d = ts // DAY
            last = self.day_prints.get((token, d))
            if last is None or (ts, price) > last:
                self.day_prints[(token, d)] = (ts, price)
        if not tracked:
            return None
        key = decision_key(
            row["proxy_wallet"], row.get("transaction_hash"), token, row["side"], row["fill_key"]
        )
        order = self.orders.get(key)
        if order is None and key in self.decided_keys:
            self.late_legs += 1  # its order was decided and forgotten: stored, never decided twice
            self._move(row)
            return None
        if order is None:
            order = self.orders[key] = Order(key, row["fill_key"], row["proxy_wallet"], token, row["condition_id"],
                                             row["side"], ts)  # fmt: skip
            self.queue.push(ts + self.latency, 0 if row["side"] == "BUY" else 1, row["fill_key"], order)
        elif order.decided:
            self.late_legs += 1  # a leg after its order was decided: stored, never decided twice
            self._move(row)
        order.legs.append(row)
        order.fill_key = min(order.fill_key, row["fill_key"])
        order.ts = min(order.ts, ts)
        order.sources.add(row.get("source", ""))
        if received_at < order.received_at:
            order.received_at, order.received_wall = received_at, received_wall
        return order

    def release(self, settled_through: float) -> list[Order]:
        """Orders whose time plus the copy latency is settled, in the batch's order (time, BUY before SELL, key);
        the whales' positions move by their legs in position order (time, fill key). Orders due before the first
        live day were decided by the batch: they move the positions only."""
        ready = [o for o in self.queue.pop_through(settled_through) if not o.decided]
        ready.sort(key=lambda o: (o.ts + self.latency, 0 if o.side == "BUY" else 1, o.fill_key))
        legs = sorted(
            ((leg["ts"], leg["fill_key"], leg, o) for o in ready for leg in o.legs), key=lambda x: x[:2]
        )
        firsts = {id(o): min((leg["ts"], leg["fill_key"]) for leg in o.legs) for o in ready}
        for ts, fk, leg, o in legs:
            after = self._move(leg)
            # as int_position_fills: shares_after (exact) less the leg, in DOUBLE
            if (ts, fk) == firsts[id(o)]:
                signed = leg["size"] if leg["side"] == "BUY" else -leg["size"]
                o.shares_before = units_to_float(after) - signed
        first_live = self.start_day * DAY
        for o in ready:
            if o.ts + self.latency < first_live:
                o.decided = True
                self.decided_keys.add(o.key)
        return [o for o in ready if o.ts + self.latency >= first_live]

    # -------------------------------------------------------------------------------------------- facts
    def copy_price(self, token: str, at: int) -> float:
        seconds = self.prints.get(token, {})
        best = max((s for s in seconds if s <= at), default=None)
        return seconds[best] if best is not None else math.nan

    def daily_notional(self, token: str, ts: int) -> float:
        h = ts // 3600
        hours = self.hours.get(token, {})
        return units_to_float(sum(u for hh, u in hours.items() if h - FLOW_HOURS <= hh < h)) / 7.0

    def candidate(self, order: Order) -> pd.DataFrame:
        """The order's facts as one screened ``analytics.signals`` row."""
        return self.candidates([order])

    def candidates(self, orders: list[Order]) -> pd.DataFrame:
        """The orders' facts as screened ``analytics.signals`` rows (one ``screen`` call for a tick's orders: the
        stages are row by row, so this is the batch's function on the batch's facts)."""
        frame = pd.DataFrame([self._facts(o) for o in orders])
        for c in ("wqs", "rolling_sharpe_30", "rolling_sharpe_90", "current_drawdown", "whale_edge",
                  "whale_volatility", "days_to_resolution", "copy_price", "daily_notional"):  # fmt: skip
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
        return signal.screen(frame, self.signal_params, self.order_notional)

    def _facts(self, order: Order) -> dict:
        w = self.whales.get(order.wallet, {})
        m = self.markets.get(order.token_id, {})
        end = m.get("end_epoch", math.nan)
        row = {
            "fill_key": order.fill_key, "wallet": order.wallet, "condition_id": order.condition_id,
            "token_id": order.token_id, "event_id": m.get("event_id"), "category": m.get("category"),
            "ts": order.ts, "legs": len(order.legs), "whale_price": order.whale_price,
            "whale_notional": order.notional, "copy_price": self.copy_price(order.token_id, order.ts + self.latency),
            "daily_notional": self.daily_notional(order.token_id, order.ts),
            "days_to_resolution": (end - order.ts) / 86400.0 if end is not None else math.nan,
            "score_as_of": w.get("score_as_of"), "wqs": w.get("wqs", math.nan),
            "rolling_sharpe_30": w.get("rolling_sharpe_30", math.nan),
            "rolling_sharpe_90": w.get("rolling_sharpe_90", math.nan),
            "current_drawdown": w.get("current_drawdown", math.nan), "whale_edge": w.get("whale_edge", math.nan),
            "quarantined": bool(w.get("quarantined", False)), "flags": w.get("flags"),
            "whale_volatility": w.get("whale_volatility", math.nan),
        }  # fmt: skip
        return row

    def history_needed(self, token: str, day: int) -> tuple[int, int] | None:
        """(first day, last day) of price history the book needs for ``token`` before deciding on ``day``."""
        through = self.history_through.get(token, self.origin - 1)
        return (through + 1, day - 1) if through < day - 1 else None

    def add_history(self, token: str, points, through_day: int) -> None:
        """CLOB price-history points ``(t, p)`` for ``token``: the day's last point is its mark."""
        hist = self.history[token]
        last_ts: dict[int, int] = {}
        for t, p in points:
            d = int(t) // DAY
            if d not in last_ts or int(t) > last_ts[d]:
                last_ts[d] = int(t)
                hist[d] = float(p)
        self.history_through[token] = max(self.history_through.get(token, self.origin - 1), through_day)

    def mark(self, token: str, day: int) -> float | None:
        h = self.history.get(token, {}).get(day)
        if h is not None:
            return h
        if day < self.snap.start_day:
            return self.snapshot_marks.get(token, {}).get(day)
        p = self.day_prints.get((token, day))
        return p[1] if p else None

    def refresh_marks(self, token: str, through_day: int) -> None:
        days = [d for d in range(self.origin, through_day + 1) if self.mark(token, d) is not None]
        if days:
            self.book.on_marks(np.array([token] * len(days), dtype=object), np.array(days),
                               np.array([self.mark(token, d) for d in days]))  # fmt: skip

    # -------------------------------------------------------------------------------------------- decisions
    def decide(self, order: Order, screened: pd.DataFrame | None = None) -> Decision:
        """Decide a released order: a BUY through stages 1-3, sizing and the limits; a SELL mirrored when the book
        holds what the whale sold."""
        order.decided = True
        self.decided_keys.add(order.key)
        d = (order.ts + self.latency) // DAY
        base = Decision(decision_key=order.key, fill_key=order.fill_key, wallet=order.wallet, token_id=order.token_id,
                        side=order.side, ts=order.ts, day=d, legs=len(order.legs), size=order.size,
                        whale_price=order.whale_price, received_at=order.received_at)  # fmt: skip
        if order.side == "SELL":
            fraction = order.size / order.shares_before if order.shares_before > 1e-9 else math.nan
            fill = None
            if fraction == fraction:
                fill = self.book.on_whale_sell(order.wallet, order.token_id, float(order.ts + self.latency),
                                               order.whale_price, fraction, d)  # fmt: skip
            held = fill is not None
            return Decision(base, stage_reached="exit" if held else "not_held", copied=held,
                            reason=None if held else "no copy of this whale's position on the token",
                            fraction=fraction, fill=fill)  # fmt: skip
        c = screened if screened is not None else self.candidate(order)
        r = c.iloc[0]
        facts = {k: r[k] for k in ("copy_price", "daily_notional", "days_to_resolution", "wqs", "edge_at_copy",
                                   "slippage", "whale_volatility")}  # fmt: skip
        if r["stage_reached"] != "portfolio":
            return Decision(
                {**base, **facts}, stage_reached=r["stage_reached"], copied=False, reason=r["reason"]
            )
        self.refresh_marks(order.token_id, d - 1)
        e = next(c.assign(key=order.fill_key, ts=float(order.ts + self.latency)).itertuples(index=False))
        row = self.book.on_fill(e, d)
        fill = self.book.fills[-1] if row["copied"] else None
        return Decision({**base, **facts}, stage_reached="copied" if row["copied"] else "portfolio", copied=row["copied"],
                        reason=row["reason"], order=row, fill=fill)  # fmt: skip

    def stale(self, order: Order, age_s: float, max_age_s: float) -> Decision:
        """A BUY the loop learnt of too late to copy (a replay after downtime must not buy history)."""
        order.decided = True
        self.decided_keys.add(order.key)
        return Decision(decision_key=order.key, fill_key=order.fill_key, wallet=order.wallet, token_id=order.token_id,
                        side=order.side, ts=order.ts, day=(order.ts + self.latency) // DAY, legs=len(order.legs),
                        size=order.size, whale_price=order.whale_price, received_at=order.received_at,
                        stage_reached="skipped_stale", copied=False,
                        reason=f"fill {age_s:.0f} s old when seen (more than {max_age_s:g} s)")  # fmt: skip

    # -------------------------------------------------------------------------------------------- days
    def held_tokens(self) -> list[str]:
        return sorted(self.book.open)

    def end_day(self, d: int) -> dict:
        """Close day ``d``: the held tokens' marks for the day, then the book's day end."""
        for token in self.held_tokens():
            m = self.mark(token, d)
            if m is not None:
                self.book.on_mark(token, d, m)
        row = self.book.on_day_end(d)
        self.day = d + 1
        self.forget(d)
        return row

    def forget(self, d: int) -> None:
        """Drop state older than any later decision can read: flow hours beyond the window, prints older than the
        latency needs, the day's prints once the day is closed (kept where the book may still read them)."""
        keep_hour = (d + 1) * 24 - FLOW_HOURS - 24
        for hours in self.hours.values():
            for h in [h for h in hours if h < keep_hour]:
                del hours[h]
        keep_ts = (d + 1) * DAY - self.latency - 3600
        for seconds in self.prints.values():
            if len(seconds) > 1:
                latest = max(seconds)
                for s in [s for s in seconds if s < keep_ts and s != latest]:
                    del seconds[s]
        done = [k for k, o in self.orders.items() if o.decided and o.ts < keep_ts]
        for k in done:
            del self.orders[k]
        # older prints are in the book's marks already, or no correlation window reaches them
        keep_day = d - 45
        for k in [k for k in self.day_prints if k[1] < keep_day]:
            del self.day_prints[k]

    def on_market(self, token: str, row: dict) -> None:
        self.markets[token] = {**self.markets.get(token, {}), **row}
        self.book.on_market(token, _market_info(self.markets[token]))


def _same(a, b) -> bool:
    """Equal, with NaN equal to NaN (a market's missing payout or resolution)."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return (
            isinstance(b, tuple) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    try:
        return bool(a == b)
    except TypeError:  # pd.NA against a value
        return False


def _market_info(r: dict) -> paper.MarketInfo:
    def f(x):
        try:
            v = float(x)
        except (TypeError, ValueError):
            return math.nan
        return v

    end, res, pay = f(r.get("end_ts")), f(r.get("resolved_ts")), f(r.get("payout"))
    return paper.MarketInfo(
        end if math.isfinite(end) else math.inf, res if math.isfinite(res) else math.inf, pay
    )
