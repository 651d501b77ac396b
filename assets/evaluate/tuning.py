"""Tune the scoring constants on one simulated seed (the report uses another): a small grid over the constants
that change the WQS ranking, judged by the month-clustered mean IC of the WQS over every scored wallet.

``whalecopy tune-score --seed 11`` builds (or reuses) a warehouse for the tuning seed, then scores the whole
history once per grid point in memory; nothing is written to ``analytics``.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import duckdb
import pandas as pd

from assets.score import model as score
from assets.score.inputs import load_score_inputs

from . import model
from .assets import forward_returns

#: the grid: constants of the WQS that are this project's choice (the issue fixes the weights and penalties)
GRID: dict[str, tuple] = {
    "consistency_scale": (2.5, 5.0, 10.0),
    "min_return_days": (30, 60, 90),
}


def tune(
    con: duckdb.DuckDBPyConnection,
    every_days: int = 7,
    horizon_days: int = 30,
    min_forward_days: int = 20,
    grid: dict[str, tuple] = GRID,
    progress=print,
) -> pd.DataFrame:
    """One row per grid point: its constants and the WQS's mean IC, t-statistic, months and wallets."""
    inputs = load_score_inputs(con)
    dates = score.as_of_dates(inputs.first_day, inputs.last_day, every_days)
    rows = []
    names = list(grid)
    for values in itertools.product(*(grid[n] for n in names)):
        params = replace(score.ScoreParams(), **dict(zip(names, values, strict=True)))
        history = score.score_history(inputs.daily_returns, inputs.activity, inputs.positions, dates, params)
        con.register("_candidate", history)
        try:
            frame = forward_returns(con, horizon_days, min_forward_days, scores="_candidate")
        finally:
            con.unregister("_candidate")
        ic = model.information_coefficients(frame, ["wqs"], "fwd_return")
        s = model.summarise_ic(ic).iloc[0]
        row = dict(zip(names, values, strict=True)) | {
            "mean_ic": s["mean_ic"], "t_stat": s["t_stat"], "n_months": s["n_months"], "mean_wallets": s["mean_wallets"],
        }  # fmt: skip
        progress(
            "  "
            + "  ".join(f"{k}={v}" for k, v in row.items() if k in names)
            + f"  mean IC {s['mean_ic']:+.4f}"
        )
        rows.append(row)
    return pd.DataFrame(rows).sort_values("mean_ic", ascending=False, ignore_index=True)
