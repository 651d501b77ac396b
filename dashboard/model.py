"""Pure functions behind the dashboard's pages: frames in, frames and labels out. No Streamlit, no I/O.

Conventions: a UTC day number counts days since 1970-01-01; drawdowns are positive fractions below the peak
(``analytics.paper_nav.drawdown``); shares of NAV are fractions; a limit compares as the engine does (a share at
the limit is within it).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from assets.risk import model as risk
from assets.warehouse import epoch_datetimes

#: how long without a tick before a loop whose process is alive is called stalled
STALLED_AFTER_S = 30.0


def day_to_date(days: pd.Series) -> pd.Series:
    """UTC day numbers as dates (timestamps at midnight UTC); NULL stays NaT."""
    return pd.Series(epoch_datetimes(days, "D"), index=getattr(days, "index", None))


def epoch_to_time(seconds: pd.Series) -> pd.Series:
    """Epoch seconds as UTC times, to the millisecond; NULL stays NaT."""
    return pd.Series(epoch_datetimes(seconds, "s"), index=getattr(seconds, "index", None)).dt.tz_localize(
        "UTC"
    )


class LiveState(NamedTuple):
    label: str  # not started | running | degraded | possible-data-loss | failed | stalled | stopped
    detail: str
    healthy: bool


def live_state(
    state: dict, holder_alive: bool, now: float, stalled_after_s: float = STALLED_AFTER_S
) -> LiveState:
    """What the live loop is doing, from its store's state rows and whether the process holding its lock lives.

    A live holder with a heartbeat within ``stalled_after_s`` reports the loop's own state; a live holder with an
    older heartbeat is ``stalled``; no live holder is ``stopped`` (with the last state it reported)."""
    beat = state.get("heartbeat_wall")
    last = state.get("loop_state")
    if beat is None and last is None and not holder_alive:
        return LiveState("not started", "the live store holds no tick yet", False)
    age = now - float(beat) if beat is not None else math.inf
    ago = f"last tick {age:,.0f} s ago" if math.isfinite(age) else "no tick recorded"
    if not holder_alive:
        return LiveState("stopped", f"no `whalecopy live` holds this directory; its last state was {last} ({ago})",
                         False)  # fmt: skip
    if age > stalled_after_s:
        return LiveState("stalled", f"the loop's process is alive but {ago}", False)
    return LiveState(str(last), ago, last == "running")


def drawdown_share(nav: pd.Series) -> pd.Series:
    """1 − NAV / running peak (≥ 0), for a NAV series without its own drawdown."""
    nav = pd.to_numeric(nav, errors="coerce")
    return 1.0 - nav / nav.cummax()


def exposure_by_category(open_positions: pd.DataFrame, nav: float, limit: float) -> pd.DataFrame:
    """Open exposure per category as a share of NAV beside the category limit (``max_category_nav``).

    ``open_positions`` has ``category`` and ``value`` (shares × mark). ``within`` is ``share <= limit``."""
    if open_positions.empty or not nav or not np.isfinite(nav):
        return pd.DataFrame(columns=["category", "value", "share", "limit", "within"])
    out = (
        open_positions.assign(category=open_positions["category"].fillna("(unknown)"))
        .groupby("category", as_index=False)["value"]
        .sum()
        .sort_values("value", ascending=False, ignore_index=True)
    )
    out["share"] = out["value"] / nav
    out["limit"] = limit
    out["within"] = out["share"] <= limit
    return out


def batch_funnel(counts: pd.DataFrame) -> pd.DataFrame:
    """The historical funnel from one row of counts: whale orders → stage 1 → stages 1–2 → copied, each with
    its share of the stage before (``pass_rate``) and of every order (``of_orders``)."""
    row = counts.iloc[0]
    stages = [("whale orders", row["orders"]), ("passed stage 1 (whale)", row["passed_whale"]),
              ("passed stage 2 (trade)", row["passed_trade"]), ("copied (stage 3 and sizing)", row["copied"])]  # fmt: skip
    out = pd.DataFrame(stages, columns=["stage", "orders"])
    out["orders"] = out["orders"].astype("int64")
    prev = out["orders"].shift(1)
    out["pass_rate"] = np.where(prev > 0, out["orders"] / prev, np.nan)
    out.loc[0, "pass_rate"] = np.nan
    total = out.loc[0, "orders"]
    out["of_orders"] = out["orders"] / total if total else np.nan
    return out


#: the live decisions' stages in funnel order (live.decisions.stage_reached)
LIVE_STAGES = ("whale", "trade", "portfolio", "copied", "skipped_stale", "exit", "not_held")


def live_funnel(stages: pd.DataFrame) -> pd.DataFrame:
    """Live decisions by the stage they reached, in funnel order, with each stage's share of all decisions."""
    counts = dict(zip(stages["stage_reached"], stages["decisions"], strict=True)) if len(stages) else {}
    names = [*LIVE_STAGES, *sorted(set(counts) - set(LIVE_STAGES))]
    out = pd.DataFrame({"stage_reached": names, "decisions": [int(counts.get(n, 0)) for n in names]})
    total = out["decisions"].sum()
    out["share"] = out["decisions"] / total if total else np.nan
    return out


def latency_ms(decisions: pd.DataFrame) -> dict[str, float]:
    """p50 and p99 of frame → decision (ms) and of the fill's own time → decision (s) over these decisions."""

    def q(col: str, p: float, scale: float) -> float:
        v = pd.to_numeric(decisions.get(col, pd.Series(dtype=float)), errors="coerce").dropna()
        return float(np.quantile(v, p) * scale) if len(v) else math.nan

    return {"frame_p50_ms": q("frame_to_decision_s", 0.5, 1000), "frame_p99_ms": q("frame_to_decision_s", 0.99, 1000),
            "fill_p50_s": q("fill_to_decision_s", 0.5, 1), "fill_p99_s": q("fill_to_decision_s", 0.99, 1)}  # fmt: skip


def with_strike_reasons(scores: pd.DataFrame, strategy: dict) -> pd.DataFrame:
    """The latest scores with ``strike_reasons``: the thresholds this date's metrics cross
    (:func:`assets.risk.model.strike_reasons`, at the batch's strategy bounds)."""
    kw = {k: strategy[f"strike_{k}"] for k in ("min_sharpe", "max_drawdown", "min_consistency")
          if f"strike_{k}" in strategy}  # fmt: skip
    reasons = risk.strike_reasons(
        scores["sharpe"], -pd.to_numeric(scores["current_drawdown"]), scores["consistency"], **kw
    )
    return scores.assign(strike_reasons=reasons)


def positions_view(positions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(open, closed) paper positions, days as dates and P&L as USDC. ``pnl`` is realised for a closed
    position and unrealised (at the NAV's mark) for an open one."""
    p = positions.copy()
    for c in ("entry_day", "closed_day", "time_exit_day"):
        p[c.replace("_day", "_date")] = day_to_date(p[c])
    p["pnl"] = p["realised_pnl"].where(p["closed_day"].notna(), p["unrealised_pnl"])
    p["return"] = p["pnl"] / p["cost"]
    open_cols = ["key", "wallet", "question", "category", "entry_date", "entry_price", "shares_open", "cost", "mark",
                 "stop_level", "time_exit_date", "pnl", "return", "token_id"]  # fmt: skip
    closed_cols = ["key", "wallet", "question", "category", "entry_date", "entry_price", "closed_date",
                   "close_reason", "cost", "proceeds", "fees", "pnl", "return", "token_id"]  # fmt: skip
    is_open = p["closed_day"].isna()
    return p.loc[is_open, open_cols].reset_index(drop=True), p.loc[~is_open, closed_cols].reset_index(
        drop=True
    )


def short(wallet: str) -> str:
    """A wallet address as 0xabcd…1234 for a chart's axis; any other label unchanged."""
    is_address = isinstance(wallet, str) and wallet.startswith("0x") and len(wallet) > 12
    return f"{wallet[:6]}…{wallet[-4:]}" if is_address else str(wallet)
