"""The walk-forward backtest: strategies side by side on the same candidates, marks and costs. Pure (no Dagster,
no DuckDB); the paper engine (:func:`assets.paper.model.run_paper`) executes every strategy.

Rolling origin (docs/metrics.md#walk-forward-backtest): the first origin falls ``warmup_days`` after the first
data day and one follows every ``fold_days``; fold k trades the days ``[origin_k, origin_k + fold_days)``. At each
origin, from data before it only:

- the **discovered whales** are the ``max_whales`` wallets with the highest WQS at the latest as-of date on or
  before the origin, among those with WQS >= ``universe_min_wqs`` (their set is fixed for the fold);
- the **random whales** are as many wallets drawn (seeded per fold) from every wallet scored at that date;
- a wallet flagged at that date is neither (``backtest_assets.load_inputs`` leaves it out of ``scores`` unless
  ``keep_flagged_wallets``);
- the ``full`` strategy's WQS threshold is chosen from ``min_wqs_grid`` by its Sharpe ratio on the
  ``train_days`` before the origin (the in-sample run); the other thresholds stay at their documented values.

Within a fold every decision reads the latest point-in-time score before the fill, as in ``analytics.signals``.
Each strategy is one continuous portfolio over all folds (positions carry across an origin; only what it may
enter changes). Strategies:

- ``naive_copy``: every BUY of the fold's discovered whales at a fixed dollar size; no filter, no risk rules,
  only the cash it has;
- ``fixed_size``: the three-stage filter (stages 1-2 at the documented thresholds, stage 3 against the book) at
  the same fixed size, no stops, time exits or VaR block;
- ``full``: the filter with the walk-forward WQS threshold, adaptive Kelly and every risk rule;
- ``random_whales`` (control): ``naive_copy`` on the random wallets;
- ``reverse`` (control): ``fixed_size``'s signals, buying the other outcome of each at its own price.

Every strategy pays the copy latency (the price of the last trade at fill + latency), the square-root slippage
and the fee on every fill, and mirrors the copied whale's sells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from assets.paper import model as paper
from assets.signal import model as signal

from . import stats

STRATEGIES = ("naive_copy", "fixed_size", "full", "random_whales", "reverse")
CONTROLS = ("random_whales", "reverse")


@dataclass(frozen=True)
class BacktestParams:
    warmup_days: int = 182
    fold_days: int = 91
    train_days: int = 182
    max_whales: int = 20
    universe_min_wqs: float = 60.0
    fixed_notional: float = 200.0  # 2% of the starting NAV per copy for the fixed-size strategies
    min_wqs_grid: tuple[float, ...] = (65.0, 75.0, 85.0)
    n_boot: int = 1000
    #: a target read on a strategy with fewer trades than this is "not measurable", never met
    min_trades: int = 20
    seed: int = 0


class Fold(NamedTuple):
    fold: int
    train_start: int  # day numbers (days since 1970-01-01); the in-sample window is [train_start, origin)
    origin: int
    end: int  # exclusive


def make_folds(first_day: int, last_day: int, p: BacktestParams) -> list[Fold]:
    """Origins every ``fold_days`` from ``first_day + warmup_days``; the last fold ends after ``last_day`` (a last
    stretch shorter than half a fold joins the fold before it)."""
    out, origin = [], first_day + p.warmup_days
    while origin <= last_day:
        end = min(origin + p.fold_days, last_day + 1)
        if out and end - origin < p.fold_days / 2:  # a short last stretch joins the fold before it
            out[-1] = out[-1]._replace(end=end)
        else:
            out.append(Fold(len(out), max(first_day, origin - p.train_days), origin, end))
        origin = end
    return out


def strategy_params(name: str, base: paper.PaperParams, p: BacktestParams) -> paper.PaperParams:
    """The paper engine's settings for a strategy (the costs are the same for all)."""
    fixed = {"fixed_notional": p.fixed_notional, "risk_management": False}
    return {
        "naive_copy": replace(base, **fixed, portfolio_filter=False),
        "random_whales": replace(base, **fixed, portfolio_filter=False),
        "fixed_size": replace(base, **fixed, portfolio_filter=True),
        "reverse": replace(base, **fixed, portfolio_filter=True),
        "full": base,
    }[name]


def passes_filter(cands: pd.DataFrame, params: signal.SignalParams) -> np.ndarray:
    """Stages 1 and 2 of the signal filter at ``params``."""
    return signal.whale_stage(cands, params).passed & signal.trade_stage(cands, params).passed


def discovered(scores: pd.DataFrame, as_of_day: int, p: BacktestParams) -> np.ndarray:
    """The top ``max_whales`` wallets by WQS (>= ``universe_min_wqs``) at the latest as-of day <= ``as_of_day``;
    ``scores``: ``as_of_day, wallet, wqs``."""
    days = scores["as_of_day"].to_numpy()
    if not (days <= as_of_day).any():
        return np.array([], dtype=object)
    s = scores[days == days[days <= as_of_day].max()]
    s = s[s["wqs"] >= p.universe_min_wqs].sort_values(["wqs", "wallet"], ascending=[False, True])
    return s["wallet"].to_numpy()[: p.max_whales]


def random_wallets(scores: pd.DataFrame, as_of_day: int, n: int, seed: int) -> np.ndarray:
    """``n`` wallets drawn without replacement from every wallet scored at the latest as-of day <= ``as_of_day``."""
    days = scores["as_of_day"].to_numpy()
    if n == 0 or not (days <= as_of_day).any():
        return np.array([], dtype=object)
    pool = np.sort(scores.loc[days == days[days <= as_of_day].max(), "wallet"].unique())
    return np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False)


def reversed_inputs(
    cands: pd.DataFrame, sells: pd.DataFrame, marks: pd.DataFrame, complement: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The ``reverse`` control: each candidate buys the other outcome of its binary market at one minus our copy
    price, marked at one minus the outcome's marks, and a whale's sell of its outcome sells ours. ``complement``
    maps token -> the other token. (The other outcome's own last trade can be days old; its mirror is the price
    at the copy. The mirror gives the control the spread for free rather than charging it twice.)"""
    c = cands.assign(
        token_id=cands["token_id"].map(complement),
        copy_price=1.0 - cands["copy_price"],
        whale_price=1.0 - cands["whale_price"],
        edge_at_copy=-cands["edge_at_copy"],
    )
    c = c[c["token_id"].notna()]
    s = sells.assign(token_id=sells["token_id"].map(complement), price=1.0 - sells["price"])
    m = marks[marks["token_id"].isin(complement.index)]
    m = m.assign(token_id=m["token_id"].map(complement), price=1.0 - m["price"])
    return c, s.dropna(subset=["token_id"]), m


class BacktestRun(NamedTuple):
    runs: dict[str, paper.PaperResult]  # the out-of-sample portfolio of each strategy (and each grid value)
    candidates: dict[str, pd.DataFrame]  # what each strategy was offered (its ``key`` joins to the decisions)
    folds: pd.DataFrame  # per fold: origin, whales, the chosen threshold, in-sample and out-of-sample Sharpe
    in_sample: dict[int, paper.PaperResult]  # per fold: the chosen threshold's in-sample run
    stopped_by: dict[str, str]  # per strategy: what stopped the candidates it did not trade (stop_reason)


def _commonest(reasons: np.ndarray) -> str:
    """The commonest single reason among ``"; "``-joined ones, with its count."""
    each = pd.Series(reasons, dtype=object).dropna().str.split("; ").explode().value_counts()
    return f"{each.index[0]} ({int(each.iloc[0]):,})" if len(each) else "no reason recorded"


def stop_reason(
    strategy: str,
    cands: pd.DataFrame,
    offered: int,
    copied: int,
    whales: int,
    params: signal.SignalParams,
    min_wqs: float,
    universe_min_wqs: float = BacktestParams.universe_min_wqs,
) -> str:
    """Why ``strategy`` made the trades it made out of sample, in words: the stage that stopped its candidates and
    its commonest reason. ``cands``: every candidate of the out-of-sample days (the backtest loads those of a WQS of
    at least ``min_wqs``, the lowest any strategy tries, and the fold whales'); ``offered``, ``copied``: the
    strategy's counts; ``whales``: the wallets its folds discovered (or drew), for the copying strategies."""
    if strategy in ("naive_copy", "random_whales"):
        if whales == 0:
            return (
                f"no wallet to copy at any origin: none unflagged with a WQS of {universe_min_wqs:g} or more"
            )
        if offered == 0:
            return f"its {whales:,} fold whales made no BUY out of sample"
        return f"{copied:,} of its whales' {offered:,} BUYs copied (the rest: no cash, or under one share)"
    w = signal.whale_stage(cands, params)
    t = signal.trade_stage(cands, params)
    n, n1, n2 = len(cands), int(w.passed.sum()), int((w.passed & t.passed).sum())
    if n == 0:
        return f"stage 1 (whale): no whale BUY out of sample had a WQS of {min_wqs:g} or more"
    if n1 == 0:
        return f"stage 1 (whale) stopped all {n:,} candidates: {_commonest(w.reason)}"
    if n2 == 0:
        return f"stage 2 (trade) stopped all {n1:,} that passed stage 1: {_commonest(t.reason[w.passed])}"
    return (
        f"{n2:,} of {n:,} candidates passed stages 1 and 2 at the documented thresholds, {offered:,} offered to it; "
        f"stage 3 and sizing copied {copied:,}"
    )


def _sharpe(result: paper.PaperResult, lo: int, hi: int) -> float:
    nav = result.nav
    r = nav.loc[(nav["day"] >= lo) & (nav["day"] < hi), "daily_return"].to_numpy(dtype=float)
    return stats.sharpe_ratio(r)


def walk_forward(
    cands: pd.DataFrame,
    marks: pd.DataFrame,
    sells: pd.DataFrame,
    markets: pd.DataFrame,
    scores: pd.DataFrame,
    complement: pd.Series,
    first_day: int,
    last_day: int,
    base: paper.PaperParams,
    p: BacktestParams = BacktestParams(),
    progress: Callable[[str], None] | None = None,
) -> BacktestRun:
    """Run every strategy over the walk-forward folds. ``cands`` holds every BUY the strategies may be offered
    (``analytics.signals`` columns plus ``key, ts, fill_day, whale_volatility``); the other
    frames are as :func:`assets.paper.model.run_paper` takes them, ``scores`` as :func:`discovered`."""
    say = progress or (lambda _msg: None)
    folds = make_folds(first_day, last_day, p)
    if not folds:
        raise ValueError(
            f"no walk-forward fold: {last_day - first_day + 1} days of data, warm-up {p.warmup_days} days"
        )
    start = folds[0].origin
    day = cands["fill_day"].to_numpy()
    documented = base.signal
    filtered = passes_filter(cands, documented)
    grid_pass = {g: passes_filter(cands, replace(documented, min_wqs=g)) for g in p.min_wqs_grid}
    full_params = strategy_params("full", base, p)

    offered = {s: np.zeros(len(cands), dtype=bool) for s in STRATEGIES}
    fold_rows, in_sample = [], {}
    for f in folds:
        in_fold = (day >= f.origin) & (day < f.end)
        whales = discovered(scores, f.origin, p)  # a score dated t reads data before t
        randoms = random_wallets(scores, f.origin, len(whales), p.seed * 1000 + f.fold)
        offered["naive_copy"] |= in_fold & cands["wallet"].isin(whales).to_numpy()
        offered["random_whales"] |= in_fold & cands["wallet"].isin(randoms).to_numpy()
        offered["fixed_size"] |= in_fold & filtered
        offered["reverse"] |= in_fold & filtered
        # the threshold for `full`: best in-sample Sharpe over [train_start, origin)
        in_train = (day >= f.train_start) & (day < f.origin)
        tried = {}
        for g in p.min_wqs_grid:
            run = paper.run_paper(
                cands[in_train & grid_pass[g]],
                marks,
                sells,
                markets,
                f.train_start,
                f.origin - 1,
                full_params,
            )
            tried[g] = (_sharpe(run, f.train_start, f.origin), run)
        finite = {g: v for g, v in tried.items() if np.isfinite(v[0])}
        chosen = (
            max(finite, key=lambda g: (finite[g][0], g == documented.min_wqs))
            if finite
            else documented.min_wqs
        )
        in_sample[f.fold] = tried.get(chosen, (np.nan, None))[1]
        offered["full"] |= in_fold & grid_pass.get(chosen, filtered)
        fold_rows.append(
            {"fold": f.fold, "train_start": f.train_start, "origin": f.origin, "fold_end": f.end,
             "whales": len(whales), "random_wallets": len(randoms), "chosen_min_wqs": chosen,
             "in_sample_sharpe": tried.get(chosen, (np.nan,))[0]}
            | {f"in_sample_sharpe_wqs_{g:g}": v[0] for g, v in tried.items()}
        )  # fmt: skip
        say(f"fold {f.fold}: origin day {f.origin}, {len(whales)} whales, WQS threshold {chosen:g}")

    runs, offered_frames = {}, {}
    for s in STRATEGIES:
        c = cands[offered[s]]
        sl, mk = sells, marks
        if s == "reverse":
            c, sl, mk = reversed_inputs(c, sells, marks, complement)
        offered_frames[s] = c
        runs[s] = paper.run_paper(c, mk, sl, markets, start, last_day, strategy_params(s, base, p))
        say(f"{s}: {len(c):,} offered, {int(runs[s].decisions['copied'].sum()):,} copied")
    for g in p.min_wqs_grid:  # each threshold held fixed out of sample: trials for the deflated Sharpe
        name = f"full_wqs_{g:g}"
        c = cands[(day >= start) & grid_pass[g]]
        offered_frames[name] = c
        runs[name] = paper.run_paper(c, marks, sells, markets, start, last_day, full_params)
    folds_frame = pd.DataFrame(fold_rows)
    folds_frame["out_of_sample_sharpe"] = [_sharpe(runs["full"], f.origin, f.end) for f in folds]
    oos = cands[day >= start]
    stopped_by = {
        s: stop_reason(s, oos, len(offered_frames[s]), int(runs[s].decisions["copied"].sum()),
                       int(folds_frame["random_wallets" if s == "random_whales" else "whales"].sum()), documented,
                       min([*p.min_wqs_grid, documented.min_wqs]), p.universe_min_wqs)
        for s in STRATEGIES
    }  # fmt: skip
    return BacktestRun(runs, offered_frames, folds_frame, in_sample, stopped_by)


# ---------------------------------------------------------------------------------------------------------------
# tables


def market_pnl(result: paper.PaperResult, cands: pd.DataFrame, first_day: int, last_day: int):
    """Each market's daily P&L (USDC): the change in its positions' value plus its fills' cash flows. The columns
    sum to the NAV's daily change. Returns (condition ids, matrix markets x days)."""
    n_days = last_day - first_day + 1
    cond = cands.set_index("key")["condition_id"]
    f = result.fills
    flows = pd.DataFrame({"key": f["key"], "day": f["day"], "pnl": -(f["shares"] * f["price"]) - f["fee"]})
    h = result.holdings
    value = pd.DataFrame({"key": h["key"], "day": h["day"], "pnl": h["value"]})
    prev = pd.DataFrame({"key": h["key"], "day": h["day"] + 1, "pnl": -h["value"]})
    pnl = pd.concat([flows, value, prev], ignore_index=True)
    pnl = pnl[(pnl["day"] >= first_day) & (pnl["day"] <= last_day)]
    pnl["market"] = pnl["key"].map(cond)
    by = pnl.groupby(["market", "day"], sort=True)["pnl"].sum()
    markets = by.index.get_level_values(0).unique()
    out = np.zeros((len(markets), n_days))
    out[markets.get_indexer(by.index.get_level_values(0)), by.index.get_level_values(1) - first_day] = (
        by.to_numpy()
    )
    return np.asarray(markets), out


METRICS = ("cagr", "sharpe", "sortino", "max_drawdown", "calmar", "tail_return_5")
BOOTSTRAP_NAMES = {"sharpe": "sharpe_ratio", "sortino": "sortino_ratio", "calmar": "calmar_ratio",
                   "tail_return_5": "tail_return"}  # fmt: skip


def summary_row(result: paper.PaperResult, cands: pd.DataFrame, first_day: int, last_day: int,
                start_nav: float, p: BacktestParams) -> dict:  # fmt: skip
    """One strategy's line of ``evaluation.backtest_summary``: the metrics with market-clustered bootstrap
    intervals, hit rate, turnover and trades."""
    _, pnl = market_pnl(result, cands, first_day, last_day)
    boot = stats.cluster_bootstrap(pnl, start_nav, p.n_boot, p.seed).set_index("metric")
    r = result.nav["daily_return"].to_numpy(dtype=float)
    row = {
        "cagr": stats.cagr(r), "sharpe": stats.sharpe_ratio(r), "sortino": stats.sortino_ratio(r),
        "max_drawdown": stats.max_drawdown(r), "calmar": stats.calmar_ratio(r),
        "tail_return_5": stats.tail_return(r, 0.05),
    }  # fmt: skip
    for m in METRICS:
        name = BOOTSTRAP_NAMES.get(m, m)
        row[f"{m}_ci_low"] = float(boot.loc[name, "ci_low"])
        row[f"{m}_ci_high"] = float(boot.loc[name, "ci_high"])
    closed = result.positions.dropna(subset=["realised_pnl"])
    fills = result.fills[result.fills["kind"] != "settlement"]
    traded = float((fills["shares"].abs() * fills["price"]).sum())
    mean_nav = float(result.nav["nav"].mean()) if len(result.nav) else np.nan
    years = len(result.nav) / stats.ANNUALISATION
    row |= {
        "hit_rate": float((closed["realised_pnl"] > 0).mean()) if len(closed) else np.nan,
        "turnover": traded / mean_nav / years if years > 0 and mean_nav > 0 else np.nan,
        "trades": int((result.fills["kind"] == "entry").sum()),
        "final_nav": float(result.nav["nav"].iloc[-1]) if len(result.nav) else np.nan,
        "days": len(result.nav),
        "n_markets": int(pnl.shape[0]),
    }
    return row


def summary_table(bt: BacktestRun, first_day: int, last_day: int, start_nav: float, p: BacktestParams):
    """``evaluation.backtest_summary``: one row per strategy, plus its deflated Sharpe ratio over every strategy
    and fixed threshold tried (N trials)."""
    rows = []
    trial_sharpes = np.array(
        [stats.deflated_sharpe_ratio(bt.runs[s].nav["daily_return"].to_numpy(dtype=float), [0.0]).sharpe
         for s in bt.runs]
    )  # fmt: skip
    for s in STRATEGIES:
        row = {"strategy": s, "is_control": s in CONTROLS}
        row |= summary_row(bt.runs[s], bt.candidates[s], first_day, last_day, start_nav, p)
        d = stats.deflated_sharpe_ratio(bt.runs[s].nav["daily_return"].to_numpy(dtype=float), trial_sharpes)
        row |= {"deflated_sharpe": d.dsr, "dsr_sr0_daily": d.sr0, "n_trials": d.n_trials}
        rows.append(row)
    return pd.DataFrame(rows)


def daily_table(bt: BacktestRun) -> pd.DataFrame:
    """``evaluation.backtest_daily``: strategy, day, NAV, return, drawdown, exposure, VaR, open positions."""
    frames = []
    for s in STRATEGIES:
        n = bt.runs[s].nav
        frames.append(
            pd.DataFrame({"strategy": s, "day": n["day"], "nav": n["nav"], "daily_return": n["daily_return"],
                          "drawdown": n["drawdown"], "exposure_share": n["exposure_share"], "var": n["var"],
                          "open_positions": n["open_positions"]})
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def execution_costs(result: paper.PaperResult, cands: pd.DataFrame) -> dict[str, float]:
    """Dollars lost to the copy latency (our copy price over the whale's, on entries), slippage (our fill over
    the copy price, on entries) and fees (every fill)."""
    e = result.fills[result.fills["kind"] == "entry"].merge(
        cands[["key", "copy_price", "whale_price"]], on="key", how="left"
    )
    return {
        "latency": float((e["shares"] * (e["copy_price"] - e["whale_price"])).sum()),
        "slippage": float((e["shares"] * (e["price"] - e["copy_price"])).sum()),
        "fees": float(result.fills["fee"].sum()),
    }


def position_pnl(result: paper.PaperResult, cands: pd.DataFrame, last_day: int) -> pd.DataFrame:
    """Each position's P&L to the end (open ones at their last value), with its category and whale."""
    pos = result.positions.copy()
    last = result.holdings[result.holdings["day"] == last_day].set_index("key")["value"]
    open_value = pos["key"].map(last).fillna(0.0)
    pos["pnl"] = pos["proceeds"] + open_value - pos["cost"] - pos["fees"]
    return pos


def contribution_table(bt: BacktestRun, last_day: int) -> pd.DataFrame:
    """``evaluation.attribution_contribution``: per strategy, P&L by category, by whale (top 20 and the rest)
    and the execution costs as their own lines."""
    rows = []
    for s in STRATEGIES:
        pos = position_pnl(bt.runs[s], bt.candidates[s], last_day)
        total = float(pos["pnl"].sum())
        for dim, col in (("category", "category"), ("whale", "wallet")):
            g = pos.groupby(col)["pnl"].sum().sort_values(ascending=False)
            if dim == "whale" and len(g) > 20:
                g = pd.concat([g.iloc[:20], pd.Series({"(other whales)": g.iloc[20:].sum()})])
            rows += [{"strategy": s, "dimension": dim, "item": str(k), "pnl": float(v)} for k, v in g.items()]
        rows += [
            {"strategy": s, "dimension": "execution", "item": k, "pnl": -v}
            for k, v in execution_costs(bt.runs[s], bt.candidates[s]).items()
        ]
        for r in rows:
            if r["strategy"] == s:
                r["share_of_pnl"] = r["pnl"] / total if total != 0 else np.nan
    return pd.DataFrame(rows, columns=["strategy", "dimension", "item", "pnl", "share_of_pnl"])


def brinson_table(bt: BacktestRun, last_day: int, portfolio: str = "full", benchmark: str = "naive_copy"):
    """``evaluation.attribution_brinson``: Brinson-Fachler by category of ``portfolio`` against ``benchmark``.
    Weights are each category's share of the dollars entered; returns are P&L over dollars entered."""

    def side(name: str) -> tuple[pd.Series, pd.Series]:
        pos = position_pnl(bt.runs[name], bt.candidates[name], last_day)
        g = pos.groupby("category").agg(cost=("cost", "sum"), pnl=("pnl", "sum"))
        total = g["cost"].sum()
        return (g["cost"] / total if total > 0 else g["cost"] * 0.0), g["pnl"] / g["cost"].where(
            g["cost"] > 0
        )

    wp, rp = side(portfolio)
    wb, rb = side(benchmark)
    frame = stats.brinson_fachler(wp, wb, rp, rb)
    frame.index.name = "category"
    return frame.reset_index().assign(portfolio=portfolio, benchmark=benchmark)


def regression_table(bt: BacktestRun, benchmark: str = "naive_copy") -> pd.DataFrame:
    """``evaluation.attribution_regression``: each strategy's daily returns on the benchmark's."""
    b = bt.runs[benchmark].nav.set_index("day")["daily_return"]
    rows = []
    for s in STRATEGIES:
        if s == benchmark:
            continue
        r = bt.runs[s].nav.set_index("day")["daily_return"].reindex(b.index)
        ab = stats.alpha_beta(r.to_numpy(dtype=float), b.to_numpy(dtype=float))
        rows.append({"strategy": s, "benchmark": benchmark} | ab._asdict())
    return pd.DataFrame(rows)


VALIDATION_COLUMNS = [
    "check_name",
    "subject",
    "statistic",
    "value",
    "p_value",
    "threshold",
    "passed",
    "detail",
]


def validation_table(
    bt: BacktestRun,
    summary: pd.DataFrame,
    monthly_ic: pd.DataFrame,
    live_nav: pd.DataFrame | None,
    var_confidence: float,
    overfit_ratio: float = 0.5,
    drawdown_multiple: float = 2.0,
) -> pd.DataFrame:
    """``evaluation.validation``: the score IC per fold, Kupiec and Christoffersen on the ``full`` strategy's VaR,
    the overfitting ratio (out-of-sample over in-sample Sharpe) and the drawdown check.

    ``monthly_ic``: ``month`` (first day, as a day number) and ``ic`` of the WQS over all scored wallets.
    ``live_nav``: the paper portfolio's ``day, nav`` (``analytics.paper_nav``), or None."""
    rows = []

    def add(check, subject, statistic, value, p_value=np.nan, threshold=np.nan, passed=None, detail=""):
        rows.append(dict(zip(VALIDATION_COLUMNS, [check, subject, statistic, value, p_value, threshold, passed, detail],
                             strict=True)))  # fmt: skip

    for f in bt.folds.itertuples():
        m = monthly_ic[(monthly_ic["month"] >= f.origin) & (monthly_ic["month"] < f.fold_end)]
        ic = float(m["ic"].mean()) if len(m) else np.nan
        add("score_ic", f"fold {f.fold}", "mean monthly IC of the WQS", ic, threshold=0.0,
            passed=bool(ic > 0) if np.isfinite(ic) else None, detail=f"{len(m)} months")  # fmt: skip

    nav = bt.runs["full"].nav
    r = nav["daily_return"].to_numpy(dtype=float)
    forecast = np.r_[np.nan, nav["var"].to_numpy(dtype=float)[:-1]]  # VaR known at the end of the day before
    ex = stats.var_exceptions(r, forecast)
    hits = ex.exceptions[ex.valid]
    p = 1.0 - var_confidence
    k = stats.kupiec_pof(int(ex.valid.sum()), int(hits.sum()), p)
    add("kupiec_pof", "full", "likelihood ratio", k.lr, k.p_value, 0.05,
        bool(k.p_value >= 0.05) if np.isfinite(k.p_value) else None,
        f"{k.x} exceptions in {k.n} days (expected {k.n * p:.1f})")  # fmt: skip
    c = stats.christoffersen_independence(hits)
    add("christoffersen_independence", "full", "likelihood ratio", c.lr, c.p_value, 0.05,
        bool(c.p_value >= 0.05) if np.isfinite(c.p_value) else None,
        f"transitions 00 {c.n00}, 01 {c.n01}, 10 {c.n10}, 11 {c.n11}")  # fmt: skip

    folds = bt.folds
    for f in folds.itertuples():
        ratio = f.out_of_sample_sharpe / f.in_sample_sharpe if f.in_sample_sharpe > 0 else np.nan
        add("overfitting", f"fold {f.fold}", "out-of-sample / in-sample Sharpe", ratio, threshold=overfit_ratio,
            passed=bool(ratio >= overfit_ratio) if np.isfinite(ratio) else None,
            detail=f"in-sample {f.in_sample_sharpe:.2f} at WQS >= {f.chosen_min_wqs:g}, out-of-sample "
            f"{f.out_of_sample_sharpe:.2f}")  # fmt: skip
    is_mean = float(folds["in_sample_sharpe"].mean())
    oos = float(summary.set_index("strategy").loc["full", "sharpe"])
    ratio = oos / is_mean if is_mean > 0 else np.nan
    add("overfitting", "all folds", "out-of-sample / mean in-sample Sharpe", ratio, threshold=overfit_ratio,
        passed=bool(ratio >= overfit_ratio) if np.isfinite(ratio) else None,
        detail=f"mean in-sample {is_mean:.2f}, out-of-sample {oos:.2f}")  # fmt: skip

    is_dd = [stats.max_drawdown(run.nav["daily_return"].to_numpy(dtype=float))
             for run in bt.in_sample.values() if run is not None and len(run.nav)]  # fmt: skip
    is_dd = float(np.nanmax(is_dd)) if is_dd else np.nan
    oos_dd = float(summary.set_index("strategy").loc["full", "max_drawdown"])
    add("drawdown", "out-of-sample vs in-sample", "max drawdown / in-sample max drawdown",
        oos_dd / is_dd if is_dd > 0 else np.nan, threshold=drawdown_multiple,
        passed=bool(oos_dd <= drawdown_multiple * is_dd) if is_dd > 0 else None,
        detail=f"out-of-sample {oos_dd:.1%}, worst in-sample {is_dd:.1%}")  # fmt: skip
    if live_nav is not None and len(live_nav):
        live = stats.max_drawdown(live_nav.sort_values("day")["nav"].pct_change().fillna(0.0).to_numpy())
        add("drawdown", "paper portfolio vs backtest", "max drawdown / backtest max drawdown",
            live / oos_dd if oos_dd > 0 else np.nan, threshold=drawdown_multiple,
            passed=bool(live <= drawdown_multiple * oos_dd) if oos_dd > 0 else None,
            detail=f"paper portfolio {live:.1%}, backtest {oos_dd:.1%} (the paper portfolio runs over the "
            "whole history, in sample)")  # fmt: skip
    return pd.DataFrame(rows, columns=VALIDATION_COLUMNS)


#: the documented system's promises, each with how it is measured here
TARGETS = [
    ("sharpe_full", "Sharpe ratio of the full strategy", 2.07, "annualised Sharpe of `full`, out of sample"),
    ("sharpe_naive_copy", "Sharpe ratio of naive copying", 0.71, "annualised Sharpe of `naive_copy`"),
    ("max_drawdown_full", "max drawdown of the full strategy", 0.112, "max drawdown of `full`"),
    ("max_drawdown_fixed_size", "max drawdown with fixed sizing", 0.246, "max drawdown of `fixed_size`"),
    ("tail_risk_reduction", "less tail risk than naive copying", 0.60,
     "1 - |5th-percentile daily return of `full`| / |that of `naive_copy`|"),
    ("alpha_from_selection", "share of alpha from whale selection", 0.74,
     "Brinson-Fachler selection / (allocation + selection + interaction), `full` vs `naive_copy`"),
]  # fmt: skip
BASELINES = ("sharpe_naive_copy", "max_drawdown_fixed_size")
#: the strategies each target reads: it is measurable only when each made at least ``min_trades`` trades
TARGET_STRATEGIES = {
    "sharpe_full": ("full",), "sharpe_naive_copy": ("naive_copy",), "max_drawdown_full": ("full",),
    "max_drawdown_fixed_size": ("fixed_size",), "tail_risk_reduction": ("full", "naive_copy"),
    "alpha_from_selection": ("full", "naive_copy"),
}  # fmt: skip
#: ``evaluation.targets.status``: a verdict, or why there is none
STATUSES = ("met", "not met", "reproduced", "not reproduced", "not measurable", "n/a")


def verdict(kind: str, met: bool | None) -> str:
    """A measured target's status: ``met`` / ``not met`` for a promise, ``reproduced`` / ``not reproduced`` for a
    baseline, ``n/a`` when its figure is undefined."""
    if met is None or pd.isna(met):
        return "n/a"
    if kind == "baseline":
        return "reproduced" if met else "not reproduced"
    return "met" if met else "not met"


def unmeasurable(targets: pd.DataFrame) -> dict[str, str]:
    """The targets that are not measurable, by reason: ``{reason: "target, target"}`` (what the summary, the
    report and the dashboard say up front; empty when every target was measured)."""
    if "status" not in targets.columns:
        return {}
    u = targets[targets["status"].astype(str) == "not measurable"]
    return u.groupby(u["reason"].fillna(""), sort=False)["target"].agg(", ".join).to_dict()


def targets_table(
    summary: pd.DataFrame,
    brinson: pd.DataFrame,
    stopped_by: dict[str, str] | None = None,
    min_trades: int = BacktestParams.min_trades,
) -> pd.DataFrame:
    """``evaluation.targets``: the documented figure, what was measured, its bootstrap interval where it has
    one, and whether the target is met (within the interval counts as met for a point target). A target that
    reads a strategy with fewer than ``min_trades`` trades is ``not measurable``, never met, with the reason
    (``stopped_by``: what stopped each strategy's candidates)."""
    s = summary.set_index("strategy")

    def metric(strategy, m):
        return tuple(float(s.loc[strategy, c]) for c in (m, f"{m}_ci_low", f"{m}_ci_high"))

    full_t, naive_t = metric("full", "tail_return_5"), metric("naive_copy", "tail_return_5")
    tail = 1.0 - abs(full_t[0]) / abs(naive_t[0]) if naive_t[0] != 0 else np.nan
    parts = brinson[["allocation", "selection", "interaction"]].sum()
    active = float(parts.sum())
    measured = {
        "sharpe_full": metric("full", "sharpe"),
        "sharpe_naive_copy": metric("naive_copy", "sharpe"),
        "max_drawdown_full": metric("full", "max_drawdown"),
        "max_drawdown_fixed_size": metric("fixed_size", "max_drawdown"),
        "tail_risk_reduction": (tail, np.nan, np.nan),
        "alpha_from_selection": (
            float(parts["selection"]) / active if active != 0 else np.nan,
            np.nan,
            np.nan,
        ),
    }
    rows = []
    for key, name, documented, definition in TARGETS:
        value, lo, hi = measured[key]
        if key in BASELINES:  # a figure about a baseline is reproduced when the interval holds it
            kind, met = (
                "baseline",
                bool(lo <= documented <= hi) if np.isfinite(lo) and np.isfinite(hi) else None,
            )
        elif key.startswith("max_drawdown"):
            kind, met = "promise", bool(value <= documented) if np.isfinite(value) else None
        else:
            kind, met = "promise", bool(value >= documented) if np.isfinite(value) else None
        if key == "alpha_from_selection" and np.isfinite(active) and active <= 0:
            # a share of a shortfall is not a share of alpha: there is none to attribute
            met = False
            definition += f"; the active return is {active:+.1%}, so there is no alpha to attribute"
        few = [
            (k, int(s.loc[k, "trades"]))
            for k in TARGET_STRATEGIES[key]
            if int(s.loc[k, "trades"]) < min_trades
        ]
        reason = None
        if few:  # a drawdown of 0% over no trade is not a promise kept
            met, status = None, "not measurable"
            reason = "; ".join(
                f"`{k}` made {n:,} trade{'s' if n != 1 else ''} (a target needs {min_trades}): "
                + (stopped_by or {}).get(k, "no reason recorded")
                for k, n in few
            )
        else:
            status = verdict(kind, met)
        rows.append({"target": key, "description": name, "kind": kind, "documented": documented,
                     "measured": value, "ci_low": lo, "ci_high": hi, "met": met, "status": status,
                     "reason": reason, "definition": definition})  # fmt: skip
    return pd.DataFrame(rows)
