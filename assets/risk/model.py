"""Pure risk kernels: value at risk, EWMA volatility, whale quarantine strikes, trailing stops, what becomes of an
alert. No Dagster, no DuckDB.

Value at risk is reported as a **return** (negative = a loss), the PerformanceAnalytics convention: ``VaR95 =
-0.03`` means a 5% chance of losing more than 3% in a period. Moments are population moments (divide by n),
skewness ``m3 / m2^1.5``, excess kurtosis ``m4 / m2^2 - 3``, sigma ``sqrt(m2)``; with these, the functions
reproduce the values PerformanceAnalytics publishes for the EDHEC indices (tests/unit/test_risk_model.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

# the standard normal quantile (scipy.stats.norm.ppf is this, and slow to import)
from scipy.special import ndtri


class Moments(NamedTuple):
    n: int
    mean: float
    sigma: float
    skew: float
    excess_kurtosis: float


def population_moments(returns: np.ndarray) -> Moments:
    """Mean, population sd, skewness and excess kurtosis of the finite values; NaN where undefined."""
    x = np.asarray(returns, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return Moments(0, np.nan, np.nan, np.nan, np.nan)
    mean = x.mean()
    d = x - mean
    m2, m3, m4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
    if m2 <= 0:
        return Moments(n, float(mean), 0.0, np.nan, np.nan)
    return Moments(n, float(mean), float(np.sqrt(m2)), float(m3 / m2**1.5), float(m4 / m2**2 - 3.0))


def cornish_fisher_z(p: float, skew: float, excess_kurtosis: float) -> float:
    """The Cornish-Fisher quantile of a standardised return at tail probability ``1 - p``::

    z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3z) K / 24 - (2z^3 - 5z) S^2 / 36,   z = Phi^-1(1 - p)
    """
    z = ndtri(1.0 - p)
    s, k = skew, excess_kurtosis
    return float(z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36)


def modified_var(returns: np.ndarray, p: float = 0.95) -> float:
    """Cornish-Fisher (modified) VaR: ``mean + z_cf * sigma``, as a return, capped at a total loss (-1).

    Falls back to the Gaussian VaR when skewness and kurtosis are undefined (zero variance gives ``mean``).
    NaN with fewer than 2 finite returns.
    """
    m = population_moments(returns)
    if m.n < 2:
        return float("nan")
    if m.sigma == 0:
        return max(m.mean, -1.0)
    return max(m.mean + cornish_fisher_z(p, m.skew, m.excess_kurtosis) * m.sigma, -1.0)


def gaussian_var(returns: np.ndarray, p: float = 0.95) -> float:
    """``mean + Phi^-1(1 - p) * sigma`` (population sigma), as a return; NaN with fewer than 2 returns."""
    m = population_moments(returns)
    if m.n < 2:
        return float("nan")
    return max(m.mean + ndtri(1.0 - p) * m.sigma, -1.0)


def historical_var(returns: np.ndarray, p: float = 0.95) -> float:
    """The ``1 - p`` quantile of the finite returns (linear interpolation, R's type 7); NaN if there are none."""
    x = np.asarray(returns, dtype=float)
    x = x[np.isfinite(x)]
    return float(np.quantile(x, 1.0 - p)) if x.size else float("nan")


# ---------------------------------------------------------------------------------------------------------------
# Whale quarantine
# ---------------------------------------------------------------------------------------------------------------

#: A strike at an evaluation date: Sharpe below 0.5, current drawdown above 30%, or consistency below 5.
STRIKE_MIN_SHARPE = 0.5
STRIKE_MAX_DRAWDOWN = 0.30
STRIKE_MIN_CONSISTENCY = 5.0
#: Three strikes within 90 days quarantine the whale for 30 days; at release its strikes are cleared.
STRIKES_TO_QUARANTINE = 3
STRIKE_WINDOW_DAYS = 90
QUARANTINE_DAYS = 30


class QuarantineCarry(NamedTuple):
    """The three-strikes rule's running state per wallet after a date: all :func:`quarantine` needs to go on to
    later dates without the earlier ones."""

    recent: (
        np.ndarray
    )  # (wallets, strikes_needed): the latest strike days since the last release, newest last
    until: np.ndarray  # (wallets,): the day the quarantine ends; -inf when not quarantined

    @classmethod
    def empty(cls, wallets: int, strikes_needed: int) -> QuarantineCarry:
        return cls(np.full((wallets, strikes_needed), -np.inf), np.full(wallets, -np.inf))


class QuarantineState(NamedTuple):
    """Per (wallet, date) arrays, shape ``(wallets, dates)``, and the state after the last date (``carry``)."""

    strike: np.ndarray  # bool: this date's metrics earned a strike (never while quarantined)
    strikes: np.ndarray  # int: strikes counted at this date (within the window, since the last release)
    quarantined: np.ndarray  # bool: the whale may not be copied at this date
    released_day: np.ndarray  # float: the day number the quarantine ends (NaN when not quarantined)
    carry: QuarantineCarry


def _strike_bits(sharpe, drawdown, consistency, min_sharpe, max_drawdown, min_consistency) -> np.ndarray:
    """Per metric set, the thresholds crossed as bits: 1 Sharpe, 2 drawdown, 4 consistency (NaN crosses none)."""
    s, d, c = (np.asarray(a, dtype=float) for a in (sharpe, drawdown, consistency))
    with np.errstate(invalid="ignore"):
        return (s < min_sharpe) * 1 + (d > max_drawdown) * 2 + (c < min_consistency) * 4


def strikes(
    sharpe: np.ndarray,
    drawdown: np.ndarray,
    consistency: np.ndarray,
    min_sharpe: float = STRIKE_MIN_SHARPE,
    max_drawdown: float = STRIKE_MAX_DRAWDOWN,
    min_consistency: float = STRIKE_MIN_CONSISTENCY,
) -> np.ndarray:
    """Whether each metric set earns a strike. A NaN metric earns none (too little data is not a failure; the
    signal filter requires a score anyway). ``drawdown`` is the current drawdown as a positive fraction."""
    return _strike_bits(sharpe, drawdown, consistency, min_sharpe, max_drawdown, min_consistency) != 0


def strike_reasons(
    sharpe: np.ndarray,
    drawdown: np.ndarray,
    consistency: np.ndarray,
    min_sharpe: float = STRIKE_MIN_SHARPE,
    max_drawdown: float = STRIKE_MAX_DRAWDOWN,
    min_consistency: float = STRIKE_MIN_CONSISTENCY,
) -> np.ndarray:
    """Why each metric set earns a strike, ``"; "``-joined (``""`` where :func:`strikes` gives none): the
    dashboard's quarantine reasons, from the same comparisons as :func:`strikes`."""
    texts = [
        f"Sharpe < {min_sharpe:g}",
        f"current drawdown > {max_drawdown:.0%}",
        f"consistency < {min_consistency:g}",
    ]
    # the 8 combinations, looked up by their bits
    table = np.array(
        ["; ".join(t for i, t in enumerate(texts) if k >> i & 1) for k in range(8)], dtype=object
    )
    return table[_strike_bits(sharpe, drawdown, consistency, min_sharpe, max_drawdown, min_consistency)]


def quarantine(
    strike: np.ndarray,
    days: np.ndarray,
    strikes_needed: int = STRIKES_TO_QUARANTINE,
    window_days: int = STRIKE_WINDOW_DAYS,
    quarantine_days: int = QUARANTINE_DAYS,
    carry: QuarantineCarry | None = None,
) -> QuarantineState:
    """Run the three-strikes rule over evaluation dates.

    ``strike`` is ``(wallets, dates)`` (from :func:`strikes`), ``days`` the dates as increasing day numbers.
    At each date a wallet not in quarantine adds its strike; when its strikes within the last ``window_days``
    (and since its last release) reach ``strikes_needed`` it is quarantined for ``quarantine_days`` from that
    date. Re-admission is automatic when the period ends: the strikes are cleared and the whale must pass the
    signal filter again like any other. A time recursion: one vectorised step per date across all wallets.
    ``carry``: the state after the dates before these (the result's ``carry`` of a run over them), empty when
    None: the dates in two runs give the same arrays, to the bit, as in one.
    """
    s = np.asarray(strike, dtype=bool)
    t = np.asarray(days, dtype=float)
    n_w, n_k = s.shape
    start = QuarantineCarry.empty(n_w, strikes_needed) if carry is None else carry
    if start.recent.shape != (n_w, strikes_needed) or start.until.shape != (n_w,):
        raise ValueError(
            f"carry is for {start.until.shape[0]} wallets and {start.recent.shape[-1]} strikes, not {n_w} and "
            f"{strikes_needed}"
        )
    recent = np.array(
        start.recent, dtype=float
    )  # the latest strike days, newest last (a copy: carry is kept)
    until = np.array(start.until, dtype=float)
    out_strike = np.zeros((n_w, n_k), dtype=bool)
    out_count = np.zeros((n_w, n_k), dtype=np.int64)
    out_q = np.zeros((n_w, n_k), dtype=bool)
    out_until = np.full((n_w, n_k), np.nan)
    for k in range(n_k):  # dates, not wallets
        day = t[k]
        released = until <= day
        recent[released & np.isfinite(until)] = -np.inf  # a release clears the strikes
        until[released] = -np.inf
        free = ~np.isfinite(until)
        hit = s[:, k] & free
        recent[hit] = np.concatenate([recent[hit, 1:], np.full((hit.sum(), 1), day)], axis=1)
        count = (recent > day - window_days).sum(axis=1)
        start = free & (count >= strikes_needed)
        until[start] = day + quarantine_days
        out_strike[:, k] = hit
        out_count[:, k] = np.where(free, count, 0)
        out_q[:, k] = np.isfinite(until)
        out_until[:, k] = np.where(np.isfinite(until), until, np.nan)
    return QuarantineState(out_strike, out_count, out_q, out_until, QuarantineCarry(recent, until))


# ---------------------------------------------------------------------------------------------------------------
# Stops and exits
# ---------------------------------------------------------------------------------------------------------------

ATR_MULTIPLE = 2.5
TRAIL_ACTIVATION = 0.05  # the stop starts trailing once the price is 5% above entry
ATR_PERIOD = 14
TIME_EXIT_HOURS = 24.0


def average_true_range(prices: np.ndarray, period: int = ATR_PERIOD) -> np.ndarray:
    """Wilder's ATR on close-only daily marks: ``ATR_t = ATR_{t-1} + (|p_t - p_{t-1}| - ATR_{t-1}) / period``,
    starting from the first move (ATR_0 = ATR_1 = |p_1 - p_0|). Rows are positions, columns days; a NaN (no
    mark that day) carries the last price forward."""
    p = np.asarray(prices, dtype=float)
    filled = carry_forward(p)
    moves = np.nan_to_num(np.abs(np.diff(filled, axis=1, prepend=filled[:, :1])))
    if moves.shape[1] > 1:
        moves[:, 0] = moves[:, 1]  # day 0 has no move of its own: it takes the first one
    a = 1.0 / period
    from scipy.signal import lfilter  # scipy.signal takes 1.5 s to import: only where it is used

    atr, _ = lfilter([a], [1.0, -(1 - a)], moves, axis=1, zi=(1 - a) * moves[:, :1])
    return atr


def carry_forward(p: np.ndarray) -> np.ndarray:
    """Each row's NaNs filled with the last value before them (NaN before a row's first value)."""
    idx = np.where(np.isnan(p), 0, np.arange(p.shape[1]))
    np.maximum.accumulate(idx, axis=1, out=idx)
    return p[np.arange(p.shape[0])[:, None], idx]


class StopExits(NamedTuple):
    exit_day: np.ndarray  # column index of the exit, -1 when the stop never triggers
    exit_price: np.ndarray  # the mark at the exit (NaN when none)
    stop: np.ndarray  # (positions, days) the stop level in force each day (NaN before activation)


def trailing_stops(
    prices: np.ndarray,
    entry_price: np.ndarray,
    atr_multiple: float = ATR_MULTIPLE,
    activation: float = TRAIL_ACTIVATION,
    period: int = ATR_PERIOD,
) -> StopExits:
    """ATR trailing stops on daily marks from the entry day (column 0) on.

    The stop activates on the first day the mark reaches ``entry * (1 + activation)``; from then its level is
    the running maximum of ``p_t - atr_multiple * ATR_t`` (it only ratchets up). The position exits on the first
    later day whose mark is at or below the previous day's level.
    """
    p = np.asarray(prices, dtype=float)
    entry = np.asarray(entry_price, dtype=float)[:, None]
    filled = carry_forward(p)
    atr = average_true_range(p, period)
    with np.errstate(invalid="ignore"):
        active = np.maximum.accumulate(filled >= entry * (1 + activation), axis=1)
    level = np.where(active, filled - atr_multiple * atr, -np.inf)
    level = np.maximum.accumulate(level, axis=1)
    prev = np.concatenate([np.full((len(p), 1), -np.inf), level[:, :-1]], axis=1)
    with np.errstate(invalid="ignore"):
        hit = (~np.isnan(p)) & (p <= prev) & np.isfinite(prev)
    any_hit = hit.any(axis=1)
    first = np.where(any_hit, hit.argmax(axis=1), -1)
    rows = np.arange(len(p))
    exit_price = np.where(any_hit, p[rows, np.maximum(first, 0)], np.nan)
    return StopExits(first, exit_price, np.where(np.isfinite(level), level, np.nan))


class TrailingStop:
    """:func:`trailing_stops` for one position, advanced one day at a time (the paper book and the live loop).

    ``update(mark)`` takes the day's carried mark (the entry day first) and returns whether the stop is hit that
    day. It performs the vectorised version's arithmetic in the same order (Wilder's ATR recursion, the ratcheting
    level, the previous day's level as the trigger), so the first hit is on the same day, bit for bit
    (tests/unit/test_risk_model.py). The one look-ahead of the vectorised version, day 0's move taken from day 1,
    is resolved on day 1, the first day a hit can happen.
    """

    __slots__ = ("a", "activation_price", "active", "atr", "atr_multiple", "filled", "level", "n")

    def __init__(self, entry_price: float, atr_multiple: float = ATR_MULTIPLE, activation: float = TRAIL_ACTIVATION,
                 period: int = ATR_PERIOD):  # fmt: skip
        self.a = 1.0 / period
        self.atr_multiple = atr_multiple
        self.activation_price = entry_price * (1 + activation)
        self.n = 0
        self.filled = float("nan")  # the last mark (carried forward)
        self.atr = float("nan")
        self.active = False
        self.level = float("-inf")  # the running maximum of the level, through the previous day

    def _level(self, filled: float, atr: float) -> float:
        self.active = self.active or filled >= self.activation_price
        return filled - self.atr_multiple * atr if self.active else float("-inf")

    def update(self, mark: float) -> bool:
        p = float(mark)
        filled = self.filled if p != p else p
        n, a = self.n, self.a
        self.n += 1
        if n == 0:
            self.filled = filled
            return False
        move = abs(filled - self.filled)
        move = 0.0 if move != move else move  # nan_to_num
        if n == 1:  # day 0's move is day 1's: settle day 0's ATR and level now
            atr0 = a * move + (1 - a) * move
            self.level = max(self.level, self._level(self.filled, atr0))
            self.atr = atr0
        prev = self.level
        hit = p == p and prev != float("-inf") and p <= prev
        self.atr = a * move + (1 - a) * self.atr
        self.level = max(self.level, self._level(filled, self.atr))
        self.filled = filled
        return hit


def time_exit_due(
    now_ts: np.ndarray | float, resolution_ts: np.ndarray | float, hours: float = TIME_EXIT_HOURS
) -> np.ndarray:
    """Whether a position must be closed: within ``hours`` of its market's scheduled resolution (or past it)."""
    now, end = np.broadcast_arrays(np.asarray(now_ts, dtype=float), np.asarray(resolution_ts, dtype=float))
    with np.errstate(invalid="ignore"):
        return now >= end - hours * 3600.0


# ------------------------------------------------------------------------------------------------- alerts

#: what became of a portfolio alert at the webhook (``analytics.alerts.delivery``)
POSTED, PENDING, NO_WEBHOOK, HISTORY = "posted", "pending", "no webhook", "history"
ALERT_KEY = ["day", "kind", "message"]
DELIVERY_COLUMNS = ["found_at", "delivery", "posted_at"]


def alert_deliveries(
    found: pd.DataFrame, stored: pd.DataFrame | None, found_at: pd.Timestamp, last_day: int, webhook: bool
) -> pd.DataFrame:
    """The book's alerts (``found``: ``day, kind, message``, in the book's order) with what became of each at the
    webhook (``found_at, delivery, posted_at``), so that an alert is posted once however many runs find it again:
    each run's book starts empty on the first day and finds every alert of the history anew.

    An alert is a stored one when its day, kind and message are the same (of several alike, the n-th is the n-th
    stored); it keeps what the stored row says (``pending``: found while the webhook failed, so posted again). A
    new one (``found_at`` now, ``posted_at`` empty) is:

    - ``pending``, to post, when a webhook is configured (``posted`` once the webhook took it);
    - ``no webhook`` without one (a webhook configured later posts the alerts found after it, not these);
    - ``history`` on a first run (``stored`` is None: no alerts stored before), when its day is before
      ``last_day``, the book's last: the history's alerts are recorded, and only the last day's are posted.
    """
    out = found[ALERT_KEY].reset_index(drop=True)
    nth = out.groupby(ALERT_KEY, sort=False).cumcount().rename("_nth")
    out = out.join(nth)
    if stored is not None and len(stored):
        old = stored[ALERT_KEY + DELIVERY_COLUMNS].reset_index(drop=True)
        old = old.join(old.groupby(ALERT_KEY, sort=False).cumcount().rename("_nth"))
        out = out.merge(old, on=[*ALERT_KEY, "_nth"], how="left", validate="one_to_one")
        new = out["delivery"].isna().to_numpy()
    else:
        out = out.assign(found_at=pd.NaT, delivery=None, posted_at=pd.NaT)
        new = np.ones(len(out), dtype=bool)
    status = np.full(len(out), PENDING if webhook else NO_WEBHOOK, dtype=object)
    if stored is None:
        status[out["day"].to_numpy() < last_day] = HISTORY
    out["delivery"] = out["delivery"].astype(object).where(~new, status)
    out["found_at"] = pd.to_datetime(out["found_at"], utc=True).where(~new, pd.Timestamp(found_at))
    out["posted_at"] = pd.to_datetime(out["posted_at"], utc=True)
    return out.drop(columns="_nth")
