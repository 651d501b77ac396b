"""Risk assets. ``analytics.whale_quarantine``: the three-strikes rule run over the stored score history."""

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from assets.score.assets import WHALE_SCORES
from assets.strategy import StrategyConfig
from assets.warehouse import Transaction, epoch_datetimes, replace_table

from . import model

WHALE_QUARANTINE = dg.AssetKey(["analytics", "whale_quarantine"])
WHALE_QUARANTINE_COLUMNS = {
    "as_of": "DATE NOT NULL",
    "wallet": "VARCHAR NOT NULL",
    "strike": "BOOLEAN NOT NULL",
    "strikes": "INTEGER NOT NULL",
    "quarantined": "BOOLEAN NOT NULL",
    "released_on": "DATE",
}


@dg.asset(
    key=WHALE_QUARANTINE,
    deps=[WHALE_SCORES],
    group_name="risk",
    kinds={"duckdb", "python"},
    description="Whale quarantine per (as_of, wallet): a strike for Sharpe < 0.5, current drawdown > 30% or "
    "consistency < 5; three strikes within 90 days quarantine the whale for 30 days (docs/metrics.md).",
)
def whale_quarantine(context: dg.AssetExecutionContext, strategy: StrategyConfig, warehouse: DuckDBResource):
    with warehouse.get_connection() as con:
        scores = con.sql(
            "SELECT as_of, wallet, sharpe, -current_drawdown AS drawdown, consistency FROM analytics.whale_scores"
        ).df()
        wide = {
            c: scores.pivot(index="wallet", columns="as_of", values=c)
            for c in ("sharpe", "drawdown", "consistency")
        }
        # every (as_of, wallet) the history holds, scored or not
        present = scores.assign(row=1.0).pivot(index="wallet", columns="as_of", values="row").notna()
        dates = pd.to_datetime(wide["sharpe"].columns)
        day_numbers = ((dates - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)).to_numpy()
        strike = model.strikes(
            wide["sharpe"].to_numpy(dtype=float), wide["drawdown"].to_numpy(dtype=float),
            wide["consistency"].to_numpy(dtype=float), strategy.strike_min_sharpe, strategy.strike_max_drawdown,
            strategy.strike_min_consistency,
        )  # fmt: skip
        state = model.quarantine(
            strike,
            day_numbers,
            strategy.strikes_to_quarantine,
            strategy.strike_window_days,
            strategy.quarantine_days,
        )
        rows, cols = np.nonzero(present.to_numpy())
        released = state.released_day[rows, cols]
        out = pd.DataFrame(
            {
                "as_of": dates[cols].date,
                "wallet": wide["sharpe"].index.to_numpy()[rows],
                "strike": state.strike[rows, cols],
                "strikes": state.strikes[rows, cols],
                "quarantined": state.quarantined[rows, cols],
                "released_on": pd.DatetimeIndex(epoch_datetimes(released, "D")).date,
            }
        )
        out.loc[~out["quarantined"], "released_on"] = None
        with Transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
            replace_table(
                con, "analytics.whale_quarantine", WHALE_QUARANTINE_COLUMNS, out, key="as_of, wallet"
            )
        latest = out[out["as_of"] == out["as_of"].max()] if len(out) else out
    n_q = int(latest["quarantined"].sum()) if len(latest) else 0
    context.log.info(f"whale_quarantine: {n_q} of {len(latest)} wallets quarantined at the latest date")
    return dg.MaterializeResult(
        metadata={"rows": len(out), "quarantined_at_latest": n_q, "wallets_at_latest": len(latest)}
    )
