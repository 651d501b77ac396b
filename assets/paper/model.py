"""The paper-trading portfolio: stage 3 of the signal filter, sizing, fills, exits and daily NAV. Pure (no Dagster,
no DuckDB).

A portfolio is path-dependent, so this is an event loop over days; everything inside a day is vectorised where
the book allows (marks, NAV, exposure). Within a day, in time order: entries (candidates that passed stages 1 and
2) and the mirrored sells of the whales we copy. At the day's end: trailing stops, time exits and resolutions,
then marks, NAV, drawdown and the portfolio's Cornish-Fisher VaR, which blocks entries the next day when it is
beyond the limit. Every decision at time t reads only data up to t; the trailing stop's plan is computed at entry
from later marks with a causal rule (a day's stop level uses marks up to that day).

Conventions: prices are per share (0-1); cash and NAV in USDC; fees are ``fee_rate`` of notional on every fill
(none at settlement); a buy pays ``price * (1 + slippage)`` and a sell receives ``price * (1 - slippage)``, with
the square-root impact model of :mod:`assets.signal.model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
                    "proceeds", "fees", "closed_day", "close_reason", "realised_pnl"]  # fmt: skip
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
    row: int  # the token's row of the mark matrix
    condition: str
    event: str
    category: str
    shares: float
    cost: float
    entry_day: int
    entry_price: float
    stop_day: int  # -1: the stop never triggers on the marks we have
    time_exit_day: int
    resolved_day: int  # -1: not resolved in the data
    payout: float
    daily_notional: float
    closed_day: int = -1
    close_reason: str | None = None
    proceeds: float = 0.0
    fees: float = 0.0


def _mark_matrix(marks: pd.DataFrame, tokens: np.ndarray, first_day: int, n_days: int) -> np.ndarray:
    """tokens x days of daily marks, carried forward from the last mark (NaN before a token's first mark)."""
    out = np.full((len(tokens), n_days), np.nan)
    if len(marks):
        index = pd.Index(tokens)
        row = index.get_indexer(marks["token_id"])
        col = marks["day"].to_numpy(dtype=np.int64) - first_day
        keep = (row >= 0) & (col >= 0) & (col < n_days)
        out[row[keep], col[keep]] = marks["price"].to_numpy(dtype=float)[keep]
    return risk.carry_forward(out)


def _correlation(changes: np.ndarray, a: int, others: list[int], day: int, p: PaperParams) -> float:
    """Largest |correlation| of daily mark changes between token row ``a`` and the rows ``others`` over the
    window before ``day``; 0 where fewer than ``min_correlation_days`` days overlap (unknown is not linked)."""
    if not others:
        return 0.0
    lo = max(0, day - p.correlation_days)
    y = changes[others, lo:day]  # the book's rows, each paired with ``x`` over the days both have
    x = np.broadcast_to(changes[a, lo:day], y.shape)
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = np.where(ok, x - (np.where(ok, x, 0.0).sum(axis=1) / n)[:, None], 0.0)
        dy = np.where(ok, y - (np.where(ok, y, 0.0).sum(axis=1) / n)[:, None], 0.0)
        sxx, syy, sxy = (dx * dx).sum(axis=1), (dy * dy).sum(axis=1), (dx * dy).sum(axis=1)
        r = np.abs(sxy / np.sqrt(sxx * syy))
    valid = (n >= p.min_correlation_days) & (sxx > 0) & (syy > 0)
    return float(r[valid].max()) if valid.any() else 0.0


def run_paper(
    candidates: pd.DataFrame,
    marks: pd.DataFrame,
    whale_sells: pd.DataFrame,
    markets: pd.DataFrame,
    first_day: int,
    last_day: int,
    params: PaperParams = PaperParams(),
) -> PaperResult:
    """Run the paper portfolio from ``first_day`` to ``last_day`` (UTC day numbers since 1970-01-01).

    - ``candidates`` (passed stages 1 and 2): ``key, wallet, token_id, condition_id, event_id, category, ts,
      copy_price, edge_at_copy, wqs, whale_volatility, daily_notional``.
    - ``marks``: ``token_id, day, price``, daily closing marks.
    - ``whale_sells``: ``wallet, token_id, ts, price, fraction`` (the share of its position the whale sold).
    - ``markets``: ``token_id, end_ts, resolved_ts, payout`` (scheduled end; resolution time and payout or NaN).
    """
    p = params
    n_days = last_day - first_day + 1
    tokens = pd.unique(
        pd.concat([candidates["token_id"], markets["token_id"]], ignore_index=True).astype(str)
    )
    token_row = {t: i for i, t in enumerate(tokens)}
    m = _mark_matrix(marks, tokens, first_day, n_days)
    changes = np.diff(m, axis=1, prepend=np.nan)
    mk = markets.drop_duplicates("token_id").set_index("token_id")

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

    cash, peak = p.starting_nav, p.starting_nav
    book: dict[str, _Position] = {}
    closed: list[_Position] = []
    decisions, fills, nav_rows, alerts, holdings = [], [], [], [], []
    daily_returns: list[float] = []
    var_blocked, last_var = False, np.nan

    def mark_of(pos: _Position, d: int) -> float:
        """The position's token at the day's mark (its entry price before a first mark)."""
        v = float(m[pos.row, d - first_day])
        return v if v == v else pos.entry_price

    def nav_at(d: int) -> tuple[float, float, dict[str, float]]:
        exposure, by_cat = 0.0, {}
        for pos in book.values():
            value = pos.shares * mark_of(pos, d)
            exposure += value
            by_cat[pos.category] = by_cat.get(pos.category, 0.0) + value
        return cash + exposure, exposure, by_cat

    def close(
        pos: _Position, d: int, ts: float, price: float, kind: str, fee_rate: float, shares: float
    ) -> None:
        nonlocal cash
        gross = shares * price
        fee = gross * fee_rate
        cash += gross - fee
        pos.shares -= shares
        pos.proceeds += gross
        pos.fees += fee
        fills.append({"key": pos.key, "kind": kind, "day": d, "ts": ts, "token_id": pos.token, "shares": -shares,
                      "price": price, "fee": fee, "cash_after": cash})  # fmt: skip
        if pos.shares <= 1e-9:
            pos.closed_day, pos.close_reason = d, kind
            closed.append(book.pop(pos.token))

    for d in range(first_day, last_day + 1):
        for e in by_day.get(d, ()):  # the day's events, in time order
            if e.event_kind == "whale_sell":
                pos = book.get(str(e.token_id))
                if pos is not None and pos.wallet == e.wallet and e.fraction > 0:
                    shares = pos.shares * min(float(e.fraction), 1.0)
                    slip = float(
                        signal.slippage_estimate(
                            shares * e.price, pos.daily_notional, p.signal.impact_coefficient
                        )
                    )
                    price = float(e.price) * (1 - min(slip, 1.0) if np.isfinite(slip) else 1.0)
                    close(pos, d, float(e.ts), price, "whale_sell", p.fee_rate, shares)
                continue
            nav, exposure, by_cat = nav_at(d)
            dd = max(0.0, 1.0 - nav / peak) if peak > 0 else 1.0
            token = str(e.token_id)
            reasons = []
            if var_blocked:
                reasons.append(f"portfolio VaR beyond {p.var_limit_nav:.0%} of NAV")
            if token in book:
                reasons.append("already holding this outcome")
            linked = [
                token_row[q.token]
                for q in book.values()
                if q.event == e.event_id or q.condition == e.condition_id
            ]
            others = [token_row[q.token] for q in book.values() if q.token in token_row]
            rho = 1.0 if linked else _correlation(changes, token_row[token], others, d - first_day, p)
            if p.fixed_notional is None:
                order = size.adaptive_kelly(e.edge_at_copy, e.copy_price, e.wqs, e.whale_volatility, rho, dd,
                                            nav, params=p.sizing)  # fmt: skip
                shares, fraction, size_reason = float(order.shares), float(order.fraction), order.reason[()]
            else:
                c = float(e.copy_price)
                shares = float(np.floor(p.fixed_notional / c + 1e-9)) if 0 < c < 1 else 0.0
                if shares < p.sizing.min_limit_shares:
                    shares = 0.0
                fraction = p.fixed_notional / nav if nav > 0 else np.nan
                size_reason = (
                    f"fixed ${p.fixed_notional:g} under {p.sizing.min_limit_shares} shares or bad price"
                )
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
            elif cost + fee > cash:
                reasons.append(f"cash: ${cash:,.2f} cannot pay ${cost + fee:,.2f}")
            row = {"key": e.key, "day": d, "nav": nav, "correlation": rho, "exposure_after": exposure + marked,
                   "drawdown": dd, "fraction": fraction, "shares": shares, "notional": cost}  # fmt: skip
            if reasons:
                decisions.append(
                    row | {"copied": False, "reason": "; ".join(reasons), "shares": 0.0, "notional": 0.0}
                )
                continue
            cash -= cost + fee
            info = mk.loc[token] if token in mk.index else None
            end_ts = float(info["end_ts"]) if info is not None and np.isfinite(info["end_ts"]) else np.inf
            res_ts = (
                float(info["resolved_ts"])
                if info is not None and np.isfinite(info["resolved_ts"])
                else np.inf
            )
            row_m = m[token_row[token], d - first_day :]
            stop = risk.trailing_stops(row_m[None, :], np.array([price]))
            pos = _Position(
                key=e.key, wallet=e.wallet, token=token, row=token_row[token], condition=e.condition_id, event=e.event_id,
                category=e.category, shares=shares, cost=cost, entry_day=d, entry_price=price,
                stop_day=int(d + stop.exit_day[0]) if stop.exit_day[0] > 0 else -1,
                time_exit_day=int((end_ts - p.time_exit_hours * 3600) // 86_400) if np.isfinite(end_ts) else -1,
                resolved_day=int(res_ts // 86_400) if np.isfinite(res_ts) else -1,
                payout=float(info["payout"]) if info is not None and np.isfinite(info["payout"]) else np.nan,
                daily_notional=float(e.daily_notional), fees=fee,
            )  # fmt: skip
            book[token] = pos
            fills.append({"key": e.key, "kind": "entry", "day": d, "ts": float(e.ts), "token_id": token,
                          "shares": shares, "price": price, "fee": fee, "cash_after": cash})  # fmt: skip
            decisions.append(row | {"copied": True, "reason": None})

        # end of day: resolutions settle, then stops and time exits at the day's mark
        for pos in list(book.values()):
            end_of_day = (d + 1) * 86_400.0
            if pos.resolved_day != -1 and pos.resolved_day <= d and np.isfinite(pos.payout):
                close(pos, d, end_of_day, pos.payout, "settlement", 0.0, pos.shares)
                continue
            stop = pos.stop_day != -1 and pos.stop_day <= d
            kind = (
                "trailing_stop"
                if stop
                else "time_exit"
                if pos.time_exit_day != -1 and pos.time_exit_day <= d
                else None
            )
            if kind is not None and p.risk_management:
                wallet, token = pos.wallet, pos.token
                close(pos, d, end_of_day, mark_of(pos, d), kind, p.fee_rate, pos.shares)
                alerts.append(
                    {
                        "day": d,
                        "kind": kind,
                        "message": f"{kind.replace('_', ' ')} of {token} (copying {wallet})",
                    }
                )
        nav, exposure, by_cat = nav_at(d)
        holdings.extend(
            {"day": d, "key": q.key, "token_id": q.token, "value": q.shares * mark_of(q, d)}
            for q in book.values()
        )
        prev = nav_rows[-1]["nav"] if nav_rows else p.starting_nav
        daily_returns.append(nav / prev - 1.0 if prev > 0 else 0.0)
        peak = max(peak, nav)
        window = daily_returns[-p.var_window_days :]
        last_var = (
            risk.modified_var(np.array(window), p.var_confidence) if len(window) >= p.var_min_days else np.nan
        )
        blocked = bool(p.risk_management and np.isfinite(last_var) and last_var < -p.var_limit_nav)
        if blocked and not var_blocked:
            alerts.append({"day": d, "kind": "var_breach",
                           "message": f"VaR{p.var_confidence * 100:.0f} {last_var:.2%} of NAV: new entries blocked"})  # fmt: skip
        var_blocked = blocked
        nav_rows.append({
            "day": d, "cash": cash, "positions_value": exposure, "nav": nav, "exposure_share": exposure / nav if nav > 0 else np.nan,
            "max_category_share": max(by_cat.values()) / nav if by_cat and nav > 0 else 0.0, "open_positions": len(book),
            "drawdown": 1.0 - nav / peak if peak > 0 else np.nan, "daily_return": daily_returns[-1], "var": last_var,
            "entries_blocked": var_blocked,
        })  # fmt: skip

    positions = [
        {"key": q.key, "wallet": q.wallet, "token_id": q.token, "category": q.category, "entry_day": q.entry_day,
         "entry_price": q.entry_price, "shares_open": q.shares, "cost": q.cost, "proceeds": q.proceeds,
         "fees": q.fees, "closed_day": q.closed_day if q.closed_day != -1 else None, "close_reason": q.close_reason,
         "realised_pnl": q.proceeds - q.cost - q.fees if q.closed_day != -1 else None}
        for q in [*closed, *book.values()]
    ]  # fmt: skip
    return PaperResult(
        pd.DataFrame(decisions, columns=DECISION_COLUMNS),
        pd.DataFrame(fills, columns=FILL_COLUMNS),
        pd.DataFrame(positions, columns=POSITION_COLUMNS),
        pd.DataFrame(nav_rows, columns=NAV_COLUMNS),
        pd.DataFrame(alerts, columns=ALERT_COLUMNS),
        pd.DataFrame(holdings, columns=HOLDING_COLUMNS),
    )
