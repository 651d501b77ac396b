"""Pure evaluation kernels: information coefficients and their month-clustered statistics. No Dagster, no DuckDB.

The information coefficient (IC) of a predictor at an as-of date is the Spearman rank correlation, across the
wallets scored that day, between the predictor and each wallet's realised return over the following horizon.
ICs at as-of dates in one calendar month share most of their forward windows, so they are not independent:
inference treats the month as the cluster (the mean IC of each month is one observation), which is what
"clustered by month" means here. With ``M`` months of means ``m_j``::

    mean = avg(m_j)      se = sd(m_j, ddof=1) / sqrt(M)      t = mean / se      95% CI = mean -/+ t_{0.975, M-1} se

Consecutive months still overlap by up to one horizon at their edges; the statistic ignores that residual
correlation, so its t is somewhat optimistic (docs/metrics.md#score-evaluation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

#: the documented target mean IC of the WQS
TARGET_IC = 0.42
#: an as-of date needs at least this many wallets with every predictor and a forward return to give an IC
MIN_WALLETS = 20


def spearman(x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float]) -> float:
    """Spearman rank correlation over the pairs where both are finite (average ranks for ties); NaN with fewer
    than 3 pairs or a constant side."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    rx, ry = stats.rankdata(x[ok]), stats.rankdata(y[ok])
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def information_coefficients(
    frame: pd.DataFrame,
    predictors: Sequence[str],
    target: str,
    by: str = "as_of",
    min_wallets: int = MIN_WALLETS,
) -> pd.DataFrame:
    """Spearman IC of each predictor with ``target`` per ``by`` group, on a common sample.

    Only rows where the target and *every* predictor are finite take part, so every predictor is judged on the
    same wallets. Groups with fewer than ``min_wallets`` such rows give no IC. Returns long rows
    ``(by, predictor, ic, n_wallets)``. Vectorised: ranks by ``groupby().rank()``, correlations from group sums.
    """
    cols = [*predictors, target]
    data = frame[[by, *cols]].copy()
    data[cols] = data[cols].apply(pd.to_numeric, errors="coerce")
    data = data[np.isfinite(data[cols].to_numpy(dtype=float)).all(axis=1)]
    sizes = data.groupby(by)[target].transform("size")
    data = data[sizes >= min_wallets]
    if data.empty:
        return pd.DataFrame({by: [], "predictor": [], "ic": [], "n_wallets": []})
    ranks = data.groupby(by)[cols].rank(method="average")
    ranks[by] = data[by].to_numpy()
    g = ranks.groupby(by)
    n = g[target].size()
    centred = ranks[cols] - g[cols].transform("mean")
    centred[by] = ranks[by]
    yc = centred[target]
    out = []
    for p in predictors:  # a handful of predictors, each one groupby over all as-of dates
        xc = centred[p]
        sums = pd.DataFrame({by: centred[by], "xy": xc * yc, "xx": xc * xc, "yy": yc * yc}).groupby(by).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            ic = sums["xy"] / np.sqrt(sums["xx"] * sums["yy"])
        out.append(
            pd.DataFrame({by: ic.index, "predictor": p, "ic": ic.to_numpy(), "n_wallets": n.to_numpy()})
        )
    return pd.concat(out, ignore_index=True)


class ClusteredMean(NamedTuple):
    mean: float
    se: float
    t_stat: float
    ci_low: float
    ci_high: float
    n_clusters: int


def clustered_mean(values: np.ndarray | Sequence[float], clusters: np.ndarray | Sequence) -> ClusteredMean:
    """Mean of ``values`` with a standard error clustered by ``clusters``: each cluster's mean is one
    observation; the t-statistic and 95% interval use Student's t with ``clusters - 1`` degrees of freedom.
    NaN values are skipped; fewer than 2 clusters give NaN se, t and interval."""
    s = pd.Series(np.asarray(values, dtype=float), index=np.asarray(clusters))
    s = s[np.isfinite(s.to_numpy())]
    means = s.groupby(level=0).mean().to_numpy()
    m = len(means)
    mean = float(means.mean()) if m else float("nan")
    if m < 2:
        return ClusteredMean(mean, float("nan"), float("nan"), float("nan"), float("nan"), m)
    se = float(means.std(ddof=1) / np.sqrt(m))
    t = mean / se if se > 0 else float("nan")
    half = float(stats.t.ppf(0.975, m - 1)) * se
    return ClusteredMean(mean, se, t, mean - half, mean + half, m)


def month_of(days: pd.Series) -> pd.Series:
    """The first day of each date's calendar month."""
    return pd.to_datetime(days).dt.to_period("M").dt.to_timestamp().dt.date


def summarise_ic(ic: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """One row per predictor from :func:`information_coefficients` rows (``by = "as_of"``): the month-clustered
    mean IC, its t-statistic and 95% interval, months, as-of dates, mean wallets per date, the share of months
    with a positive IC, and (if ``baseline`` is given) the paired month-clustered difference to the baseline's IC.
    """
    rows = []
    ic = ic.assign(month=month_of(ic["as_of"]))
    base = ic[ic["predictor"] == baseline].set_index("as_of")["ic"] if baseline else None
    for p, g in ic.groupby("predictor", sort=False):
        c = clustered_mean(g["ic"], g["month"])
        monthly = g.groupby("month")["ic"].mean()
        row = {
            "predictor": p,
            "mean_ic": c.mean,
            "t_stat": c.t_stat,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "n_months": c.n_clusters,
            "n_as_of": int(g["ic"].notna().sum()),
            "mean_wallets": float(g["n_wallets"].mean()),
            "share_positive_months": float((monthly > 0).mean()) if len(monthly) else float("nan"),
        }
        if base is not None:
            diff = g.set_index("as_of")["ic"] - base.reindex(g["as_of"]).to_numpy()
            d = clustered_mean(diff.to_numpy(), g["month"].to_numpy())
            row.update({f"diff_vs_{baseline}": d.mean, "diff_t_stat": d.t_stat})
        rows.append(row)
    return pd.DataFrame(rows)


def monthly_ic(ic: pd.DataFrame) -> pd.DataFrame:
    """Per (predictor, month): mean IC of the month's as-of dates, their count and the mean wallets per date."""
    ic = ic.assign(month=month_of(ic["as_of"]))
    return (
        ic.groupby(["predictor", "month"], sort=False)
        .agg(ic=("ic", "mean"), n_as_of=("ic", "size"), mean_wallets=("n_wallets", "mean"))
        .reset_index()
    )
