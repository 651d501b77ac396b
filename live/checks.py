"""The live loop's health, as pure functions of its tables (the Dagster checks and sensor, and the CLI, use them).

- **coverage**: of the tracked wallets' fills, the share RTDS delivered (the polls found the rest: RTDS missed
  them, or was down). Low coverage is the silent stall the watchdog exists for;
- **open loss events**: stretches the loop could not prove it saw (``live/model.py:LOSS_REASONS``), open until a
  batch whose data covers them is loaded;
- **latency budget**: p99 of the time from the frame that released a decision to the decision committed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd

from .model import percentile


class CheckOutcome(NamedTuple):
    passed: bool
    metadata: dict
    description: str


def coverage(fills: pd.DataFrame, minimum: float) -> CheckOutcome:
    """``fills``: ``live.fills`` rows (``sources``). Passes with no fills yet (nothing to cover)."""
    if fills.empty:
        return CheckOutcome(True, {"tracked_fills": 0}, "no tracked fill yet")
    sources = fills["sources"].fillna("")
    rtds = sources.str.contains("rtds")
    poll = sources.str.contains("poll")
    n = len(fills)
    share = float(rtds.sum()) / n
    meta = {"tracked_fills": n, "rtds": int(rtds.sum()), "poll": int(poll.sum()),
            "poll_only": int((poll & ~rtds).sum()), "rtds_only": int((rtds & ~poll).sum()),
            "snapshot": int(sources.str.contains("snapshot").sum()), "rtds_share": round(share, 4),
            "minimum": minimum}  # fmt: skip
    snapshot_only = int((sources == "snapshot").sum())
    if snapshot_only == n:
        return CheckOutcome(True, meta, "only the snapshot's fills so far")
    share = float(rtds.sum()) / (n - snapshot_only)
    meta["rtds_share"] = round(share, 4)
    return CheckOutcome(share >= minimum, meta,
                        f"RTDS delivered {share:.1%} of the tracked fills (polls found the rest); bound {minimum:.0%}")  # fmt: skip


def open_losses(losses: pd.DataFrame) -> CheckOutcome:
    open_ = losses[losses["closed_at"].isna()] if len(losses) else losses
    meta = {"loss_events": len(losses), "open": len(open_)}
    if len(open_):
        meta["reasons"] = open_["reason"].value_counts().to_dict()
        first = open_.sort_values("start_ts").iloc[0]
        return CheckOutcome(
            False, meta, f"{len(open_)} open loss events, the first {first['reason']}: {first['detail']}"
        )
    return CheckOutcome(True, meta, "no open loss event")


def latency(decisions: pd.DataFrame, budget_ms: float, last: int = 1000) -> CheckOutcome:
    """p99 of ``frame_to_decision_s`` over the last ``last`` decisions against ``budget_ms``."""
    if decisions.empty:
        return CheckOutcome(True, {"decisions": 0}, "no decision yet")
    recent = decisions.sort_values("seq").tail(last)
    ms = (pd.to_numeric(recent["frame_to_decision_s"], errors="coerce") * 1000).dropna().tolist()
    e2e = pd.to_numeric(recent["fill_to_decision_s"], errors="coerce").dropna().tolist()
    p50, p99 = percentile(ms, 50), percentile(ms, 99)
    meta = {"decisions": len(recent), "frame_to_decision_p50_ms": _r(p50), "frame_to_decision_p99_ms": _r(p99),
            "fill_to_decision_p50_s": _r(percentile(e2e, 50)), "fill_to_decision_p99_s": _r(percentile(e2e, 99)),
            "budget_ms": budget_ms}  # fmt: skip
    ok = not math.isfinite(p99) or p99 <= budget_ms
    return CheckOutcome(ok, meta, f"p99 frame->decision {p99:.1f} ms (budget {budget_ms:g} ms)")


def _r(x: float):
    return round(x, 3) if math.isfinite(x) else None
