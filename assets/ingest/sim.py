"""A simulated Polymarket: deterministic per seed, vectorised, with a hidden ground truth.

The world (ARCHITECTURE.md §4):

- **Markets** are binary. Each has a latent Brownian path W on an hourly grid from its open to its close T, and
  its public price is the probability of YES given W so far: ``p_t = Φ(W_t / (σ·sqrt(T − t)))``. That is a
  martingale that ends at 1 (W_T > 0, YES wins) or 0, so a market priced p resolves YES with probability p.
  A few resolve 50-50; a few are closed but still proposed or disputed at the end of the history.
- **Wallets** have a type: ``informed`` (sees the price ``lookahead`` hours ahead and buys the side that will
  rise: its true edge), ``decaying`` (informed until a change point, then its lookahead fades to nothing),
  ``momentum`` (buys the side that rose over its lookback: no edge in a martingale), ``noise`` (random side),
  ``lucky`` (noise with one to five trades) and ``wash`` (round trips with itself at one price, inflating
  volume). Bankrolls are Pareto-tailed from ``bankroll_min`` ($25k); whales are the large bankrolls among all
  types (the top 2%: $1.25M and up, about $25k a fill at the median).
- **Money scale**: the world has far fewer trades per market than Polymarket (1M over two years, where Polymarket
  books that in days), so rather than simulate 100x more trades it scales money up: a token trades $10k-$100k a
  day and whale fills reach Polymarket's whale range (tens of thousands of dollars), the range the strategy's
  dollar thresholds ($5,000 whale trades, 1% slippage on our order) were written for. Returns, prices and edges
  do not depend on the scale.
- **Fills**: each entry is a BUY of one outcome at the quoted price plus half a spread; some positions are
  later partly or wholly sold at the then price less half a spread. A share of fills are maker fills (hidden
  by the Data API's ``takerOnly=true`` default) and a few transactions hold several fills.

The **true edge** of a wallet is the mean, over its entries, of E[payout | what it knew] − price paid, where
what it knew is the price ``lookahead`` hours later (for a trader with no information, the price now). It is
written to ``evaluation.sim_truth``; no scoring code may read it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

HOUR = 3600
DAY = 86400
CATEGORIES = np.array(["Politics", "Sports", "Crypto", "Economics", "Culture", "Tech", "Weather"])
CATEGORY_SHARE = np.array([0.30, 0.25, 0.20, 0.08, 0.07, 0.05, 0.05])
WALLET_TYPES = np.array(["informed", "decaying", "momentum", "noise", "lucky", "wash"])
WALLET_SHARE = np.array([0.04, 0.03, 0.12, 0.59, 0.20, 0.02])
HALF_SPREAD = 0.005
TICK = 0.001


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    n_markets: int = 2000
    n_wallets: int = 5000
    n_trades: int = 1_000_000
    start: str = "2024-11-01"
    days: int = 730
    maker_share: float = 0.3
    exit_share: float = 0.25
    multi_leg_share: float = 0.03
    fifty_fifty_share: float = 0.01
    dispute_share: float = 0.03
    bankroll_min: float = 25_000.0  # the Pareto bankroll's minimum: the world's money scale
    #: market makers (``maker``): wallets that split USDC into both outcomes, sell each side at the ask, merge
    #: what is left of both back into USDC and redeem the rest once the market resolves (their own random stream:
    #: the other wallets and their fills do not change with this number)
    n_makers: int = 0
    maker_markets: float = 25.0  # markets per maker, on average
    #: airdrop farmers (``farmer``: buy the near-certain side above 95 cents in a market's last three days, for
    #: volume) and bots (``bot``: very many small fills), each from its own random stream
    n_farmers: int = 0
    n_bots: int = 0

    @classmethod
    def scaled(cls, scale: float = 1.0, **kwargs) -> SimConfig:
        """The default world (2,000 markets, 5,000 wallets, 1M trades, and 40 each of market makers, farmers and
        bots) times ``scale``."""
        extra = {f"n_{kind}": max(2, round(40 * scale)) for kind in ("makers", "farmers", "bots")}
        return cls(
            n_markets=max(10, round(2000 * scale)),
            n_wallets=max(20, round(5000 * scale)),
            n_trades=max(1000, round(1_000_000 * scale)),
            **{**extra, **kwargs},
        )

    @property
    def start_ts(self) -> int:
        return int(datetime.fromisoformat(self.start).replace(tzinfo=UTC).timestamp())

    @property
    def end_ts(self) -> int:
        return self.start_ts + self.days * DAY


@dataclass
class Markets:
    open_ts: np.ndarray  # int64
    close_ts: np.ndarray  # int64, the scheduled end T (may lie after the history's end)
    grid_start: np.ndarray  # int64 offset of each market's first grid point in the flat price arrays
    grid_len: np.ndarray  # int64 number of hourly grid points (open .. min(T, end))
    outcome: np.ndarray  # float: 1 YES won, 0 NO won, 0.5 a 50-50, NaN not resolved by the end
    status: np.ndarray  # object: "resolved" | "proposed" | "disputed" | "" (open)
    resolved_ts: np.ndarray  # int64 (0 when not resolved)
    category: np.ndarray  # object
    event: np.ndarray  # int64 event number
    condition_id: np.ndarray  # object
    token_yes: np.ndarray  # object
    token_no: np.ndarray  # object
    popularity: np.ndarray

    def __len__(self) -> int:
        return len(self.open_ts)

    def closed(self, now: int) -> np.ndarray:
        return self.close_ts <= now


@dataclass
class Tape:
    """Fills sorted by time (row order = time order)."""

    wallet: np.ndarray  # int32 wallet index
    market: np.ndarray  # int32 market index
    outcome_index: np.ndarray  # int8: 0 YES, 1 NO
    side: np.ndarray  # int8: 0 BUY, 1 SELL
    size: np.ndarray  # float64 shares, 2 dp
    price: np.ndarray  # float64, 3 dp
    ts: np.ndarray  # int64
    is_maker: np.ndarray  # bool
    tx: np.ndarray  # int64 transaction number (shared by multi-leg transactions)

    def __len__(self) -> int:
        return len(self.ts)


#: ``Activity.kind`` codes and the Data API ``type`` each one is served as
ACTIVITY_KINDS = np.array(["SPLIT", "MERGE", "REDEEM"], dtype=object)


@dataclass
class Activity:
    """The position changes that are not trades (polymarket_api.md §2.2), time-ordered: SPLIT (``size`` USDC
    into ``size`` shares of each outcome), MERGE (``size`` of each back into USDC), REDEEM (every share held
    once the market resolved, for ``usdc`` = the payout)."""

    wallet: np.ndarray  # int32 wallet index
    market: np.ndarray  # int32 market index
    kind: np.ndarray  # int8: index into ACTIVITY_KINDS
    size: np.ndarray  # float64 shares (REDEEM: the payout, as the Data API writes it)
    usdc: np.ndarray  # float64
    ts: np.ndarray  # int64
    tx: np.ndarray  # int64 transaction number (into SimWorld.tx_hash)

    def __len__(self) -> int:
        return len(self.ts)


@dataclass
class SimWorld:
    config: SimConfig
    markets: Markets
    price_grid: np.ndarray  # float64 YES price per hourly grid point, flat
    wallets: pd.DataFrame  # address, wallet_type, bankroll, lookahead_hours, decay_start_ts, lookback_hours
    tape: Tape
    truth: pd.DataFrame  # evaluation.sim_truth
    tx_hash: np.ndarray = field(repr=False, default=None)  # object array of 0x.. hashes per tx number
    activity: Activity | None = None

    @property
    def now(self) -> int:
        return self.config.end_ts

    def yes_price_at(self, market: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """YES price of ``market`` at ``ts`` (the grid point at or before ``ts``, clipped to the market's life)."""
        m = self.markets
        k = np.clip((ts - m.open_ts[market]) // HOUR, 0, m.grid_len[market] - 1)
        return self.price_grid[m.grid_start[market] + k]


# ------------------------------------------------------------------------------------------------ helpers


def _hex_ids(rng: np.random.Generator, n: int, n_bytes: int) -> np.ndarray:
    """n random '0x..' lowercase hex strings of n_bytes bytes, without a Python loop over rows."""
    lut = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")
    raw = rng.integers(0, 256, size=(n, n_bytes), dtype=np.uint8)
    hexed = lut[raw].view(f"S{2 * n_bytes}").ravel()
    return np.char.add("0x", hexed.astype(f"U{2 * n_bytes}")).astype(object)


def _token_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Decimal token ids of 76-78 digits (ERC-1155 position ids are uint256)."""
    words = rng.integers(0, 2**63, size=(n, 4), dtype=np.int64).astype(object)
    out = np.empty(n, dtype=object)
    for i in range(n):  # two per market: thousands, not millions
        a, b, c, d = words[i]
        out[i] = str((((int(a) << 63 | int(b)) << 63 | int(c)) << 63 | int(d)) % (2**256) or 1)
    return out


def _segment_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each segment start (segments are contiguous and cover ``values``)."""
    total = np.cumsum(values)
    offsets = np.zeros_like(total)
    before = np.concatenate([[0.0], total])[starts]
    seg_id = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(values))))
    offsets = before[seg_id]
    return total - offsets


def _round_to(x: np.ndarray, step: float) -> np.ndarray:
    return np.round(np.round(x / step) * step, 10)


def _tick_price(x: np.ndarray) -> np.ndarray:
    """A price on the 0.001 tick, inside (0, 1)."""
    return np.clip(_round_to(x, TICK), TICK, 1 - TICK)


# ------------------------------------------------------------------------------------------------ the world


def generate_markets(cfg: SimConfig, rng: np.random.Generator) -> tuple[Markets, np.ndarray]:
    n = cfg.n_markets
    start, end = cfg.start_ts, cfg.end_ts
    duration_days = np.clip(rng.lognormal(np.log(30.0), 0.9, n), 2.0, 365.0)
    open_ts = (start + rng.uniform(0, (cfg.days - 2) * DAY, n)).astype(np.int64) // HOUR * HOUR
    close_ts = open_ts + (duration_days * 24).astype(np.int64) * HOUR
    last = np.minimum(close_ts, end)
    grid_len = (last - open_ts) // HOUR + 1
    grid_start = np.concatenate([[0], np.cumsum(grid_len)[:-1]]).astype(np.int64)
    total = int(grid_len.sum())

    # Brownian W with unit variance per day; the price is P(W_T > 0 | W_t).
    sigma2_per_hour = 1.0 / 24.0
    horizon_h = ((close_ts - open_ts) // HOUR).astype(np.float64)
    p0 = rng.beta(2.0, 2.0, n)
    w0 = np.sqrt(horizon_h * sigma2_per_hour) * ndtri(p0)
    steps = rng.normal(0.0, np.sqrt(sigma2_per_hour), total)
    steps[grid_start] = 0.0
    w = _segment_cumsum(steps, grid_start) + np.repeat(w0, grid_len)
    hour_idx = np.arange(total) - np.repeat(grid_start, grid_len)
    remaining = np.repeat(horizon_h, grid_len) - hour_idx
    with np.errstate(divide="ignore", invalid="ignore"):
        price = np.where(
            remaining > 0, ndtr(w / np.sqrt(np.maximum(remaining, 1e-12) * sigma2_per_hour)), 0.0
        )
    price = np.where(remaining > 0, price, (w > 0).astype(np.float64))

    w_last = w[grid_start + grid_len - 1]
    closed = close_ts <= end
    outcome = np.where(closed, (w_last > 0).astype(np.float64), np.nan)
    fifty = closed & (rng.random(n) < cfg.fifty_fifty_share)
    outcome[fifty] = 0.5
    # UMA: a proposal settles after ~2 h of liveness; a disputed one takes 2-5 more days.
    disputed = closed & (rng.random(n) < cfg.dispute_share)
    settle = (
        close_ts
        + 2 * HOUR
        + rng.integers(0, 3 * HOUR, n)
        + np.where(disputed, rng.integers(2 * DAY, 5 * DAY, n), 0)
    )
    status = np.full(n, "", dtype=object)
    status[closed & (settle <= end)] = "resolved"
    status[closed & (settle > end)] = np.where(disputed[closed & (settle > end)], "disputed", "proposed")
    resolved_ts = np.where(status == "resolved", settle, 0).astype(np.int64)
    outcome[closed & (status != "resolved")] = np.nan

    category = rng.choice(CATEGORIES, size=n, p=CATEGORY_SHARE).astype(object)
    # Group consecutive markets of one category into events of 1-4 markets.
    event = np.cumsum(rng.random(n) < 0.55).astype(np.int64)
    category = pd.Series(category).groupby(event).transform("first").to_numpy(dtype=object)
    markets = Markets(
        open_ts=open_ts,
        close_ts=close_ts,
        grid_start=grid_start,
        grid_len=grid_len,
        outcome=outcome,
        status=status,
        resolved_ts=resolved_ts,
        category=category,
        event=event,
        condition_id=_hex_ids(rng, n, 32),
        token_yes=_token_ids(rng, n),
        token_no=_token_ids(rng, n),
        popularity=rng.lognormal(0.0, 1.0, n),
    )
    return markets, price


def generate_wallets(cfg: SimConfig, rng: np.random.Generator) -> pd.DataFrame:
    n = cfg.n_wallets
    wtype = rng.choice(WALLET_TYPES, size=n, p=WALLET_SHARE)
    bankroll = cfg.bankroll_min * np.minimum(1.0 + rng.pareto(1.0, n), 50_000.0)
    informed = np.isin(wtype, ["informed", "decaying"])
    lookahead = np.where(informed, rng.uniform(6.0, 24.0 * 7, n), 0.0)
    decay_start = np.where(
        wtype == "decaying", cfg.start_ts + rng.uniform(0.3, 0.7, n) * cfg.days * DAY, np.nan
    )
    lookback = np.where(wtype == "momentum", rng.uniform(24.0, 24.0 * 7, n), 0.0)
    activity = rng.lognormal(0.0, 1.2, n)
    activity[wtype == "wash"] *= 6.0
    activity[informed] *= 2.0
    return pd.DataFrame(
        {
            "address": _hex_ids(rng, n, 20),
            "wallet_type": wtype.astype(object),
            "bankroll": np.round(bankroll, 2),
            "lookahead_hours": lookahead,
            "decay_start_ts": decay_start,
            "lookback_hours": lookback,
            "activity": activity,
        }
    )


DECAY_HOURS = 90 * 24.0


def generate_world(cfg: SimConfig) -> SimWorld:
    rng = np.random.default_rng(cfg.seed)
    markets, grid = generate_markets(cfg, rng)
    wallets = generate_wallets(cfg, rng)
    now = cfg.end_ts
    n_w = len(wallets)
    wtype = wallets["wallet_type"].to_numpy()

    # ---- entries: how many per wallet (lucky: 1-5; wash entries become two fills each)
    per_fill = 1.0 + cfg.exit_share + cfg.multi_leg_share + 0.05  # exits, extra legs, wash round trips
    n_entries = int(cfg.n_trades / per_fill)
    lucky = wtype == "lucky"
    lucky_n = rng.integers(1, 6, n_w) * lucky
    weights = wallets["activity"].to_numpy() * ~lucky
    rest = max(0, n_entries - int(lucky_n.sum()))
    counts = lucky_n + rng.multinomial(rest, weights / weights.sum())
    wallet = np.repeat(np.arange(n_w, dtype=np.int32), counts)
    n_e = len(wallet)

    # ---- market and time: markets weighted by popularity x life inside the history
    life = (np.minimum(markets.close_ts, now) - markets.open_ts).astype(np.float64)
    mw = markets.popularity * life
    market = rng.choice(len(markets), size=n_e, p=mw / mw.sum()).astype(np.int32)
    t_open = markets.open_ts[market]
    t_last = np.minimum(markets.close_ts[market], now) - 60
    ts = (t_open + rng.random(n_e) * (t_last - t_open)).astype(np.int64)

    yes_now = _yes(markets, grid, market, ts)
    # ---- information: what each wallet expects the YES price to be
    wt = wtype[wallet]
    look = wallets["lookahead_hours"].to_numpy()[wallet].copy()
    decaying = wt == "decaying"
    if decaying.any():
        since = (ts[decaying] - wallets["decay_start_ts"].to_numpy()[wallet[decaying]]) / HOUR
        look[decaying] *= np.clip(1.0 - since / DECAY_HOURS, 0.0, 1.0)
    informed = look > 0
    yes_seen = yes_now.copy()
    yes_seen[informed] = _yes(
        markets, grid, market[informed], ts[informed] + (look[informed] * HOUR).astype(np.int64)
    )
    # ---- the side each entry buys
    buy_yes = rng.random(n_e) < 0.5  # noise, lucky, wash
    buy_yes[informed] = yes_seen[informed] >= yes_now[informed]
    mom = wt == "momentum"
    if mom.any():
        back = (wallets["lookback_hours"].to_numpy()[wallet[mom]] * HOUR).astype(np.int64)
        buy_yes[mom] = yes_now[mom] >= _yes(markets, grid, market[mom], ts[mom] - back)
    outcome_index = np.where(buy_yes, 0, 1).astype(np.int8)
    mid = np.where(buy_yes, yes_now, 1.0 - yes_now)
    wash = wt == "wash"
    entry_price = _tick_price(mid + np.where(wash, 0.0, HALF_SPREAD))
    expected = np.where(buy_yes, yes_seen, 1.0 - yes_seen)

    # ---- sizes: a heavy-tailed share of the bankroll
    bankroll = wallets["bankroll"].to_numpy()[wallet]
    frac = np.clip(rng.lognormal(np.log(0.02), 0.8, n_e), 0.001, 0.25)
    size = np.maximum(_round_to(bankroll * frac / entry_price, 0.01), 1.0)

    # ---- exits: wash traders sell it all back within minutes at the same price; others sometimes later
    exits = wash | (rng.random(n_e) < cfg.exit_share)
    ex = np.flatnonzero(exits)
    ex_ts = np.where(
        wash[ex],
        ts[ex] + rng.integers(60, 1800, len(ex)),
        ts[ex]
        + (rng.random(len(ex)) * (np.minimum(markets.close_ts[market[ex]], now) - 60 - ts[ex])).astype(
            np.int64
        ),
    )
    ex_ts = np.clip(ex_ts, ts[ex] + 1, np.minimum(markets.close_ts[market[ex]], now) - 1)
    ex_yes = _yes(markets, grid, market[ex], ex_ts)
    ex_mid = np.where(outcome_index[ex] == 0, ex_yes, 1.0 - ex_yes)
    ex_price = np.where(wash[ex], entry_price[ex], _tick_price(ex_mid - HALF_SPREAD))
    ex_size = np.where(
        wash[ex], size[ex], np.maximum(_round_to(size[ex] * rng.uniform(0.3, 1.0, len(ex)), 0.01), 0.01)
    )

    # ---- multi-leg transactions: an order filled in several pieces in one transaction (same time, market,
    # side and price; other sizes), by the same wallet or against another wallet's order
    # (never on wash traders' round trips, which stay exact round trips)
    lg = np.flatnonzero((rng.random(n_e) < cfg.multi_leg_share) & ~wash)
    same = rng.random(len(lg)) < 0.5
    not_wash = np.flatnonzero(wtype != "wash")
    lg_wallet = np.where(same, wallet[lg], not_wash[rng.integers(0, len(not_wash), len(lg))]).astype(np.int32)
    lg_size = np.maximum(_round_to(size[lg] * rng.uniform(0.2, 0.9, len(lg)), 0.01), 0.01)
    lg_size = np.where(lg_size == size[lg], lg_size + 0.01, lg_size)

    # ---- the tape, time-ordered; tx numbers: entries 0..n_e-1, legs share their entry's, exits after
    n_x = len(ex)
    all_wallet = np.concatenate([wallet, lg_wallet, wallet[ex]])
    all_market = np.concatenate([market, market[lg], market[ex]])
    all_ts = np.concatenate([ts, ts[lg], ex_ts])
    all_tx = np.concatenate([np.arange(n_e), lg, n_e + np.arange(n_x)]).astype(np.int64)
    order = np.lexsort((np.arange(len(all_ts)), all_ts))
    n_f = len(order)
    tape = Tape(
        wallet=all_wallet[order],
        market=all_market[order],
        outcome_index=np.concatenate([outcome_index, outcome_index[lg], outcome_index[ex]])[order],
        side=np.concatenate([np.zeros(n_e + len(lg), np.int8), np.ones(n_x, np.int8)])[order],
        size=np.concatenate([size, lg_size, ex_size])[order],
        price=np.concatenate([entry_price, entry_price[lg], ex_price])[order],
        ts=all_ts[order],
        is_maker=rng.random(n_f) < cfg.maker_share,
        tx=all_tx[order],
    )

    n_traders = n_w
    whale_floor = np.quantile(wallets["bankroll"].to_numpy(), 0.98)
    tx_hash = None
    activity = None
    if (
        cfg.n_makers > 0
    ):  # after every draw of ``rng``: the other wallets' world is the same with or without them
        wallets, tape, activity, maker_tx = _add_makers(cfg, markets, grid, wallets, tape, n_e + n_x)
        tx_hash = maker_tx
        n_w = len(wallets)
    if cfg.n_farmers > 0 or cfg.n_bots > 0:
        n_tx = n_e + n_x + (0 if tx_hash is None else len(tx_hash))
        wallets, tape, more_tx = _add_farmers_and_bots(cfg, markets, grid, wallets, tape, n_tx)
        tx_hash = more_tx if tx_hash is None else np.concatenate([tx_hash, more_tx])
        n_w = len(wallets)

    # ---- the hidden truth per wallet
    edge_entry = expected - entry_price
    truth = wallets[["address", "wallet_type", "bankroll", "lookahead_hours", "decay_start_ts"]].copy()
    agg = pd.DataFrame({"w": wallet, "edge": edge_entry, "notional": size * entry_price}).groupby("w")
    truth["true_edge"] = agg["edge"].mean().reindex(range(n_w)).to_numpy()
    truth["n_entries"] = agg.size().reindex(range(n_w), fill_value=0).to_numpy()
    truth["entry_notional"] = agg["notional"].sum().reindex(range(n_w), fill_value=0.0).to_numpy()
    truth["n_fills"] = np.bincount(tape.wallet, minlength=n_w)
    truth["is_whale"] = (truth["bankroll"] >= whale_floor) & (np.arange(n_w) < n_traders)
    truth["pnl_resolved"] = resolved_pnl(markets, tape, n_w)
    truth.insert(0, "seed", cfg.seed)
    decay = pd.Series(truth.pop("decay_start_ts")).round().astype("Int64")  # NaN -> <NA>, no float overflow
    truth["decay_start"] = pd.to_datetime(decay, unit="s", utc=True)
    world = SimWorld(cfg, markets, grid, wallets, tape, truth, activity=activity)
    world.tx_hash = _hex_ids(rng, n_e + n_x, 32)
    if tx_hash is not None:
        world.tx_hash = np.concatenate([world.tx_hash, tx_hash])
    return world


def resolved_pnl(markets: Markets, tape: Tape, n_wallets: int) -> np.ndarray:
    """Each wallet's P&L over the markets that resolved, from its fills alone: sum of size x (payout - price)
    for a BUY and size x (price - payout) for a SELL (polymarket_api.md §5). Exact whatever else moved the
    shares: a split costs $1 for a pair that pays $1, a merge returns $1 for it, a redemption pays the payout
    the shares are counted at."""
    outcome = markets.outcome[tape.market]
    resolved = (markets.status[tape.market] == "resolved") & np.isfinite(outcome)
    payout = np.where(tape.outcome_index == 0, outcome, 1.0 - outcome)
    sign = np.where(tape.side == 0, 1.0, -1.0)
    pnl = np.where(resolved, sign * tape.size * (payout - tape.price), 0.0)
    return np.bincount(tape.wallet, weights=pnl, minlength=n_wallets)


def polymarket_positions(world: SimWorld, wallet: int) -> pd.DataFrame:
    """What Polymarket's own books say of one wallet's positions (its ``/positions`` and ``/closed-positions``),
    kept independently of the pipeline: every event of the wallet in time order under the rules of Polymarket's
    P&L subgraph (``Polymarket/polymarket-subgraph``, ``pnl-subgraph``): a BUY (a fill, or each side of a SPLIT
    at $0.50) moves the average price to the size-weighted mean; a SELL (a fill, each side of a MERGE at $0.50,
    every share held at a REDEEM at its payout) realises ``min(size, held) x (price - average)``. Exact floats
    where the subgraph truncates to 1e-6. One row per token the wallet ever held."""
    t, m = world.tape, world.markets
    rows = np.flatnonzero(t.wallet == wallet)
    events = [  # (ts, order within a second: activity first, token, side, price, size)
        (int(t.ts[i]), 1, int(t.market[i]), int(t.outcome_index[i]), int(t.side[i]), float(t.price[i]),
         float(t.size[i]))
        for i in rows
    ]  # fmt: skip
    act = world.activity
    if act is not None:
        for i in np.flatnonzero(act.wallet == wallet):
            kind, market, size = ACTIVITY_KINDS[act.kind[i]], int(act.market[i]), float(act.size[i])
            for oi in (0, 1):
                if kind == "SPLIT":
                    events.append((int(act.ts[i]), 0, market, oi, 0, 0.5, size))
                elif kind == "MERGE":
                    events.append((int(act.ts[i]), 0, market, oi, 1, 0.5, size))
                else:  # REDEEM: every share held, at the payout
                    payout = m.outcome[market] if oi == 0 else 1.0 - m.outcome[market]
                    events.append((int(act.ts[i]), 0, market, oi, 1, float(payout), np.inf))
    book: dict[tuple[int, int], list[float]] = {}  # (market, outcome) -> [amount, avg, bought, realised]
    for _, _, market, oi, side, price, size in sorted(events, key=lambda e: e[:2]):
        pos = book.setdefault((market, oi), [0.0, 0.0, 0.0, 0.0])
        if side == 0:
            pos[1] = (pos[1] * pos[0] + price * size) / (pos[0] + size)
            pos[0] += size
            pos[2] += size
        else:
            sold = min(size, pos[0])
            pos[3] += sold * (price - pos[1])
            pos[0] -= sold
    if not book:
        return pd.DataFrame(
            columns=["market", "outcome_index", "size", "avg_price", "total_bought", "realized_pnl"]
        )
    keys = list(book)
    values = np.array([book[k] for k in keys])
    return pd.DataFrame(
        {
            "market": np.array([k[0] for k in keys], dtype=np.int64),
            "outcome_index": np.array([k[1] for k in keys], dtype=np.int64),
            "size": np.round(values[:, 0], 10),
            "avg_price": values[:, 1],
            "total_bought": values[:, 2],
            "realized_pnl": values[:, 3],
        }
    )


def _add_makers(
    cfg: SimConfig, markets: Markets, grid: np.ndarray, wallets: pd.DataFrame, tape: Tape, n_tx: int
) -> tuple[pd.DataFrame, Tape, Activity, np.ndarray]:
    """``cfg.n_makers`` market makers, from their own random stream. In each of its markets a maker splits
    USDC into a pair of shares per dollar, sells part of each side at the ask (mid plus half a spread) in one to
    four maker fills, merges part of what is left of both sides back into USDC before the close, and redeems the
    rest once the market resolved. Returns the wallets and the tape with the makers' fills (time order kept; at
    one second the earlier rows first), their activity, and the hashes of their new transactions (numbered from
    ``n_tx``)."""
    rng = np.random.default_rng([cfg.seed, 1])
    now = cfg.end_ts
    k = cfg.n_makers
    address = _hex_ids(rng, k, 20)
    bankroll = np.round(cfg.bankroll_min * 10 * np.minimum(1.0 + rng.pareto(1.5, k), 1_000.0), 2)
    makers = _new_wallets(address, "maker", bankroll)
    first = len(wallets)
    n_ep = rng.poisson(cfg.maker_markets, k) + 1
    e_wallet = np.repeat(np.arange(first, first + k, dtype=np.int32), n_ep)
    n = len(e_wallet)
    life = (np.minimum(markets.close_ts, now) - markets.open_ts).astype(np.float64)
    weight = markets.popularity * np.maximum(life - 4 * HOUR, 0.0)
    e_market = rng.choice(len(markets), size=n, p=weight / weight.sum()).astype(np.int32)
    t_open = markets.open_ts[e_market]
    t_end = np.minimum(markets.close_ts[e_market], now) - 60
    t_split = (t_open + rng.random(n) * 0.5 * (t_end - t_open)).astype(np.int64)
    pairs = np.maximum(_round_to(bankroll[e_wallet - first] * rng.uniform(0.02, 0.1, n), 0.01), 1.0)

    # sells: one to four fills a side, at times after the split, sizes summing to most of the pair count, the two
    # sides within 3% of each other (a maker keeps its book balanced: its inventory is what the merge leaves)
    # (each Yes fill has its No fill within ten minutes: quoting both sides, the maker holds no view)
    parts = []
    left = np.empty((n, 2))
    share = rng.uniform(0.6, 0.95, n)
    ep = np.repeat(np.arange(n), rng.integers(1, 5, n))
    cut = rng.random(len(ep))
    cum = pd.Series(cut).groupby(ep).cumsum().to_numpy() / np.bincount(ep, weights=cut)[ep]
    first_of = np.r_[True, ep[1:] != ep[:-1]]
    t_fill = t_split[ep] + 1 + (rng.random(len(ep)) * (t_end[ep] - t_split[ep] - 601)).astype(np.int64)
    for oi in (0, 1):
        sold = _round_to(pairs * share * (1.0 if oi == 0 else rng.uniform(0.97, 1.0, n)), 0.01)
        upto = _round_to(sold[ep] * cum, 0.01)
        size = _round_to(np.where(first_of, upto, upto - np.r_[0.0, upto[:-1]]), 0.01)
        ts = t_fill + (0 if oi == 0 else rng.integers(1, 600, len(ep)))
        keep = size > 0
        parts.append((ep[keep], np.full(int(keep.sum()), oi, np.int8), size[keep], ts[keep]))
        left[:, oi] = np.round(pairs - np.bincount(ep[keep], weights=size[keep], minlength=n), 2)
    f_ep = np.concatenate([p[0] for p in parts])
    f_oi = np.concatenate([p[1] for p in parts])
    f_size = np.concatenate([p[2] for p in parts])
    f_ts = np.concatenate([p[3] for p in parts])
    f_m = e_market[f_ep]
    yes = _yes(markets, grid, f_m, f_ts)
    f_price = _tick_price(np.where(f_oi == 0, yes, 1.0 - yes) + HALF_SPREAD)

    # merge the pairs left after the last sell, while the market still trades
    last_sell = pd.Series(f_ts).groupby(f_ep).max().reindex(range(n), fill_value=0).to_numpy()
    t_merge = last_sell + rng.integers(60, 6 * HOUR, n)
    merged = left.min(axis=1)
    do_merge = (merged > 0) & (t_merge < t_end)
    merged = np.where(do_merge, merged, 0.0)
    held = np.round(left - merged[:, None], 2)

    # redeem every share still held once the market resolved (a losing side pays 0; one row per market)
    outcome = markets.outcome[e_market]
    resolved_ts = markets.resolved_ts[e_market]
    t_redeem = resolved_ts + rng.integers(HOUR, 3 * DAY, n)
    payout = np.round(held[:, 0] * np.nan_to_num(outcome) + held[:, 1] * (1.0 - np.nan_to_num(outcome)), 6)
    do_redeem = (markets.status[e_market] == "resolved") & np.isfinite(outcome) & (t_redeem <= now)
    do_redeem &= held.sum(axis=1) > 0

    kind = np.concatenate([np.zeros(n, np.int8), np.ones(n, np.int8), np.full(n, 2, np.int8)])
    keep = np.concatenate([np.ones(n, bool), do_merge, do_redeem])
    ep_all = np.tile(np.arange(n), 3)[keep]
    a_size = np.concatenate([pairs, merged, payout])[keep]
    a_ts = np.concatenate([t_split, t_merge, t_redeem])[keep]
    a_kind = kind[keep]
    order = np.lexsort((a_kind, ep_all, a_ts))
    n_fill_tx = len(f_ep)
    activity = Activity(
        wallet=e_wallet[ep_all][order],
        market=e_market[ep_all][order],
        kind=a_kind[order],
        size=a_size[order],
        usdc=a_size[order],
        ts=a_ts[order],
        tx=(n_tx + n_fill_tx + np.arange(len(order))).astype(np.int64),
    )

    # the makers' sells join the tape (maker fills, a transaction each)
    m = len(f_ep)
    extra = Tape(wallet=e_wallet[f_ep], market=f_m, outcome_index=f_oi, side=np.ones(m, np.int8), size=f_size,
                 price=f_price, ts=f_ts, is_maker=np.ones(m, bool), tx=n_tx + np.arange(m))  # fmt: skip
    tx_hash = _hex_ids(rng, m + len(activity), 32)
    return pd.concat([wallets, makers], ignore_index=True), _merged(tape, extra), activity, tx_hash


def _merged(tape: Tape, extra: Tape) -> Tape:
    """``tape`` with ``extra``'s fills, in time order (at one second, ``tape``'s rows first)."""
    fields = ("wallet", "market", "outcome_index", "side", "size", "price", "ts", "is_maker", "tx")
    both = {f: np.concatenate([getattr(tape, f), getattr(extra, f)]) for f in fields}
    order = np.lexsort((np.arange(len(both["ts"])), both["ts"]))
    return Tape(**{f: v[order] for f, v in both.items()})


def _new_wallets(address: np.ndarray, kind: str, bankroll: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"address": address, "wallet_type": kind, "bankroll": bankroll, "lookahead_hours": 0.0,
                         "decay_start_ts": np.nan, "lookback_hours": 0.0, "activity": 0.0})  # fmt: skip


#: a farmer buys in a market's last hours before its scheduled close, the side priced at least this much
FARM_HOURS, FARM_PRICE = 72, 0.95


def _add_farmers_and_bots(
    cfg: SimConfig, markets: Markets, grid: np.ndarray, wallets: pd.DataFrame, tape: Tape, n_tx: int
) -> tuple[pd.DataFrame, Tape, np.ndarray]:
    """``cfg.n_farmers`` airdrop farmers and ``cfg.n_bots`` bots, from their own random stream.

    A farmer, in 30 to 80 markets that close inside the history, buys the side priced at least 95 cents at a
    time in the market's last 72 hours, one to three times, $1k to $20k a fill: volume on near-certain outcomes
    (each fill earns about the last cent to the payout, and loses the whole price when the favourite fails). A bot
    makes 400 to 1,500 small entries ($5 to $60) on a random side of random markets at any time, and sells half of
    them whole later: very many small fills, no edge."""
    rng = np.random.default_rng([cfg.seed, 2])
    now = cfg.end_ts
    first = len(wallets)
    parts, new = [], []
    if cfg.n_farmers:
        k = cfg.n_farmers
        new.append(
            _new_wallets(
                _hex_ids(rng, k, 20), "farmer", np.round(cfg.bankroll_min * (1 + rng.pareto(1.5, k)), 2)
            )
        )
        closing = np.flatnonzero(
            (markets.close_ts <= now) & (markets.close_ts - markets.open_ts > FARM_HOURS * HOUR)
        )
        want = rng.integers(30, 81, k) * (len(closing) > 0)  # none when no market closes inside the history
        n_try = (
            int(want.sum()) * 8
        )  # candidate (market, time) pairs; about a third have a side above 95 cents
        w = np.repeat(np.arange(k), want * 8)
        m = closing[rng.integers(0, max(len(closing), 1), n_try)].astype(np.int32)
        ts = (markets.close_ts[m] - 60 - rng.random(n_try) * (FARM_HOURS * HOUR - 60)).astype(np.int64)
        yes = _yes(markets, grid, m, ts)
        side_yes = yes >= FARM_PRICE
        ok = side_yes | (yes <= 1 - FARM_PRICE)
        ok &= pd.Series(ok).groupby(w).cumsum().to_numpy() <= want[w]  # a farmer's first ``want`` candidates
        w, m, ts, side_yes, yes = w[ok], m[ok], ts[ok], side_yes[ok], yes[ok]
        reps = rng.integers(1, 4, len(w))  # one to three fills, an hour apart at most
        i = np.repeat(np.arange(len(w)), reps)
        ts = np.minimum(ts[i] + (np.arange(len(i)) - np.repeat(np.cumsum(reps) - reps, reps)) * rng.integers(
            60, HOUR, len(i)), markets.close_ts[m[i]] - 1)  # fmt: skip
        mid = np.where(side_yes[i], yes[i], 1 - yes[i])
        price = _tick_price(mid + HALF_SPREAD)
        size = np.maximum(_round_to(rng.uniform(1_000, 20_000, len(i)) / price, 0.01), 1.0)
        parts.append((first + w[i], m[i], np.where(side_yes[i], 0, 1), np.zeros(len(i)), size, price, ts))
    if cfg.n_bots:
        k, b0 = cfg.n_bots, first + cfg.n_farmers
        new.append(_new_wallets(_hex_ids(rng, k, 20), "bot", np.full(k, cfg.bankroll_min)))
        n_e = rng.integers(400, 1_501, k)
        w = np.repeat(np.arange(k), n_e)
        life = (np.minimum(markets.close_ts, now) - markets.open_ts).astype(np.float64)
        m = rng.choice(len(markets), size=len(w), p=life / life.sum()).astype(np.int32)
        t_last = np.minimum(markets.close_ts[m], now) - 120
        ts = (markets.open_ts[m] + rng.random(len(w)) * (t_last - markets.open_ts[m])).astype(np.int64)
        oi = rng.integers(0, 2, len(w))
        yes = _yes(markets, grid, m, ts)
        price = _tick_price(np.where(oi == 0, yes, 1 - yes) + HALF_SPREAD)
        size = np.maximum(_round_to(rng.uniform(5, 60, len(w)) / price, 0.01), 0.01)
        ex = rng.random(len(w)) < 0.5
        ex_ts = ts[ex] + 1 + (rng.random(ex.sum()) * (t_last[ex] + 60 - ts[ex])).astype(np.int64)
        ex_yes = _yes(markets, grid, m[ex], ex_ts)
        ex_price = _tick_price(np.where(oi[ex] == 0, ex_yes, 1 - ex_yes) - HALF_SPREAD)
        parts.append((b0 + np.concatenate([w, w[ex]]), np.concatenate([m, m[ex]]), np.concatenate([oi, oi[ex]]),
                      np.concatenate([np.zeros(len(w)), np.ones(ex.sum())]), np.concatenate([size, size[ex]]),
                      np.concatenate([price, ex_price]), np.concatenate([ts, ex_ts])))  # fmt: skip
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    n = len(cols[0])
    extra = Tape(wallet=cols[0].astype(np.int32), market=cols[1].astype(np.int32),
                 outcome_index=cols[2].astype(np.int8), side=cols[3].astype(np.int8), size=cols[4],
                 price=cols[5], ts=cols[6].astype(np.int64), is_maker=rng.random(n) < cfg.maker_share,
                 tx=n_tx + np.arange(n))  # fmt: skip
    return pd.concat([wallets, *new], ignore_index=True), _merged(tape, extra), _hex_ids(rng, n, 32)


def _yes(markets: Markets, grid: np.ndarray, market: np.ndarray, ts: np.ndarray) -> np.ndarray:
    k = np.clip((ts - markets.open_ts[market]) // HOUR, 0, markets.grid_len[market] - 1)
    return grid[markets.grid_start[market] + k]


#: the worlds a cache directory keeps (the most recently used; a demo-scale world is about 130 MB)
CACHE_WORLDS = 4


@functools.cache
def _simulator_digest() -> str:
    """The simulator's own source: a cached world is valid only for the code that generated it."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def world_cache_path(cfg: SimConfig, cache_dir: str | Path) -> Path:
    """Where ``cache_dir`` keeps the world of ``cfg``: named by the config and the simulator's source."""
    key = hashlib.sha256(f"{cfg!r}|{_simulator_digest()}".encode()).hexdigest()[:20]
    return Path(cache_dir) / f"world-{key}.pkl"


@functools.lru_cache(maxsize=2)
def cached_world(cfg: SimConfig, cache_dir: str | None = None) -> SimWorld:
    """One world per config per process (the transport and the sim_truth asset share it). With ``cache_dir``,
    also one per config and simulator source on disk: a process after the first loads it (about 0.3 s for the
    demo's world) instead of generating it again (about 3 s), as a real exchange is there without being built
    for each run. A file that does not load is generated again; the directory keeps the :data:`CACHE_WORLDS`
    most recently used."""
    if cache_dir is None:
        return generate_world(cfg)
    path = world_cache_path(cfg, cache_dir)
    try:
        with path.open("rb") as f:
            world = pickle.load(f)  # written by this function alone, into the run's own data directory
        if isinstance(world, SimWorld) and world.config == cfg:
            os.utime(path)
            return world
    except Exception:  # none yet, or a torn or foreign file: generate the world and write it
        pass
    world = generate_world(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".world-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(world, f, protocol=5)
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    kept = sorted(path.parent.glob("world-*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[CACHE_WORLDS:]:
        old.unlink(missing_ok=True)
    return world


def tape_table(world: SimWorld, rows: np.ndarray | None = None):
    """The tape as a ``raw.trades``-shaped Arrow table, built without Python objects per row (dictionary
    arrays cast to strings in Arrow). The bulk path for benchmarks and tests; ingestion proper goes through the
    HTTP API (``sim_api.SimPolymarket``)."""
    import pyarrow as pa

    from .records import TRADES_SCHEMA

    t, m = world.tape, world.markets
    idx = np.arange(len(t)) if rows is None else rows

    def dict_col(indices: np.ndarray, values: np.ndarray) -> pa.Array:
        return pa.DictionaryArray.from_arrays(
            pa.array(indices.astype(np.int32)), pa.array(values, pa.string())
        ).cast(pa.string())

    tokens = np.concatenate([m.token_yes, m.token_no])
    market = t.market[idx].astype(np.int64)
    oi = t.outcome_index[idx].astype(np.int64)
    titles = np.array(
        [f"Will {c} question #{i} resolve YES?" for i, c in enumerate(m.category)], dtype=object
    )
    slugs = np.array([f"sim-market-{i}" for i in range(len(m))], dtype=object)
    events = np.array([f"sim-event-{e}" for e in m.event], dtype=object)
    null_str = pa.nulls(len(idx), pa.string())
    return pa.table(
        {
            "proxy_wallet": dict_col(t.wallet[idx], world.wallets["address"].to_numpy()),
            "side": dict_col(t.side[idx], np.array(["BUY", "SELL"], dtype=object)),
            "asset": dict_col(market + oi * len(m), tokens),
            "condition_id": dict_col(market, m.condition_id),
            "size": pa.array(t.size[idx]),
            "price": pa.array(t.price[idx]),
            "ts": pa.array(t.ts[idx]),
            "outcome": dict_col(oi, np.array(["Yes", "No"], dtype=object)),
            "outcome_index": pa.array(oi.astype(np.int32)),
            "title": dict_col(market, titles),
            "slug": dict_col(market, slugs),
            "event_slug": dict_col(market, events),
            "name": null_str,
            "pseudonym": null_str,
            "transaction_hash": dict_col(t.tx[idx], world.tx_hash),
        },
        schema=TRADES_SCHEMA,
    )
