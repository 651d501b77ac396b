"""Polymarket's own P&L for a wallet's positions against the warehouse's: what agrees, and where not, which input
the warehouse lacks (docs/metrics.md#reconciling-with-polymarket).

Polymarket's ``/closed-positions`` and ``/positions`` rows carry ``realizedPnl`` per outcome token, kept by its
P&L subgraph under average cost: a fill or a split (each side at $0.50) buys, a fill, a merge (each side at
$0.50) or a redemption (every share held, at the payout) sells and realises ``size x (price - average)``. The
warehouse books the same events the same way (``int_position_fills``) except redemptions, which it does not need:
a resolved position's held shares count at their payout whether or not they were redeemed. So:

- a closed position (none held) of a resolved market: Polymarket's ``realizedPnl`` is ``fct_positions.pnl_gross``;
- any other position: Polymarket's ``realizedPnl`` is what sells, merges and conversions realised,
  ``fct_positions.realised_at_sells`` (a redeemable position Polymarket lists still holds its shares).

Where they differ, :func:`reconcile` names the first missing input it can see (the order of :data:`STATUSES`).
Pure: the two sides come in as frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: a position's outcome, in the order the checks run (the first that applies is the row's status)
STATUSES: dict[str, str] = {
    "match": "the warehouse's realised P&L equals Polymarket's (to 1e-6 relative)",
    "quarantined_fill": "a fill of this position is in raw.quarantine (a malformed row the gate kept out)",
    "no_fills": "the warehouse holds no fill or leg of this position (fills outside its history or its wallets)",
    "missing_buys": "the warehouse saw fewer shares come in than Polymarket's totalBought (fills before the "
    "warehouse's history, or splits not in raw.activity)",
    "missing_sells": "the warehouse holds more shares than Polymarket says are held (a sell or a merge it lacks)",
    "oversold": "the warehouse saw more shares go out than come in (a split or a transfer it does not hold)",
    "missing_resolution": "Polymarket prices the position at 0 or 1 as resolved; raw.markets has no resolution",
    "conversion": "the position took part in a NegRisk conversion, booked by whalecopy's convention (the wallet's "
    "total is exact, the share between positions differs from Polymarket's)",
    "mismatch": "the inputs look complete and the figures differ: a defect to look into",
}

TOLERANCE = 1e-6  # relative, on 1 + |Polymarket's figure|: their books truncate to 1e-6 USDC

POSITION_COLUMNS = {  # Polymarket's field -> the frame's column
    "proxyWallet": "wallet",
    "asset": "token_id",
    "conditionId": "condition_id",
    "realizedPnl": "realized_pnl",
    "totalBought": "total_bought",
    "avgPrice": "avg_price",
    "curPrice": "cur_price",
    "size": "size",
    "title": "title",
    "outcome": "outcome",
}

#: the (wallet, token) of every quarantined fill whose record names them (the Data API's fields)
QUARANTINED_SQL = """
SELECT DISTINCT lower(json_extract_string(record, '$.proxyWallet')) AS wallet,
       json_extract_string(record, '$.asset') AS token_id
FROM raw.quarantine
WHERE entity = 'trades' AND json_valid(record) AND lower(json_extract_string(record, '$.proxyWallet')) IN (
    SELECT UNNEST($wallets::VARCHAR[]))
"""

#: what the warehouse's side needs, as ``ours_sql`` reads it from marts.fct_positions
OURS_SQL = """
SELECT wallet, token_id, condition_id, pnl_gross, realised_at_sells, is_resolved, has_negative_shares,
       shares_bought + shares_split + shares_converted_in AS shares_in, net_shares,
       shares_converted_in + shares_converted_out > 0 AS converted
FROM marts.fct_positions
WHERE wallet IN (SELECT UNNEST($wallets::VARCHAR[]))
"""


def polymarket_frame(rows: list[dict], *, closed: bool) -> pd.DataFrame:
    """Polymarket's position rows (``/closed-positions`` when ``closed``, else ``/positions``) as a frame; a
    closed position holds no shares. Raises ``ValueError`` naming a row without a wallet, token or realizedPnl."""
    for i, row in enumerate(rows):
        missing = [
            k
            for k in ("proxyWallet", "asset", "realizedPnl")
            if not isinstance(row, dict) or row.get(k) in (None, "")
        ]
        if missing:
            kind = "closed-positions" if closed else "positions"
            raise ValueError(f"{kind} row {i}: no {', '.join(missing)}")
    frame = (
        pd.DataFrame.from_records(rows)
        .reindex(columns=list(POSITION_COLUMNS))
        .rename(columns=POSITION_COLUMNS)
    )
    frame["wallet"] = frame["wallet"].astype("string").str.lower().astype(object)
    frame["token_id"] = frame["token_id"].astype("string").astype(object)
    for col in ("realized_pnl", "total_bought", "avg_price", "cur_price", "size"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    if closed:
        frame["size"] = 0.0
    frame["closed"] = closed
    return frame


def reconcile(
    theirs: pd.DataFrame, ours: pd.DataFrame, quarantined: pd.DataFrame | None = None, *,
    share_epsilon: float = 1e-6,
) -> pd.DataFrame:  # fmt: skip
    """One row per Polymarket position: its ``realized_pnl``, the warehouse's figure for it (``ours``, see the
    module docstring), their difference and a ``status`` from :data:`STATUSES` with its ``why``.

    ``theirs``: :func:`polymarket_frame` rows; ``ours``: the rows of :data:`OURS_SQL` for their wallets;
    ``quarantined``: the (wallet, token_id) of :data:`QUARANTINED_SQL`."""
    j = theirs.merge(ours, on=["wallet", "token_id"], how="left", suffixes=("", "_ours"), indicator=True)
    if quarantined is None:
        quarantined = pd.DataFrame({"wallet": [], "token_id": []}, dtype=object)
    lost = (
        j[["wallet", "token_id"]]
        .merge(quarantined[["wallet", "token_id"]].drop_duplicates().assign(_lost=True), how="left")["_lost"]
        .eq(True)
        .to_numpy()
    )
    held_none = j["closed"].to_numpy(bool) | (j["size"].fillna(0).to_numpy() <= share_epsilon)
    resolved = j["is_resolved"].eq(True).to_numpy()
    figure = np.where(held_none & resolved, j["pnl_gross"], j["realised_at_sells"]).astype(float)
    diff = figure - j["realized_pnl"].to_numpy(float)
    close = np.abs(diff) <= TOLERANCE * (1.0 + np.abs(j["realized_pnl"].to_numpy(float)))
    found = (j["_merge"] == "both").to_numpy()
    said_resolved = np.isin(j["cur_price"].to_numpy(float), (0.0, 1.0))
    held_there = j["size"].fillna(0).to_numpy(float)
    checks = [
        ("match", found & close),
        ("quarantined_fill", lost),
        ("no_fills", ~found),
        (
            "missing_buys",
            found
            & (
                j["shares_in"].fillna(0).to_numpy(float)
                < j["total_bought"].fillna(0).to_numpy(float) - share_epsilon
            ),
        ),  # fmt: skip
        (
            "missing_sells",
            found
            & (j["net_shares"].fillna(0).to_numpy(float) > held_there + share_epsilon)
            & ~(j["closed"].to_numpy(bool) & resolved),
        ),  # fmt: skip
        ("oversold", found & j["has_negative_shares"].eq(True).to_numpy()),
        ("missing_resolution", found & j["closed"].to_numpy(bool) & said_resolved & ~resolved),
        ("conversion", found & j["converted"].eq(True).to_numpy()),
    ]
    status = np.select([m for _, m in checks], [s for s, _ in checks], default="mismatch")
    out = j[["wallet", "token_id", "condition_id", "title", "outcome", "closed", "total_bought",
             "realized_pnl"]].copy()  # fmt: skip
    out["ours"] = np.where(found, figure, np.nan)
    out["difference"] = np.where(found, diff, np.nan)
    out["status"] = status
    out["why"] = [STATUSES[s] for s in status]
    return out.reset_index(drop=True)


def summary_line(result: pd.DataFrame) -> str:
    counts = result["status"].value_counts()
    parts = [f"{counts[s]} {s}" for s in STATUSES if s in counts]
    return f"{len(result)} positions: " + (", ".join(parts) if parts else "none")
