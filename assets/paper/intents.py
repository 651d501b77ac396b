"""Order intents: the paper portfolio's fills as orders a user's own executor could place.

whalecopy holds no keys and places no orders. ``whalecopy intents`` writes each paper fill that a live copier
would have had to place (entries as BUY, mirrored sells, stops and time exits as SELL; settlements need no order)
as CSV or JSON, with a stable id so an executor can skip what it has already seen.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

INTENT_COLUMNS = ["intent_id", "created_at", "kind", "side", "token_id", "shares", "limit_price", "notional",
                  "copied_wallet"]  # fmt: skip
ORDER_KINDS = {"entry": "BUY", "whale_sell": "SELL", "trailing_stop": "SELL", "time_exit": "SELL"}

INTENTS_SQL = """
SELECT CAST(o.fill_key AS VARCHAR) AS whale_fill, f.kind, f.ts, f.token_id, f.shares, f.price,
       p.wallet AS copied_wallet
FROM analytics.paper_fills f
JOIN analytics.orders o USING (key)
LEFT JOIN analytics.paper_positions p USING (key)
WHERE f.kind <> 'settlement' AND f.ts >= ?
ORDER BY f.ts, f.key, f.kind, f.cash_after
"""


def intents_frame(fills: pd.DataFrame, taken=None) -> pd.DataFrame:
    """Intents from paper fills (``whale_fill, kind, ts, token_id, shares, price, copied_wallet``), in the book's
    order. The id is the whale's fill key (stable across runs), the kind and the time; a repeat of those (two
    mirrored sells of one position in one second) gets ``-2``, ``-3``, ... in order. ``taken(base)``: how many
    intents with that base id exist already (the live store's), so that the next is numbered after them."""
    f = fills[fills["kind"].isin(ORDER_KINDS)].copy()
    shares = f["shares"].abs()
    base = f["whale_fill"].astype(str) + "-" + f["kind"] + "-" + f["ts"].astype("int64").astype(str)
    n = base.groupby(base).cumcount()
    if taken is not None:
        n = n + base.map(taken).astype("int64")
    out = pd.DataFrame(
        {
            "intent_id": base.where(n == 0, base + "-" + (n + 1).astype(str)),
            "created_at": pd.to_datetime(f["ts"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kind": f["kind"],
            "side": f["kind"].map(ORDER_KINDS),
            "token_id": f["token_id"].astype(str),
            "shares": shares,
            "limit_price": f["price"].round(6),
            "notional": (shares * f["price"]).round(6),
            "copied_wallet": f["copied_wallet"],
        }
    )
    return out[INTENT_COLUMNS].reset_index(drop=True)


def write_intents(intents: pd.DataFrame, path: Path | None, fmt: str) -> str:
    """Write intents as ``csv`` or ``json`` (an object with the export time and a list) to ``path``, or return
    the text when ``path`` is None."""
    if fmt == "csv":
        text = intents.to_csv(index=False)
    elif fmt == "json":
        text = json.dumps(
            {
                "exported_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "intents": intents.to_dict("records"),
            },
            indent=1,
        )
    else:
        raise ValueError(f"format must be csv or json, got {fmt!r}")
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return text
