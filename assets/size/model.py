"""Pure sizing kernels: binary-contract Kelly and its adaptive scaling. No Dagster, no DuckDB.

A Polymarket share bought at price ``c`` pays 1 if its outcome wins. With a win probability ``q``, the stake
fraction that maximises expected log wealth is ``f* = (q - c) / (1 - c)`` (zero or less: do not bet). whalecopy's
``q`` is the price we would pay plus the whale's posterior price-calibrated edge (assets/score), so
``f* = edge / (1 - c)``. The size is then halved and scaled::

    f = 0.5 * f* * k_conf * k_vol * k_corr * k_dd,     capped at 8% of NAV
    k_conf = 0.4 + 0.6 * WQS / 100
    k_vol  = clip(1 / (1 + 5 sigma), 0.5, 1.2)          sigma: EWMA volatility (lambda 0.94) of daily returns
    k_corr = max(0.3, 1 - rho^2)                        rho: correlation with the existing book
    k_dd   = max(0.2, 1 - 3 * drawdown)                 drawdown: the portfolio's current drawdown, >= 0

Orders are whole shares; an order under Polymarket's minimum (5 shares for a limit order, $1 notional for a
market order) is not placed (size 0, with the reason). An order's price lies on Polymarket's finest tick grid,
in [0.0001, 0.9999]; a price outside it is not an order price (and one near 0 would ask for more shares than a
float holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

KELLY_FRACTION = 0.5
MAX_POSITION_NAV = 0.08
EWMA_LAMBDA = 0.94
MIN_LIMIT_SHARES = 5
MIN_MARKET_NOTIONAL = 1.0
MIN_TICK = 0.0001  # Polymarket's finest price tick: an order's price lies in [MIN_TICK, 1 - MIN_TICK]


@dataclass(frozen=True)
class SizingParams:
    kelly_fraction: float = KELLY_FRACTION
    max_position_nav: float = MAX_POSITION_NAV
    min_limit_shares: int = MIN_LIMIT_SHARES
    min_market_notional: float = MIN_MARKET_NOTIONAL


def kelly_binary(win_probability: np.ndarray | float, price: np.ndarray | float) -> np.ndarray:
    """``(q - c) / (1 - c)`` for a share bought at ``c`` that pays 1 with probability ``q``; 0 when that is not
    positive or the inputs are not valid (``c`` outside (0, 1), ``q`` outside [0, 1] or NaN)."""
    q, c = np.broadcast_arrays(np.asarray(win_probability, dtype=float), np.asarray(price, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (c > 0) & (c < 1) & (q >= 0) & (q <= 1)
        f = np.where(ok, (q - c) / (1 - c), 0.0)
    return np.maximum(f, 0.0)


def ewma_volatility(returns: np.ndarray, lam: float = EWMA_LAMBDA) -> np.ndarray:
    """RiskMetrics EWMA volatility along the last axis: ``s2_t = lam * s2_{t-1} + (1 - lam) * r_t^2``, seeded
    with ``r_0^2``; NaN returns count as 0 (no position, no move). Returns ``sqrt(s2)``, same shape."""
    r = np.nan_to_num(np.asarray(returns, dtype=float))
    if r.shape[-1] == 0:
        return r.copy()
    r2 = r * r
    zi_shape = (*r.shape[:-1], 1)
    zi = (lam * r2[..., :1]).reshape(zi_shape)  # so that s2_0 = lam r0^2 + (1 - lam) r0^2 = r0^2
    from scipy.signal import lfilter  # scipy.signal takes 1.5 s to import: only where it is used

    s2, _ = lfilter([1.0 - lam], [1.0, -lam], r2, axis=-1, zi=zi)
    return np.sqrt(np.maximum(s2, 0.0))


def scaling_factors(
    wqs: np.ndarray | float,
    volatility: np.ndarray | float,
    correlation: np.ndarray | float,
    drawdown: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(k_conf, k_vol, k_corr, k_dd)``. NaN inputs take the most conservative value of each factor."""
    w = np.clip(np.nan_to_num(np.asarray(wqs, dtype=float), nan=0.0), 0.0, 100.0)
    s = np.nan_to_num(np.asarray(volatility, dtype=float), nan=np.inf)
    rho = np.nan_to_num(np.asarray(correlation, dtype=float), nan=1.0)
    dd = np.clip(np.nan_to_num(np.asarray(drawdown, dtype=float), nan=1.0), 0.0, 1.0)
    k_conf = 0.4 + 0.6 * w / 100.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        k_vol = np.clip(1.0 / (1.0 + 5.0 * np.maximum(s, 0.0)), 0.5, 1.2)
    k_corr = np.maximum(0.3, 1.0 - np.clip(rho, -1.0, 1.0) ** 2)
    k_dd = np.maximum(0.2, 1.0 - 3.0 * dd)
    return k_conf, k_vol, k_corr, k_dd


def volatility_at(returns, wallets, days, span: tuple[int, int], lam: float = EWMA_LAMBDA) -> np.ndarray:
    """Each wallet's EWMA volatility of its daily returns through the day before ``days`` (UTC day numbers: the
    date of the score it is sized with), NaN where there is none. ``returns``: ``wallet, day, daily_return``
    (days with no return count as 0). ``span``: the first and last day of the warehouse's returns, the one grid
    every wallet's EWMA runs on, so a wallet's volatility does not depend on which other wallets are asked for
    (the batch asks for every candidate's whale, the live loop for the tracked ones). The batch candidates and
    the live loop's snapshot both call this."""

    wallets = np.asarray(wallets, dtype=object)
    days = np.asarray(days, dtype=float)
    out = np.full(len(wallets), np.nan)
    if len(wallets) == 0 or len(returns) == 0:
        return out
    d0, d1 = int(span[0]), int(span[1])
    wide = returns.pivot_table(index="wallet", columns="day", values="daily_return", aggfunc="first")
    wide = wide.reindex(columns=range(d0, d1 + 1))
    vol = ewma_volatility(wide.to_numpy(dtype=float), lam)
    row = wide.index.get_indexer(wallets)
    with np.errstate(invalid="ignore"):
        col = np.where(np.isfinite(days), days - 1 - d0, -1).astype(np.int64)
    ok = (row >= 0) & (col >= 0) & (col < vol.shape[1])
    out[ok] = vol[row[ok], col[ok]]
    return out


class Sizes(NamedTuple):
    fraction: np.ndarray  # of NAV, after caps
    shares: np.ndarray  # whole shares (0 when no order)
    notional: np.ndarray
    reason: np.ndarray  # why the order is 0, else None


def adaptive_kelly(
    edge: np.ndarray | float,
    price: np.ndarray | float,
    wqs: np.ndarray | float,
    volatility: np.ndarray | float,
    correlation: np.ndarray | float,
    drawdown: np.ndarray | float,
    nav: float,
    order_type: str = "limit",
    params: SizingParams = SizingParams(),
) -> Sizes:
    """Order sizes for candidate copies: the formula in the module docstring, in whole shares.

    ``edge`` is the probability advantage at ``price`` (the whale's posterior edge), so the win probability is
    ``price + edge``. Zero where the edge is not positive, the price invalid, or the order under the minimum.
    """
    c, e = np.broadcast_arrays(np.asarray(price, dtype=float), np.asarray(edge, dtype=float))
    k_conf, k_vol, k_corr, k_dd = scaling_factors(wqs, volatility, correlation, drawdown)
    f = params.kelly_fraction * kelly_binary(c + e, c) * k_conf * k_vol * k_corr * k_dd
    f = np.broadcast_to(np.minimum(np.where(np.isfinite(f), f, 0.0), params.max_position_nav), c.shape)
    valid_price = (c >= MIN_TICK) & (c <= 1 - MIN_TICK)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(
            (f > 0) & valid_price, np.floor(f * nav / np.where(valid_price, c, 1.0) + 1e-9), 0.0
        )
    notional = shares * np.where(valid_price, c, 0.0)
    if order_type == "limit":
        small = (shares > 0) & (shares < params.min_limit_shares)
        minimum = f"under the minimum order of {params.min_limit_shares} shares"
    elif order_type == "market":
        small = (shares > 0) & (notional < params.min_market_notional)
        minimum = f"under the minimum market order of ${params.min_market_notional:g}"
    else:
        raise ValueError(f"order_type must be 'limit' or 'market', got {order_type!r}")
    reason = np.select(
        [~valid_price, ~(e > 0), small, shares == 0],
        [f"price outside [{MIN_TICK:g}, {1 - MIN_TICK:g}]", "edge not positive", minimum, "under one share"],
        default="",
    ).astype(object)
    reason[reason == ""] = None
    shares = np.where(small, 0.0, shares)
    fraction = np.where(shares > 0, f, 0.0)
    return Sizes(fraction, shares, shares * np.where(valid_price, c, 0.0), reason)
