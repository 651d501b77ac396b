"""Wallets that are not traders to copy: market makers, airdrop farmers, bots and wash traders
(docs/metrics.md#wallet-flags).

Each flag is a rule on a wallet's whole history in the marts, with its evidence: the statistic, the bound it
crossed, and the counts behind it. ``STATS_SQL`` computes the statistics in one pass of SQL; :func:`flag_wallets`
applies the rules (pure, so the bounds are tested on rows placed exactly on them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from assets.warehouse import exact_sum

#: a farmer's fill: a BUY at or above this price in the market's last ``FARM_HOURS`` before its scheduled end
FARM_PRICE = 0.95
FARM_HOURS = 72
#: a wash round trip: a SELL of the same token, size and price (to the tick) within this many seconds of a BUY
WASH_SECONDS = 1800


@dataclass(frozen=True)
class FlagBounds:
    """The rules' bounds (docs/metrics.md#wallet-flags)."""

    #: market maker: trades both outcomes of at least this share of its markets, or splits/merges in at least
    #: ``maker_split_markets`` markets; and its resolved P&L within this share of its volume
    maker_two_sided_share: float = 0.5
    maker_sell_share: float = 0.3
    maker_split_markets: int = 3
    maker_pnl_share: float = 0.03
    #: farmer: at least this share of its BUY dollars are farm fills, and at least ``farmer_min_fills`` of them
    farmer_share: float = 0.5
    farmer_min_fills: int = 10
    #: bot: at least this many fills, with a median fill of at most this many dollars
    bot_min_fills: int = 300
    bot_median_usd: float = 100.0
    #: wash: at least this share of its volume in round trips, over at least ``wash_min_fills`` fills
    wash_share: float = 0.5
    wash_min_fills: int = 10


FLAGS = ("market_maker", "farmer", "bot", "wash")

#: per wallet, from the marts: what the rules read
_FARM = f"side = 'BUY' AND price >= {FARM_PRICE} AND end_ts - ts BETWEEN 0 AND {FARM_HOURS * 3600}"

#: per wallet, from the marts: what the rules read (sums exact, so two runs give the same bits: ``exact_sum``)
STATS_SQL = f"""
WITH f AS (
    SELECT f.wallet, f.condition_id, f.token_id, f.side, f.size, f.price, f.notional, epoch(f.traded_at) AS ts,
           epoch(m.end_date) AS end_ts
    FROM marts.fct_fills f LEFT JOIN marts.dim_markets m USING (condition_id)
),
per_wallet AS (
    SELECT wallet, count(*) AS n_fills, {exact_sum("notional")} AS volume, median(notional) AS median_notional,
           coalesce({exact_sum("CASE WHEN side = 'BUY' THEN notional ELSE 0 END")}, 0) AS buy_volume,
           coalesce({exact_sum("CASE WHEN side = 'SELL' THEN notional ELSE 0 END")}, 0) AS sell_volume,
           count(*) FILTER (WHERE {_FARM}) AS n_farm,
           coalesce({exact_sum(f"CASE WHEN {_FARM} THEN notional ELSE 0 END")}, 0) AS farm_volume
    FROM f GROUP BY 1
),
markets AS (
    SELECT wallet, count(*) AS n_markets, count(*) FILTER (WHERE n_tokens > 1) AS two_sided_markets
    FROM (SELECT wallet, condition_id, count(DISTINCT token_id) AS n_tokens FROM f GROUP BY 1, 2) GROUP BY 1
),
round_trips AS (
    -- each SELL matched to a BUY of the same token, size and price within {WASH_SECONDS} s before it
    SELECT s.wallet, 2 * {exact_sum("s.notional")} AS wash_volume
    FROM f s
    WHERE s.side = 'SELL' AND EXISTS (
        SELECT 1 FROM f b WHERE b.wallet = s.wallet AND b.token_id = s.token_id AND b.side = 'BUY'
            AND b.size = s.size AND abs(b.price - s.price) < 0.0005 AND s.ts - b.ts BETWEEN 0 AND {WASH_SECONDS})
    GROUP BY 1
),
positions AS (
    SELECT wallet, coalesce({exact_sum("CASE WHEN is_resolved THEN pnl_gross ELSE 0 END")}, 0) AS resolved_pnl,
           count(DISTINCT condition_id) FILTER (WHERE shares_split > 0 OR shares_merged > 0) AS split_markets
    FROM marts.fct_positions GROUP BY 1
)
SELECT w.*, m.n_markets, m.two_sided_markets, coalesce(r.wash_volume, 0) AS wash_volume,
       coalesce(p.resolved_pnl, 0) AS resolved_pnl, coalesce(p.split_markets, 0) AS split_markets
FROM per_wallet w
LEFT JOIN markets m USING (wallet)
LEFT JOIN round_trips r USING (wallet)
LEFT JOIN positions p USING (wallet)
ORDER BY wallet
"""

#: each flagged wallet's flags in one text ("bot, wash"): how the summary and the dashboard show them
FLAGS_BY_WALLET_SQL = (
    "SELECT wallet, string_agg(flag, ', ' ORDER BY flag) AS flags FROM analytics.wallet_flags GROUP BY 1"
)

FLAG_COLUMNS = ["wallet", "flag", "statistic", "value", "bound", "evidence"]


def flag_wallets(stats: pd.DataFrame, bounds: FlagBounds = FlagBounds()) -> pd.DataFrame:
    """One row per (wallet, flag) that holds, with its evidence (``FLAG_COLUMNS``), from ``STATS_SQL``'s rows.
    Every bound is inclusive: a wallet exactly on it is flagged."""
    s = stats
    vol = s["volume"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        two_sided = np.where(s["n_markets"] > 0, s["two_sided_markets"] / s["n_markets"], 0.0)
        sell_share = np.where(vol > 0, s["sell_volume"] / vol, 0.0)
        pnl_share = np.where(vol > 0, np.abs(s["resolved_pnl"]) / vol, np.inf)
        farm_share = np.where(s["buy_volume"] > 0, s["farm_volume"] / s["buy_volume"], 0.0)
        wash_share = np.where(vol > 0, np.minimum(s["wash_volume"] / vol, 1.0), 0.0)
    b = bounds
    two_way = (s["split_markets"] >= b.maker_split_markets) | (
        (two_sided >= b.maker_two_sided_share) & (sell_share >= b.maker_sell_share)
    )
    is_bot = (s["n_fills"] >= b.bot_min_fills) & (s["median_notional"] <= b.bot_median_usd)
    is_wash = (wash_share >= b.wash_share) & (s["n_fills"] >= b.wash_min_fills)
    rules = {
        # a bot's or a wash trader's flow is two-sided too: they are that, not market makers
        "market_maker": (
            two_way & (pnl_share <= b.maker_pnl_share) & ~is_bot & ~is_wash,
            "|resolved P&L| / volume",
            pnl_share,
            b.maker_pnl_share,
            lambda r, i: (
                f"resolved P&L ${r.resolved_pnl:,.0f} on ${r.volume:,.0f} of fills; splits or merges in "
                f"{r.split_markets} markets, both outcomes traded in {r.two_sided_markets} of {r.n_markets}, "
                f"sells {sell_share[i]:.0%} of volume"
            ),
        ),
        "farmer": (
            (farm_share >= b.farmer_share) & (s["n_farm"] >= b.farmer_min_fills),
            f"share of BUY dollars at {FARM_PRICE:.2f}+ in a market's last {FARM_HOURS} h",
            farm_share,
            b.farmer_share,
            lambda r, i: f"{r.n_farm} such buys, ${r.farm_volume:,.0f} of ${r.buy_volume:,.0f} bought",
        ),
        "bot": (
            is_bot,
            "median fill ($)",
            s["median_notional"].to_numpy(float),
            b.bot_median_usd,
            lambda r, i: f"{r.n_fills:,} fills, median ${r.median_notional:,.2f}",
        ),
        "wash": (
            is_wash,
            f"share of volume in round trips (same token, size and price within {WASH_SECONDS // 60} min)",
            wash_share,
            b.wash_share,
            lambda r, i: f"${r.wash_volume:,.0f} of ${r.volume:,.0f} in round trips over {r.n_fills:,} fills",
        ),
    }
    rows = []
    for flag, (hit, statistic, value, bound, evidence) in rules.items():
        idx = np.flatnonzero(np.asarray(hit, dtype=bool))
        for i in idx:
            r = s.iloc[i]
            rows.append((r.wallet, flag, statistic, float(value[i]), float(bound), evidence(r, i)))
    return pd.DataFrame(rows, columns=FLAG_COLUMNS)
