"""Synthetic evaluation frames for the report tests (unit and browser): small, seeded, every key filled."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

STRATEGIES = ("naive_copy", "fixed_size", "full", "random_whales", "reverse")
CONTROLS = ("random_whales", "reverse")
METRICS = ("cagr", "sharpe", "sortino", "max_drawdown", "calmar", "tail_return_5")
#: every plot the full synthetic report draws, in page order
PLOTS = (
    "equity",
    "drawdown",
    "var",
    "funnel",
    "ic_by_month",
    "wqs_distribution",
    "attribution",
    "contribution",
)
REAL_PLOTS = ("real_wqs_distribution", "real_pnl")


def build_data(
    seed: int = 7, strategies: tuple[str, ...] = STRATEGIES, days: int = 120
) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    start = date(2024, 1, 1)
    day_list = [start + timedelta(days=i) for i in range(days)]

    daily_rows, summary_rows = [], []
    for k, s in enumerate(strategies):
        r = rng.normal(0.0005 * (k - 1), 0.01, size=days)
        nav = 10_000 * np.cumprod(1 + r)
        peak = np.maximum.accumulate(nav)
        var = np.full(days, -0.016) + rng.normal(0, 0.001, size=days)
        for i, d in enumerate(day_list):
            daily_rows.append({"strategy": s, "day": d, "nav": nav[i], "daily_return": r[i],
                               "drawdown": 1 - nav[i] / peak[i], "exposure_share": rng.uniform(0, 0.5),
                               "var": var[i], "open_positions": int(rng.integers(0, 20))})  # fmt: skip
        row = {"strategy": s, "is_control": s in CONTROLS}
        for m in METRICS:
            v = float(rng.normal(0.1, 0.05))
            row |= {m: v, f"{m}_ci_low": v - 0.05, f"{m}_ci_high": v + 0.05}
        row |= {"hit_rate": 0.55, "turnover": 3.2, "trades": int(rng.integers(100, 1000)), "final_nav": nav[-1],
                "days": days, "n_markets": 42, "deflated_sharpe": 0.91, "dsr_sr0_daily": 0.021, "n_trials": 3}  # fmt: skip
        summary_rows.append(row)
    summary = pd.DataFrame(summary_rows)
    summary.loc[0, "calmar"] = np.nan  # a missing value the page must print as "–"

    targets = pd.DataFrame(
        [
            ("sharpe_full", "Sharpe ratio of the full strategy", "promise", 2.07, 1.234, 0.5, 1.9, False, "Sharpe"),
            ("max_drawdown_full", "max drawdown of the full strategy", "promise", 0.112, 0.0876, 0.05, 0.15, True,
             "max drawdown of `full`"),
            ("tail_risk_reduction", "less tail risk than naive copying", "promise", 0.60, 0.4321, np.nan, np.nan,
             None, "1 - |q5 full| / |q5 naive|"),
            ("alpha_from_selection", "share of alpha from whale selection", "promise", 0.74, np.nan, np.nan,
             np.nan, None, "selection / active"),
        ],
        columns=["target", "description", "kind", "documented", "measured", "ci_low", "ci_high", "met",
                 "definition"],
    )  # fmt: skip

    funnel = pd.DataFrame(
        {
            "stage": ["offered", "stage 1: WQS", "stage 2: market", "stage 3: book"],
            "entered": [770_000, 120_000, 9_000, 700],
            "passed": [120_000, 9_000, 700, 310],
        }
    )
    funnel["rate"] = funnel["passed"] / funnel["entered"]

    months = [date(2023, m, 1) for m in range(1, 13)]
    ic_rows = []
    for u, p in (("all", "wqs"), ("active", "wqs"), ("all", "bayesian_win_rate"), ("active", "pnl")):
        ic_rows += [
            {"universe": u, "predictor": p, "month": m, "ic": float(rng.normal(0.05, 0.04))} for m in months
        ]
    ic_monthly = pd.DataFrame(ic_rows)

    wqs = pd.DataFrame({"wqs": np.clip(rng.normal(55, 15, size=400), 0, 100), "as_of": date(2024, 4, 1)})

    cats = ["politics", "sports", "crypto"]
    wp, wb = rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(3))
    rp, rb = rng.normal(0.02, 0.03, 3), rng.normal(0.01, 0.03, 3)
    brinson = pd.DataFrame({"portfolio": "full", "benchmark": "naive_copy", "category": cats, "wp": wp, "wb": wb,
                            "rp": rp, "rb": rb})  # fmt: skip
    brinson["allocation"] = (brinson["wp"] - brinson["wb"]) * (brinson["rb"] - (wb * rb).sum())
    brinson["selection"] = brinson["wb"] * (brinson["rp"] - brinson["rb"])
    brinson["interaction"] = (brinson["wp"] - brinson["wb"]) * (brinson["rp"] - brinson["rb"])
    brinson["total"] = brinson[["allocation", "selection", "interaction"]].sum(axis=1)

    contrib = []
    for s in strategies:
        contrib += [{"strategy": s, "dimension": "category", "item": c, "pnl": float(rng.normal(300, 400))}
                    for c in cats]  # fmt: skip
        contrib += [{"strategy": s, "dimension": "whale", "item": f"0xwhale{i:02d}", "pnl": float(rng.normal(50, 200))}
                    for i in range(14)]  # fmt: skip
        contrib += [{"strategy": s, "dimension": "execution", "item": item, "pnl": -float(rng.uniform(10, 150))}
                    for item in ("fees", "slippage", "latency")]  # fmt: skip
    contribution = pd.DataFrame(contrib)
    contribution["share_of_pnl"] = contribution["pnl"] / 1000.0

    regression = pd.DataFrame(
        [{"strategy": s, "benchmark": "naive_copy", "alpha": 0.0004, "beta": 0.8, "r_squared": 0.4,
          "alpha_annualised": 0.15, "alpha_t": 2.1, "n": days} for s in strategies]
    )  # fmt: skip
    validation = pd.DataFrame(
        [
            ("var_kupiec", "full", "LR_pof", 1.23, 0.27, 0.05, True, "6 exceptions in 119 days"),
            ("var_christoffersen", "full", "LR_ind", 4.5, 0.0004, 0.05, False, "clustered"),
            ("overfitting", "full", "oos / is Sharpe", np.nan, np.nan, 0.5, None, None),
        ],
        columns=["check_name", "subject", "statistic", "value", "p_value", "threshold", "passed", "detail"],
    )
    folds = pd.DataFrame(
        [{"fold": k, "train_start": date(2023, 7, 1) + timedelta(days=40 * k), "origin": date(2024, 1, 1)
          + timedelta(days=40 * k), "fold_end": date(2024, 2, 10) + timedelta(days=40 * k), "whales": 20,
          "random_wallets": 20, "chosen_min_wqs": 75.0, "in_sample_sharpe": 1.5, "out_of_sample_sharpe": 0.9}
         for k in range(3)]
    )  # fmt: skip
    folds["fold_end"] = folds["fold_end"].astype(object)
    folds.loc[2, "fold_end"] = None  # a fold still running
    return {
        "targets": targets,
        "summary": summary,
        "daily": pd.DataFrame(daily_rows),
        "funnel": funnel,
        "ic_monthly": ic_monthly,
        "wqs": wqs,
        "brinson": brinson,
        "contribution": contribution,
        "regression": regression,
        "validation": validation,
        "folds": folds,
    }


def build_meta() -> dict[str, str]:
    return {
        "warehouse": "/tmp/warehouse.duckdb",
        "generated_at": "2024-05-01T12:00:00+00:00",
        "source": "simulated Polymarket (seed 7)",
        "period": "2024-01-01 to 2024-04-29",
    }


def build_real(seed: int = 3, wallet_name: str = "0xabc") -> dict:
    rng = np.random.default_rng(seed)
    days = [date(2022, 10, 1) + timedelta(days=i) for i in range(40)]
    pnl = pd.concat(
        [
            pd.DataFrame({"day": days, "series": "all wallets", "value": np.cumsum(rng.normal(0, 100, 40))}),
            pd.DataFrame({"day": days, "series": "WQS >= 75", "value": np.cumsum(rng.normal(20, 50, 40))}),
        ]
    )
    wallets = pd.DataFrame(
        {
            "wallet": [wallet_name] + [f"0x{i:040x}" for i in range(1, 20)],
            "wqs": rng.uniform(0, 100, 20),
            "trades": rng.integers(1, 500, 20),
            "realised_pnl": rng.normal(0, 1000, 20),
        }
    )
    return {
        "name": "US midterms 2022",
        "facts": {"trades": 123_456, "wallets": 20, "markets": "37"},
        "note": "Real trades of one event only: the scores are not evidence of persistent edge.",
        "wallets": wallets,
        "wqs": pd.DataFrame({"wqs": rng.uniform(0, 100, 200)}),
        "pnl": pnl,
    }
