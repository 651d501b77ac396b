"""Wallets that are not traders to copy: market makers, airdrop farmers, bots and wash traders
(docs/metrics.md#wallet-flags).

Each flag is a rule on what a wallet did before an as-of date, with its evidence: the statistic, the bound it
reached, and the counts behind it. ``STATS_SQL`` computes every wallet's statistics at every as-of date in one
pass of SQL (each event counted from the first as-of date after it, then running totals), so a flag at date t
reads only what was known before t, as a score does; :func:`flag_wallets` applies the rules (pure, so the bounds
are tested on rows placed exactly on them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from assets.warehouse import EXACT_SCALE

#: a farmer's fill: a BUY at or above this price in the market's last ``FARM_HOURS`` before its scheduled end
FARM_PRICE = 0.95
FARM_HOURS = 72
#: a wash round trip: a SELL of the same token, size and price (to the tick) within this many seconds of a BUY
WASH_SECONDS = 1800
#: a bot's fill: at most this many dollars
BOT_FILL_USD = 100.0


@dataclass(frozen=True)
class FlagBounds:
    """The rules' bounds (docs/metrics.md#wallet-flags)."""

    #: market maker: trades both outcomes of at least this share of its markets, or splits/merges in at least
    #: ``maker_split_markets`` markets; and its resolved P&L within this share of its volume; over at least
    #: ``maker_min_markets`` markets (a wallet of one or two markets is no evidence of making markets)
    maker_min_markets: int = 5
    maker_two_sided_share: float = 0.5
    maker_sell_share: float = 0.3
    maker_split_markets: int = 3
    maker_pnl_share: float = 0.03
    #: farmer: at least this share of its BUY dollars are farm fills, and at least ``farmer_min_fills`` of them
    farmer_share: float = 0.5
    farmer_min_fills: int = 10
    #: bot: at least this many fills, at least ``bot_small_share`` of them of ``BOT_FILL_USD`` or less
    bot_min_fills: int = 300
    bot_small_share: float = 0.5
    #: wash: at least this share of its volume in round trips, over at least ``wash_min_fills`` fills
    wash_share: float = 0.5
    wash_min_fills: int = 10


FLAGS = ("market_maker", "farmer", "bot", "wash")

_FARM = f"side = 'BUY' AND price >= {FARM_PRICE} AND end_ts - ts BETWEEN 0 AND {FARM_HOURS * 3600}"
_EXACT = f"DECIMAL(38, {EXACT_SCALE})"

#: every statistic the rules read, each a running total of events (a fill, a round trip's SELL, a wallet's first
#: fill in a market, its first fill of the market's second outcome, its first split or merge there, a position's
#: resolution)
STATS = ("n_fills", "n_small", "volume", "buy_volume", "sell_volume", "n_farm", "farm_volume", "wash_volume",
         "n_markets", "two_sided_markets", "split_markets", "resolved_pnl")  # fmt: skip
_COUNTS = {"n_fills", "n_small", "n_farm", "n_markets", "two_sided_markets", "split_markets"}

_WASH = f"""EXISTS (
        SELECT 1 FROM f b WHERE b.wallet = s.wallet AND b.token_id = s.token_id AND b.side = 'BUY'
            AND b.size = s.size AND abs(b.price - s.price) < 0.0005 AND s.ts - b.ts BETWEEN 0 AND {WASH_SECONDS})"""
_BUCKET_SUMS = ", ".join(f"sum(CAST(e.{s} AS {_EXACT})) AS {s}" for s in STATS)
_RUNNING = ", ".join(
    f"CAST(coalesce(sum(b.{s}) OVER w, 0) AS {'BIGINT' if s in _COUNTS else 'DOUBLE'}) AS {s}" for s in STATS
)

#: per (as_of, wallet), from the marts: what the rules read at each date of ``$as_of`` (a DATE list, bound) from the
#: events strictly before it (an as-of date is UTC midnight, as a score's). Sums are exact (DECIMAL), so two runs
#: give the same bits; a wallet has a row at every date from the first that sees it.
STATS_SQL = f"""
WITH grid AS (
    SELECT as_of, epoch(CAST(as_of AS TIMESTAMP)) AS t FROM (SELECT UNNEST($as_of::DATE[]) AS as_of)
),
f AS (
    SELECT f.wallet, f.condition_id, f.token_id, f.side, f.size, f.price, f.notional, epoch(f.traded_at) AS ts,
           epoch(m.end_date) AS end_ts
    FROM marts.fct_fills f LEFT JOIN marts.dim_markets m USING (condition_id)
),
firsts AS (  -- a wallet's first fill of each token, numbered within its market
    SELECT wallet, condition_id, ts, row_number() OVER (PARTITION BY wallet, condition_id ORDER BY ts) AS nth
    FROM (SELECT wallet, condition_id, token_id, min(ts) AS ts FROM f GROUP BY ALL)
),
events AS (  -- one row per event, its statistics as columns (a column an event does not move is NULL)
    SELECT wallet, ts, 1 AS n_fills, CAST(notional <= {BOT_FILL_USD} AS INTEGER) AS n_small, notional AS volume,
           CASE WHEN side = 'BUY' THEN notional END AS buy_volume,
           CASE WHEN side = 'SELL' THEN notional END AS sell_volume,
           CAST({_FARM} AS INTEGER) AS n_farm, CASE WHEN {_FARM} THEN notional END AS farm_volume
    FROM f
    UNION ALL BY NAME  -- each SELL matched to a BUY of the same token, size and price within {WASH_SECONDS} s before it
    SELECT s.wallet, s.ts, 2 * s.notional AS wash_volume FROM f s WHERE s.side = 'SELL' AND {_WASH}
    UNION ALL BY NAME
    SELECT wallet, ts, CAST(nth = 1 AS INTEGER) AS n_markets, CAST(nth = 2 AS INTEGER) AS two_sided_markets
    FROM firsts WHERE nth <= 2
    UNION ALL BY NAME
    SELECT wallet, min(epoch(activity_at)) AS ts, 1 AS split_markets FROM marts.fct_activity
    WHERE type IN ('SPLIT', 'MERGE') AND booked_as = 'legs' GROUP BY wallet, condition_id
    UNION ALL BY NAME  -- a resolved position's P&L is known once its market resolved and its last fill was made
    SELECT wallet, epoch(greatest(coalesce(resolved_at, last_fill_at), last_fill_at)) AS ts, pnl_gross AS resolved_pnl
    FROM marts.fct_positions WHERE is_resolved
),
bucketed AS (  -- each event counted from the first as-of date after it
    SELECT e.wallet, g.as_of, {_BUCKET_SUMS}
    FROM events e ASOF JOIN grid g ON e.ts < g.t
    GROUP BY ALL
),
dense AS (
    SELECT w.wallet, g.as_of
    FROM (SELECT wallet, min(as_of) AS first FROM bucketed GROUP BY 1) w JOIN grid g ON g.as_of >= w.first
)
SELECT d.as_of, d.wallet, {_RUNNING}
FROM dense d LEFT JOIN bucketed b USING (wallet, as_of)
WINDOW w AS (PARTITION BY d.wallet ORDER BY d.as_of ROWS UNBOUNDED PRECEDING)
ORDER BY d.as_of, d.wallet
"""

#: a wallet's flags in one text ("bot, wash")
_FLAGS_TEXT = "string_agg(flag, ', ' ORDER BY flag) AS flags"
#: each wallet's flags at the latest date: how the summary and the dashboard show them
FLAGS_BY_WALLET_SQL = f"SELECT wallet, {_FLAGS_TEXT} FROM analytics.wallet_flags GROUP BY 1"
#: each (as_of, wallet) flagged at that date: what stage 1, the universe and the backtest read beside the score of
#: the same date
FLAGS_AT_SQL = f"SELECT as_of, wallet, {_FLAGS_TEXT} FROM analytics.wallet_flags_history GROUP BY 1, 2"

#: per flag, the wallets flagged at the latest score date with a WQS of at least ``?`` (the universe's bound) that
#: the universe left out (none when it keeps flagged wallets)
FLAGGED_LEFT_OUT_SQL = """
SELECT h.flag, count(*) FROM analytics.whale_scores s JOIN analytics.wallet_flags_history h USING (as_of, wallet)
WHERE s.as_of = (SELECT max(as_of) FROM analytics.whale_scores) AND s.wqs >= ?
  AND s.wallet NOT IN (SELECT wallet FROM analytics.whale_universe)
GROUP BY 1 ORDER BY 1
"""

#: ``FLAGS_AT_SQL``'s shape with no row: for a warehouse written before the flag history existed
NO_FLAGS_SQL = "SELECT NULL::DATE AS as_of, NULL::VARCHAR AS wallet, NULL::VARCHAR AS flags WHERE false"

FLAG_COLUMNS = ["as_of", "wallet", "flag", "statistic", "value", "bound", "evidence"]


def _fmt(x: pd.Series, spec: str) -> pd.Series:
    """``x`` formatted element-wise (evidence text for the flagged rows only)."""
    return x.map(("{:" + spec + "}").format)


def flag_wallets(stats: pd.DataFrame, bounds: FlagBounds = FlagBounds()) -> pd.DataFrame:
    """One row per (as_of, wallet, flag) that holds, with its evidence (``FLAG_COLUMNS``), from ``STATS_SQL``'s
    rows. Every bound is inclusive: a wallet exactly on it is flagged."""
    s = stats.reset_index(drop=True)
    vol, n = s["volume"].to_numpy(float), s["n_fills"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        two_sided = np.where(s["n_markets"] > 0, s["two_sided_markets"] / s["n_markets"], 0.0)
        sell_share = np.where(vol > 0, s["sell_volume"] / vol, 0.0)
        pnl_share = np.where(vol > 0, np.abs(s["resolved_pnl"]) / vol, np.inf)
        farm_share = np.where(s["buy_volume"] > 0, s["farm_volume"] / s["buy_volume"], 0.0)
        small_share = np.where(n > 0, s["n_small"] / n, 0.0)
        wash_share = np.where(vol > 0, np.minimum(s["wash_volume"] / vol, 1.0), 0.0)
    s = s.assign(sell_share=sell_share)
    if "as_of" not in s:
        s["as_of"] = None
    b = bounds
    two_way = (s["split_markets"] >= b.maker_split_markets) | (
        (two_sided >= b.maker_two_sided_share) & (sell_share >= b.maker_sell_share)
    )
    is_bot = (s["n_fills"] >= b.bot_min_fills) & (small_share >= b.bot_small_share)
    is_wash = (wash_share >= b.wash_share) & (s["n_fills"] >= b.wash_min_fills)

    def usd(r: pd.DataFrame, c: str) -> pd.Series:
        return "$" + _fmt(r[c], ",.0f")

    def num(r: pd.DataFrame, c: str) -> pd.Series:
        return _fmt(r[c], ",")

    rules = {
        # a bot's or a wash trader's flow is two-sided too: they are that, not market makers
        "market_maker": (
            two_way
            & (pnl_share <= b.maker_pnl_share)
            & (s["n_markets"] >= b.maker_min_markets)
            & ~is_bot
            & ~is_wash,
            "|resolved P&L| / volume",
            pnl_share,
            b.maker_pnl_share,
            lambda r: (
                "resolved P&L " + usd(r, "resolved_pnl") + " on " + usd(r, "volume") + " of fills; splits "
                "or merges in "
                + num(r, "split_markets")
                + " markets, both outcomes traded in "
                + num(r, "two_sided_markets")
                + " of "
                + num(r, "n_markets")
                + ", sells "
                + _fmt(r["sell_share"], ".0%")
                + " of volume"
            ),
        ),
        "farmer": (
            (farm_share >= b.farmer_share) & (s["n_farm"] >= b.farmer_min_fills),
            f"share of BUY dollars at {FARM_PRICE:.2f}+ in a market's last {FARM_HOURS} h",
            farm_share,
            b.farmer_share,
            lambda r: (
                num(r, "n_farm")
                + " such buys, "
                + usd(r, "farm_volume")
                + " of "
                + usd(r, "buy_volume")
                + " bought"
            ),
        ),
        "bot": (
            is_bot,
            f"share of fills of ${BOT_FILL_USD:,.0f} or less",
            small_share,
            b.bot_small_share,
            lambda r: num(r, "n_small") + " of " + num(r, "n_fills") + " fills",
        ),
        "wash": (
            is_wash,
            f"share of volume in round trips (same token, size and price within {WASH_SECONDS // 60} min)",
            wash_share,
            b.wash_share,
            lambda r: (
                usd(r, "wash_volume")
                + " of "
                + usd(r, "volume")
                + " in round trips over "
                + num(r, "n_fills")
                + " fills"
            ),
        ),
    }
    parts = []
    for flag, (hit, statistic, value, bound, evidence) in rules.items():
        mask = np.asarray(hit, dtype=bool)
        r = s[mask]
        parts.append(pd.DataFrame({
            "as_of": r["as_of"], "wallet": r["wallet"], "flag": flag, "statistic": statistic,
            "value": np.asarray(value, dtype=float)[mask], "bound": float(bound),
            "evidence": evidence(r) if len(r) else pd.Series([], dtype=object),
        }))  # fmt: skip
    out = pd.concat(parts, ignore_index=True)[FLAG_COLUMNS]
    return out.sort_values(["as_of", "wallet", "flag"], ignore_index=True, na_position="first")
