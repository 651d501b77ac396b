"""Risk assets. ``analytics.whale_quarantine``: the three-strikes rule run over the stored score history, carried
on from the rule's state after the last date it holds (``analytics.whale_quarantine_state``), so a run reads only
the score dates it has not seen."""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from assets.score.assets import WHALE_SCORES
from assets.strategy import StrategyConfig
from assets.warehouse import (
    Transaction,
    append_frame,
    create_table_sql,
    epoch_datetimes,
    replace_table,
    table_exists,
)

from . import model

WHALE_QUARANTINE = dg.AssetKey(["analytics", "whale_quarantine"])
WHALE_QUARANTINE_COLUMNS = {
    "as_of": "DATE NOT NULL",
    "wallet": "VARCHAR NOT NULL",
    "strike": "BOOLEAN NOT NULL",
    "strikes": "INTEGER NOT NULL",
    "quarantined": "BOOLEAN NOT NULL",
    "released_on": "DATE",
    "computed_at": "TIMESTAMPTZ NOT NULL",  # when the run that wrote the row ran (its gate reads the rows after)
}


STATE = "analytics.whale_quarantine_state"
STATE_COLUMNS = {"wallet": "VARCHAR NOT NULL", "until_day": "DOUBLE NOT NULL", "recent": "DOUBLE[] NOT NULL"}
STATE_META = "analytics.whale_quarantine_state_meta"
STATE_META_COLUMNS = {
    "through": "DATE NOT NULL",  # the last as-of date the state holds
    "params": "VARCHAR NOT NULL",  # the rule's parameters, as JSON
    "score_rows": "BIGINT NOT NULL",  # analytics.whale_scores' rows up to it, and their latest scored_at
    "scored_through": "TIMESTAMPTZ",
}


def rule_params(strategy: StrategyConfig) -> dict:
    """The parameters of the strikes and the quarantine: a stored state carries on only under the same ones."""
    return {k: getattr(strategy, k) for k in ("strike_min_sharpe", "strike_max_drawdown", "strike_min_consistency",
                                              "strikes_to_quarantine", "strike_window_days", "quarantine_days")}  # fmt: skip


def _score_marker(con, through) -> tuple:
    """The count and latest ``scored_at`` of the score rows up to ``through``: what the state was computed from."""
    sql = "SELECT count(*), max(scored_at) FROM analytics.whale_scores WHERE as_of <= ?"
    return tuple(con.execute(sql, [through]).fetchall()[0])


def stored_carry(con, params: dict) -> tuple[object, pd.Index, model.QuarantineCarry] | str:
    """(the last date, its wallets, the rule's state after it) when the stored state can be carried on, else why
    not: there is none, the parameters differ, the table no longer ends at it, or the score rows up to it changed
    (a rebuilt history: their count or latest ``scored_at`` differs)."""
    if not all(table_exists(con, t) for t in (STATE, STATE_META, "analytics.whale_quarantine")):
        return "no stored state"
    meta = con.execute(f"SELECT through, params, score_rows, scored_through FROM {STATE_META}").fetchall()
    if len(meta) != 1:
        return "no stored state"
    through, stored_params, rows, scored = meta[0]
    if json.loads(stored_params) != params:
        return "the rule's parameters changed"
    (end,) = con.execute("SELECT max(as_of) FROM analytics.whale_quarantine").fetchall()[0]
    if end != through:
        return f"analytics.whale_quarantine ends at {end}, its state at {through}"
    if _score_marker(con, through) != (rows, scored):
        return f"the score history up to {through} changed"
    t = con.sql(f"SELECT * FROM {STATE}").arrow().read_all()
    n, k = t.num_rows, int(params["strikes_to_quarantine"])
    recent = t.column("recent").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(n, k)
    return (
        through,
        pd.Index(t.column("wallet").to_pylist()),
        model.QuarantineCarry(recent, t.column("until_day").to_numpy()),
    )


@dg.asset(
    key=WHALE_QUARANTINE,
    deps=[WHALE_SCORES],
    group_name="risk",
    kinds={"duckdb", "python"},
    description="Whale quarantine per (as_of, wallet): a strike for Sharpe < 0.5, current drawdown > 30% or "
    "consistency < 5; three strikes within 90 days quarantine the whale for 30 days (docs/metrics.md). Carried on "
    "from the rule's state after the last date held: a run reads the new score dates only.",
)
def whale_quarantine(context: dg.AssetExecutionContext, strategy: StrategyConfig, warehouse: DuckDBResource):
    params = rule_params(strategy)
    with warehouse.get_connection() as con:
        carried = stored_carry(con, params)
        full = isinstance(carried, str)
        plan = f"full: {carried}" if full else f"carried on from {carried[0]}"
        context.log.info(f"whale_quarantine: {plan}")
        since = "" if full else f"WHERE as_of > DATE '{carried[0].isoformat()}'"
        scores = con.sql(
            "SELECT as_of, wallet, sharpe, -current_drawdown AS drawdown, consistency "
            f"FROM analytics.whale_scores {since}"
        ).df()
        # the rule runs for every wallet the history holds (a wallet absent from a date still has its state)
        wallets = pd.Index(sorted(set(scores["wallet"]) | (set() if full else set(carried[1]))), dtype=object)
        wide = {
            c: scores.pivot(index="wallet", columns="as_of", values=c).reindex(wallets)
            for c in ("sharpe", "drawdown", "consistency")
        }
        # every (as_of, wallet) the history holds, scored or not
        present = (
            scores.assign(row=1.0)
            .pivot(index="wallet", columns="as_of", values="row")
            .reindex(wallets)
            .notna()
        )
        dates = pd.to_datetime(wide["sharpe"].columns)
        day_numbers = ((dates - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)).to_numpy()
        strike = model.strikes(
            wide["sharpe"].to_numpy(dtype=float), wide["drawdown"].to_numpy(dtype=float),
            wide["consistency"].to_numpy(dtype=float), strategy.strike_min_sharpe, strategy.strike_max_drawdown,
            strategy.strike_min_consistency,
        )  # fmt: skip
        carry = None
        if not full:
            at = carried[1].get_indexer(wallets)
            empty = model.QuarantineCarry.empty(len(wallets), strategy.strikes_to_quarantine)
            held = at >= 0
            empty.recent[held], empty.until[held] = carried[2].recent[at[held]], carried[2].until[at[held]]
            carry = empty
        state = model.quarantine(
            strike,
            day_numbers,
            strategy.strikes_to_quarantine,
            strategy.strike_window_days,
            strategy.quarantine_days,
            carry=carry,
        )
        rows, cols = np.nonzero(present.to_numpy())
        released = state.released_day[rows, cols]
        out = pd.DataFrame(
            {
                "as_of": dates[cols].date,
                "wallet": wallets.to_numpy()[rows],
                "strike": state.strike[rows, cols],
                "strikes": state.strikes[rows, cols],
                "quarantined": state.quarantined[rows, cols],
                "released_on": pd.DatetimeIndex(epoch_datetimes(released, "D")).date,
            }
        )
        out.loc[~out["quarantined"], "released_on"] = None
        out["computed_at"] = pd.Timestamp.now(tz="UTC")
        through = dates.max().date() if len(dates) else (None if full else carried[0])
        with Transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
            if full:
                replace_table(
                    con, "analytics.whale_quarantine", WHALE_QUARANTINE_COLUMNS, out, key="as_of, wallet"
                )
            elif len(out):
                append_frame(con, "analytics.whale_quarantine", out)
            n = len(wallets)
            recent = pa.array(state.carry.recent.ravel(), pa.float64())
            offsets = pa.array(np.arange(n + 1) * strategy.strikes_to_quarantine, pa.int32())
            con.execute(f"DROP TABLE IF EXISTS {STATE}")
            con.execute(create_table_sql(STATE, STATE_COLUMNS, key="wallet"))
            append_frame(con, STATE, pa.table({
                "wallet": pa.array(list(wallets), pa.string()),
                "until_day": pa.array(state.carry.until, pa.float64()),
                "recent": pa.ListArray.from_arrays(offsets, recent),
            }))  # fmt: skip
            con.execute(f"DROP TABLE IF EXISTS {STATE_META}")
            con.execute(create_table_sql(STATE_META, STATE_META_COLUMNS))
            if through is not None:
                con.execute(f"INSERT INTO {STATE_META} VALUES (?, ?, ?, ?)",
                            [through, json.dumps(params, sort_keys=True), *_score_marker(con, through)])  # fmt: skip
        (total,) = con.execute("SELECT count(*) FROM analytics.whale_quarantine").fetchall()[0]
        latest = out[out["as_of"] == out["as_of"].max()] if len(out) else out
    n_q = int(latest["quarantined"].sum()) if len(latest) else 0
    context.log.info(f"whale_quarantine: {n_q} of {len(latest)} wallets quarantined at the latest date")
    return dg.MaterializeResult(
        metadata={
            "rows": int(total),
            "rows_written": len(out),
            "plan": plan,
            "quarantined_at_latest": n_q,
            "wallets_at_latest": len(latest),
        }  # fmt: skip
    )
