"""The paper-trading portfolio: the decision engine (:class:`Book`) and the day loop that drives it over a history
(:func:`run_paper`). Pure (no Dagster, no DuckDB).

A portfolio is path-dependent, so the book is advanced event by event: a whale BUY that passed stages 1 and 2
goes through stage 3, sizing and the limits (``on_fill``); a copied whale's sell is mirrored (``on_whale_sell``);
marks arrive per token and day (``on_mark``); the day's end settles resolutions, runs trailing stops and time
exits at the day's mark, then books NAV, drawdown and the portfolio's Cornish-Fisher VaR, which blocks entries
the next day when it is beyond the limit (``on_day_end``). Every decision at time t reads only what the book was
given up to t: a stop is advanced one day at a time (:class:`assets.risk.model.TrailingStop`). The daily paper
run, the walk-forward backtest and the live loop (``live/``) all drive this one book.

Conventions: prices are per share (0-1); cash and NAV in USDC; fees are ``fee_rate`` of notional on every fill
(none at settlement); a buy pays ``price * (1 + slippage)`` and a sell receives ``price * (1 - slippage)``, with
the square-root impact model of :mod:`assets.signal.model`.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from assets.risk import model as risk
from assets.signal import model as signal
from assets.size import model as size


@dataclass(frozen=True)
class PaperParams:
    starting_nav: float = 10_000.0
    fee_rate: float = 0.02
    sizing: size.SizingParams = field(default_factory=size.SizingParams)
    signal: signal.SignalParams = field(default_factory=signal.SignalParams)
    correlation_days: int = 30
    min_correlation_days: int = 10
    var_confidence: float = 0.95
    var_limit_nav: float = 0.08
    var_window_days: int = 60
    var_min_days: int = 20
    max_price: float = 0.99
    time_exit_hours: float = risk.TIME_EXIT_HOURS
    #: None: adaptive Kelly sizing; a number: every entry buys this many dollars (the fixed-size baselines)
    fixed_notional: float | None = None
    #: stage 3 (correlation, exposure and category limits); off for the naive baseline, which only needs the cash
    portfolio_filter: bool = True
    #: trailing stops, time exits and the VaR block on new entries
    risk_management: bool = True


DECISION_COLUMNS = ["key", "day", "nav", "correlation", "exposure_after", "drawdown", "fraction", "shares",
                    "notional", "copied", "reason"]  # fmt: skip
FILL_COLUMNS = ["key", "kind", "day", "ts", "token_id", "shares", "price", "fee", "cash_after"]
POSITION_COLUMNS = ["key", "wallet", "token_id", "category", "entry_day", "entry_price", "shares_open", "cost",
                    "proceeds", "fees", "closed_day", "close_reason", "realised_pnl", "mark", "stop_level",
                    "time_exit_day"]  # fmt: skip
NAV_COLUMNS = ["day", "cash", "positions_value", "nav", "exposure_share", "max_category_share", "open_positions",
               "drawdown", "daily_return", "var", "entries_blocked"]  # fmt: skip
ALERT_COLUMNS = ["day", "kind", "message"]
HOLDING_COLUMNS = ["day", "key", "token_id", "value"]


class PaperResult(NamedTuple):
    decisions: pd.DataFrame  # one row per candidate: stage 3 outcome and the order
    fills: pd.DataFrame  # every paper fill: entries, mirrored sells, stops, time exits, settlements
    positions: pd.DataFrame  # one row per position opened
    nav: pd.DataFrame  # one row per day
    alerts: pd.DataFrame  # VaR breaches and exits
    holdings: pd.DataFrame  # each open position's value at each day's end (the NAV is cash plus their sum)


@dataclass
class _Position:
    key: object
    wallet: str
    token: str
    row: int  # the token's row of the mark book
    condition: str
    event: str
    category: str
    shares: float
    cost: float
    entry_day: int
    entry_price: float
    daily_notional: float
    stop: risk.TrailingStop
    stopped: bool = False  # the trailing stop has been hit (it exits then when the risk rules are on)
    closed_day: int = -1
    close_reason: str | None = None
    proceeds: float = 0.0
    fees: float = 0.0


class MarkBook:
    """Daily marks per token (rows) and day (columns from ``origin``), carried forward from each token's last mark
    (NaN before its first). Marks may arrive in any order and for any past day: a token's carried row is rebuilt
    when one of its marks changes. Columns grow as days advance."""

    def __init__(self, origin: int, days: int = 64):
        self.origin = origin
        self.rows: dict[str, int] = {}
        self.raw = np.full((16, max(days, 1)), np.nan)
        self.carried = self.raw.copy()

    def row(self, token: str) -> int:
        r = self.rows.get(token)
        if r is None:
            r = self.rows[token] = len(self.rows)
            if r >= len(self.raw):
                grow = np.full((len(self.raw), self.raw.shape[1]), np.nan)
                self.raw, self.carried = np.vstack([self.raw, grow]), np.vstack([self.carried, grow])
        return r

    def _cover(self, col: int) -> None:
        if col >= self.raw.shape[1]:
            width = max(col + 1, 2 * self.raw.shape[1])
            pad = np.full((len(self.raw), width - self.raw.shape[1]), np.nan)
            self.raw = np.hstack([self.raw, pad])
            self.carried = risk.carry_forward(np.hstack([self.carried, pad]))

    def set_many(self, tokens: np.ndarray, days: np.ndarray, prices: np.ndarray) -> None:
        """Marks in bulk (the batch's whole history at once); days before ``origin`` are dropped."""
        cols = np.asarray(days, dtype=np.int64) - self.origin
        keep = cols >= 0
        if not keep.any():
            return
        rows = np.array([self.row(str(t)) for t in pd.unique(np.asarray(tokens, dtype=object)[keep])])
        self._cover(int(cols[keep].max()))
        index = pd.Index(list(self.rows))
        r = index.get_indexer(np.asarray(tokens, dtype=object)[keep].astype(str))
        self.raw[r, cols[keep]] = np.asarray(prices, dtype=float)[keep]
        self.carried[rows] = risk.carry_forward(self.raw[rows])

    def set(self, token: str, day: int, price: float) -> None:
        col = day - self.origin
        if col < 0:
            return
        r = self.row(token)
        self._cover(col)
        self.raw[r, col] = price
        self.carried[r] = risk.carry_forward(self.raw[r : r + 1])[0]

    def at(self, r: int, day: int) -> float:
        col = day - self.origin
        return float(self.carried[r, col]) if 0 <= col < self.carried.shape[1] else np.nan

    def changes(self, rows: list[int], lo_day: int, hi_day: int) -> np.ndarray:
        """Day-on-day changes of the carried marks over ``[lo_day, hi_day)`` (NaN on the book's first column)."""
        lo, hi = lo_day - self.origin, hi_day - self.origin
        self._cover(max(hi, 0))
        block = self.carried[rows, max(lo - 1, 0) : hi]
        d = np.diff(block, axis=1)
        return np.hstack([np.full((len(rows), 1), np.nan), d]) if lo <= 0 else d


class MarketInfo(NamedTuple):
    end_ts: float  # scheduled end (inf when unknown)
    resolved_ts: float  # resolution time (inf while unresolved)
    payout: float  # per share of this outcome (NaN while unresolved)


UNKNOWN_MARKET = MarketInfo(np.inf, np.inf, np.nan)


def _correlation(changes: np.ndarray, p: PaperParams) -> float:
    """Largest |correlation| of daily mark changes between row 0 of ``changes`` and each other row, over the
    days both have; 0 where fewer than ``min_correlation_days`` days overlap (unknown is not linked)."""
    if len(changes) < 2:
        return 0.0
    y = changes[1:]  # the book's rows, each paired with ``x`` over the days both have
    x = np.broadcast_to(changes[0], y.shape)
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = np.where(ok, x - (np.where(ok, x, 0.0).sum(axis=1) / n)[:, None], 0.0)
        dy = np.where(ok, y - (np.where(ok, y, 0.0).sum(axis=1) / n)[:, None], 0.0)
        sxx, syy, sxy = (dx * dx).sum(axis=1), (dy * dy).sum(axis=1), (dx * dy).sum(axis=1)
        r = np.abs(sxy / np.sqrt(sxx * syy))
    valid = (n >= p.min_correlation_days) & (sxx > 0) & (syy > 0)
    return float(r[valid].max()) if valid.any() else 0.0


class Book:
    """The decision engine: one paper book advanced event by event. The daily paper run, the walk-forward backtest
    and the live loop all drive it, so the decision on a whale fill is made by this code wherever it is made.

    - ``on_market(token, info)``: a token's scheduled end, resolution and payout (as known now);
    - ``on_mark(token, day, price)`` / ``on_marks(...)``: a day's closing mark;
    - ``on_fill(candidate, day)``: a whale BUY that passed stages 1 and 2 -> stage 3, sizing and the risk limits:
      the decision row (copied, or why not) and, when copied, the entry fill;
    - ``on_whale_sell(wallet, token, ts, price, fraction, day)``: the copied whale sold: sell the same share;
    - ``on_day_end(day)``: resolutions settle, then trailing stops and time exits at the day's mark; NAV,
      drawdown and the Cornish-Fisher VaR, which blocks entries the next day when it is beyond the limit.

    A decision at time t reads only what the book was given up to t: marks of earlier days for the correlation,
    the day's mark at its end. Each method appends to the book's records (``decisions``, ``fills``, ...).
    """

    def __init__(self, params: PaperParams = PaperParams(), mark_origin: int = 0):
        self.p = params
        self.marks = MarkBook(mark_origin)
        self.markets: dict[str, MarketInfo] = {}
        self.cash = self.peak = params.starting_nav
        self.open: dict[str, _Position] = {}
        self.closed: list[_Position] = []
        self.decisions: list[dict] = []
        self.fills: list[dict] = []
        self.nav_rows: list[dict] = []
        self.alerts: list[dict] = []
        self.holdings: list[dict] = []
        self.daily_returns: list[float] = []
        self.var_blocked = False

    # -------------------------------------------------------------------------------------------- inputs
    def on_market(self, token: str, info: MarketInfo) -> None:
        self.markets[str(token)] = info

    def on_mark(self, token: str, day: int, price: float) -> None:
        self.marks.set(str(token), int(day), float(price))

    def on_marks(self, tokens, days, prices) -> None:
        self.marks.set_many(tokens, days, prices)

    # -------------------------------------------------------------------------------------------- state
    def mark_of(self, pos: _Position, d: int) -> float:
        """The position's token at the day's mark (its entry price before a first mark)."""
        v = self.marks.at(pos.row, d)
        return v if v == v else pos.entry_price

    def nav_at(self, d: int, intraday: bool = False) -> tuple[float, float, dict[str, float]]:
        """(NAV, exposure, exposure by category) marked at day ``d``'s mark, or, ``intraday`` (a decision during
        the day), at the last mark before it: a day's mark is known only at its end."""
        exposure, by_cat = 0.0, {}
        day = d - 1 if intraday else d
        for pos in self.open.values():
            value = pos.shares * self.mark_of(pos, day)
            exposure += value
            by_cat[pos.category] = by_cat.get(pos.category, 0.0) + value
        return self.cash + exposure, exposure, by_cat

    def _close(self, pos: _Position, d: int, ts: float, price: float, kind: str, fee_rate: float,
               shares: float) -> dict:  # fmt: skip
        gross = shares * price
        fee = gross * fee_rate
        self.cash += gross - fee
        pos.shares -= shares
        pos.proceeds += gross
        pos.fees += fee
        fill = {"key": pos.key, "kind": kind, "day": d, "ts": ts, "token_id": pos.token, "shares": -shares,
                "price": price, "fee": fee, "cash_after": self.cash}  # fmt: skip
        self.fills.append(fill)
        if pos.shares <= 1e-9:
            pos.closed_day, pos.close_reason = d, kind
            self.closed.append(self.open.pop(pos.token))
        return fill

    # -------------------------------------------------------------------------------------------- events
    def on_whale_sell(
        self, wallet: str, token: str, ts: float, price: float, fraction: float, d: int
    ) -> dict | None:
        """Mirror a copied whale's sell of ``fraction`` of its position: the same share of ours, at its price less
        our slippage. Returns the fill, or None when we hold nothing of that whale's on the token."""
        pos = self.open.get(str(token))
        if pos is None or pos.wallet != wallet or not fraction > 0:
            return None
        p = self.p
        shares = pos.shares * min(float(fraction), 1.0)
        slip = float(
            signal.slippage_estimate(shares * price, pos.daily_notional, p.signal.impact_coefficient)
        )
        fill_price = float(price) * (1 - min(slip, 1.0) if np.isfinite(slip) else 1.0)
        return self._close(pos, d, float(ts), fill_price, "whale_sell", p.fee_rate, shares)

    def on_fill(self, e, d: int) -> dict:
        """Stage 3, sizing and the limits for one candidate that passed stages 1 and 2 (``key, wallet, token_id,
        condition_id, event_id, category, ts, copy_price, edge_at_copy, wqs, whale_volatility, daily_notional``).
        Returns the decision row; a copy also books its entry fill and opens the position."""
        p = self.p
        nav, exposure, by_cat = self.nav_at(d, intraday=True)
        dd = max(0.0, 1.0 - nav / self.peak) if self.peak > 0 else 1.0
        token = str(e.token_id)
        reasons = []
        if self.var_blocked:
            reasons.append(f"portfolio VaR beyond {p.var_limit_nav:.0%} of NAV")
        if token in self.open:
            reasons.append("already holding this outcome")
        linked = any(q.event == e.event_id or q.condition == e.condition_id for q in self.open.values())
        row = self.marks.row(token)
        if linked:
            rho = 1.0
        elif self.open:
            rows = [row] + [q.row for q in self.open.values()]
            rho = _correlation(self.marks.changes(rows, d - p.correlation_days, d), p)
        else:
            rho = 0.0
        if p.fixed_notional is None:
            order = size.adaptive_kelly(e.edge_at_copy, e.copy_price, e.wqs, e.whale_volatility, rho, dd, nav,
                                        params=p.sizing)  # fmt: skip
            shares, fraction, size_reason = float(order.shares), float(order.fraction), order.reason[()]
        else:
            c = float(e.copy_price)
            shares = float(np.floor(p.fixed_notional / c + 1e-9)) if 0 < c < 1 else 0.0
            if shares < p.sizing.min_limit_shares:
                shares = 0.0
            fraction = p.fixed_notional / nav if nav > 0 else np.nan
            size_reason = f"fixed ${p.fixed_notional:g} under {p.sizing.min_limit_shares} shares or bad price"
        slip = float(
            signal.slippage_estimate(shares * e.copy_price, e.daily_notional, p.signal.impact_coefficient)
        )
        price = min(float(e.copy_price) * (1 + (slip if np.isfinite(slip) else 0.0)), p.max_price)
        cost, fee = shares * price, shares * price * p.fee_rate
        # the book right after the fill, marked at the copy price: limits hold on what the fill leaves behind
        marked = shares * float(e.copy_price)
        nav_after = nav - fee - (cost - marked)
        if p.portfolio_filter:
            fit = signal.portfolio_fit(
                rho, exposure + marked, by_cat.get(e.category, 0.0) + marked, nav_after, p.signal
            )
            if not fit.passed[0]:
                reasons.append(fit.reason[0])
        if shares <= 0:
            reasons.append(f"size: {size_reason}")
        elif cost + fee > self.cash:
            reasons.append(f"cash: ${self.cash:,.2f} cannot pay ${cost + fee:,.2f}")
        decision = {"key": e.key, "day": d, "nav": nav, "correlation": rho, "exposure_after": exposure + marked,
                    "drawdown": dd, "fraction": fraction, "shares": shares, "notional": cost}  # fmt: skip
        if reasons:
            decision |= {"copied": False, "reason": "; ".join(reasons), "shares": 0.0, "notional": 0.0}
            self.decisions.append(decision)
            return decision
        self.cash -= cost + fee
        self.open[token] = _Position(
            key=e.key, wallet=e.wallet, token=token, row=row, condition=e.condition_id, event=e.event_id,
            category=e.category, shares=shares, cost=cost, entry_day=d, entry_price=price,
            daily_notional=float(e.daily_notional), stop=risk.TrailingStop(price), fees=fee,
        )  # fmt: skip
        self.fills.append({"key": e.key, "kind": "entry", "day": d, "ts": float(e.ts), "token_id": token,
                           "shares": shares, "price": price, "fee": fee, "cash_after": self.cash})  # fmt: skip
        decision |= {"copied": True, "reason": None}
        self.decisions.append(decision)
        return decision

    def on_day_end(self, d: int) -> dict:
        """Close day ``d``: settlements, stops and time exits, then the day's NAV row (returned)."""
        p = self.p
        end_of_day = (d + 1) * 86_400.0
        for pos in list(self.open.values()):
            stop_hit = pos.stop.update(self.marks.at(pos.row, d)) if d >= pos.entry_day else False
            info = self.markets.get(pos.token, UNKNOWN_MARKET)
            resolved_day = int(info.resolved_ts // 86_400) if np.isfinite(info.resolved_ts) else -1
            if resolved_day != -1 and resolved_day <= d and np.isfinite(info.payout):
                self._close(pos, d, end_of_day, float(info.payout), "settlement", 0.0, pos.shares)
                continue
            exit_day = self._time_exit_day(info)
            kind = (
                "trailing_stop"
                if pos.stopped or stop_hit
                else "time_exit"
                if exit_day != -1 and exit_day <= d
                else None
            )
            pos.stopped = pos.stopped or stop_hit
            if kind is not None and p.risk_management:
                wallet, token = pos.wallet, pos.token
                self._close(pos, d, end_of_day, self.mark_of(pos, d), kind, p.fee_rate, pos.shares)
                self.alerts.append({"day": d, "kind": kind,
                                    "message": f"{kind.replace('_', ' ')} of {token} (copying {wallet})"})  # fmt: skip
        nav, exposure, by_cat = self.nav_at(d)
        self.holdings.extend(
            {"day": d, "key": q.key, "token_id": q.token, "value": q.shares * self.mark_of(q, d)}
            for q in self.open.values()
        )
        prev = self.nav_rows[-1]["nav"] if self.nav_rows else p.starting_nav
        self.daily_returns.append(nav / prev - 1.0 if prev > 0 else 0.0)
        self.peak = max(self.peak, nav)
        window = self.daily_returns[-p.var_window_days :]
        last_var = (
            risk.modified_var(np.array(window), p.var_confidence) if len(window) >= p.var_min_days else np.nan
        )
        blocked = bool(p.risk_management and np.isfinite(last_var) and last_var < -p.var_limit_nav)
        if blocked and not self.var_blocked:
            self.alerts.append({"day": d, "kind": "var_breach",
                                "message": f"VaR{p.var_confidence * 100:.0f} {last_var:.2%} of NAV: new entries blocked"})  # fmt: skip
        self.var_blocked = blocked
        row = {
            "day": d, "cash": self.cash, "positions_value": exposure, "nav": nav,
            "exposure_share": exposure / nav if nav > 0 else np.nan,
            "max_category_share": max(by_cat.values()) / nav if by_cat and nav > 0 else 0.0,
            "open_positions": len(self.open), "drawdown": 1.0 - nav / self.peak if self.peak > 0 else np.nan,
            "daily_return": self.daily_returns[-1], "var": last_var, "entries_blocked": self.var_blocked,
        }  # fmt: skip
        self.nav_rows.append(row)
        return row

    # -------------------------------------------------------------------------------------------- output
    def _risk_state(self, q: _Position) -> dict:
        """What the book held for a position at its last closed day: the mark its NAV values it at (open
        positions only), the trailing stop's level in force for the next day (NULL before it activates) and the
        day its time exit falls due (NULL for a market with no scheduled end)."""
        info = self.markets.get(q.token, UNKNOWN_MARKET)
        is_open = q.closed_day == -1 and bool(self.nav_rows)
        return {
            "mark": self.mark_of(q, self.nav_rows[-1]["day"]) if is_open else None,
            "stop_level": float(q.stop.level) if np.isfinite(q.stop.level) else None,
            "time_exit_day": exit_day if (exit_day := self._time_exit_day(info)) != -1 else None,
        }

    def _time_exit_day(self, info) -> int:
        """The first day whose end closes a position by time exit (-1: the market has no scheduled end)."""
        return (
            int((info.end_ts - self.p.time_exit_hours * 3600) // 86_400) if np.isfinite(info.end_ts) else -1
        )

    def result(self) -> PaperResult:
        positions = [
            {"key": q.key, "wallet": q.wallet, "token_id": q.token, "category": q.category, "entry_day": q.entry_day,
             "entry_price": q.entry_price, "shares_open": q.shares, "cost": q.cost, "proceeds": q.proceeds,
             "fees": q.fees, "closed_day": q.closed_day if q.closed_day != -1 else None, "close_reason": q.close_reason,
             "realised_pnl": q.proceeds - q.cost - q.fees if q.closed_day != -1 else None,
             **self._risk_state(q)}
            for q in [*self.closed, *self.open.values()]
        ]  # fmt: skip
        return PaperResult(
            pd.DataFrame(self.decisions, columns=DECISION_COLUMNS),
            pd.DataFrame(self.fills, columns=FILL_COLUMNS),
            pd.DataFrame(positions, columns=POSITION_COLUMNS),
            pd.DataFrame(self.nav_rows, columns=NAV_COLUMNS),
            pd.DataFrame(self.alerts, columns=ALERT_COLUMNS),
            pd.DataFrame(self.holdings, columns=HOLDING_COLUMNS),
        )


def _market_infos(markets: pd.DataFrame) -> dict[str, MarketInfo]:
    mk = markets.drop_duplicates("token_id")
    end = pd.to_numeric(mk["end_ts"], errors="coerce").to_numpy(dtype=float)
    res = pd.to_numeric(mk["resolved_ts"], errors="coerce").to_numpy(dtype=float)
    pay = pd.to_numeric(mk["payout"], errors="coerce").to_numpy(dtype=float)
    return {
        str(t): MarketInfo(e if np.isfinite(e) else np.inf, r if np.isfinite(r) else np.inf, y)
        for t, e, r, y in zip(mk["token_id"].astype(str), end, res, pay, strict=True)
    }


def _events_by_day(
    candidates: pd.DataFrame, whale_sells: pd.DataFrame, first_day: int, last_day: int
) -> dict:
    """Day -> that day's events (entries and whale sells, in time order, an entry before a sell at the same time)."""
    events = []
    for kind, frame in (("entry", candidates), ("whale_sell", whale_sells)):
        if len(frame):
            f = frame.assign(
                event_kind=kind, event_day=(frame["ts"].to_numpy(dtype=float) // 86_400).astype(np.int64)
            )
            events.append(f)
    ev = (
        pd.concat(events, ignore_index=True)
        if events
        else pd.DataFrame(columns=["event_kind", "event_day", "ts"])
    )
    ev = ev[(ev["event_day"] >= first_day) & (ev["event_day"] <= last_day)]
    ev = ev.sort_values(["ts", "event_kind"], kind="stable")
    by_day: dict[int, list] = {}
    for e in ev.itertuples(index=False):  # one pass: a frame per day would cost more than the day's work
        by_day.setdefault(int(e.event_day), []).append(e)
    return by_day


def _advance(book: Book, by_day: dict, first_day: int, last_day: int, on_day_end=None) -> None:
    """Run the book over days ``first_day .. last_day``: each day's events, then its end."""
    for d in range(first_day, last_day + 1):
        for e in by_day.get(d, ()):  # the day's events, in time order
            if e.event_kind == "whale_sell":
                book.on_whale_sell(
                    e.wallet, str(e.token_id), float(e.ts), float(e.price), float(e.fraction), d
                )
            else:
                book.on_fill(e, d)
        book.on_day_end(d)
        if on_day_end is not None:
            on_day_end(d)


def _mark_book(marks: pd.DataFrame, origin: int) -> MarkBook:
    book = MarkBook(origin)
    if len(marks):
        book.set_many(
            marks["token_id"].astype(str).to_numpy(), marks["day"].to_numpy(), marks["price"].to_numpy()
        )
    return book


def _fresh_book(params: PaperParams, origin: int, marks: MarkBook, infos: dict[str, MarketInfo]) -> Book:
    """An empty book on the run's marks and markets."""
    book = Book(params, mark_origin=origin)
    book.marks, book.markets = marks, infos
    return book


def run_paper(
    candidates: pd.DataFrame,
    marks: pd.DataFrame,
    whale_sells: pd.DataFrame,
    markets: pd.DataFrame,
    first_day: int,
    last_day: int,
    params: PaperParams = PaperParams(),
    mark_origin: int | None = None,
) -> PaperResult:
    """Run the paper portfolio from ``first_day`` to ``last_day`` (UTC day numbers since 1970-01-01).

    - ``candidates`` (passed stages 1 and 2): ``key, wallet, token_id, condition_id, event_id, category, ts,
      copy_price, edge_at_copy, wqs, whale_volatility, daily_notional``.
    - ``marks``: ``token_id, day, price``, daily closing marks.
    - ``whale_sells``: ``wallet, token_id, ts, price, fraction`` (the share of its position the whale sold).
    - ``markets``: ``token_id, end_ts, resolved_ts, payout`` (scheduled end; resolution time and payout or NaN).
    """
    # marks from before the first day count too (a correlation on day one looks back over known marks), as they
    # do for the live loop, which starts with the batch's marks of the days before it
    origin = first_day - params.correlation_days - 1 if mark_origin is None else mark_origin
    book = _fresh_book(params, origin, _mark_book(marks, origin), _market_infos(markets))
    _advance(book, _events_by_day(candidates, whale_sells, first_day, last_day), first_day, last_day)
    return book.result()


# --------------------------------------------------------------------------------- the book from run to run

#: a run keeps its book as it was this many days before its last day, so that fills, prices and resolutions that
#: arrive that late find the kept book still valid (the scores keep their state the same way)
STATE_LAG_DAYS = 3
_LATER = -2  # in the digest: a time exit or a resolution after the day the book is kept at


class PaperState(NamedTuple):
    """A run's book as it was at the end of day ``through``, for the next run to go on from."""

    first_day: int  # the first day of the run that started the book
    through: int
    digest: str  # of everything the book had read by then (:func:`inputs_digest`)
    book: bytes  # the book, pickled without its marks, markets and parameters (rebuilt from the run's inputs)


def inputs_digest(
    candidates: pd.DataFrame,
    marks: pd.DataFrame,
    whale_sells: pd.DataFrame,
    markets: pd.DataFrame,
    first_day: int,
    through: int,
    params: PaperParams,
) -> str:
    """A hash of everything the book's state at the end of day ``through`` depends on (the engine is causal: a
    decision at t reads nothing after t, tests/unit/test_paper_model.py): the parameters and first day; the
    candidates of the days up to ``through``, in their order; the whale sells of those days on the (wallet, token)
    pairs of those candidates; those tokens' marks from the book's origin to ``through``; and, for those tokens,
    the scheduled end as a time-exit day and the resolution day and payout where they fall by ``through`` (a later
    one, or none, is the same to the book then). Anything else a run reads cannot have moved the book by then."""
    day = lambda f: f["ts"].to_numpy(dtype=float) // 86_400  # noqa: E731
    origin = first_day - params.correlation_days - 1
    cands = candidates[day(candidates) <= through] if len(candidates) else candidates
    tokens = pd.Index(cands["token_id"].astype(str).unique()) if len(cands) else pd.Index([], dtype=object)
    pairs = (
        pd.MultiIndex.from_arrays([cands["wallet"].astype(str), cands["token_id"].astype(str)])
        if len(cands)
        else None
    )
    sells = whale_sells.iloc[:0]
    if len(whale_sells) and pairs is not None:
        on_pairs = pd.MultiIndex.from_arrays(
            [whale_sells["wallet"].astype(str), whale_sells["token_id"].astype(str)]
        )
        sells = whale_sells[(day(whale_sells) <= through) & on_pairs.isin(pairs)]
    m = marks[
        marks["token_id"].astype(str).isin(tokens) & (marks["day"] >= origin) & (marks["day"] <= through)
    ]
    m = m.assign(token_id=m["token_id"].astype(str)).sort_values(["token_id", "day"], kind="stable")
    # each token's market as _market_infos reads it (its first row; NaN where unknown), vectorised
    mk = markets.drop_duplicates("token_id")
    mk = mk.set_index(mk["token_id"].astype(str)).reindex(tokens)
    end, res, pay = (pd.to_numeric(mk[c], errors="coerce").to_numpy(dtype=float)
                     for c in ("end_ts", "resolved_ts", "payout"))  # fmt: skip
    with np.errstate(invalid="ignore"):
        exit_day = np.where(np.isfinite(end), (end - params.time_exit_hours * 3600) // 86_400, -1)
        resolved = np.where(np.isfinite(res), res // 86_400, -1)
    due = lambda d: (d > -1) & (d <= through)  # noqa: E731
    acts = pd.DataFrame({"token_id": tokens, "exit_day": np.where(due(exit_day), exit_day, _LATER),
                         "resolved_day": np.where(due(resolved), resolved, _LATER),
                         "payout": np.where(due(resolved), pay, np.nan)})  # fmt: skip
    h = hashlib.sha256(repr((engine_version(), params, int(first_day), int(through))).encode())
    for frame in (cands, sells, m[["token_id", "day", "price"]], acts):
        h.update(str(list(frame.columns)).encode())
        h.update(pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False).to_numpy().tobytes())
    return h.hexdigest()


@cache
def engine_version() -> str:
    """A hash of the engine's code (this module and the risk, signal and sizing kernels it calls): a kept book is
    gone on from only by the code that kept it, which is the code whose state it holds."""
    h = hashlib.sha256()
    for module in (sys.modules[__name__], risk, signal, size):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()[:16]


#: what a kept book may be made of: the engine's own classes, numpy's arrays and scalars, and plain values
_BOOK_CLASSES = {("assets.paper.model", "Book"), ("assets.paper.model", "_Position"),
                 ("assets.risk.model", "TrailingStop"), ("numpy", "dtype"), ("numpy", "ndarray"),
                 ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                 ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                 ("copyreg", "_reconstructor"), ("builtins", "object")}  # fmt: skip


class _BookUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _BOOK_CLASSES:
            raise pickle.UnpicklingError(f"a kept paper book holds no {module}.{name}: not read")
        return super().find_class(module, name)


def freeze_book(book: Book) -> bytes:
    """The book as bytes, without its marks, markets and parameters (a run gives it its own)."""
    held = book.marks, book.markets, book.p
    book.marks, book.markets, book.p = None, None, None
    try:
        return pickle.dumps(book, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        book.marks, book.markets, book.p = held


def thaw_book(blob: bytes, params: PaperParams, marks: MarkBook, markets: dict[str, MarketInfo]) -> Book:
    """A kept book with this run's parameters, marks and markets (its open positions re-pointed to their marks)."""
    book = _BookUnpickler(io.BytesIO(blob)).load()
    if not isinstance(book, Book):
        raise pickle.UnpicklingError(f"a kept paper book is a Book, not {type(book).__name__}")
    book.p, book.marks, book.markets = params, marks, markets
    for pos in book.open.values():
        pos.row = marks.row(pos.token)
    return book


def run_paper_carried(
    candidates: pd.DataFrame,
    marks: pd.DataFrame,
    whale_sells: pd.DataFrame,
    markets: pd.DataFrame,
    first_day: int,
    last_day: int,
    params: PaperParams,
    kept: PaperState | None,
    keep_lag: int = STATE_LAG_DAYS,
) -> tuple[PaperResult, PaperState | None, str]:
    """:func:`run_paper` from ``first_day`` to ``last_day``, going on from the ``kept`` book where everything it
    had read is unchanged (:func:`inputs_digest`), so that a daily run replays its last few days, not the
    history; the same result, to the bit, as :func:`run_paper` over the whole history
    (tests/unit/test_paper_model.py). Returns the result, the book to keep (as it was ``keep_lag`` days before
    ``last_day``; None when the run has fewer days) and what the run did."""
    origin = first_day - params.correlation_days - 1
    infos, mark_book = _market_infos(markets), _mark_book(marks, origin)
    start, book = first_day, None
    if kept is None:
        how = "no book kept"
    elif kept.first_day != first_day:
        how = f"the history starts on day {first_day}, the kept book on day {kept.first_day}"
    elif kept.through > last_day:
        how = f"the kept book is of day {kept.through}, after the last day {last_day}"
    elif kept.digest != inputs_digest(
        candidates, marks, whale_sells, markets, first_day, kept.through, params
    ):
        how = f"inputs up to day {kept.through}, where the kept book stands, changed"
    else:
        try:
            book, start = thaw_book(kept.book, params, mark_book, infos), kept.through + 1
            how = f"went on from the book kept at day {kept.through}"
        except (pickle.UnpicklingError, AttributeError, EOFError, TypeError, ValueError) as exc:
            how = f"the kept book could not be read ({type(exc).__name__}: {exc})"
    if book is None:
        book = _fresh_book(params, origin, mark_book, infos)
        how = f"replayed from day {first_day}: {how}"
    keep_day = last_day - keep_lag
    # the kept book stays when this run passes no day to keep (a rerun of the same day)
    state = kept if start > first_day else None
    saved: list[PaperState] = []

    def keep(d: int) -> None:
        if d == keep_day:
            digest = inputs_digest(candidates, marks, whale_sells, markets, first_day, d, params)
            saved.append(PaperState(first_day, d, digest, freeze_book(book)))

    _advance(book, _events_by_day(candidates, whale_sells, start, last_day), start, last_day, keep)
    return book.result(), saved[0] if saved else state, how
