"""Pure scoring kernels for the whale quality score (WQS). No Dagster, no DuckDB.

Conventions (shared by every kernel here, in the style of ``empyrical``):

- **Layout.** Return series are float arrays of shape ``(wallets, days)``: one row per wallet, one column per
  UTC day, in day order. A 1-D array is read as a single wallet and gives a scalar-shaped (0-d) result.
  Per-position inputs are long 1-D arrays with an integer group code (the wallet) per element.
- **Missing data.** ``NaN`` marks a day with no return: the wallet did not exist yet, or
  ``marts.wallet_daily_returns`` had a NULL (``pnl_without_capital``). Kernels skip NaN days; they never
  fill them with 0 (a ``no_capital`` day is already an explicit 0 return in the mart).
- **Annualisation.** ``ANNUALIZATION = 365`` periods a year, because prediction markets trade every day
  (metrics.md, "Daily returns"). Sharpe and information ratio scale by ``sqrt(365)``; annual returns compound
  over ``n_days / 365`` years. The risk-free rate is 0.
- **Too little data.** A kernel returns ``NaN`` (never ``inf``) when a quantity is undefined: too few
  observations, zero variance, no drawdown. Only the DataFrame layer (:func:`score_wallets`) turns ``NaN`` into
  ``None`` with a reason string. Rankings put ``NaN``/``None`` last (:func:`rank_scores`).
- **Vectorised.** Every kernel works on whole arrays (prefix sums, ``np.bincount``, broadcasting); there is no
  Python loop over wallets. The row-wise kernels take the rows a block at a time (:data:`BLOCK_CELLS`), each block
  vectorised, so that their temporaries stay in cache; the blocks change no value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

ANNUALIZATION = 365
Z95 = float(stats.norm.ppf(0.975))  # 1.959963984540054

# ---------------------------------------------------------------------------------------------------------------
# 1. Bayesian win rate
# ---------------------------------------------------------------------------------------------------------------

#: Published base win rates of resolved positions per category, used as the Beta prior mean. Other categories
#: use a base rate the caller measures from the data (``fallback`` of :func:`category_prior_mean`).
CATEGORY_BASE_RATES: dict[str, float] = {"Politics": 0.521, "Crypto": 0.508, "Sports": 0.513}

#: Prior strength (pseudo-positions) of the Beta prior: the prior counts as 20 resolved positions.
WIN_RATE_PRIOR_STRENGTH = 20.0

#: Confidence level by the width of the 95% credible interval of the win rate: the level is the first whose
#: width is strictly below the cut-off. With a prior of 20 and a win rate near 0.5 the width is about
#: 0.43 at n = 0, 0.27 at n = 30, 0.18 at n = 100, 0.10 at n = 380 and 0.05 at n = 1,500 positions.
CONFIDENCE_CUTOFFS: tuple[tuple[float, str], ...] = (
    (0.05, "VERY_HIGH"),
    (0.10, "HIGH"),
    (0.20, "MEDIUM"),
    (0.30, "LOW"),
)
CONFIDENCE_FLOOR = "VERY_LOW"  # width >= 0.30


class WinRatePosterior(NamedTuple):
    """Beta(alpha, beta) posterior of a win rate and its equal-tailed 95% credible interval."""

    alpha: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    width: np.ndarray


def category_prior_mean(
    categories: Sequence[str] | np.ndarray, fallback: float | Mapping[str, float]
) -> np.ndarray:
    """Prior mean win rate per element of ``categories``.

    Politics 0.521, Crypto 0.508 and Sports 0.513 (:data:`CATEGORY_BASE_RATES`). Any other category takes
    ``fallback``: one rate measured from the data (a null category takes it too), or a mapping category -> rate
    (a category missing from the mapping, or a null one, gives NaN, which makes the posterior NaN).
    """
    cats = pd.Series(np.asarray(categories, dtype=object))
    rates = cats.map(CATEGORY_BASE_RATES)
    if isinstance(fallback, Mapping):
        rates = rates.fillna(cats.map(dict(fallback)))
    else:
        rates = rates.fillna(float(fallback))
    return rates.to_numpy(dtype=float)


def bayesian_win_rate(
    wins: np.ndarray | float,
    n: np.ndarray | float,
    prior_mean: np.ndarray | float,
    prior_strength: np.ndarray | float = WIN_RATE_PRIOR_STRENGTH,
) -> WinRatePosterior:
    """Beta-binomial posterior of each wallet's win rate over its resolved positions.

    Prior ``Beta(m k, (1 - m) k)`` with mean ``m = prior_mean`` and strength ``k = prior_strength``
    (pseudo-positions). Posterior ``alpha = m k + wins``, ``beta = (1 - m) k + n - wins``, mean
    ``alpha / (alpha + beta)``; the 95% credible interval is ``beta.ppf(0.025 | 0.975, alpha, beta)``.

    Broadcasts over arrays of wallets. ``n = 0`` gives the prior. Invalid input (NaN, ``wins < 0``,
    ``wins > n``, ``prior_mean`` outside (0, 1), ``prior_strength <= 0``) gives NaN in every field.
    """
    wins, n, m, k = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (wins, n, prior_mean, prior_strength))
    )
    with np.errstate(invalid="ignore"):
        ok = (wins >= 0) & (wins <= n) & (m > 0) & (m < 1) & (k > 0)
    alpha = np.where(ok, m * k + wins, np.nan)
    beta = np.where(ok, (1 - m) * k + n - wins, np.nan)
    mean = alpha / (alpha + beta)
    lower, upper = _beta_ppf((0.025, 0.975), alpha, beta)
    return WinRatePosterior(alpha, beta, mean, lower, upper, upper - lower)


def _beta_ppf(qs: Sequence[float], alpha: np.ndarray, beta: np.ndarray) -> list[np.ndarray]:
    """``stats.beta.ppf(q, alpha, beta)`` for each ``q``, computed once per distinct ``(alpha, beta)``: the inverse
    incomplete beta costs about a microsecond a value, and the wallets of a score history share few pairs (the same
    counts under the same prior); each value is the one the whole array would get (an elementwise function)."""
    pair = np.empty(alpha.shape, dtype=np.complex128)
    pair.real, pair.imag = alpha, beta
    codes, uniques = pd.factorize(pair.ravel())  # NaN pairs: code -1, a NaN quantile
    out = []
    for q in qs:
        at = np.append(stats.beta.ppf(q, uniques.real, uniques.imag), np.nan)
        out.append(at[codes].reshape(alpha.shape)[()])  # [()]: a scalar for 0-d input, as scipy gives
    return out


def confidence_level(interval_width: np.ndarray | float) -> np.ndarray:
    """Map 95%-interval widths to VERY_HIGH (< 0.05), HIGH (< 0.10), MEDIUM (< 0.20), LOW (< 0.30) or VERY_LOW.

    Returns an object array of the same shape; a NaN width gives ``None`` (no interval, no level).
    """
    w = np.asarray(interval_width, dtype=float)
    out = np.full(w.shape, CONFIDENCE_FLOOR, dtype=object)
    # Fill from the widest cut-off to the narrowest, so the narrowest matching level wins.
    for cutoff, label in reversed(CONFIDENCE_CUTOFFS):
        out[w < cutoff] = label
    out[np.isnan(w)] = None
    return out


class PredictiveWins(NamedTuple):
    """Posterior predictive number of wins in the next ``n_next`` positions: Monte Carlo mean and 90% interval."""

    mean: np.ndarray
    lower: np.ndarray  # 5th percentile
    upper: np.ndarray  # 95th percentile


def posterior_predictive_wins(
    alpha: np.ndarray | float,
    beta: np.ndarray | float,
    n_next: np.ndarray | int,
    draws: int = 10_000,
    rng: np.random.Generator | None = None,
    max_block: int = 2_000_000,
) -> PredictiveWins:
    """Monte Carlo posterior predictive of wins in the next ``n_next`` resolved positions.

    For each wallet: ``p ~ Beta(alpha, beta)`` (``draws`` times), then ``wins ~ Binomial(n_next, p)``; returns
    the mean and the 5th/95th percentiles (a 90% predictive interval) of the draws. The exact distribution is
    beta-binomial; the Monte Carlo mean converges to ``n_next * alpha / (alpha + beta)``.

    Vectorised: one ``(wallets, draws)`` block of beta then binomial draws, split into blocks of whole rows of
    at most ``max_block`` draws to bound memory. Rows with NaN or non-positive ``alpha``/``beta`` or a negative
    or NaN ``n_next`` give NaN. Deterministic for a given ``rng``.
    """
    rng = np.random.default_rng() if rng is None else rng
    a, b, nn = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (alpha, beta, n_next)))
    shape = a.shape
    a, b, nn = a.ravel(), b.ravel(), nn.ravel()
    with np.errstate(invalid="ignore"):
        ok = (a > 0) & (b > 0) & (nn >= 0) & np.isfinite(a) & np.isfinite(b) & np.isfinite(nn)
    idx = np.flatnonzero(ok)
    mean = np.full(a.shape, np.nan)
    lower = np.full(a.shape, np.nan)
    upper = np.full(a.shape, np.nan)
    rows_per_block = max(1, max_block // max(1, draws))
    for start in range(0, idx.size, rows_per_block):  # blocks of rows, not one wallet at a time
        sel = idx[start : start + rows_per_block]
        p = rng.beta(a[sel, None], b[sel, None], size=(sel.size, draws))
        k = rng.binomial(nn[sel, None].astype(np.int64), p)
        mean[sel] = k.mean(axis=1)
        lower[sel], upper[sel] = np.quantile(k, [0.05, 0.95], axis=1)
    return PredictiveWins(mean.reshape(shape), lower.reshape(shape), upper.reshape(shape))


# ---------------------------------------------------------------------------------------------------------------
# 2. Price-calibrated edge
# ---------------------------------------------------------------------------------------------------------------

#: Prior strength k of the edge (pseudo-positions). The prior is edge ~ N(0, v / k), where v is the wallet's
#: mean per-position variance p(1 - p); at p = 0.5 and k = 50 its sd is 0.5 / sqrt(50) = 0.071, the size of
#: the edge of the simulator's informed wallets (median +0.068).
EDGE_PRIOR_STRENGTH = 50.0


class EdgePosterior(NamedTuple):
    """Per-group price-calibrated edge: raw, posterior mean, posterior sd and 95% interval, and the count."""

    n: np.ndarray
    raw: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def price_calibrated_edge(
    won: np.ndarray,
    price_paid: np.ndarray,
    groups: np.ndarray,
    n_groups: int | None = None,
    prior_strength: float = EDGE_PRIOR_STRENGTH,
) -> EdgePosterior:
    """Realised win rate minus average price paid, per group (wallet), shrunk toward 0.

    Inputs are long arrays over **resolved BUY positions**: ``won`` (1/0, or the payout 0 / 0.5 / 1),
    ``price_paid`` (average cost per share, in (0, 1)) and ``groups``, integer codes ``0 .. n_groups - 1``.
    Elements with a NaN ``won``/``price_paid`` or a negative group are ignored.

    Model (normal-normal). A position bought at ``p`` pays ``won`` with mean ``p + edge`` and variance about
    ``p (1 - p)``. The raw edge ``e = mean(won) - mean(p)`` over ``n`` positions has sampling variance
    ``s^2 = sum p (1 - p) / n^2 = v / n``, with ``v = mean p (1 - p)``. With the prior ``edge ~ N(0, v / k)``,
    ``k = prior_strength``, the posterior is::

        mean = n / (n + k) * e          sd = sqrt(v / (n + k))          95% interval: mean -/+ 1.96 sd

    A group with no positions gives NaN. Grouping uses ``np.bincount``.
    """
    won = np.asarray(won, dtype=float).ravel()
    price = np.asarray(price_paid, dtype=float).ravel()
    groups = np.asarray(groups).ravel().astype(np.int64)
    if not (won.size == price.size == groups.size):
        raise ValueError("won, price_paid and groups must have the same length")
    keep = np.isfinite(won) & np.isfinite(price) & (groups >= 0)
    won, price, groups = won[keep], price[keep], groups[keep]
    size = int(n_groups) if n_groups is not None else (int(groups.max()) + 1 if groups.size else 0)
    n = np.bincount(groups, minlength=size).astype(float)
    sum_won = np.bincount(groups, weights=won, minlength=size)
    sum_price = np.bincount(groups, weights=price, minlength=size)
    sum_var = np.bincount(groups, weights=price * (1 - price), minlength=size)
    return edge_posterior(n, sum_won, sum_price, sum_var, prior_strength)


def edge_posterior(
    n: np.ndarray,
    sum_won: np.ndarray,
    sum_price: np.ndarray,
    sum_var: np.ndarray,
    prior_strength: float = EDGE_PRIOR_STRENGTH,
) -> EdgePosterior:
    """The posterior of :func:`price_calibrated_edge` from its sufficient statistics (any array shape):
    position count, sums of ``won``, of ``price_paid`` and of ``price_paid * (1 - price_paid)``."""
    n, sum_won, sum_price, sum_var = (np.asarray(a, dtype=float) for a in (n, sum_won, sum_price, sum_var))
    with np.errstate(invalid="ignore", divide="ignore"):
        nan_n = np.where(n > 0, n, np.nan)
        raw = (sum_won - sum_price) / nan_n
        v = sum_var / nan_n
        mean = n / (n + prior_strength) * raw
        sd = np.sqrt(v / (n + prior_strength))
    return EdgePosterior(n, raw, mean, sd, mean - Z95 * sd, mean + Z95 * sd)


# ---------------------------------------------------------------------------------------------------------------
# 3-5. Rolling Sharpe, consistency, regime
# ---------------------------------------------------------------------------------------------------------------

ROLLING_WINDOWS: tuple[int, ...] = (7, 14, 30, 60, 90)
#: A return series whose sample sd is at most this fraction of its |mean| counts as constant (zero variance):
#: float noise around a constant return would otherwise give a Sharpe near 1e9. It caps |Sharpe| at about
#: sqrt(365) / 1e-6 = 1.9e7.
SD_FLOOR_RELATIVE = 1e-6


def _as_2d(returns: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(returns, dtype=float)
    if arr.ndim == 1:
        return arr[None, :], True
    if arr.ndim != 2:
        raise ValueError(f"returns must be 1-D or 2-D (wallets x days), got {arr.ndim}-D")
    return arr, False


def _out(values: np.ndarray, was_1d: bool) -> np.ndarray:
    return values[0] if was_1d else values


def _prefix(values: np.ndarray) -> np.ndarray:
    """Prefix sums along days with a leading zero column: window sum over (t-w, t] is P[t+1] - P[t+1-w]."""
    out = np.zeros((values.shape[0], values.shape[1] + 1))
    np.cumsum(values, axis=1, out=out[:, 1:])
    return out


#: Cells (rows x days) of one block of rows in the row-wise kernels: a block's temporaries (512 KB each) stay in
#: cache and are reused, where whole-matrix temporaries (0.6 GB each at 100,000 wallets x 730 days) are fresh
#: pages every time. It changes no value: each row reads only itself. (From 4 MB a temporary, numpy advises the
#: kernel to back it with huge pages, which this machine's THP setting, defrag ``madvise``, compacts memory for on
#: a fault: 100,000 x 730 rolling Sharpes took 12.5 s with blocks of 2**19 cells against 3.6 s with 2**16 and 2**15.)
BLOCK_CELLS = 1 << 16


def _row_blocks(n_rows: int, n_cols: int) -> list[slice]:
    """Consecutive row slices of about :data:`BLOCK_CELLS` cells each, covering ``0 .. n_rows`` (one empty slice
    for none)."""
    step = max(1, BLOCK_CELLS // max(1, n_cols))
    return [slice(i, min(i + step, n_rows)) for i in range(0, max(n_rows, 1), step)]


def _columns(idx: slice | np.ndarray) -> slice | np.ndarray:
    """``idx`` as a slice where it is an ascending run of consecutive columns (a view, not a gathered copy)."""
    if isinstance(idx, slice):
        return idx
    idx = np.asarray(idx)
    if idx.ndim == 1 and idx.size > 1 and idx[0] >= 0 and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def _first_valid(x: np.ndarray) -> np.ndarray:
    """Each row's first non-NaN value (0 for a row with none): a centre that reads no later day."""
    if x.shape[1] == 0:
        return np.zeros(x.shape[0])
    valid = ~np.isnan(x)
    first = valid.argmax(axis=1)
    return np.where(valid.any(axis=1), x[np.arange(x.shape[0]), first], 0.0)


def _ends(ends: Sequence[int] | np.ndarray, n_days: int) -> np.ndarray:
    e = np.asarray(ends, dtype=np.int64).ravel()
    if e.size and (e.min() < 0 or e.max() > n_days):
        raise ValueError(f"as-of column ends must lie in 0..{n_days}")
    return e


def _constant_until(x: np.ndarray, ends: np.ndarray, whole: bool = False) -> np.ndarray:
    """Whether each row's valid values before each end are all equal (or there are none). ``whole``: ``ends`` is
    the single end of the whole-history functions, computed with plain reductions instead of running arrays."""
    if whole:
        head = x[:, : ends[0]]
        hi = np.max(np.where(np.isnan(head), -np.inf, head), axis=1, initial=-np.inf)
        lo = np.min(np.where(np.isnan(head), np.inf, head), axis=1, initial=np.inf)
        return ~(hi > lo)[:, None]
    hi = np.fmax.accumulate(np.where(np.isnan(x), -np.inf, x), axis=1)
    lo = np.fmin.accumulate(np.where(np.isnan(x), np.inf, x), axis=1)
    hi = np.concatenate([np.full((x.shape[0], 1), -np.inf), hi], axis=1)[:, ends]
    lo = np.concatenate([np.full((x.shape[0], 1), np.inf), lo], axis=1)[:, ends]
    return ~(hi > lo)


def _mean_sd_until(
    x: np.ndarray, ends: np.ndarray, whole: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sample sd (ddof 1) of each row's non-NaN values before each end: ``(rows, len(ends))``.

    ``whole`` (one end, for the whole-history functions) sums directly instead of through prefix sums: about
    twice as fast, equal to ~1e-15. The as-of path always uses prefix sums, so a date's value never depends on
    which other dates are scored with it.
    """
    valid = ~np.isnan(x)
    centre = _first_valid(x)[:, None]
    xc = np.where(valid, x - centre, 0.0)
    if whole:
        e = ends[0]
        cnt = valid[:, :e].sum(axis=1, dtype=float)[:, None]
        s1, s2 = xc[:, :e].sum(axis=1)[:, None], (xc[:, :e] ** 2).sum(axis=1)[:, None]
    else:
        cnt = _prefix(valid.astype(float))[:, ends]
        s1, s2 = _prefix(xc)[:, ends], _prefix(xc * xc)[:, ends]
    mean, sd = _moments_at(cnt, s1, s2, centre[:, 0])
    return cnt, mean, sd


def _run_length(x: np.ndarray) -> np.ndarray:
    """Length of the run of equal values ending at each day (NaN never equals anything, so it breaks runs)."""
    n_days = x.shape[1]
    t = np.arange(n_days)
    change = np.ones(x.shape, dtype=bool)
    change[:, 1:] = x[:, 1:] != x[:, :-1]
    last_change = np.maximum.accumulate(np.where(change, t, 0), axis=1)
    return t - last_change + 1


def rolling_sharpes(
    returns: np.ndarray, windows: Sequence[int] = ROLLING_WINDOWS, annualization: int = ANNUALIZATION
) -> dict[int, np.ndarray]:
    """Trailing annualised Sharpe ratios for several windows at once: ``{window: array like returns}``.

    Value at day ``t`` for window ``w``: ``mean / std * sqrt(annualization)`` of the returns of days
    ``t - w + 1 .. t``, with the sample std (``ddof = 1``). It is NaN unless all ``w`` days of the window have a
    return (so the first ``w - 1`` days of a wallet, and any window holding a NULL day, are NaN), and NaN when the
    window's returns are all equal (zero variance gives NaN, never inf; so does an sd at most
    :data:`SD_FLOOR_RELATIVE` of the mean, float noise around a constant). ``w < 2`` is rejected.

    Computed with prefix sums of x and x^2 and of the valid-day count, so the cost is O(wallets x days) per
    window. Each row is centred on its first valid return (a centre that reads no later day, so a value at
    ``t`` never depends on days after ``t``), which keeps the ``sum x^2 - (sum x)^2 / w`` difference accurate (it
    agrees with ``pandas.rolling(w).mean() / .std()`` to ~1e-12). Zero variance is detected exactly, from run
    lengths of equal values, not from a rounding-sized residue.
    """
    x, was_1d = _as_2d(returns)
    ws = [int(w) for w in windows]
    if any(w < 2 for w in ws):
        raise ValueError("a rolling Sharpe needs a window of at least 2 days")
    n_days = x.shape[1]
    out = {w: np.full(x.shape, np.nan) for w in ws}
    for rows in _row_blocks(x.shape[0], n_days):  # rows are independent: a block at a time stays in cache
        b = x[rows]
        valid = ~np.isnan(b)
        centre = _first_valid(b)
        xc = np.where(valid, b - centre[:, None], 0.0)
        p1, p2, pc = _prefix(xc), _prefix(xc * xc), _prefix(valid.astype(float))
        run = _run_length(b)
        for w in ws:  # a handful of windows, each fully vectorised
            if n_days >= w:
                out[w][rows, w - 1 :] = _rolling_from(
                    p1, p2, pc, run[:, w - 1 :], centre, slice(w, n_days + 1), slice(0, n_days + 1 - w), w,
                    annualization,
                )  # fmt: skip
    return {w: _out(v, was_1d) for w, v in out.items()}


def rolling_sharpe(returns: np.ndarray, window: int, annualization: int = ANNUALIZATION) -> np.ndarray:
    """Trailing annualised Sharpe over ``window`` days; see :func:`rolling_sharpes` for the convention."""
    return rolling_sharpes(returns, (window,), annualization)[int(window)]


#: Consistency = 100 * exp(-sd / CONSISTENCY_SCALE), sd = std (ddof 1) of a wallet's rolling 30-day Sharpes.
#: An i.i.d. trader's 30-day annualised Sharpe has a sampling sd of about sqrt(365 / 30) = 3.5, which scores
#: about 25; an sd of 0 scores 100 and an sd of 10 scores 2. Tuned on simulator seed 11 over {2.5, 5, 10}
#: (``whalecopy tune-score``; docs/metrics.md#tuning): 2.5 had the best WQS IC, by less than its noise.
CONSISTENCY_SCALE = 2.5
#: Fewer valid rolling Sharpes than this (about two months of history for the 30-day window) gives NaN.
CONSISTENCY_MIN_POINTS = 30


def consistency_as_of(
    rolling_sharpe_30: np.ndarray,
    ends: Sequence[int],
    scale: float = CONSISTENCY_SCALE,
    min_points: int = CONSISTENCY_MIN_POINTS,
) -> np.ndarray:
    """:func:`consistency_score` of each row's rolling Sharpes before each end: ``(rows, len(ends))``."""
    return _consistency(rolling_sharpe_30, ends, scale, min_points)


def _consistency(
    rolling_sharpe_30: np.ndarray, ends: Sequence[int], scale: float, min_points: int, whole: bool = False
) -> np.ndarray:
    x, _ = _as_2d(rolling_sharpe_30)
    x = np.where(np.isfinite(x), x, np.nan)
    e = _ends(ends, x.shape[1])
    cnt, _, sd = _mean_sd_until(x, e, whole)
    with np.errstate(invalid="ignore"):
        return np.where(cnt >= max(2, min_points), 100.0 * np.exp(-sd / scale), np.nan)


def consistency_score(
    rolling_sharpe_30: np.ndarray, scale: float = CONSISTENCY_SCALE, min_points: int = CONSISTENCY_MIN_POINTS
) -> np.ndarray:
    """0-100 score of how stable each wallet's rolling 30-day Sharpe is over its history (higher = steadier).

    ``100 * exp(-sd / scale)``, where ``sd`` is the sample std (ddof 1) of the row's non-NaN rolling Sharpes.
    Monotone decreasing in ``sd``. NaN when a row has fewer than ``min_points`` (>= 2) valid values.
    """
    x, was_1d = _as_2d(rolling_sharpe_30)
    return _out(_consistency(x, [x.shape[1]], scale, min_points, whole=True)[:, 0], was_1d)


REGIME_BAND = 0.25


def regime(
    short_sharpe: np.ndarray | float, long_sharpe: np.ndarray | float, band: float = REGIME_BAND
) -> np.ndarray:
    """IMPROVING if ``short > long + band``, DETERIORATING if ``short < long - band``, else STABLE.

    Sharpes are annualised (e.g. the latest 14-day vs 90-day rolling Sharpe); ``band`` is in the same units.
    Returns an object array; ``None`` where either input is NaN.
    """
    s, lg = np.broadcast_arrays(np.asarray(short_sharpe, dtype=float), np.asarray(long_sharpe, dtype=float))
    out = np.full(s.shape, "STABLE", dtype=object)
    with np.errstate(invalid="ignore"):
        out[s > lg + band] = "IMPROVING"
        out[s < lg - band] = "DETERIORATING"
    out[np.isnan(s) | np.isnan(lg)] = None
    return out


# ---------------------------------------------------------------------------------------------------------------
# 6. History metrics (empyrical conventions, annualisation 365), as of any set of days
# ---------------------------------------------------------------------------------------------------------------
#
# Each metric is computed "as of" column ends: the value at end ``e`` uses days ``0 .. e - 1`` only (the days
# before ``as_of``), from prefix sums and running maxima, so a whole history of as-of dates costs one pass. The
# whole-history functions are the special case ``ends = [n_days]``. Rows are centred on their *first* valid value
# (not their mean), which keeps the prefix-sum variance accurate without reading any later day.


def sharpe_as_of(
    returns: np.ndarray, ends: Sequence[int], annualization: int = ANNUALIZATION, min_periods: int = 2
) -> np.ndarray:
    """Annualised Sharpe of each row's returns before each end (``(rows, len(ends))``); see :func:`annualised_sharpe`."""
    return _sharpe(returns, ends, annualization, min_periods)


def _sharpe(
    returns: np.ndarray, ends: Sequence[int], annualization: int, min_periods: int, whole: bool = False
) -> np.ndarray:
    x, _ = _as_2d(returns)
    e = _ends(ends, x.shape[1])
    cnt, mean, sd = _mean_sd_until(x, e, whole)
    with np.errstate(invalid="ignore"):
        ok = (
            (cnt >= max(2, min_periods))
            & ~_constant_until(x, e, whole)
            & (sd > SD_FLOOR_RELATIVE * np.abs(mean))
            & (sd > 0)
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, mean / sd * np.sqrt(annualization), np.nan)


def annualised_sharpe(
    returns: np.ndarray, annualization: int = ANNUALIZATION, min_periods: int = 2
) -> np.ndarray:
    """``mean / std(ddof=1) * sqrt(annualization)`` of each row's non-NaN returns (risk-free 0).

    Same as ``empyrical.sharpe_ratio(r, annualization=365)`` on a NaN-free series, except that zero variance
    gives NaN here (empyrical gives +-inf), as does an sd at most :data:`SD_FLOOR_RELATIVE` of ``|mean|``.
    NaN with fewer than ``min_periods`` (>= 2) returns.
    """
    x, was_1d = _as_2d(returns)
    return _out(_sharpe(x, [x.shape[1]], annualization, min_periods, whole=True)[:, 0], was_1d)


def _wealth(x: np.ndarray) -> np.ndarray:
    """Compounded wealth from 1, a leading column of 1s; NaN days leave wealth unchanged; returns < -1 count as -1."""
    growth = 1.0 + np.clip(np.nan_to_num(x, nan=0.0), -1.0, None)
    wealth = np.ones((x.shape[0], x.shape[1] + 1))
    np.cumprod(growth, axis=1, out=wealth[:, 1:])
    return wealth


def drawdown_metrics_as_of(
    returns: np.ndarray, ends: Sequence[int], annualization: int = ANNUALIZATION, min_periods: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(max_drawdown, annual_return, calmar)`` of each row's returns before each end, each ``(rows, len(ends))``.

    Conventions of :func:`max_drawdown`, :func:`annual_return` and :func:`calmar`.
    """
    x, _ = _as_2d(returns)
    e = _ends(ends, x.shape[1])
    wealth = _wealth(x)
    peak = np.maximum.accumulate(wealth, axis=1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        dd = np.minimum.accumulate((wealth - peak) / peak, axis=1)[:, e]
        cnt = _prefix((~np.isnan(x)).astype(float))[:, e]
        mdd = np.where(cnt > 0, dd, np.nan)
        ar = np.where(cnt > 0, wealth[:, e] ** (annualization / np.where(cnt > 0, cnt, 1)) - 1.0, np.nan)
        ratio = ar / np.abs(mdd)
    cal = np.where((mdd < 0) & np.isfinite(ratio) & (cnt >= min_periods), ratio, np.nan)
    return mdd, ar, cal


def current_drawdown_as_of(returns: np.ndarray, ends: Sequence[int]) -> np.ndarray:
    """How far compounded wealth stands below its running peak at each end, as a fraction <= 0 (0 at a peak);
    NaN for a row with no returns before the end. ``(rows, len(ends))``."""
    x, _ = _as_2d(returns)
    e = _ends(ends, x.shape[1])
    wealth = _wealth(x)
    peak = np.maximum.accumulate(wealth, axis=1)
    cnt = _prefix((~np.isnan(x)).astype(float))[:, e]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, wealth[:, e] / peak[:, e] - 1.0, np.nan)


def max_drawdown(returns: np.ndarray) -> np.ndarray:
    """Largest peak-to-trough fall of compounded wealth, as a fraction <= 0 (empyrical's ``max_drawdown``).

    Wealth starts at 1 (so a first-day loss is a drawdown) and compounds ``1 + r``; NaN days leave it unchanged,
    and a return below -1 counts as -1 (total loss, drawdown -1). NaN for a row with no returns.
    """
    x, was_1d = _as_2d(returns)
    return _out(drawdown_metrics_as_of(x, [x.shape[1]])[0][:, 0], was_1d)


def annual_return(returns: np.ndarray, annualization: int = ANNUALIZATION) -> np.ndarray:
    """Compound annual growth rate: ``wealth_end ** (annualization / n_days) - 1`` over the row's non-NaN days.

    Equals ``empyrical.annual_return(r, annualization=365)`` on a NaN-free series (empyrical counts NaN days in
    ``n_days``; here a NaN day is a day the wallet was not there). NaN for a row with no returns.
    """
    x, was_1d = _as_2d(returns)
    return _out(drawdown_metrics_as_of(x, [x.shape[1]], annualization)[1][:, 0], was_1d)


def calmar(returns: np.ndarray, annualization: int = ANNUALIZATION, min_periods: int = 2) -> np.ndarray:
    """Annual return / |max drawdown| (empyrical's ``calmar_ratio`` with ``annualization=365``).

    NaN when there is no drawdown (``max_drawdown == 0``), when the ratio is not finite, or with fewer than
    ``min_periods`` returns.
    """
    x, was_1d = _as_2d(returns)
    return _out(drawdown_metrics_as_of(x, [x.shape[1]], annualization, min_periods)[2][:, 0], was_1d)


def information_ratio(
    returns: np.ndarray, benchmark: np.ndarray, annualization: int = ANNUALIZATION, min_periods: int = 2
) -> np.ndarray:
    """Mean active return / tracking error, annualised: ``mean(r - b) / std(r - b, ddof=1) * sqrt(365)``.

    ``benchmark`` is one series over the same days (1-D, broadcast to every wallet) or a ``(wallets, days)``
    array. Days where either is NaN are skipped. This is ``empyrical.excess_sharpe(r, b) * sqrt(365)``.
    NaN with fewer than ``min_periods`` common days or a constant active return (zero tracking error).
    """
    x, was_1d = _as_2d(returns)
    b = np.broadcast_to(np.asarray(benchmark, dtype=float), x.shape)
    return _out(annualised_sharpe(x - b, annualization, min_periods), was_1d)


# ---------------------------------------------------------------------------------------------------------------
# 7. Whale quality score
# ---------------------------------------------------------------------------------------------------------------

#: Logistic transforms ``100 / (1 + exp(-(x - centre) / scale))`` of the ratio factors: (centre, scale).
#: Sharpe 1 scores 50, Sharpe 3 scores 88, Sharpe 0 scores 27. Information ratio 0.5 scores 50, 2 scores 88.
#: Calmar 1 scores 50, Calmar 5 scores 88, Calmar -1 scores 27.
SHARPE_LOGISTIC = (1.0, 1.0)
IR_LOGISTIC = (0.5, 0.75)
CALMAR_LOGISTIC = (1.0, 2.0)
#: Volume score ``100 * (log10(volume) - 3) / (7 - 3)`` clipped to 0-100: $1k or less scores 0, $10M or more 100.
VOLUME_LOG10_RANGE = (3.0, 7.0)

#: WQS weights of the five 0-100 factor scores.
WQS_WEIGHTS = {"sharpe": 0.30, "information_ratio": 0.25, "calmar": 0.20, "consistency": 0.15, "volume": 0.10}
#: Sample-size penalty: multiplier 0.5 at 0 resolved positions rising linearly to 1.0 at 50 or more.
FULL_CREDIT_POSITIONS = 50
#: Concentration penalty: multiplier 0.9 when market HHI (0-10,000) is above 1,800.
HHI_LIMIT = 1800.0
HHI_PENALTY = 0.9

#: Tiers, checked in order: MEGA needs WQS >= 80 and volume >= $100k; LARGE WQS >= 70; MID WQS >= 60; else WATCH.
#: A WQS >= 80 wallet under $100k of volume is LARGE. A NaN WQS has no tier (None).
MEGA_MIN_WQS, MEGA_MIN_VOLUME = 80.0, 100_000.0
TIER_CUTOFFS: tuple[tuple[float, str], ...] = ((70.0, "LARGE"), (60.0, "MID"))
TIER_FLOOR = "WATCH"


class FactorScores(NamedTuple):
    """The five WQS factors, each on 0-100 (NaN where the metric is NaN)."""

    sharpe: np.ndarray
    information_ratio: np.ndarray
    calmar: np.ndarray
    consistency: np.ndarray
    volume: np.ndarray


def _logistic(x: np.ndarray, centre: float, scale: float) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        return 100.0 / (1.0 + np.exp(-(x - centre) / scale))


def volume_score(volume: np.ndarray | float) -> np.ndarray:
    """``100 * (log10(volume) - 3) / 4`` clipped to [0, 100]: <= $1k scores 0, >= $10M scores 100; NaN stays NaN."""
    v = np.asarray(volume, dtype=float)
    lo, hi = VOLUME_LOG10_RANGE
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 100.0 * (np.log10(np.where(v > 0, v, 1.0)) - lo) / (hi - lo)
    return np.where(np.isnan(v), np.nan, np.clip(np.where(v > 0, s, 0.0), 0.0, 100.0))


def factor_scores(
    sharpe: np.ndarray | float,
    information_ratio: np.ndarray | float,
    calmar: np.ndarray | float,
    consistency: np.ndarray | float,
    volume: np.ndarray | float,
    max_drawdown: np.ndarray | float | None = None,
) -> FactorScores:
    """Map each metric to 0-100 (monotone increasing): logistic for Sharpe (centre 1, scale 1), information
    ratio (centre 0.5, scale 0.75) and Calmar (centre 1, scale 2); consistency is already 0-100 (clipped);
    volume by :func:`volume_score`.

    Calmar is NaN when a wallet never had a drawdown; if ``max_drawdown`` is given, such a wallet
    (``max_drawdown == 0``) gets the top Calmar score, 100, instead of NaN.
    """
    cal = _logistic(calmar, *CALMAR_LOGISTIC)
    if max_drawdown is not None:
        cal = np.where(np.isnan(cal) & (np.asarray(max_drawdown, dtype=float) == 0), 100.0, cal)
    return FactorScores(
        _logistic(sharpe, *SHARPE_LOGISTIC),
        _logistic(information_ratio, *IR_LOGISTIC),
        cal,
        np.clip(np.asarray(consistency, dtype=float), 0.0, 100.0),
        volume_score(volume),
    )


def sample_size_multiplier(n_resolved: np.ndarray | float) -> np.ndarray:
    """``0.5 + 0.5 * min(n, 50) / 50``: 0.5 at 0 resolved positions, 1.0 at 50 or more; NaN stays NaN."""
    n = np.asarray(n_resolved, dtype=float)
    return 0.5 + 0.5 * np.clip(n, 0, FULL_CREDIT_POSITIONS) / FULL_CREDIT_POSITIONS


def wqs(factors: FactorScores, n_resolved: np.ndarray | float, market_hhi: np.ndarray | float) -> np.ndarray:
    """Whale quality score, 0-100.

    ``(0.30 sharpe + 0.25 IR + 0.20 calmar + 0.15 consistency + 0.10 volume)`` (factor scores 0-100)
    ``x sample_size_multiplier(n_resolved)`` (0.5 -> 1.0 over 0 -> 50 resolved positions)
    ``x 0.9 if market_hhi > 1800``. NaN if any factor, ``n_resolved`` or ``market_hhi`` is NaN.
    """
    base = sum(WQS_WEIGHTS[name] * np.asarray(getattr(factors, name), dtype=float) for name in WQS_WEIGHTS)
    hhi = np.asarray(market_hhi, dtype=float)
    with np.errstate(invalid="ignore"):
        conc = np.where(np.isnan(hhi), np.nan, np.where(hhi > HHI_LIMIT, HHI_PENALTY, 1.0))
    return base * sample_size_multiplier(n_resolved) * conc


def tier(score: np.ndarray | float, volume: np.ndarray | float) -> np.ndarray:
    """MEGA (WQS >= 80 and volume >= $100k), LARGE (>= 70), MID (>= 60), else WATCH; None for a NaN WQS."""
    s, v = np.broadcast_arrays(np.asarray(score, dtype=float), np.asarray(volume, dtype=float))
    out = np.full(s.shape, TIER_FLOOR, dtype=object)
    with np.errstate(invalid="ignore"):
        for cutoff, label in reversed(TIER_CUTOFFS):
            out[s >= cutoff] = label
        out[(s >= MEGA_MIN_WQS) & (v >= MEGA_MIN_VOLUME)] = "MEGA"
    out[np.isnan(s)] = None
    return out


def rank_scores(scores: np.ndarray | Sequence[float | None]) -> np.ndarray:
    """Indices that sort ``scores`` best first (descending); NaN and None always go last; ties keep input order."""
    s = pd.to_numeric(
        pd.Series(list(scores) if not isinstance(scores, np.ndarray) else scores), errors="coerce"
    )
    s = s.to_numpy(dtype=float)
    key = np.where(np.isnan(s), np.inf, -s)
    return np.argsort(key, kind="stable")


# ---------------------------------------------------------------------------------------------------------------
# Thin DataFrame layer
# ---------------------------------------------------------------------------------------------------------------

#: Whole-history metrics need at least this many days of returns; fewer gives None with a reason. Tuned on
#: simulator seed 11 over {30, 60, 90} (docs/metrics.md#tuning).
MIN_RETURN_DAYS = 60


def _as_days(days: pd.Series) -> np.ndarray:
    """A column of dates or datetimes as ``datetime64[D]``. A ``datetime64`` column is cast directly:
    ``pd.to_datetime`` boxes every value of one as a ``Timestamp`` to decide whether to cache (0.14 s for 40,000
    rows)."""
    if pd.api.types.is_datetime64_dtype(days.dtype):
        return days.to_numpy().astype("datetime64[D]")
    return pd.to_datetime(days).to_numpy(dtype="datetime64[D]")


def _wallet_codes(wallet: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each row's wallet as its index in the sorted distinct wallets, and those wallets. A categorical column
    (Arrow's dictionary, ``to_pandas(strings_to_categorical=True)``) is read from its codes, sorting only its
    distinct values: 0.75 s against 3.0 s for strings at 33M rows. A NULL wallet is refused."""
    if isinstance(wallet.dtype, pd.CategoricalDtype):
        raw = wallet.cat.codes.to_numpy()
        names = wallet.cat.categories.to_numpy(dtype=object)
        used = np.flatnonzero(np.bincount(raw[raw >= 0], minlength=len(names)))  # categories no row has: none
        order = used[np.argsort(names[used], kind="stable")]
        rank = np.full(len(names) + 1, -1, dtype=np.int64)  # the last entry: a NULL's code -1
        rank[order] = np.arange(len(order))
        codes, uniques = rank[raw], names[order]
    else:
        codes, uniques = pd.factorize(wallet, sort=True)
        uniques = np.asarray(uniques, dtype=object)
    if len(codes) and codes.min() < 0:
        raise ValueError(f"{int((codes < 0).sum()):,} return rows have no wallet (NULL)")
    return codes, uniques


def returns_matrix(daily_returns: pd.DataFrame) -> tuple[pd.Index, pd.Index, np.ndarray]:
    """Pivot long ``(wallet, day, daily_return)`` rows (``marts.wallet_daily_returns``) to wallets x days.

    Returns ``(wallets, days, array)``: wallets sorted, days every calendar day from the first to the last; a
    (wallet, day) absent from the input, or a NULL return, is NaN; where a (wallet, day) has several rows, its
    first non-NULL return (``pivot_table(aggfunc="first")``, which this replaces: the same array from integer
    codes, where the pivot took 28 s of 61 s on 65M rows).
    """
    if daily_returns.empty:
        return pd.Index([], name="wallet"), pd.DatetimeIndex([], freq="D"), np.empty((0, 0))
    codes, wallets = _wallet_codes(daily_returns["wallet"])
    day = _as_days(daily_returns["day"])
    lo, hi = day.min(), day.max()
    d = (day - lo).astype(np.int64)
    values = daily_returns["daily_return"].to_numpy(dtype=float)
    out = np.full((len(wallets), int(d.max()) + 1), np.nan)
    nonnull = ~np.isnan(values)
    if nonnull.all():
        cell = codes * out.shape[1] + d
    else:
        row = np.flatnonzero(nonnull)
        cell = codes[row] * out.shape[1] + d[row]
        values = values[row]
    seen = np.zeros(out.size, dtype=bool)  # a byte a cell: are the cells distinct (the mart's key says so)?
    seen[cell] = True
    if np.count_nonzero(seen) < len(cell):
        # each cell's first non-NULL row (numpy leaves the winner of a repeated index in an assignment unspecified)
        at = np.arange(len(cell))
        first = np.full(out.size, len(cell), dtype=np.int64)
        np.minimum.at(first, cell, at)
        win = first[cell] == at
        cell, values = cell[win], values[win]
    out.ravel()[cell] = values
    days = pd.date_range(pd.Timestamp(lo), pd.Timestamp(hi), freq="D")
    return pd.Index(wallets, name="wallet"), days, out


def _nullable(values: np.ndarray) -> pd.Series:
    s = pd.Series(values, dtype=object)
    return s.where(pd.notna(s), None)


def reasons_from_masks(causes: Sequence[tuple[np.ndarray, str]], fallback: str | None = None) -> np.ndarray:
    """One ``"; "``-joined string per row of every cause whose mask is true there (``fallback`` where none is).

    Vectorised: each row's causes become a bit mask and each distinct mask is joined once, so the cost is one
    pass over the rows plus a string per distinct combination, not per row.
    """
    if not causes:
        return np.array([], dtype=object)
    masks = [np.asarray(mask, dtype=bool) for mask, _ in causes]
    bits = sum(m.astype(np.int64) << i for i, m in enumerate(masks))
    distinct, inverse = np.unique(bits, return_inverse=True)
    text = np.array(
        ["; ".join(t for i, (_, t) in enumerate(causes) if b >> i & 1) or fallback for b in distinct],
        dtype=object,
    )
    return (
        text[inverse.ravel()].reshape(np.shape(bits))
        if distinct.size
        else np.full(np.shape(bits), fallback, dtype=object)
    )


class Scored(NamedTuple):
    """WQS with its tier and, where it is undefined, the reason (``None`` where the score exists)."""

    wqs: np.ndarray
    tier: np.ndarray
    reason: np.ndarray


def assemble_wqs(
    n_return_days: np.ndarray,
    sharpe: np.ndarray,
    information_ratio: np.ndarray,
    max_drawdown: np.ndarray,
    calmar: np.ndarray,
    consistency: np.ndarray,
    volume: np.ndarray,
    n_resolved: np.ndarray,
    market_hhi: np.ndarray,
    min_days: int = MIN_RETURN_DAYS,
    consistency_min_points: int = CONSISTENCY_MIN_POINTS,
) -> Scored:
    """WQS, tier and reason from per-wallet metrics (1-D arrays of one length; NaN = undefined).

    Sharpe, information ratio, drawdown and Calmar count only with ``n_return_days >= min_days``. The reason
    lists every cause, ``"; "``-joined: too few days, zero variance, undefined information ratio or Calmar, too
    few rolling Sharpes, no volume, no resolved-position count, no market concentration.
    """
    n_days = np.asarray(n_return_days, dtype=float)
    enough = n_days >= min_days
    sharpe, ir, mdd, cal = (
        np.where(enough, np.asarray(a, dtype=float), np.nan)
        for a in (sharpe, information_ratio, max_drawdown, calmar)
    )
    cons, volume, n_res, hhi = (
        np.asarray(a, dtype=float) for a in (consistency, volume, n_resolved, market_hhi)
    )
    f = factor_scores(sharpe, ir, cal, cons, volume, max_drawdown=mdd)
    score = wqs(f, n_res, hhi)
    causes = (
        (~enough, f"fewer than {min_days} days of returns"),
        (enough & np.isnan(sharpe), "zero variance of returns"),
        (enough & np.isnan(ir), "information ratio undefined (zero tracking error)"),
        (enough & np.isnan(f.calmar), "calmar undefined"),
        (np.isnan(cons), f"fewer than {consistency_min_points} rolling 30-day Sharpes"),
        (np.isnan(volume) | (volume <= 0), "no volume"),
        (np.isnan(n_res), "no resolved-position count"),
        (np.isnan(hhi), "no market concentration"),
    )
    reasons = np.where(np.isnan(score), reasons_from_masks(causes, "score undefined"), None)
    return Scored(score, tier(score, volume), reasons.astype(object))


def _cross_sectional_mean(r: np.ndarray) -> np.ndarray:
    """Mean return of the wallets with a return each day (the default benchmark); NaN on a day with none."""
    valid = ~np.isnan(r)
    cnt = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, np.where(valid, r, 0.0).sum(axis=0) / cnt, np.nan)


def score_wallets(
    features: pd.DataFrame,
    daily_returns: pd.DataFrame,
    benchmark: pd.Series | None = None,
    min_days: int = MIN_RETURN_DAYS,
) -> pd.DataFrame:
    """Score wallets over their whole history from ``marts.wallet_features`` and ``marts.wallet_daily_returns``.

    ``features`` needs ``wallet, n_resolved_positions, volume, market_hhi``. ``benchmark`` is a daily return
    series indexed by day; by default the cross-sectional mean return of all wallets that day. Metric columns
    hold a float or ``None``; ``reason`` says why ``wqs`` is ``None`` (``"; "``-joined), else it is ``None``.
    The frame is sorted best first, with ``None`` scores last, and ``rank`` is 1-based (``None`` when unscored).
    (The point-in-time history of :func:`score_history` is what the pipeline stores; this is its last day.)
    """
    wallets, days, r = returns_matrix(daily_returns)
    feats = features.set_index("wallet").reindex(wallets.union(features["wallet"], sort=False))
    if not feats.index.equals(wallets):  # features of wallets with no returns: rows of NaN
        r = pd.DataFrame(r, index=wallets, columns=days).reindex(feats.index).to_numpy(dtype=float)
    if benchmark is None:
        bench = _cross_sectional_mean(r)
    else:
        bench = pd.Series(benchmark).reindex(days).to_numpy(dtype=float)

    n = len(r)
    n_days = np.zeros(n, dtype=np.int64)
    sharpe, ir, mdd, cal, cons, short, long = (np.full(n, np.nan) for _ in range(7))
    end = [r.shape[1]]
    for rows in _row_blocks(n, r.shape[1]):  # every metric reads its own row only: a block at a time
        x = r[rows]
        n_days[rows] = (~np.isnan(x)).sum(axis=1)
        sharpe[rows] = annualised_sharpe(x)
        ir[rows] = information_ratio(x, bench)
        mdd[rows], _, cal[rows] = (a[:, 0] for a in drawdown_metrics_as_of(x, end))
        rolls = rolling_sharpes(x, (14, 30, 90))
        cons[rows] = consistency_score(rolls[30])
        if r.shape[1]:
            short[rows], long[rows] = rolls[14][:, -1], rolls[90][:, -1]
    reg = regime(short, long) if r.shape[1] else np.full(n, None, dtype=object)
    volume = feats["volume"].to_numpy(dtype=float)
    scored = assemble_wqs(
        n_days, sharpe, ir, mdd, cal, cons, volume,
        feats["n_resolved_positions"].to_numpy(dtype=float), feats["market_hhi"].to_numpy(dtype=float), min_days,
    )  # fmt: skip
    enough = n_days >= min_days
    out = pd.DataFrame(
        {
            "wallet": feats.index.to_numpy(),
            "n_return_days": n_days,
            "sharpe": _nullable(np.where(enough, sharpe, np.nan)),
            "information_ratio": _nullable(np.where(enough, ir, np.nan)),
            "max_drawdown": _nullable(np.where(enough, mdd, np.nan)),
            "calmar": _nullable(np.where(enough, cal, np.nan)),
            "consistency": _nullable(cons),
            "regime": reg,
            "wqs": _nullable(scored.wqs),
            "tier": scored.tier,
            "reason": scored.reason,
        }
    )
    order = rank_scores(scored.wqs)
    out = out.iloc[order].reset_index(drop=True)
    ranked = out["wqs"].notna().to_numpy()
    out["rank"] = _nullable(np.where(ranked, np.arange(1, len(out) + 1), np.nan))
    return out


# ---------------------------------------------------------------------------------------------------------------
# 8. Point-in-time score history
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreParams:
    """The scoring constants a run may override (defaults: the documented values)."""

    win_rate_prior_strength: float = WIN_RATE_PRIOR_STRENGTH
    edge_prior_strength: float = EDGE_PRIOR_STRENGTH
    min_return_days: int = MIN_RETURN_DAYS
    consistency_scale: float = CONSISTENCY_SCALE
    consistency_min_points: int = CONSISTENCY_MIN_POINTS
    regime_band: float = REGIME_BAND


#: 1970-01-05, a Monday: weekly as-of dates fall on Mondays.
_ANCHOR = date(1970, 1, 5)


def as_of_dates(first_day: date, last_day: date, every_days: int = 7) -> list[date]:
    """Scoring dates over a history whose data runs from ``first_day`` to ``last_day`` (inclusive).

    An as-of date ``t`` means "UTC midnight starting day t": scores at ``t`` use data strictly before it. Dates
    fall every ``every_days`` days on a fixed grid (``7``: Mondays; ``1``: every day), after ``first_day`` and
    up to ``last_day + 1`` (the first date that sees the whole last day), which is always included: the current
    scores use every day the warehouse holds.
    """
    if every_days < 1:
        raise ValueError("every_days must be at least 1")
    lo, hi = first_day + timedelta(days=1), last_day + timedelta(days=1)
    offset = (lo - _ANCHOR).days % every_days
    first = lo + timedelta(days=(every_days - offset) % every_days)
    n = (hi - first).days // every_days + 1 if first <= hi else 0
    grid = [first + timedelta(days=every_days * i) for i in range(max(n, 0))]
    return grid if (grid and grid[-1] == hi) or hi < lo else [*grid, hi]


def interval_sums(
    groups: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    n_groups: int,
    n_cols: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """``(n_groups, n_cols)`` sums where element ``i`` adds ``weights[i]`` (default 1) to columns
    ``start[i] <= k < end[i]`` of row ``groups[i]``: a difference array (two ``np.bincount``) and a cumulative sum."""
    g = np.asarray(groups, dtype=np.int64)
    lo = np.clip(np.asarray(start, dtype=np.int64), 0, n_cols)
    hi = np.clip(np.asarray(end, dtype=np.int64), 0, n_cols)
    w = np.ones(g.size) if weights is None else np.asarray(weights, dtype=float)
    keep = hi > lo
    width = n_cols + 1
    size = n_groups * width
    diff = np.bincount(g[keep] * width + lo[keep], weights=w[keep], minlength=size)
    diff -= np.bincount(g[keep] * width + hi[keep], weights=w[keep], minlength=size)
    return np.cumsum(diff.reshape(n_groups, width), axis=1)[:, :n_cols]


#: integer units of the edge's sums in :func:`score_history` (exact below 2**53: 1e6 positions at most 1e6 units)
PRICE_UNITS = 1e6
VARIANCE_UNITS = 1e8

HISTORY_COLUMNS = [
    "as_of", "wallet", "rank", "wqs", "tier", "reason", "n_return_days", "sharpe", "information_ratio",
    "max_drawdown", "current_drawdown", "calmar", "consistency", "regime", "rolling_sharpe_7", "rolling_sharpe_14", "rolling_sharpe_30",
    "rolling_sharpe_60", "rolling_sharpe_90", "volume", "market_hhi", "pnl_net_to_date", "n_resolved_positions",
    "wins", "raw_win_rate", "win_rate_prior", "win_rate_mean", "win_rate_lower", "win_rate_upper",
    "win_rate_confidence", "n_edge_positions", "edge_raw", "edge_mean", "edge_lower", "edge_upper",
]  # fmt: skip


def _day_index(days: pd.Series, d0: np.datetime64) -> np.ndarray:
    return ((_as_days(days) - d0) // np.timedelta64(1, "D")).astype(np.int64)


def _positions(index: pd.Index, wallet: pd.Series) -> np.ndarray:
    """Each row's wallet as its position in ``index`` (-1 where it is not there); a categorical column is looked up
    once per category, not per row."""
    if isinstance(wallet.dtype, pd.CategoricalDtype):
        at = np.append(index.get_indexer(wallet.cat.categories), -1)  # the last entry: a NULL's code -1
        return at[wallet.cat.codes.to_numpy()]
    return index.get_indexer(wallet)


def day_matrices(
    daily_returns: pd.DataFrame,
    activity: pd.DataFrame,
    index: pd.Index,
    d0: np.datetime64,
    start: int,
    stop: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Wallets x days matrices of the day-grid days ``start .. stop - 1`` (day 0 is ``d0``), rows as ``index``:
    returns (NaN where the frame has no row), net P&L, volume and volume squared (0 where it has none).
    Rows of other days, and of wallets not in ``index``, are left out. Wallets may be strings or categorical,
    days dates or ``datetime64``."""
    n_w, m = len(index), max(stop - start, 0)

    def cells(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        d = _day_index(frame["day"], d0) - start
        g = _positions(index, frame["wallet"])
        keep = (d >= 0) & (d < m) & (g >= 0)
        return g[keep] * m + d[keep], keep

    def dense(frame: pd.DataFrame, at: tuple[np.ndarray, np.ndarray], column: str, sparse_as_nan: bool):
        flat, keep = at
        values = frame[column].to_numpy(dtype=float)[keep]
        if not sparse_as_nan:
            return np.bincount(flat, weights=np.nan_to_num(values), minlength=n_w * m).reshape(n_w, m)
        out = np.full(n_w * m, np.nan)
        out[flat] = values  # one row per (wallet, day)
        return out.reshape(n_w, m)

    ret, act = cells(daily_returns), cells(activity)
    return (
        dense(daily_returns, ret, "daily_return", True),
        dense(daily_returns, ret, "pnl_net", False),
        dense(activity, act, "volume", False),
        dense(activity, act, "volume_sq", False),
    )


class CategoryRates(NamedTuple):
    """The base win rate of each category as of each date (the win-rate prior's ingredients), over all wallets."""

    categories: pd.Index  # sorted; "Unknown" for a position with none
    rate: np.ndarray  # (categories, dates): the published rate, else the measured one
    overall: np.ndarray  # (dates,): every category together (the prior of a wallet with no resolved position)


def unix_seconds(dates: np.ndarray) -> np.ndarray:
    """Epoch seconds of the midnights that start ``dates`` (``datetime64[D]``)."""
    return (dates - np.datetime64("1970-01-01", "D")).astype(np.int64) * 86_400


#: the sums of a position span (:func:`position_spans`), each a whole number
SPAN_SUMS = ("n", "won", "n_edge", "payout", "price_units", "variance_units")


def position_spans(positions: pd.DataFrame, dates: np.ndarray) -> pd.DataFrame:
    """The resolved positions as the as-of ``dates`` see them, one row per position: ``wallet``, ``category``
    ("Unknown" for none), ``start`` and ``end`` (it counts at the dates ``start <= k < end``, those with
    ``resolved_ts < t_k <= cut_ts``; ``cut_ts`` NaN: to the last) and its :data:`SPAN_SUMS`: ``n`` 1, ``won`` 1 or
    0, and for the edge (``n_edge`` 1 where the price paid is in (0, 1) and the payout is known, else 0 and so
    are the others) the ``payout``, ``price_units`` (``rint(p * 1e6)``) and ``variance_units``
    (``rint(p (1 - p) * 1e8)``).

    Every sum is a whole number, so rows grouped by (wallet, category, start, end) and summed give the same
    metrics to the bit: the pipeline reads them so grouped from the warehouse
    (``assets/score/inputs.py:position_spans_sql``)."""
    t_k = unix_seconds(np.asarray(dates, dtype="datetime64[D]"))
    start = np.searchsorted(t_k, positions["resolved_ts"].to_numpy(dtype=float), side="right")
    cut = positions["cut_ts"].to_numpy(dtype=float)
    end = np.where(np.isnan(cut), t_k.size, np.searchsorted(t_k, np.nan_to_num(cut), side="right"))
    price = positions["price_paid"].to_numpy(dtype=float)
    payout = positions["payout"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(price) & np.isfinite(payout) & (price > 0) & (price < 1)
    return pd.DataFrame(
        {
            "wallet": positions["wallet"].to_numpy(),
            "category": positions["category"].fillna("Unknown").to_numpy(dtype=object),
            "start": start.astype(np.int64),
            "end": end.astype(np.int64),
            "n": np.ones(len(positions)),
            "won": np.nan_to_num(positions["won"].to_numpy(dtype=float)),
            "n_edge": ok.astype(float),
            "payout": np.where(ok, payout, 0.0),
            # integer units: a float sum would depend on its order, and so on how the positions are grouped
            "price_units": np.where(ok, np.rint(price * PRICE_UNITS), 0.0),
            "variance_units": np.where(ok, np.rint(price * (1 - price) * VARIANCE_UNITS), 0.0),
        }
    )


def category_rates(spans: pd.DataFrame, n_dates: int) -> CategoryRates:
    """:class:`CategoryRates` at ``n_dates`` as-of dates from every wallet's :func:`position_spans` (or the same
    grouped). Counts of positions are exact, so any split of the spans into parts gives the same rates."""
    c, cats = pd.factorize(spans["category"], sort=True)
    n_c, n_k = max(cats.size, 1), n_dates
    start, end = spans["start"].to_numpy(), spans["end"].to_numpy()
    cat_n = interval_sums(c, start, end, n_c, n_k, spans["n"].to_numpy(dtype=float))
    cat_wins = interval_sums(c, start, end, n_c, n_k, spans["won"].to_numpy(dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        measured = np.clip(cat_wins / cat_n, 0.01, 0.99)
        overall = np.clip(cat_wins.sum(axis=0) / cat_n.sum(axis=0), 0.01, 0.99)
    overall = np.where(np.isnan(overall), 0.5, overall)
    published = np.array([CATEGORY_BASE_RATES.get(str(x), np.nan) for x in cats])[:, None]
    rate = np.where(np.isnan(published), measured, published) if cats.size else np.zeros((1, n_k))
    return CategoryRates(pd.Index(cats), rate, overall)


def position_metrics(
    spans: pd.DataFrame, rows: np.ndarray, n_wallets: int, rates: CategoryRates, params: ScoreParams
) -> dict[str, np.ndarray]:
    """Resolved-position counts, wins, the Bayesian win rate and the price-calibrated edge as of each date of
    ``rates``: ``{name: (n_wallets, dates)}``. ``spans``: :func:`position_spans` (or the same grouped) of these
    wallets, ``rows`` each span's wallet as a row (``0 .. n_wallets - 1``). ``rates`` come from every wallet's
    positions (a bucket's win-rate prior still uses the whole market's base rates)."""
    n_w, n_k = n_wallets, rates.overall.size
    g = np.asarray(rows, dtype=np.int64)
    start, end = spans["start"].to_numpy(), spans["end"].to_numpy()
    sums = {k: spans[k].to_numpy(dtype=float) for k in SPAN_SUMS}
    n_res = interval_sums(g, start, end, n_w, n_k, sums["n"])
    wins = interval_sums(g, start, end, n_w, n_k, sums["won"])
    # the prior: each category's base rate weighted by the wallet's positions in it, categories in order
    c = rates.categories.get_indexer(spans["category"])
    weighted = np.zeros((n_w, n_k))
    for ci in range(len(rates.categories)):
        sel = c == ci
        weighted += (
            interval_sums(g[sel], start[sel], end[sel], n_w, n_k, sums["n"][sel])
            * np.nan_to_num(rates.rate[ci])[None, :]
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        prior = np.where(n_res > 0, weighted / n_res, rates.overall[None, :])
    post = bayesian_win_rate(wins, n_res, prior, params.win_rate_prior_strength)

    n_e, s_won, s_price, s_var = (
        interval_sums(g, start, end, n_w, n_k, sums[k])
        for k in ("n_edge", "payout", "price_units", "variance_units")
    )
    edge = edge_posterior(
        n_e, s_won, s_price / PRICE_UNITS, s_var / VARIANCE_UNITS, prior_strength=params.edge_prior_strength
    )
    return {
        "n_resolved_positions": n_res, "wins": wins, "win_rate_prior": prior, "win_rate_mean": post.mean,
        "win_rate_lower": post.lower, "win_rate_upper": post.upper, "win_rate_width": post.width,
        "n_edge_positions": n_e, "edge_raw": edge.raw, "edge_mean": edge.mean, "edge_lower": edge.lower,
        "edge_upper": edge.upper,
    }  # fmt: skip


def history_rows(
    wallets: np.ndarray, dates: np.ndarray, metrics: Mapping[str, np.ndarray], params: ScoreParams
) -> pd.DataFrame:
    """One row per (as-of, wallet) that had traded before the date, ordered by as-of then wallet, from
    :func:`advance_scores`' and :func:`position_metrics`' ``(wallets, dates)`` arrays; ``rank`` is left NaN
    (:func:`rank_history` fills it, or the warehouse over every bucket)."""
    mt = metrics
    present = (mt["volume"] > 0) | (mt["n_return_days"] > 0)
    ki, wi = np.nonzero(present.T)  # ordered by as-of, then wallet
    pick = lambda name: mt[name][wi, ki]  # noqa: E731
    n_ret = pick("n_return_days")
    scored = assemble_wqs(
        n_ret, pick("sharpe"), pick("information_ratio"), pick("max_drawdown"), pick("calmar"),
        pick("consistency"), pick("volume"), pick("n_resolved_positions"), pick("market_hhi"),
        params.min_return_days, params.consistency_min_points,
    )  # fmt: skip
    enough = n_ret >= params.min_return_days
    n_res = pick("n_resolved_positions")
    with np.errstate(invalid="ignore", divide="ignore"):
        raw_wr = np.where(n_res > 0, pick("wins") / n_res, np.nan)
    out = pd.DataFrame(
        {
            "as_of": pd.to_datetime(dates[ki]).date,
            "wallet": wallets[wi],
            "rank": np.full(ki.size, np.nan),
            "wqs": scored.wqs,
            "tier": scored.tier,
            "reason": scored.reason,
            "n_return_days": n_ret.astype(np.int64),
            **{c: np.where(enough, pick(c), np.nan) for c in ("sharpe", "information_ratio", "max_drawdown")},
            "current_drawdown": pick("current_drawdown"),
            "calmar": np.where(enough, pick("calmar"), np.nan),
            "consistency": pick("consistency"),
            "regime": pick("regime"),
            **{f"rolling_sharpe_{w}": pick(f"rolling_sharpe_{w}") for w in ROLLING_WINDOWS},
            "volume": pick("volume"),
            "market_hhi": pick("market_hhi"),
            "pnl_net_to_date": pick("pnl_net_to_date"),
            "n_resolved_positions": np.rint(n_res).astype(np.int64),
            "wins": np.rint(pick("wins")).astype(np.int64),
            "raw_win_rate": raw_wr,
            **{c: pick(c) for c in ("win_rate_prior", "win_rate_mean", "win_rate_lower", "win_rate_upper")},
            "win_rate_confidence": confidence_level(pick("win_rate_width")),
            "n_edge_positions": np.rint(pick("n_edge_positions")).astype(np.int64),
            **{c: pick(c) for c in ("edge_raw", "edge_mean", "edge_lower", "edge_upper")},
        }
    )
    return out[HISTORY_COLUMNS]


def rank_history(rows: pd.DataFrame) -> pd.DataFrame:
    """Rank each as-of date's rows (1 = best WQS; ties in wallet order; NaN scores last and unranked) and sort
    them by as-of, then rank. ``rows`` ordered by as-of then wallet, as :func:`history_rows` gives them."""
    ki = pd.factorize(rows["as_of"], sort=True)[0]
    wqs = rows["wqs"].to_numpy(dtype=float)
    key = np.where(np.isnan(wqs), np.inf, -wqs)
    order = np.lexsort((key, ki))
    first_of_group = np.r_[0, np.flatnonzero(np.diff(ki[order])) + 1] if order.size else np.zeros(0, np.int64)
    pos = np.arange(order.size) - np.repeat(first_of_group, np.diff(np.r_[first_of_group, order.size]))
    rank = np.empty(order.size)
    rank[order] = pos + 1
    out = rows.assign(rank=np.where(np.isnan(wqs), np.nan, rank))
    return out.iloc[order].reset_index(drop=True)


def score_history(
    daily_returns: pd.DataFrame,
    activity: pd.DataFrame,
    positions: pd.DataFrame,
    as_of: Sequence[date],
    params: ScoreParams = ScoreParams(),
) -> pd.DataFrame:
    """Every wallet's WQS and its components as of each date in ``as_of``, from data known before that date.

    Inputs (long frames, as the warehouse holds them):

    - ``daily_returns``: ``wallet, day, daily_return, pnl_net`` (``marts.wallet_daily_returns``; causal rows).
    - ``activity``: ``wallet, day, volume, volume_sq``: a day's traded notional and the day's increase of the
      sum over markets of the squared cumulative notional (so ``HHI = 10,000 * sum_sq / volume^2`` as of any day).
    - ``positions``: resolved positions ``wallet, category, resolved_ts, cut_ts, won, payout, price_paid``
      (epoch seconds; ``cut_ts`` the first oversold fill or NaN, after which the position no longer counts).

    At as-of ``t`` a return day counts if ``day < t``, a position if ``resolved_ts < t <= cut_ts``. Nothing at or
    after ``t`` is read, so changing it leaves every row at ``t`` unchanged; and a date's row is the same to the
    bit whichever other dates, and whichever other wallets, are scored in the same call (running sums along a
    fixed daily grid, sums over wallets in wallet order, position sums in exact units), and whether it is scored
    in one pass or from a carried :class:`ScoreState` (section 9). One row per (as-of, wallet) for the wallets
    with a fill or a return before ``t``; floats are NaN where undefined (stored as NULL) and ``reason`` says why
    ``wqs`` is missing. ``rank`` is 1-based within an as-of date, NaN scores last and unranked.
    """
    dates = np.array(
        sorted(set(pd.to_datetime(list(as_of)).to_numpy(dtype="datetime64[D]"))), dtype="datetime64[D]"
    )
    days_all = pd.concat([daily_returns["day"], activity["day"]])
    if dates.size == 0 or days_all.empty:
        return pd.DataFrame({c: [] for c in HISTORY_COLUMNS})
    d0 = pd.to_datetime(days_all).min().to_datetime64().astype("datetime64[D]")
    n_days = max(int((dates[-1] - d0) // np.timedelta64(1, "D")), 0)
    ends = np.clip((dates - d0) // np.timedelta64(1, "D"), 0, n_days).astype(np.int64)
    # wallet codes by hashing (sorting millions of address strings is the slow way)
    index = pd.Index(
        pd.unique(pd.concat([f["wallet"] for f in (daily_returns, activity, positions)], ignore_index=True))
    ).sort_values()
    r, pnl, vol, sq = day_matrices(daily_returns, activity, index, d0, 0, n_days)
    bench = benchmark(*benchmark_sums(np.zeros(n_days), np.zeros(n_days, dtype=np.int64), r))
    metrics, _ = advance_scores(
        ScoreState.empty(index.to_numpy(dtype=object)), r, pnl, vol, sq, bench, ends, params
    )
    spans = position_spans(positions, dates)
    rates = category_rates(spans, dates.size)
    metrics |= position_metrics(spans, index.get_indexer(spans["wallet"]), len(index), rates, params)
    return rank_history(history_rows(index.to_numpy(dtype=object), dates, metrics, params))


# ---------------------------------------------------------------------------------------------------------------
# 9. Carried state: the history one increment at a time, in wallet buckets
# ---------------------------------------------------------------------------------------------------------------
#
# :func:`score_history` is :func:`advance_scores` run once from :meth:`ScoreState.empty` over every day. The
# pipeline runs the same function from a stored state over the new days only, and in buckets of wallets: every
# step is a running sum, maximum or product along days (``ufunc.accumulate``: sequential, so carrying its last
# value and going on gives the same bits as one pass) or per wallet, and the one cross-sectional input, the
# benchmark, is a column sum taken in wallet order whichever bucket a wallet is in (:func:`benchmark_sums`).

#: the prefix columns the state keeps for the rolling Sharpes: the widest window and one more (day end - 1)
STATE_WINDOW = max(ROLLING_WINDOWS) + 1

#: a wallet's running values after day ``end - 1``, each one number (initial value in brackets): the returns'
#: centre (NaN until a first return) and running max [-inf] and min [inf]; the same six sums for the active
#: return ``r - benchmark`` (``act_*``; count, sum and sum of squares start at 0); compounded wealth [1], its
#: running peak [1] and the running max drawdown [0]; the last day's return [NaN] and the day its run of equal
#: values began [0]; the moments of the rolling 30-day Sharpes (``cons_*``); and running P&L, volume and volume
#: squared [0]
STATE_FIELDS: dict[str, float] = {
    "ret_centre": np.nan, "ret_hi": -np.inf, "ret_lo": np.inf,
    "act_centre": np.nan, "act_cnt": 0.0, "act_s1": 0.0, "act_s2": 0.0, "act_hi": -np.inf, "act_lo": np.inf,
    "wealth": 1.0, "peak": 1.0, "dd": 0.0, "last_return": np.nan, "last_change": 0.0,
    "cons_centre": np.nan, "cons_cnt": 0.0, "cons_s1": 0.0, "cons_s2": 0.0,
    "pnl": 0.0, "volume": 0.0, "volume_sq": 0.0,
}  # fmt: skip
#: ``(wallets, STATE_WINDOW)`` prefix sums of the returns at columns ``end - STATE_WINDOW + 1 .. end`` (NaN
#: before day 0): valid-day count, sum and sum of squares of the centred returns. The last column is the total.
WINDOW_FIELDS = ("ret_cnt", "ret_s1", "ret_s2")


@dataclass(frozen=True)
class ScoreState:
    """Every wallet's running values after the days ``0 .. end - 1`` of the day grid (day 0 the history's first
    day): all :func:`advance_scores` needs to score a later as-of date without reading the days before.

    ``wallets`` are sorted; ``values`` maps each of :data:`STATE_FIELDS` to a 1-D array over them and each of
    :data:`WINDOW_FIELDS` to a ``(wallets, STATE_WINDOW)`` array. The state holds no scoring parameter: a run
    with other :class:`ScoreParams` carries the same state.
    """

    end: int
    wallets: np.ndarray
    values: Mapping[str, np.ndarray]

    @classmethod
    def empty(cls, wallets: np.ndarray | Sequence[str], end: int = 0) -> ScoreState:
        n = len(wallets)
        vals = {k: np.full(n, v) for k, v in STATE_FIELDS.items()}
        window = np.full((n, STATE_WINDOW), np.nan)
        window[:, -1] = 0.0
        vals |= {k: window.copy() for k in WINDOW_FIELDS}
        return cls(end, np.asarray(wallets, dtype=object), vals)

    def reindex(self, wallets: np.ndarray) -> ScoreState:
        """The state over ``wallets`` (sorted): a wallet it did not hold starts empty (it had no data before)."""
        idx = pd.Index(self.wallets).get_indexer(wallets)
        known = idx >= 0
        out = ScoreState.empty(wallets, self.end)
        vals = dict(out.values)
        for k, v in self.values.items():
            vals[k][known] = v[idx[known]]
        return ScoreState(self.end, out.wallets, vals)


def _running(ufunc: np.ufunc, init: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``(rows, 1 + days)``: ``init``, then ``ufunc`` folded along the days from it."""
    out = np.empty((values.shape[0], values.shape[1] + 1))
    out[:, 0] = init
    out[:, 1:] = values
    return ufunc.accumulate(out, axis=1)


def _centre(carried: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The row's centre: the carried one, else its first valid value in ``x`` (NaN while there is none); and the
    column of that first valid value (``x.shape[1]`` for none)."""
    valid = ~np.isnan(x)
    if x.shape[1] == 0:
        return carried.copy(), np.zeros(x.shape[0], dtype=np.int64)
    at = np.where(valid.any(axis=1), valid.argmax(axis=1), x.shape[1])
    first = x[np.arange(x.shape[0]), np.minimum(at, x.shape[1] - 1)]
    return np.where(np.isnan(carried) & (at < x.shape[1]), first, carried), at


def _moments_at(cnt: np.ndarray, s1: np.ndarray, s2: np.ndarray, centre: np.ndarray):
    """Count, mean and sample sd (ddof 1) from running sums of values centred on ``centre`` (a column)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        sd = np.sqrt(np.maximum(s2 - s1 * mean, 0.0) / (cnt - 1))
    return mean + np.nan_to_num(centre)[:, None], sd


def _sharpe_from(cnt, s1, s2, hi, lo, centre, annualization: int = ANNUALIZATION) -> np.ndarray:
    """:func:`sharpe_as_of` from running sums (``hi > lo``: the values seen are not all equal)."""
    mean, sd = _moments_at(cnt, s1, s2, centre)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (cnt >= 2) & (hi > lo) & (sd > SD_FLOOR_RELATIVE * np.abs(mean)) & (sd > 0)
        return np.where(ok, mean / sd * np.sqrt(annualization), np.nan)


class _Moments(NamedTuple):
    centre: np.ndarray  # (rows,)
    first: np.ndarray  # (rows,) the column of the first valid value (days for none)
    cnt: np.ndarray  # (rows, 1 + days) running sums from the carried ones
    s1: np.ndarray
    s2: np.ndarray


def _moments(x: np.ndarray, centre: np.ndarray, cnt: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> _Moments:
    valid = ~np.isnan(x)
    c, first = _centre(centre, x)
    xc = np.where(valid, x - np.nan_to_num(c)[:, None], 0.0)
    return _Moments(
        c,
        first,
        _running(np.add, cnt, valid.astype(float)),
        _running(np.add, s1, xc),
        _running(np.add, s2, xc * xc),
    )


def _centre_after(m: _Moments, carried: np.ndarray, days: int) -> np.ndarray:
    """The centre a state after the first ``days`` days holds: NaN still if the first value came later."""
    return np.where(m.first < days, m.centre, carried)


def _rolling_from(p1, p2, pc, run, centre, hi, lo, w: int, annualization: int = ANNUALIZATION) -> np.ndarray:
    """:func:`rolling_sharpes`' value for window ``w`` from prefix sums at a day's end (``hi``) and ``w`` days
    before it (``lo``, column indices into ``p1``/``p2``/``pc``, or slices) and the day's run length of equal
    values (``run``, one column per output column). Computed a block of rows at a time (each value reads its own
    row only, so the blocks change nothing but the temporaries' size)."""
    hi, lo = _columns(hi), _columns(lo)
    out = np.empty((p1.shape[0], run.shape[1]))
    for rows in _row_blocks(p1.shape[0], run.shape[1]):
        s1 = p1[rows, hi] - p1[rows, lo]
        s2 = p2[rows, hi] - p2[rows, lo]
        cnt = pc[rows, hi] - pc[rows, lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.maximum((s2 - s1 * s1 / w) / (w - 1), 0.0)
            mean = s1 / w + np.nan_to_num(centre[rows])[:, None]
            sd = np.sqrt(var)
            ok = (np.rint(cnt) == w) & ~(run[rows] >= w) & (var > 0) & (sd > SD_FLOOR_RELATIVE * np.abs(mean))
            out[rows] = np.where(ok, mean / sd * np.sqrt(annualization), np.nan)
    return out


def benchmark_sums(
    total: np.ndarray, count: np.ndarray, returns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Add a block of wallets' returns (rows in wallet order, after every wallet already added) to the running
    per-day sum and count of the cross-sectional mean: wallet by wallet, so buckets give the bits of one pass."""
    valid = ~np.isnan(returns)
    total = np.add.reduce(np.vstack([total[None, :], np.where(valid, returns, 0.0)]), axis=0)
    return total, count + valid.sum(axis=0)


def benchmark(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The benchmark: the mean return of the wallets with a return each day; NaN on a day with none."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def advance_scores(
    state: ScoreState,
    returns: np.ndarray,
    pnl: np.ndarray,
    volume: np.ndarray,
    volume_sq: np.ndarray,
    bench: np.ndarray,
    ends: Sequence[int] | np.ndarray,
    params: ScoreParams = ScoreParams(),
    keep: int | None = None,
) -> tuple[dict[str, np.ndarray], ScoreState]:
    """The returns- and activity-based metrics as of each end, from ``state`` and the days after it.

    ``returns`` (NaN where there is none), ``pnl``, ``volume`` and ``volume_sq`` (0 where there is none) are
    ``(wallets, m)`` over the days ``state.end .. state.end + m - 1``, rows as ``state.wallets``; ``bench`` is
    the benchmark of those days (:func:`benchmark`). ``ends`` are day-grid ends in ``state.end .. state.end + m``
    (end ``e`` reads the days before ``e``). Returns ``{metric: (wallets, len(ends))}`` and the state after
    ``keep`` of the ``m`` days (default all): a run keeps its state a few days back, so a fill that arrives late
    for those days is still read by the next run.
    """
    mats = (returns, pnl, volume, volume_sq)
    blocks = _row_blocks(*returns.shape)  # a day's sync (a few days) is one block
    if len(blocks) == 1:
        return _advance_block(state, mats, bench, ends, params, keep)
    # every value reads its own row only: a block of rows at a time keeps the temporaries in cache
    parts = [
        _advance_block(
            ScoreState(state.end, state.wallets[rows], {k: v[rows] for k, v in state.values.items()}),
            tuple(x[rows] for x in mats), bench, ends, params, keep,
        )
        for rows in blocks
    ]  # fmt: skip
    out = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    after = {k: np.concatenate([p[1].values[k] for p in parts]) for k in parts[0][1].values}
    return out, ScoreState(parts[0][1].end, state.wallets, after)


def _advance_block(
    state: ScoreState,
    mats: tuple[np.ndarray, ...],
    bench: np.ndarray,
    ends,
    params: ScoreParams,
    keep: int | None,
) -> tuple[dict[str, np.ndarray], ScoreState]:
    """:func:`advance_scores` on one block of rows (``mats``: its returns, pnl, volume and volume squared)."""
    returns, pnl, volume, volume_sq = mats
    s, v = state, state.values
    n, m = returns.shape
    e0 = s.end
    ends = np.asarray(ends, dtype=np.int64).ravel()
    keep = m if keep is None else int(keep)
    if ends.size and (ends.min() < e0 or ends.max() > e0 + m):
        raise ValueError(f"as-of ends must lie in {e0}..{e0 + m}")
    if not 0 <= keep <= m:
        raise ValueError(f"keep must lie in 0..{m}")
    loc = ends - e0  # column of the running arrays (0: the state itself)
    r = returns
    valid = ~np.isnan(r)

    # returns: moments, running max and min, and the prefix window of the rolling Sharpes
    ret = _moments(r, v["ret_centre"], v["ret_cnt"][:, -1], v["ret_s1"][:, -1], v["ret_s2"][:, -1])
    hi = _running(np.fmax, v["ret_hi"], np.where(valid, r, -np.inf))
    lo = _running(np.fmin, v["ret_lo"], np.where(valid, r, np.inf))
    # prefix columns end - STATE_WINDOW + 1 .. end + m: column j is day-grid prefix e0 - STATE_WINDOW + 1 + j
    p1 = np.concatenate([v["ret_s1"], ret.s1[:, 1:]], axis=1)
    p2 = np.concatenate([v["ret_s2"], ret.s2[:, 1:]], axis=1)
    pc = np.concatenate([v["ret_cnt"], ret.cnt[:, 1:]], axis=1)
    # run lengths of equal values for the days e0 - 1 .. e0 + m - 1
    t = e0 + np.arange(m, dtype=float)
    prev = np.concatenate([v["last_return"][:, None], r[:, :-1]], axis=1)
    last_change = _running(np.maximum, v["last_change"], np.where(r != prev, t, 0.0))
    run = np.arange(e0 - 1, e0 + m, dtype=float) - last_change + 1  # column i: day e0 - 1 + i

    def rolling(w: int, days: np.ndarray) -> np.ndarray:
        """Rolling Sharpe of window ``w`` on each of ``days`` (offsets from e0, -1 .. m - 1)."""
        at = days + STATE_WINDOW  # prefix after the day (day-grid column e0 + d + 1)
        return _rolling_from(p1, p2, pc, run[:, _columns(days + 1)], ret.centre, at, at - w, w)

    rs30 = rolling(30, np.arange(m))
    rs30 = np.where(np.isfinite(rs30), rs30, np.nan)
    cons = _moments(rs30, v["cons_centre"], v["cons_cnt"], v["cons_s1"], v["cons_s2"])

    # active returns against the benchmark
    y = r - np.asarray(bench, dtype=float)[None, :]
    y_valid = ~np.isnan(y)
    act = _moments(y, v["act_centre"], v["act_cnt"], v["act_s1"], v["act_s2"])
    y_hi = _running(np.fmax, v["act_hi"], np.where(y_valid, y, -np.inf))
    y_lo = _running(np.fmin, v["act_lo"], np.where(y_valid, y, np.inf))

    # compounded wealth, its peak and the drawdown
    wealth = _running(np.multiply, v["wealth"], 1.0 + np.clip(np.nan_to_num(r, nan=0.0), -1.0, None))
    peak = _running(np.maximum, v["peak"], wealth[:, 1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        dd = _running(np.minimum, v["dd"], (wealth[:, 1:] - peak[:, 1:]) / peak[:, 1:])
    pnl_c = _running(np.add, v["pnl"], pnl)
    vol_c = _running(np.add, v["volume"], volume)
    sq_c = _running(np.add, v["volume_sq"], volume_sq)

    # the metrics at each end
    cnt = ret.cnt[:, loc]
    out: dict[str, np.ndarray] = {"n_return_days": cnt}
    out["sharpe"] = _sharpe_from(cnt, ret.s1[:, loc], ret.s2[:, loc], hi[:, loc], lo[:, loc], ret.centre)
    out["information_ratio"] = _sharpe_from(
        act.cnt[:, loc], act.s1[:, loc], act.s2[:, loc], y_hi[:, loc], y_lo[:, loc], act.centre
    )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mdd = np.where(cnt > 0, dd[:, loc], np.nan)
        ar = np.where(cnt > 0, wealth[:, loc] ** (ANNUALIZATION / np.where(cnt > 0, cnt, 1)) - 1.0, np.nan)
        ratio = ar / np.abs(mdd)
        out["current_drawdown"] = np.where(cnt > 0, wealth[:, loc] / peak[:, loc] - 1.0, np.nan)
    out["max_drawdown"] = mdd
    out["calmar"] = np.where((mdd < 0) & np.isfinite(ratio) & (cnt >= 2), ratio, np.nan)
    c_mean, c_sd = _moments_at(cons.cnt[:, loc], cons.s1[:, loc], cons.s2[:, loc], cons.centre)
    with np.errstate(invalid="ignore"):
        out["consistency"] = np.where(
            cons.cnt[:, loc] >= max(2, params.consistency_min_points),
            100.0 * np.exp(-c_sd / params.consistency_scale),
            np.nan,
        )
    for w in ROLLING_WINDOWS:
        out[f"rolling_sharpe_{w}"] = np.where(ends > 0, rolling(w, loc - 1), np.nan)
    out["regime"] = regime(out["rolling_sharpe_14"], out["rolling_sharpe_90"], params.regime_band)
    out["pnl_net_to_date"] = pnl_c[:, loc]
    out["volume"] = vol_c[:, loc]
    sq = sq_c[:, loc]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["market_hhi"] = np.where(
            out["volume"] > 0, np.clip(10_000.0 * sq / (out["volume"] * out["volume"]), 0.0, 10_000.0), np.nan
        )

    k = keep
    after = {
        "ret_centre": _centre_after(ret, v["ret_centre"], k), "ret_hi": hi[:, k], "ret_lo": lo[:, k],
        "act_centre": _centre_after(act, v["act_centre"], k), "act_cnt": act.cnt[:, k], "act_s1": act.s1[:, k], "act_s2": act.s2[:, k],
        "act_hi": y_hi[:, k], "act_lo": y_lo[:, k], "wealth": wealth[:, k], "peak": peak[:, k], "dd": dd[:, k],
        "last_return": r[:, k - 1] if k else v["last_return"], "last_change": last_change[:, k],
        "cons_centre": _centre_after(cons, v["cons_centre"], k), "cons_cnt": cons.cnt[:, k], "cons_s1": cons.s1[:, k], "cons_s2": cons.s2[:, k],
        "pnl": pnl_c[:, k], "volume": vol_c[:, k], "volume_sq": sq_c[:, k],
        "ret_cnt": pc[:, k : k + STATE_WINDOW], "ret_s1": p1[:, k : k + STATE_WINDOW], "ret_s2": p2[:, k : k + STATE_WINDOW],
    }  # fmt: skip
    return out, ScoreState(e0 + k, s.wallets, after)


class StoredState(NamedTuple):
    """What the warehouse says of its carried :class:`ScoreState`: the day grid's first day, the state's ``end``
    and a digest of the mart rows it read (the rows before ``end``)."""

    grid_start: date
    end: int
    digest: tuple[int, ...]


class ScorePlan(NamedTuple):
    """How a run scores: from the stored state (``carry``) reading the days from ``start`` on, or from an empty
    state over every day (``start = 0``); ``reason`` says why, for the run's log."""

    carry: bool
    start: int
    reason: str


def score_plan(
    stored: StoredState | None,
    grid_start: date,
    first_end: int,
    digest: tuple[int, ...] | None,
    *,
    rebuild: bool = False,
    compatible: bool = True,
) -> ScorePlan:
    """Carry the stored state on only when it is the state of the data the marts hold now: the same day grid, a
    digest of the rows before its end unchanged (a late fill or a rebuilt mart changes it), and no as-of date to
    score before its end (``first_end``, the earliest date's day-grid end). Anything else scores from scratch,
    which is always right and only slower."""
    full = lambda why: ScorePlan(False, 0, why)  # noqa: E731
    if rebuild:
        return full("a rebuild of the scores was asked for")
    if stored is None:
        return full("no carried state is stored")
    if not compatible:
        return full("the stored state was written by another version of whalecopy")
    if stored.grid_start != grid_start:
        return full(f"the history's first day moved from {stored.grid_start} to {grid_start}")
    at = grid_start + timedelta(days=stored.end)
    if first_end < stored.end:
        first = grid_start + timedelta(days=first_end)
        return full(f"an as-of date to score ({first}) comes before the state's end ({at})")
    if digest != stored.digest:
        return full(f"the marts' rows before the state's end ({at}) changed (late data, or a rebuilt mart)")
    return ScorePlan(True, stored.end, f"carrying the state on from {at}")
