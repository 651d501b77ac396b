"""The warehouse reads behind the scores: three long frames for :func:`assets.score.model.score_history`.

Each query reads only the marts and aggregates in DuckDB; the frames are small (a row per wallet-day or per
resolved position) and come out through Arrow. Nothing here filters by date: the point-in-time cut is the
model's (rows carry their day or their timestamps).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from assets.warehouse import exact_sum

from .model import PRICE_UNITS, VARIANCE_UNITS

#: a wallet-day's return and net P&L (causal rows: docs/metrics.md#daily-returns)
DAILY_RETURNS_SQL = """
SELECT wallet, day, daily_return, pnl_net
FROM marts.wallet_daily_returns
"""


def activity_sql(since: bool = False) -> str:
    """A wallet-day's traded notional, and the day's increase of sum over markets of (cumulative notional)^2:
    with c the market's cumulative notional after the day and v the day's notional, c^2 - (c - v)^2 = v (2c - v).

    With ``since``, only the days from the parameter ``$since`` (a day number, days since 1970-01-01) on: the
    cumulative sums then read the whole history of just the (wallet, market) pairs with a fill on those days.
    Every sum is exact (``exact_sum``), so a day's row has the same bits either way."""
    touched = (
        """JOIN (SELECT DISTINCT wallet, condition_id FROM marts.fct_fills
                  WHERE epoch(traded_at) >= $since * 86400) USING (wallet, condition_id)"""
        if since
        else ""
    )
    return f"""
WITH by_day AS (
    SELECT wallet, condition_id, CAST(floor(epoch(traded_at) / 86400) AS INTEGER) AS d,
           {exact_sum("notional")} AS v
    FROM marts.fct_fills {touched}
    GROUP BY ALL
), cumulative AS (
    SELECT *, {exact_sum("v", "PARTITION BY wallet, condition_id ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW")}
              AS c
    FROM by_day
)
SELECT wallet, CAST(DATE '1970-01-01' + d AS DATE) AS day, {exact_sum("v")} AS volume,
       {exact_sum("v * (2 * c - v)")} AS volume_sq
FROM cumulative
{"WHERE d >= $since" if since else ""}
GROUP BY wallet, d
"""


ACTIVITY_SQL = activity_sql()

#: resolved positions: when they resolved, when (if ever) they were first oversold, the outcome and price paid
POSITIONS_SQL = """
SELECT
    p.wallet,
    m.category,
    epoch(p.resolved_at) AS resolved_ts,
    epoch(p.oversold_at) AS cut_ts,
    CASE WHEN p.won THEN 1.0 ELSE 0.0 END AS won,
    p.payout,
    CASE WHEN p.shares_bought > 1e-9 THEN p.cost / p.shares_bought END AS price_paid
FROM marts.fct_positions p
LEFT JOIN marts.dim_markets m USING (condition_id)
WHERE p.is_resolved
"""


def position_spans_sql(dates: str, codes: str) -> str:
    """The resolved positions as :func:`assets.score.model.position_spans` sees them, grouped per (wallet code,
    category, start, end) and summed (the sums are whole numbers, so the metrics have the same bits): at a single
    as-of date a row per wallet and category, not one per position. ``dates``: a table ``(d)`` of the as-of dates
    as epoch days; ``codes``: a table ``(wallet, code)``.

    ``start`` is the number of as-of dates at or before the resolution, ``end`` that at or before the first
    oversold fill (all of them without one). A date ``D`` (its midnight ``86400 D``) is at or before a time ``x``
    exactly when ``D`` is at most ``x``'s day ``floor(x / 86400)``, so each time's day is looked up in a table of
    the counts for the days from the first date to the last: an equi-join on a small table, where an ASOF join
    per timestamp was several times slower. The day is exact: an ``x`` below a midnight is at least one of its own
    ulps below it, so ``x / 86400`` is at least 65536 / 86400 of the quotient's ulp below the whole number, more
    than the half ulp that rounding can move it (the test puts times a microsecond before midnight)."""

    def day(x: str) -> str:
        return f"CAST(floor({x} / 86400) AS BIGINT)"

    def count(x: str, lookup: str) -> str:  # as-of dates at or before the time x (all of them when x is NULL)
        return f"""CASE WHEN {x} IS NULL OR {x}_day >= b.hi THEN b.n WHEN {x}_day < b.lo THEN 0
                        ELSE {lookup}.k END"""

    ok = "coalesce(isfinite(price_paid) AND isfinite(payout) AND price_paid > 0 AND price_paid < 1, false)"
    return f"""
WITH b AS (SELECT min(d) AS lo, max(d) AS hi, count(*) AS n FROM {dates}),
lookup AS (
    SELECT r.d, (SELECT count(*) FROM {dates} x WHERE x.d <= r.d) AS k
    FROM range((SELECT lo FROM b), (SELECT hi FROM b) + 1) r(d)
),
p AS (
    SELECT c.code, coalesce(p.category, 'Unknown') AS category, p.resolved_ts, p.cut_ts, p.won, p.payout,
           p.price_paid, {day("p.resolved_ts")} AS resolved_ts_day, {day("p.cut_ts")} AS cut_ts_day
    FROM ({POSITIONS_SQL}) p
    JOIN {codes} c USING (wallet)
),
spans AS (
    SELECT p.code, p.category, {count("p.resolved_ts", "s")} AS start, {count("p.cut_ts", "e")} AS "end",
           p.won, p.payout, p.price_paid, {ok} AS ok
    FROM p
    CROSS JOIN b
    LEFT JOIN lookup s ON s.d = p.resolved_ts_day
    LEFT JOIN lookup e ON e.d = p.cut_ts_day
)
SELECT code, category, CAST(start AS BIGINT) AS start, CAST("end" AS BIGINT) AS "end",
       CAST(count(*) AS DOUBLE) AS n, CAST(sum(won) AS DOUBLE) AS won,
       CAST(count(*) FILTER (WHERE ok) AS DOUBLE) AS n_edge,
       coalesce(sum(payout) FILTER (WHERE ok), 0.0) AS payout,
       coalesce(sum(round_even(price_paid * CAST({PRICE_UNITS!r} AS DOUBLE), 0)) FILTER (WHERE ok), 0.0)
           AS price_units,
       coalesce(sum(round_even(price_paid * (1 - price_paid) * CAST({VARIANCE_UNITS!r} AS DOUBLE), 0))
                FILTER (WHERE ok), 0.0) AS variance_units
FROM spans
GROUP BY ALL
ORDER BY code
"""


@dataclass(frozen=True)
class ScoreInputs:
    daily_returns: pd.DataFrame
    activity: pd.DataFrame
    positions: pd.DataFrame

    @property
    def last_day(self) -> date | None:
        """The last day the scores can see whole: the last day with a return row (the marts' spine runs every
        wallet to it), but no later than the last day with fills. The spine can run past the fills (a market known
        to resolve after the last ingested day books its P&L on that later day); scores as of such a day would read
        its resolutions without its trades, and the history keeps what it scores, so it waits for the fills."""
        if self.daily_returns.empty:
            return None
        last = pd.Timestamp(self.daily_returns["day"].max()).date()
        if not self.activity.empty:
            last = min(last, pd.Timestamp(self.activity["day"].max()).date())
        return last

    @property
    def first_day(self) -> date | None:
        if self.daily_returns.empty:
            return None
        return pd.Timestamp(self.daily_returns["day"].min()).date()


def load_score_inputs(con: duckdb.DuckDBPyConnection) -> ScoreInputs:
    """Read the three frames from the marts."""
    return ScoreInputs(
        daily_returns=con.sql(DAILY_RETURNS_SQL).arrow().read_all().to_pandas(),
        activity=con.sql(ACTIVITY_SQL).arrow().read_all().to_pandas(),
        positions=con.sql(POSITIONS_SQL).arrow().read_all().to_pandas(),
    )
