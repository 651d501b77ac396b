"""Polymarket's realised P&L per position against the warehouse's (assets/transform/reconcile.py)."""

import pandas as pd
import pytest

from assets.transform.reconcile import STATUSES, TOLERANCE, polymarket_frame, reconcile
from tests.conftest import load_fixture

W = "0x" + "a" * 40


def theirs(token, pnl, *, closed=True, bought=100.0, cur=1.0, size=0.0):
    return {"proxyWallet": W, "asset": token, "conditionId": "0x" + "c" * 64, "realizedPnl": pnl,
            "totalBought": bought, "avgPrice": 0.4, "curPrice": cur, "size": size, "title": "t", "outcome": "Yes",
            "_closed": closed}  # fmt: skip


def ours(token, *, pnl=60.0, at_sells=0.0, resolved=True, shares_in=100.0, oversold=False, converted=False):
    return {"wallet": W, "token_id": token, "condition_id": "0x" + "c" * 64, "pnl_gross": pnl,
            "realised_at_sells": at_sells, "is_resolved": resolved, "has_negative_shares": oversold,
            "shares_in": shares_in, "net_shares": 0.0, "converted": converted}  # fmt: skip


def run(their_rows, our_rows):
    frames = [polymarket_frame([{k: v for k, v in r.items() if k != "_closed"}], closed=r["_closed"])
              for r in their_rows]  # fmt: skip
    return reconcile(pd.concat(frames, ignore_index=True), pd.DataFrame(our_rows))


def test_each_status_with_its_reason():
    out = run(
        [
            theirs("1", 60.0),  # a closed resolved position: pnl_gross
            theirs("2", 60.0),  # nothing in the warehouse
            theirs("3", 75.0, bought=150.0),  # Polymarket saw 150 come in, the warehouse 100
            theirs("4", 60.0),
            theirs("5", 60.0),  # resolved for Polymarket, not in raw.markets
            theirs("6", 10.0),
            theirs("7", 61.0),  # everything there, and a different figure
            theirs("8", 5.0, closed=False, size=50.0, cur=0.55),  # open: what the sells realised
        ],
        [
            ours("1"), ours("3"), ours("4", oversold=True, pnl=80.0), ours("5", resolved=False, at_sells=0.0),
            ours("6", converted=True), ours("7"), ours("8", pnl=999.0, at_sells=5.0, resolved=False),
        ],
    )  # fmt: skip
    status = dict(zip(out["token_id"], out["status"], strict=True))
    assert status == {"1": "match", "2": "no_fills", "3": "missing_buys", "4": "oversold",
                      "5": "missing_resolution", "6": "conversion", "7": "mismatch", "8": "match"}  # fmt: skip
    assert set(out["why"]) == {STATUSES[s] for s in status.values()}
    assert out.loc[out["token_id"] == "7", "difference"].item() == pytest.approx(-1.0)


def test_a_quarantined_fill_and_a_missing_sell_are_named():
    lost = pd.DataFrame({"wallet": [W], "token_id": ["1"]})
    out = reconcile(
        pd.concat([polymarket_frame([{k: v for k, v in theirs(t, 60.0, closed=False, size=40.0, cur=0.5).items()
                                      if k != "_closed"}], closed=False) for t in ("1", "2")], ignore_index=True),
        pd.DataFrame([{**ours("1", at_sells=10.0, resolved=False), "net_shares": 40.0},
                      {**ours("2", at_sells=10.0, resolved=False), "net_shares": 50.0}]),
        lost,
    )  # fmt: skip
    assert out["status"].tolist() == ["quarantined_fill", "missing_sells"]


def test_the_tolerance_boundary():
    bound = TOLERANCE * (1 + 100.0)
    out = run([theirs("1", 100.0), theirs("2", 100.0)], [ours("1", pnl=100.0 + bound * 0.999),
                                                         ours("2", pnl=100.0 + bound * 1.001)])  # fmt: skip
    assert out["status"].tolist() == ["match", "mismatch"]


def test_the_recorded_positions_name_the_input_the_warehouse_lacks():
    closed = polymarket_frame(load_fixture("pscanner_closed_positions.json"), closed=True)
    open_ = polymarket_frame(load_fixture("pscanner_positions.json"), closed=False)
    out = reconcile(pd.concat([closed, open_], ignore_index=True), pd.DataFrame([ours("none")]))
    assert len(out) == 10 and set(out["status"]) == {"no_fills"}
    # the recorded example: 1.5M shares at 0.27 that won: 1,095,000 realised
    row = out[out["total_bought"] == 1_500_000].iloc[0]
    assert row["realized_pnl"] == 1_095_000 and row["closed"]


def test_a_row_without_its_wallet_token_or_pnl_is_an_error_naming_it():
    row = load_fixture("pscanner_closed_positions.json")[0]
    with pytest.raises(ValueError, match="closed-positions row 1: no realizedPnl"):
        polymarket_frame([row, {k: v for k, v in row.items() if k != "realizedPnl"}], closed=True)
