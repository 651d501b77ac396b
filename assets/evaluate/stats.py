"""Pure statistics for judging the copy portfolio: VaR backtests, performance metrics, a market-clustered
bootstrap, the deflated Sharpe ratio, Brinson-Fachler attribution and alpha/beta. No Dagster, no DuckDB.

Flat functions in the style of empyrical. Conventions throughout: returns are daily *simple* returns
``r_t = NAV_t / NAV_{t-1} - 1``, a year is ``ANNUALISATION = 365`` days (Polymarket trades every day), non-finite
returns are missing days and are dropped, and too little data gives NaN (never inf). With ``n`` kept returns::

    CAGR        = prod(1 + r)^(365 / n) - 1                  (computed as expm1(365/n * sum(log1p(r))))
    Sharpe      = mean(r) / std(r, ddof=1) * sqrt(365)        NaN if n < 2 or std == 0
    Sortino     = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(365)   NaN if n < 2 or no losing day
    max DD      = max_t (1 - NAV_t / max_{s<=t} NAV_s),  NAV = cumprod(1 + r) with NAV_0 = 1 (positive fraction)
    Calmar      = CAGR / max DD                               NaN if max DD == 0
    tail        = q-quantile of r (linear interpolation, numpy's default)

VaR backtests (exceptions ``I_t = 1[r_t < VaR_t]``, VaR a negative return threshold forecast from data up to t-1):

* Kupiec (1995) proportion of failures, ``x`` exceptions in ``n`` days at coverage ``p``::

      LR_pof = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-x/n)^(n-x) (x/n)^x]  ~ chi2(1)

* Christoffersen (1998) independence, ``n_ij`` = days with ``I_{t-1} = i, I_t = j``,
  ``pi01 = n01/(n00+n01)``, ``pi11 = n11/(n10+n11)``, ``pi = (n01+n11)/(n00+n01+n10+n11)``::

      LR_ind = -2 ln[(1-pi)^(n00+n10) pi^(n01+n11)] + 2 ln[(1-pi01)^n00 pi01^n01 (1-pi11)^n10 pi11^n11]  ~ chi2(1)

  Both use ``0 ln 0 = 0``.

Cluster bootstrap: ``pnl[m, d]`` is market ``m``'s USDC P&L on day ``d``. A replicate redraws the markets with
replacement (multinomial counts ``C``, B x M), its daily P&L is ``C @ pnl``, ``NAV_d = start_nav + cumsum`` and
``r_d = pnl_d / NAV_{d-1}``; a path that reaches ``NAV <= 0`` returns -1 that day and 0 afterwards (ruin).
Percentile intervals over the replicates. A market drawn twice adds its own noise twice, so a raw replicate of a
portfolio of largely independent markets is noisier than the original (daily P&L variance up to about 2x) and
its Sharpe, drawdown and tail lean low. By default (``match_volatility``) each replicate's daily P&L is therefore
rescaled about its own mean to the original's standard deviation: the replicates carry the uncertainty of which
markets came in (the drift) at the volatility that was observed.

Deflated Sharpe ratio (Bailey & Lopez de Prado 2014), per-period (non-annualised) Sharpe ``SR`` over ``T``
returns with skewness ``g3`` and (non-excess) kurtosis ``g4``, ``N`` trials whose Sharpes have variance ``V``::

    SR0 = sqrt(V) * ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))     gamma = 0.5772156649, SR0 = 0 if N = 1
    DSR = Phi((SR - SR0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2))

Brinson-Fachler, per sector with ``R_b = sum(wb * rb)``::

    allocation = (wp - wb)(rb - R_b)      selection = wb (rp - rb)      interaction = (wp - wb)(rp - rb)

which sum over sectors to ``sum(wp * rp) - sum(wb * rb)`` when both weight vectors sum to the same total.

Alpha/beta: OLS ``r_s = alpha + beta r_b + e`` on the days where both are finite; ``alpha`` is per day and
``alpha_annualised = 365 * alpha`` (simple, not compounded as empyrical does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import xlogy

#: days per year used to annualise daily returns
ANNUALISATION = 365
#: Euler-Mascheroni constant of the expected maximum of N standard normals
EULER_GAMMA = 0.5772156649
#: a standard deviation at or below this multiple of the largest absolute return counts as zero dispersion
_ZERO_DISPERSION = 1e-12
#: the performance metrics of ``metrics_matrix`` and ``cluster_bootstrap``, in output order
METRICS = ("cagr", "sharpe_ratio", "sortino_ratio", "max_drawdown", "calmar_ratio", "tail_return")
#: the bootstrap multiplies at most about this many count cells at a time (bounds memory, not the result)
_CHUNK_CELLS = 4_000_000

ArrayLike = np.ndarray | pd.Series | Sequence[float]


# --------------------------------------------------------------------------------------------------------------
# VaR backtests
# --------------------------------------------------------------------------------------------------------------


class PofTest(NamedTuple):
    n: int
    x: int
    expected_rate: float
    observed_rate: float
    lr: float
    p_value: float


class IndependenceTest(NamedTuple):
    n00: int
    n01: int
    n10: int
    n11: int
    lr: float
    p_value: float


class VarExceptions(NamedTuple):
    exceptions: np.ndarray
    valid: np.ndarray


def _chi2_1(lr: float) -> tuple[float, float]:
    """An LR statistic clipped at 0 (rounding can make it a hair negative) and its chi2(1) upper-tail p-value."""
    if not np.isfinite(lr):
        return float("nan"), float("nan")
    lr = max(float(lr), 0.0)
    return lr, float(stats.chi2.sf(lr, 1))


def kupiec_pof(n: int, x: int, p: float) -> PofTest:
    """Kupiec (1995) proportion-of-failures test: are ``x`` VaR exceptions in ``n`` days consistent with the
    coverage rate ``p`` (e.g. 0.05 for a 95% VaR)?

    ``LR = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-x/n)^(n-x) (x/n)^x]``, chi2 with 1 degree of freedom, using
    ``0 ln 0 = 0`` so ``x = 0`` and ``x = n`` are fine. ``n = 0`` gives NaN ``observed_rate``, ``lr`` and
    ``p_value``. Raises ``ValueError`` unless ``0 <= x <= n`` and ``0 < p < 1``.
    """
    n, x, p = int(n), int(x), float(p)
    if n < 0 or x < 0 or x > n:
        raise ValueError(f"need 0 <= x <= n, got n={n}, x={x}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"coverage rate p must be in (0, 1), got {p}")
    if n == 0:
        nan = float("nan")
        return PofTest(0, 0, p, nan, nan, nan)
    rate = x / n
    restricted = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    unrestricted = xlogy(n - x, 1.0 - rate) + xlogy(x, rate)
    lr, p_value = _chi2_1(-2.0 * restricted + 2.0 * unrestricted)
    return PofTest(n, x, p, rate, lr, p_value)


def christoffersen_independence(exceptions: ArrayLike) -> IndependenceTest:
    """Christoffersen (1998) Markov independence test: is an exception today more (or less) likely after an
    exception yesterday than after a quiet day?

    ``exceptions`` is a 1-D boolean sequence in time order with excluded days already removed (e.g.
    ``exceptions[valid]`` from ``var_exceptions``). ``n_ij`` counts days with ``I_{t-1} = i`` and ``I_t = j``;
    the statistic compares the first-order Markov likelihood with transition rates ``pi01``, ``pi11`` against the
    independent one with a single rate ``pi`` (formula in the module docstring), chi2 with 1 degree of freedom,
    ``0 ln 0 = 0``. ``lr`` and ``p_value`` are NaN when the test is undefined: fewer than 2 observations, or one
    of the states never occurs as the previous day (no exception in the first ``n-1`` days, or no quiet day), so
    ``pi01`` or ``pi11`` cannot be estimated. Raises ``ValueError`` for non-finite or non-0/1 values.
    """
    arr = np.asarray(exceptions)
    if arr.ndim != 1:
        raise ValueError("exceptions must be 1-D")
    if arr.dtype != bool:
        values = arr.astype(float)
        if not np.all((values == 0) | (values == 1)):
            raise ValueError("exceptions must be boolean (0/1) with no missing values")
        arr = values.astype(bool)
    prev, cur = arr[:-1], arr[1:]
    n01 = int(np.count_nonzero(~prev & cur))
    n11 = int(np.count_nonzero(prev & cur))
    n00 = int(np.count_nonzero(~prev & ~cur))
    n10 = int(np.count_nonzero(prev & ~cur))
    nan = float("nan")
    if arr.size < 2 or n00 + n01 == 0 or n10 + n11 == 0:
        return IndependenceTest(n00, n01, n10, n11, nan, nan)
    pi01 = n01 / (n00 + n01)
    pi11 = n11 / (n10 + n11)
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    restricted = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    unrestricted = xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    lr, p_value = _chi2_1(-2.0 * restricted + 2.0 * unrestricted)
    return IndependenceTest(n00, n01, n10, n11, lr, p_value)


def var_exceptions(returns: ArrayLike, var_forecasts: ArrayLike) -> VarExceptions:
    """VaR exceptions: day ``t`` is an exception when ``returns[t] < var_forecasts[t]``.

    VaR is a *negative return threshold* (a 95% one-day VaR of 3% is ``-0.03``). ``var_forecasts[t]`` must be the
    forecast for day ``t`` made from data up to ``t-1``; this function does not shift, the caller does (e.g.
    ``var.shift(1)`` on a series estimated through each day's close). Days where either value is non-finite are
    not valid: ``valid`` is False and ``exceptions`` is False there, so ``exceptions[valid]`` is the series to test.
    Both inputs are taken positionally and must have the same length.
    """
    r = np.asarray(returns, dtype=float)
    v = np.asarray(var_forecasts, dtype=float)
    if r.shape != v.shape or r.ndim != 1:
        raise ValueError(f"returns and var_forecasts must be 1-D of one length, got {r.shape} and {v.shape}")
    valid = np.isfinite(r) & np.isfinite(v)
    exceptions = np.zeros(r.shape, dtype=bool)
    exceptions[valid] = r[valid] < v[valid]
    return VarExceptions(exceptions, valid)


# --------------------------------------------------------------------------------------------------------------
# Performance metrics: 1-D
# --------------------------------------------------------------------------------------------------------------


def _finite(returns: ArrayLike) -> np.ndarray:
    r = np.asarray(returns, dtype=float).ravel()
    return r[np.isfinite(r)]


def cagr(returns: ArrayLike) -> float:
    """Compound annual growth rate ``prod(1 + r)^(365 / n) - 1`` over the ``n`` finite daily returns.

    Computed in logs, so long histories do not overflow. NaN when there is no finite return, when a return is
    below -1 (a negative NAV), or when the annualised figure overflows (a few extreme days); a return of exactly -1
    gives -1 (ruin). Matches ``empyrical.cagr(r, annualization=365)`` on series without missing days (empyrical
    counts missing days in ``n``).
    """
    r = _finite(returns)
    if r.size == 0 or np.any(r < -1.0):
        return float("nan")
    with np.errstate(divide="ignore", over="ignore"):
        out = float(np.expm1(ANNUALISATION / r.size * np.sum(np.log1p(r))))
    return out if np.isfinite(out) else float("nan")


def sharpe_ratio(returns: ArrayLike) -> float:
    """Annualised Sharpe ratio ``mean(r) / std(r, ddof=1) * sqrt(365)`` of the finite daily returns, risk-free 0.

    NaN with fewer than 2 finite returns or zero dispersion (a standard deviation at most ``1e-12`` times the
    largest absolute return, so a constant series is NaN despite rounding).
    """
    r = _finite(returns)
    if r.size < 2:
        return float("nan")
    sd = float(np.std(r, ddof=1))
    if sd <= _ZERO_DISPERSION * float(np.max(np.abs(r))):
        return float("nan")
    return float(np.mean(r) / sd * np.sqrt(ANNUALISATION))


def sortino_ratio(returns: ArrayLike) -> float:
    """Annualised Sortino ratio ``mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(365)`` of the finite daily returns
    (target 0; the downside deviation averages over *all* days, as empyrical does).

    NaN with fewer than 2 finite returns or when no day lost money (downside deviation 0).
    """
    r = _finite(returns)
    if r.size < 2:
        return float("nan")
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    if downside == 0.0:
        return float("nan")
    return float(np.mean(r) / downside * np.sqrt(ANNUALISATION))


def max_drawdown(returns: ArrayLike) -> float:
    """Largest peak-to-trough fall of the compounded NAV, as a positive fraction (0.25 = a 25% drawdown).

    ``NAV = cumprod(1 + r)`` over the finite daily returns with the starting value 1 included, so a first-day loss
    is a drawdown. 0 for a path that never falls, NaN for no finite return. empyrical reports the same number
    with a negative sign.
    """
    r = _finite(returns)
    if r.size == 0:
        return float("nan")
    nav = np.concatenate(([1.0], np.cumprod(1.0 + r)))
    peak = np.maximum.accumulate(nav)
    return float(np.max(1.0 - nav / peak))


def calmar_ratio(returns: ArrayLike) -> float:
    """Calmar ratio ``cagr(r) / max_drawdown(r)`` over the whole sample; NaN when the drawdown is 0 or either
    part is NaN."""
    dd = max_drawdown(returns)
    if not dd > 0.0:
        return float("nan")
    out = cagr(returns) / dd
    return float(out) if np.isfinite(out) else float("nan")


def tail_return(returns: ArrayLike, q: float = 0.05) -> float:
    """The ``q``-quantile of the finite daily returns (linear interpolation, numpy's default): the historical
    one-day VaR as a (negative) return. NaN for no finite return; raises ``ValueError`` unless ``0 <= q <= 1``."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    r = _finite(returns)
    if r.size == 0:
        return float("nan")
    return float(np.quantile(r, q))


# --------------------------------------------------------------------------------------------------------------
# Performance metrics: 2-D, row-wise
# --------------------------------------------------------------------------------------------------------------


def _row_quantile(x: np.ndarray, q: float) -> np.ndarray:
    """Row-wise linear-interpolation quantile ignoring NaN, vectorised (``np.nanquantile`` loops over rows)."""
    s = np.sort(x, axis=1)  # NaN sort last
    n = np.sum(np.isfinite(x), axis=1)
    h = np.maximum(n - 1, 0) * q
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0]
    frac = h - lo
    with np.errstate(invalid="ignore"):
        out = np.where(frac == 0.0, a, a + frac * (b - a))
    return np.where(n > 0, out, np.nan)


def metrics_matrix(returns_2d: np.ndarray, q: float = 0.05) -> dict[str, np.ndarray]:
    """The metrics of ``cagr``, ``sharpe_ratio``, ``sortino_ratio``, ``max_drawdown``, ``calmar_ratio`` and
    ``tail_return(q)`` for every row of a (B, T) array of daily returns (each row one path), vectorised.

    Same conventions and NaN rules as the 1-D functions, row by row: non-finite entries are missing days (for the
    drawdown a missing day leaves the NAV unchanged, which is the same as dropping it). Returns a dict keyed by
    ``METRICS`` of float arrays of length B. A 1-D input is treated as one row.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    x = np.asarray(returns_2d, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"returns_2d must be 2-D, got shape {x.shape}")
    ok = np.isfinite(x)
    x = np.where(ok, x, np.nan)
    z = np.where(ok, x, 0.0)
    n = ok.sum(axis=1)
    nan = np.full(x.shape[0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mean = z.sum(axis=1) / n
        sd = np.sqrt(np.sum(np.where(ok, x - mean[:, None], 0.0) ** 2, axis=1) / (n - 1))
        scale = np.max(np.abs(z), axis=1, initial=0.0)
        sharpe = np.where((n >= 2) & (sd > _ZERO_DISPERSION * scale), mean / sd * np.sqrt(ANNUALISATION), nan)

        downside = np.sqrt(np.sum(np.minimum(z, 0.0) ** 2, axis=1) / n)
        sortino = np.where((n >= 2) & (downside > 0.0), mean / downside * np.sqrt(ANNUALISATION), nan)

        bad = np.any(z < -1.0, axis=1)
        growth = np.expm1(ANNUALISATION / n * np.sum(np.log1p(np.where(bad[:, None], 0.0, z)), axis=1))
        cagr_ = np.where((n > 0) & ~bad & np.isfinite(growth), growth, nan)

        nav = np.concatenate((np.ones((x.shape[0], 1)), np.cumprod(1.0 + z, axis=1)), axis=1)
        peak = np.maximum.accumulate(nav, axis=1)
        mdd = np.where(n > 0, np.max(1.0 - nav / peak, axis=1), nan)

        calmar = cagr_ / mdd
        calmar = np.where((mdd > 0.0) & np.isfinite(calmar), calmar, nan)
    return {
        "cagr": cagr_,
        "sharpe_ratio": sharpe,
        "sortino_ratio": sortino,
        "max_drawdown": mdd,
        "calmar_ratio": calmar,
        "tail_return": _row_quantile(x, q),
    }


# --------------------------------------------------------------------------------------------------------------
# Market-clustered bootstrap
# --------------------------------------------------------------------------------------------------------------


def returns_from_pnl(daily_pnl: np.ndarray, start_nav: float) -> np.ndarray:
    """Daily simple returns of a NAV built from daily P&L: ``NAV_d = start_nav + cumsum(pnl)_d`` and
    ``r_d = pnl_d / NAV_{d-1}`` (``NAV_{-1} = start_nav``). Works on a (T,) path or row-wise on a (B, T) array.

    Ruin guard: on the first day a path's NAV is ``<= 0`` its return is -1, and every later return is 0, so a
    ruined path never divides by a non-positive NAV (no inf, no sign flips). ``start_nav`` must be positive.
    """
    if not (np.isfinite(start_nav) and start_nav > 0):
        raise ValueError(f"start_nav must be positive, got {start_nav}")
    p = np.asarray(daily_pnl, dtype=float)
    one_d = p.ndim == 1
    p2 = p[None, :] if one_d else p
    nav = start_nav + np.cumsum(p2, axis=1)
    ruined = np.logical_or.accumulate(nav <= 0.0, axis=1)
    prev_ruined = np.concatenate((np.zeros((p2.shape[0], 1), dtype=bool), ruined[:, :-1]), axis=1)
    prev_nav = np.concatenate((np.full((p2.shape[0], 1), float(start_nav)), nav[:, :-1]), axis=1)
    out = np.zeros_like(p2)
    np.divide(p2, prev_nav, out=out, where=~ruined)
    out[ruined & ~prev_ruined] = -1.0
    return out[0] if one_d else out


def cluster_bootstrap(
    pnl: np.ndarray,
    start_nav: float,
    n_boot: int,
    seed: int,
    q: tuple[float, float] = (0.025, 0.975),
    match_volatility: bool = True,
) -> pd.DataFrame:
    """Percentile bootstrap of the ``METRICS`` with markets as clusters.

    ``pnl[m, d]`` is market (cluster) ``m``'s P&L in USDC on day ``d``; NaN entries are read as 0 (no position
    that day), infinite ones raise. The portfolio's daily P&L is the column sum. Each of ``n_boot`` replicates
    draws the M markets with replacement (multinomial counts, so a market's whole P&L history moves together and
    within-market dependence across days is kept), takes ``counts @ pnl`` as its daily P&L, converts it to
    returns with ``returns_from_pnl`` (so ruin gives -1 then 0, never inf) and evaluates ``metrics_matrix``.

    Returns one row per metric with columns ``metric``, ``estimate`` (the metric of the original, un-resampled
    path), ``ci_low``, ``ci_high`` (the ``q`` quantiles of the replicates, ignoring replicates where the metric is
    NaN, e.g. a flat replicate's Sharpe; NaN if all are) and ``n_boot`` (replicates drawn). With zero markets the
    estimates are those of a flat path (all-zero returns) and the intervals are NaN. Deterministic for a ``seed``.

    Duplicated markets add their idiosyncratic noise coherently, so with mostly independent markets a raw
    replicate's daily P&L variance is up to about twice the original's and its Sharpe, drawdown and tail lean
    low. With ``match_volatility`` (the default) each replicate's daily P&L ``x`` becomes
    ``mean(x) + (x - mean(x)) * sd(original) / sd(x)`` before the metrics; total P&L is unchanged either way.
    """
    arr = np.asarray(pnl, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"pnl must be 2-D (markets x days), got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError("pnl has infinite entries")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if len(q) != 2 or not all(0.0 <= v <= 1.0 for v in q):
        raise ValueError(f"q must be two probabilities, got {q}")
    arr = np.nan_to_num(arr, nan=0.0)
    n_boot = int(n_boot)
    m, days = arr.shape

    estimate = metrics_matrix(returns_from_pnl(arr.sum(axis=0), start_nav)[None, :])
    low = dict.fromkeys(METRICS, np.nan)
    high = dict.fromkeys(METRICS, np.nan)
    if m > 0:
        rng = np.random.default_rng(seed)
        probs = np.full(m, 1.0 / m)
        chunk = max(1, _CHUNK_CELLS // max(m, days, 1))
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, n_boot, chunk):
            counts = rng.multinomial(m, probs, size=min(chunk, n_boot - start))
            paths = counts.astype(float) @ arr
            if match_volatility and days > 1:
                sd = arr.sum(axis=0).std()
                mu = paths.mean(axis=1, keepdims=True)
                spread = paths.std(axis=1, keepdims=True)
                scale = np.divide(sd, spread, out=np.ones_like(spread), where=spread > 0)
                paths = mu + (paths - mu) * scale
            parts.append(metrics_matrix(returns_from_pnl(paths, start_nav)))
        for name in METRICS:
            draws = np.concatenate([p[name] for p in parts])
            draws = draws[np.isfinite(draws)]
            if draws.size:
                low[name], high[name] = (float(v) for v in np.quantile(draws, q))
    return pd.DataFrame(
        {
            "metric": list(METRICS),
            "estimate": [float(estimate[k][0]) for k in METRICS],
            "ci_low": [low[k] for k in METRICS],
            "ci_high": [high[k] for k in METRICS],
            "n_boot": n_boot,
        }
    )


# --------------------------------------------------------------------------------------------------------------
# Deflated Sharpe ratio
# --------------------------------------------------------------------------------------------------------------


class DeflatedSharpe(NamedTuple):
    sharpe: float
    sr0: float
    n_trials: int
    dsr: float


def expected_max_sharpe(n_trials: int, trial_sharpe_std: float) -> float:
    """Expected maximum of ``n_trials`` per-period Sharpe ratios under the null of no skill (Bailey & Lopez de
    Prado 2014): ``sqrt(V) * ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))`` with
    ``sqrt(V) = trial_sharpe_std``. 0 for a single trial; NaN for a non-finite std. Raises for ``n_trials < 1``."""
    n_trials = int(n_trials)
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if n_trials == 1:
        return 0.0
    if not np.isfinite(trial_sharpe_std):
        return float("nan")
    z = (1.0 - EULER_GAMMA) * stats.norm.ppf(1.0 - 1.0 / n_trials) + EULER_GAMMA * stats.norm.ppf(
        1.0 - 1.0 / (n_trials * np.e)
    )
    return float(trial_sharpe_std * z)


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark_sharpe: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """Probability that the true per-period Sharpe exceeds ``benchmark_sharpe`` (Bailey & Lopez de Prado 2012):
    ``Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurtosis - 1)/4 SR^2))``, ``kurtosis`` non-excess (3 for a
    normal). NaN with ``n_obs < 2``, a non-finite input or a non-positive variance term."""
    values = (sharpe, benchmark_sharpe, skew, kurtosis)
    if n_obs < 2 or not all(np.isfinite(v) for v in values):
        return float("nan")
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not var > 0.0:
        return float("nan")
    return float(stats.norm.cdf((sharpe - benchmark_sharpe) * np.sqrt(n_obs - 1.0) / np.sqrt(var)))


def deflated_sharpe_ratio(returns: ArrayLike, trial_sharpes: ArrayLike) -> DeflatedSharpe:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado 2014) of a strategy chosen as the best of several trials.

    ``returns`` are the chosen strategy's daily returns (non-finite dropped, ``T`` kept). ``sharpe`` is its
    per-period, *non-annualised* Sharpe ``mean / std(ddof=1)``; skewness and non-excess kurtosis are the usual
    (biased) sample moments. ``trial_sharpes`` are the per-period Sharpes of every strategy or parameter set tried,
    the chosen one included; ``n_trials = len(trial_sharpes)`` (NaN entries still count as trials) and ``V`` is
    the sample variance (ddof=1) of the finite ones. ``sr0 = expected_max_sharpe(N, sqrt(V))`` (0 for N = 1, which
    makes ``dsr`` the probabilistic Sharpe ratio against 0) and ``dsr = probabilistic_sharpe_ratio(sharpe, sr0,
    T, skew, kurtosis)``. NaN ``sharpe``/``dsr`` with fewer than 3 returns or zero dispersion; NaN ``sr0``/``dsr``
    when N >= 2 but fewer than 2 trial Sharpes are finite. Raises for an empty ``trial_sharpes``.
    """
    trials = np.asarray(trial_sharpes, dtype=float).ravel()
    n_trials = int(trials.size)
    if n_trials < 1:
        raise ValueError("trial_sharpes is empty: at least the chosen strategy's own Sharpe is a trial")
    finite = trials[np.isfinite(trials)]
    if n_trials == 1:
        sr0 = 0.0
    elif finite.size < 2:
        sr0 = float("nan")
    else:
        sr0 = expected_max_sharpe(n_trials, float(np.std(finite, ddof=1)))

    r = _finite(returns)
    nan = float("nan")
    if r.size < 3:
        return DeflatedSharpe(nan, sr0, n_trials, nan)
    sd = float(np.std(r, ddof=1))
    if sd <= _ZERO_DISPERSION * float(np.max(np.abs(r))):
        return DeflatedSharpe(nan, sr0, n_trials, nan)
    sr = float(np.mean(r) / sd)
    skew = float(stats.skew(r, bias=True))
    kurt = float(stats.kurtosis(r, fisher=False, bias=True))
    return DeflatedSharpe(sr, sr0, n_trials, probabilistic_sharpe_ratio(sr, sr0, r.size, skew, kurt))


# --------------------------------------------------------------------------------------------------------------
# Brinson-Fachler attribution
# --------------------------------------------------------------------------------------------------------------


def _as_series(x: ArrayLike, name: str) -> pd.Series:
    if isinstance(x, pd.Series):
        return pd.to_numeric(x, errors="coerce").astype(float).rename(name)
    return pd.Series(np.asarray(x, dtype=float).ravel(), name=name)


def brinson_fachler(wp: ArrayLike, wb: ArrayLike, rp: ArrayLike, rb: ArrayLike) -> pd.DataFrame:
    """Brinson-Fachler single-period attribution of the active return ``sum(wp rp) - sum(wb rb)`` by sector.

    ``wp``/``rp`` are the portfolio's sector weights and returns, ``wb``/``rb`` the benchmark's; pd.Series are
    aligned on their index (the union of sectors), plain arrays are positional. With ``R_b = sum(wb rb)``::

        allocation  = (wp - wb)(rb - R_b)      selection = wb (rp - rb)      interaction = (wp - wb)(rp - rb)

    and ``total`` their sum. A sector missing on one side gets weight 0 there. A missing (NaN) return is only
    allowed where that side's weight is 0 and is filled so that no NaN leaks and the side contributes nothing
    spurious: ``rb = R_b`` where ``wb = 0`` (the benchmark "holds" it at its own total return, so allocation and
    selection are 0 and the sector's whole effect ``wp (rp - R_b)`` is interaction), then ``rp = rb`` where
    ``wp = 0`` (no selection or interaction). A missing return with a non-zero weight raises ``ValueError``.
    Columns sum to the active return when ``wp`` and ``wb`` sum to the same total (e.g. both 1). Returns a frame
    indexed by sector (index name ``sector``); ``brinson_totals`` adds it up.
    """
    frame = pd.concat(
        [_as_series(wp, "wp"), _as_series(wb, "wb"), _as_series(rp, "rp"), _as_series(rb, "rb")], axis=1
    )
    frame[["wp", "wb"]] = frame[["wp", "wb"]].fillna(0.0)
    for r, w in (("rp", "wp"), ("rb", "wb")):
        if (frame[r].isna() & (frame[w] != 0.0)).any():
            bad = list(frame.index[frame[r].isna() & (frame[w] != 0.0)])
            raise ValueError(f"{r} is missing for sectors with a non-zero {w}: {bad}")
    total_b = float((frame["wb"] * frame["rb"].fillna(0.0)).sum())
    rb_ = frame["rb"].fillna(total_b)
    rp_ = frame["rp"].fillna(rb_)
    active_w = frame["wp"] - frame["wb"]
    out = pd.DataFrame(
        {
            "allocation": active_w * (rb_ - total_b),
            "selection": frame["wb"] * (rp_ - rb_),
            "interaction": active_w * (rp_ - rb_),
        }
    )
    out["total"] = out.sum(axis=1)
    out.index.name = "sector"
    return out


def brinson_totals(frame: pd.DataFrame) -> pd.Series:
    """Column sums of a ``brinson_fachler`` frame: total ``allocation``, ``selection``, ``interaction`` and
    ``total`` (the active return when the weights sum to the same total)."""
    return frame[["allocation", "selection", "interaction", "total"]].sum(axis=0)


# --------------------------------------------------------------------------------------------------------------
# Alpha and beta
# --------------------------------------------------------------------------------------------------------------


class AlphaBeta(NamedTuple):
    alpha: float
    beta: float
    r_squared: float
    alpha_annualised: float
    alpha_t: float
    n: int


def alpha_beta(strategy: ArrayLike, benchmark: ArrayLike) -> AlphaBeta:
    """OLS of the strategy's daily returns on the benchmark's: ``r_s = alpha + beta r_b + e``.

    Uses the days where both are finite (two pd.Series are aligned on their index first; arrays are positional
    and must have one length). ``alpha`` is per day, ``alpha_annualised = 365 * alpha`` (simple; empyrical
    compounds, ``(1 + alpha)^365 - 1``), ``alpha_t`` is alpha over its OLS standard error
    ``s sqrt(1/n + mean(r_b)^2 / Sxx)`` with ``s^2 = SSR / (n - 2)``, ``n`` the number of pairs used. Everything
    but ``n`` is NaN with fewer than 3 pairs or a constant benchmark; ``r_squared`` is NaN for a constant strategy
    and ``alpha_t`` is NaN for a perfect fit (residuals zero up to rounding).
    """
    if isinstance(strategy, pd.Series) and isinstance(benchmark, pd.Series):
        strategy, benchmark = strategy.align(benchmark, join="inner")
    y = np.asarray(strategy, dtype=float).ravel()
    x = np.asarray(benchmark, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"strategy and benchmark must have one length, got {y.size} and {x.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    nan = float("nan")
    if n < 3:
        return AlphaBeta(nan, nan, nan, nan, nan, n)
    xm, ym = x.mean(), y.mean()
    dx, dy = x - xm, y - ym
    sxx = float(dx @ dx)
    if sxx <= (_ZERO_DISPERSION * float(np.max(np.abs(x)))) ** 2 * n:
        return AlphaBeta(nan, nan, nan, nan, nan, n)
    beta = float(dx @ dy) / sxx
    alpha = float(ym - beta * xm)
    resid = dy - beta * dx
    ssr, sst = float(resid @ resid), float(dy @ dy)
    constant_y = sst <= (_ZERO_DISPERSION * float(np.max(np.abs(y)))) ** 2 * n
    r_squared = nan if constant_y else 1.0 - ssr / sst
    se = np.sqrt(ssr / (n - 2) * (1.0 / n + xm**2 / sxx))
    perfect = ssr <= _ZERO_DISPERSION**2 * sst  # residuals are rounding noise: no standard error to speak of
    alpha_t = nan if perfect or not se > 0.0 else alpha / se
    return AlphaBeta(alpha, beta, float(r_squared), alpha * ANNUALISATION, float(alpha_t), n)
