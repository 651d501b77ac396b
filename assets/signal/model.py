"""Pure signal kernels: the three-stage filter a whale trade passes before it is copied. No Dagster, no DuckDB.

Every candidate (a whale's BUY fill) carries the whale's point-in-time score (the latest
``analytics.whale_scores`` row before the fill) and the trade's facts. Each stage returns a pass mask and, per
row, every reason it failed (``"; "``-joined), so a candidate's row says exactly why it was not copied.

- Stage 1, whale: WQS >= 75; rolling 30-day Sharpe above the 90-day one; current drawdown under 25%; not
  quarantined; not flagged (a market maker, farmer, bot or wash trader at its score's date) unless
  ``keep_flagged``.
- Stage 2, trade: notional >= $5,000; estimated slippage of our order under 1%; resolution within 90 days;
  edge at our price >= 3 percentage points.
- Stage 3, portfolio fit (needs the book, so it runs inside the paper portfolio): correlation with the book
  under 0.4 (outcomes of one event count as linked, correlation 1); total exposure under 95% of NAV; the
  category's exposure under 30% of NAV.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from assets.score.model import reasons_from_masks


@dataclass(frozen=True)
class SignalParams:
    min_wqs: float = 75.0
    max_whale_drawdown: float = 0.25
    #: copy wallets flagged at their score's date (analytics.wallet_flags_history) all the same
    keep_flagged: bool = False
    min_notional: float = 5_000.0
    max_slippage: float = 0.01
    max_days_to_resolution: float = 90.0
    min_edge: float = 0.03
    max_correlation: float = 0.4
    max_exposure_nav: float = 0.95
    max_category_nav: float = 0.30
    #: square-root impact: slippage = coefficient * sqrt(order notional / the token's mean daily notional)
    impact_coefficient: float = 0.1


class StageResult(NamedTuple):
    passed: np.ndarray  # bool per row
    reason: np.ndarray  # object per row: why it failed, None if it passed


def _result(causes: list[tuple[np.ndarray, str]]) -> StageResult:
    failed = np.logical_or.reduce([np.asarray(m, dtype=bool) for m, _ in causes])
    reasons = reasons_from_masks(causes)
    return StageResult(~failed, np.where(failed, reasons, None))


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def whale_stage(candidates: pd.DataFrame, params: SignalParams = SignalParams()) -> StageResult:
    """Stage 1 from ``wqs, rolling_sharpe_30, rolling_sharpe_90, current_drawdown`` (<= 0), ``quarantined`` and
    ``flags`` (the whale's flags at its score's date, null when none). A missing value fails its test (no score is
    not a good score)."""
    wqs, s30, s90 = (
        _num(candidates, "wqs"),
        _num(candidates, "rolling_sharpe_30"),
        _num(candidates, "rolling_sharpe_90"),
    )
    dd = -_num(candidates, "current_drawdown")
    quarantined = candidates["quarantined"].fillna(False).to_numpy(dtype=bool)
    flagged = candidates["flags"].notna().to_numpy(dtype=bool) & (not params.keep_flagged)
    with np.errstate(invalid="ignore"):
        return _result([
            (~(wqs >= params.min_wqs), f"WQS below {params.min_wqs:g}" ),
            (~(s30 > s90), "30-day Sharpe not above 90-day Sharpe"),
            (~(dd < params.max_whale_drawdown), f"whale drawdown {params.max_whale_drawdown:.0%} or more"),
            (quarantined, "whale quarantined"),
            (flagged, "whale flagged (market maker, farmer, bot or wash)"),
        ])  # fmt: skip


def slippage_estimate(
    order_notional: np.ndarray, daily_notional: np.ndarray, coefficient: float = 0.1
) -> np.ndarray:
    """Square-root market impact as a fraction of price: ``coefficient * sqrt(order / mean daily notional)``.
    An order of 1% of a day's volume costs 1% at coefficient 0.1. No volume gives inf (the order cannot fill)."""
    o, v = np.asarray(order_notional, dtype=float), np.asarray(daily_notional, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(v > 0, coefficient * np.sqrt(np.maximum(o, 0.0) / v), np.inf)


def edge_at_copy(whale_edge: np.ndarray, whale_price: np.ndarray, copy_price: np.ndarray) -> np.ndarray:
    """The edge left for a copier who pays ``copy_price`` after the whale paid ``whale_price``: the whale's
    win probability is ``whale_price + whale_edge``, so ours is that minus what we pay."""
    return (
        np.asarray(whale_price, dtype=float)
        + np.asarray(whale_edge, dtype=float)
        - np.asarray(copy_price, dtype=float)
    )


def trade_stage(candidates: pd.DataFrame, params: SignalParams = SignalParams()) -> StageResult:
    """Stage 2 from ``whale_notional, slippage, days_to_resolution, edge_at_copy``. A missing value fails its
    test."""
    notional, slip = _num(candidates, "whale_notional"), _num(candidates, "slippage")
    days, edge = _num(candidates, "days_to_resolution"), _num(candidates, "edge_at_copy")
    with np.errstate(invalid="ignore"):
        return _result([
            (~(notional >= params.min_notional), f"whale trade under ${params.min_notional:,.0f}"),
            (~(slip < params.max_slippage), f"slippage {params.max_slippage:.0%} or more"),
            (~(days <= params.max_days_to_resolution), f"resolution more than {params.max_days_to_resolution:g} days away"),
            (~(edge >= params.min_edge), f"edge at our price under {params.min_edge * 100:g} points"),
        ])  # fmt: skip


def portfolio_fit(
    correlation: float,
    exposure_after: float,
    category_exposure_after: float,
    nav: float,
    params: SignalParams = SignalParams(),
) -> StageResult:
    """Stage 3 for one candidate against the book (exposures in USDC after the order)."""
    with np.errstate(invalid="ignore"):
        return _result([
            (np.array([not (abs(correlation) < params.max_correlation)]), f"correlation with the book {params.max_correlation:g} or more"),
            (np.array([not (exposure_after < params.max_exposure_nav * nav)]), f"exposure would reach {params.max_exposure_nav:.0%} of NAV"),
            (np.array([not (category_exposure_after < params.max_category_nav * nav)]), f"category exposure would reach {params.max_category_nav:.0%} of NAV"),
        ])  # fmt: skip


def score_day(score_as_of) -> np.ndarray:
    """UTC day numbers of the score dates (NaN where a candidate has no score)."""
    d = pd.to_datetime(pd.Series(score_as_of), errors="coerce")
    return ((d - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype=float)


SCREEN_COLUMNS = ("edge_at_copy", "order_notional_estimate", "slippage", "passed_whale", "passed_trade",
                  "stage_reached", "reason")  # fmt: skip


def screen(candidates: pd.DataFrame, params: SignalParams, order_notional: float) -> pd.DataFrame:
    """Stages 1 and 2 for every candidate, the one function the batch (all orders at once) and the live loop
    (one order at a time) call. Adds ``edge_at_copy`` (the whale's edge left at our copy price), the slippage of
    our order at its largest (``order_notional``: the position cap on the starting NAV), the stage masks, the
    stage reached (``whale``, ``trade``, or ``portfolio``: waiting for stage 3) and the reasons."""
    c = candidates.copy()
    c["edge_at_copy"] = edge_at_copy(c["whale_edge"], c["whale_price"], c["copy_price"])
    c["order_notional_estimate"] = order_notional
    slip = slippage_estimate(c["order_notional_estimate"], c["daily_notional"], params.impact_coefficient)
    # no flow before the order: unknown (fails stage 2)
    c["slippage"] = np.where(np.isinf(slip), np.nan, slip)
    whale = whale_stage(c, params)
    trade = trade_stage(c, params)
    c["passed_whale"] = whale.passed
    c["passed_trade"] = trade.passed & whale.passed
    c["stage_reached"] = np.where(~whale.passed, "whale", np.where(~trade.passed, "trade", "portfolio"))
    c["reason"] = np.where(~whale.passed, whale.reason, np.where(~trade.passed, trade.reason, None))
    return c


def funnel(
    stage_reached: pd.Series, stages: tuple[str, ...] = ("whale", "trade", "portfolio", "copied")
) -> pd.DataFrame:
    """Pass-through per stage from each candidate's furthest stage: rows ``stage, entered, passed, rate``.
    ``stage_reached`` is the first stage a candidate failed, or ``copied``."""
    return funnel_from_counts(stage_reached.value_counts().to_dict(), stages)


def funnel_from_counts(counts: Mapping[str, int], stages: tuple[str, ...]) -> pd.DataFrame:
    """``funnel`` from the number of candidates per stage reached (a ``GROUP BY stage_reached``)."""
    n = np.array([int(counts.get(s, 0)) for s in stages], dtype=np.int64)
    total = int(sum(int(v) for v in counts.values()))
    rows = []
    for i, s in enumerate(stages[:-1]):
        entered, passed = int(n[i:].sum()), int(n[i + 1 :].sum())
        rows.append(
            {
                "stage": s,
                "entered": entered,
                "passed": passed,
                "rate": passed / entered if entered else np.nan,
            }
        )
    rows.append({"stage": "overall", "entered": total, "passed": int(n[-1]),
                 "rate": n[-1] / total if total else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


# --- what a run decides again ---------------------------------------------------------------------------------

#: the inputs whose digests are kept per day: each row's ``day`` is the first order day a change there can move
#: (fills: the day of ``ts - latency``, as an order's copy price reads the prints up to the latency after it;
#: scores, quarantine and flags: their ``as_of``; daily returns: the day after, as a volatility reads the days before)
DAY_PARTS = ("fills", "scores", "quarantine", "flags", "returns")


class SignalsPlan(NamedTuple):
    mode: str  # "full" (every order), "increment" (the scope below) or "unchanged" (nothing to decide)
    since_day: int | None  # increment: the orders from this UTC day on (None: none by date)
    markets: tuple[str, ...]  # increment: and every order in these markets
    reason: str


def signals_plan(stored: pd.DataFrame | None, current: pd.DataFrame) -> SignalsPlan:
    """What a run must decide again, from the digests of what the candidates read, stored by the last run and
    taken now. Both frames: ``part, day, condition_id, rows, hash``, a row per (part, day) of ``DAY_PARTS``, a
    row per market (part ``markets``, its ``event_id, category, end_date``) and one ``config`` row (the signal
    settings and code). A candidate reads only its own order, its token's prints and flow, its market, its whale's
    score, quarantine, flags and returns, each through its own day (or the copy latency after it), so the rows that can
    change are the orders from the earliest day whose digest differs and the orders of every market whose row
    differs; every other stored row is what a full run would write again."""
    if stored is None or stored.empty:
        return SignalsPlan("full", None, (), "no stored state")

    def config(frame: pd.DataFrame) -> list:
        return frame.loc[frame["part"] == "config", "hash"].tolist()

    if config(stored) != config(current):
        return SignalsPlan("full", None, (), "the signal settings or code changed")

    def differing(key: list[str], parts) -> pd.DataFrame:
        cols = [*key, "rows", "hash"]
        a = stored.loc[stored["part"].isin(parts), cols]
        b = current.loc[current["part"].isin(parts), cols]
        m = a.merge(b, on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
        same = (m["_merge"] == "both") & (m["rows_a"] == m["rows_b"]) & (m["hash_a"] == m["hash_b"])
        return m.loc[~same]

    days = differing(["part", "day"], DAY_PARTS)
    markets = differing(["condition_id"], ("markets",))
    since = int(days["day"].min()) if len(days) else None
    changed = tuple(sorted(markets["condition_id"].astype(str)))
    if since is None and not changed:
        return SignalsPlan("unchanged", None, (), "no input changed")
    parts = sorted(set(days["part"]))
    why = [f"{', '.join(parts)} changed from day {since}"] if since is not None else []
    why += [f"{len(changed)} market(s) changed"] if changed else []
    return SignalsPlan("increment", since, changed, "; ".join(why))
