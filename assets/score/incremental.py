"""Scoring in increments and in wallet buckets: the warehouse side of ``model.py``'s section 9.

A run scores the as-of dates the history does not hold yet. It reads the marts only for the days after the
carried state (``analytics.whale_score_state``) and only a bucket of wallets at a time, so its time follows the
new days and its memory the bucket, not the whole history:

1. the plan (:func:`assets.score.model.score_plan`): carry the stored state on, or score from an empty one;
2. the benchmark of the days read, summed bucket after bucket in wallet order (the same bits as one matrix);
3. in one transaction with step 4, per bucket: :func:`~assets.score.model.advance_scores` from the bucket's stored
   state, the position metrics (the category base rates come from every wallet's positions), the rows, and the
   state after the run, appended in wallet order to ``analytics.whale_score_state_next``;
4. the rows go into ``analytics.whale_scores``, ranked over every bucket in SQL, the next state is renamed to the
   state and its digest replaces the stored one. A run that stops leaves nothing of its own.

The rows are the same, to the bit, as :func:`~assets.score.model.score_history` over the whole history in one
call (``tests/assets/test_incremental_scores.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from assets.warehouse import Transaction, append_frame, create_table_sql, table_columns

from . import model
from .inputs import DAILY_RETURNS_SQL, activity_sql, position_spans_sql

_FLOAT = "DOUBLE"
WHALE_SCORES_COLUMNS: dict[str, str] = {
    "as_of": "DATE NOT NULL",
    "wallet": "VARCHAR NOT NULL",
    "rank": "INTEGER",
    "wqs": _FLOAT,
    "tier": "VARCHAR",
    "reason": "VARCHAR",
    "n_return_days": "INTEGER NOT NULL",
    **{
        c: _FLOAT
        for c in ("sharpe", "information_ratio", "max_drawdown", "current_drawdown", "calmar", "consistency")
    },
    "regime": "VARCHAR",
    **{f"rolling_sharpe_{w}": _FLOAT for w in model.ROLLING_WINDOWS},
    "volume": _FLOAT,
    "market_hhi": _FLOAT,
    "pnl_net_to_date": _FLOAT,
    "n_resolved_positions": "INTEGER NOT NULL",
    "wins": "INTEGER NOT NULL",
    **{
        c: _FLOAT
        for c in ("raw_win_rate", "win_rate_prior", "win_rate_mean", "win_rate_lower", "win_rate_upper")
    },
    "win_rate_confidence": "VARCHAR",
    "n_edge_positions": "INTEGER NOT NULL",
    **{c: _FLOAT for c in ("edge_raw", "edge_mean", "edge_lower", "edge_upper")},
    "scored_at": "TIMESTAMPTZ NOT NULL",
}
assert list(WHALE_SCORES_COLUMNS)[:-1] == model.HISTORY_COLUMNS

STATE_TABLE = "analytics.whale_score_state"
#: the state a run writes, bucket after bucket, inside its one transaction, renamed to STATE_TABLE when it commits (a
#: run that stops rolls it back with the rest)
NEXT_STATE_TABLE = "analytics.whale_score_state_next"
STATE_META_TABLE = "analytics.whale_score_state_meta"
STATE_COLUMNS: dict[str, str] = {
    "wallet": "VARCHAR NOT NULL",
    **{k: "DOUBLE" for k in model.STATE_FIELDS},
    **{k: f"DOUBLE[{model.STATE_WINDOW}]" for k in model.WINDOW_FIELDS},
}
STATE_META_COLUMNS: dict[str, str] = {
    "grid_start": "DATE NOT NULL",  # day 0 of the day grid
    "state_end": "INTEGER NOT NULL",  # the state holds days 0 .. state_end - 1
    "state_through": "DATE NOT NULL",  # the last day it holds: grid_start + state_end - 1
    "return_rows": "BIGINT NOT NULL",  # the digest: marts.wallet_daily_returns' rows before the end
    "return_hash": "UBIGINT NOT NULL",
    "fill_rows": "BIGINT NOT NULL",  # and marts.fct_fills' rows before it
    "fill_hash": "UBIGINT NOT NULL",
    "wallets": "BIGINT NOT NULL",
    "scored_at": "TIMESTAMPTZ NOT NULL",  # when the run that saved it scored
}
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Grid:
    """The days the marts hold: ``first_day``, the first with a return (the as-of grid starts after it);
    ``last_day``, the last the scores see whole (:attr:`assets.score.inputs.ScoreInputs.last_day`); ``d0``, day 0
    of the day grid (the first with a return or a fill). All None on empty marts."""

    first_day: date | None
    last_day: date | None
    d0: date | None

    def end(self, as_of: date) -> int:
        """The day-grid end of an as-of date: it reads days ``0 .. end - 1``."""
        return (as_of - self.d0).days


def read_grid(con: duckdb.DuckDBPyConnection) -> Grid:
    r_lo, r_hi, f_lo, f_hi = con.execute(
        """SELECT (SELECT min(day) FROM marts.wallet_daily_returns), (SELECT max(day) FROM marts.wallet_daily_returns),
                  (SELECT CAST(floor(min(epoch(traded_at)) / 86400) AS INTEGER) FROM marts.fct_fills),
                  (SELECT CAST(floor(max(epoch(traded_at)) / 86400) AS INTEGER) FROM marts.fct_fills)"""
    ).fetchone()  # fmt: skip
    if r_lo is None:
        return Grid(None, None, None)
    day = lambda n: _EPOCH + timedelta(days=int(n))  # noqa: E731
    last = r_hi if f_hi is None else min(r_hi, day(f_hi))
    d0 = r_lo if f_lo is None else min(r_lo, day(f_lo))
    return Grid(r_lo, last, d0)


def scored_wallets(con: duckdb.DuckDBPyConnection) -> np.ndarray:
    """Every wallet of the score inputs, sorted as :func:`~assets.score.model.score_history` sorts them: the
    wallets of ``marts.wallet_features``, one row per wallet with a fill. Every return, fill and position of the
    marts is a fill's wallet's (``wallet_daily_returns`` and ``fct_positions`` are built from the fills), so these
    are the wallets of the three inputs, read from 100k rows at tier M where their union read 80M
    (``tests/assets/test_incremental_scores.py`` holds the rows to one pass over the inputs themselves)."""
    rows = con.sql("SELECT wallet FROM marts.wallet_features").arrow().read_all()
    return pd.Index(rows.column("wallet").to_pylist(), dtype=object).sort_values().to_numpy(dtype=object)


def digest(con: duckdb.DuckDBPyConnection, d0: date, end: int, start: int = 0) -> tuple[int, int, int, int]:
    """Row counts and XOR of row hashes of the mart rows a state ending at ``end`` read: the returns and the fills
    of the days before it (any row added, removed or changed there changes it). ``start`` > 0: only the days from
    day-grid day ``start`` on (:func:`add_digests` joins the digests of adjacent ranges). Read from the marts' own
    per-day digests (``marts.daily_digests``: the XOR over days is the XOR over rows), which a sync keeps for the
    days it changes, so the check costs a few hundred rows, not every stored row."""
    lo, cut = (d0 - _EPOCH).days + start, (d0 - _EPOCH).days + end
    days = "day < $day" if start <= 0 else "day >= $lo_day AND day < $day"
    params = {"day": _EPOCH + timedelta(days=cut)} | (
        {"lo_day": _EPOCH + timedelta(days=lo)} if start > 0 else {}
    )
    row = con.execute(
        f"""SELECT coalesce(sum(return_rows), 0), coalesce(bit_xor(return_hash), 0),
                   coalesce(sum(fill_rows), 0), coalesce(bit_xor(fill_hash), 0)
            FROM marts.daily_digests WHERE {days}""",
        params,
    ).fetchall()[0]
    return tuple(int(x) for x in row)


def add_digests(a: Sequence[int], b: Sequence[int]) -> tuple[int, int, int, int]:
    """The digest of two adjacent day ranges from theirs: the counts add, the hashes XOR."""
    return (a[0] + b[0], a[1] ^ b[1], a[2] + b[2], a[3] ^ b[3])


def read_stored(con: duckdb.DuckDBPyConnection) -> tuple[model.StoredState | None, bool]:
    """The stored state's meta row (None if there is none) and whether this version can read the state."""
    meta_cols, state_cols = list(table_columns(con, STATE_META_TABLE)), list(table_columns(con, STATE_TABLE))
    if not meta_cols:
        return None, True
    compatible = meta_cols == list(STATE_META_COLUMNS) and state_cols == list(STATE_COLUMNS)
    if not compatible:
        return model.StoredState(date.min, 0, ()), False
    row = con.execute(
        f"SELECT grid_start, state_end, return_rows, return_hash, fill_rows, fill_hash FROM {STATE_META_TABLE}"
    ).fetchall()
    if len(row) != 1:
        return None, True
    start, end, *dig = row[0]
    return model.StoredState(start, int(end), tuple(int(x) for x in dig)), True


def _bucket_view(con: duckdb.DuckDBPyConnection, wallets: np.ndarray) -> None:
    con.register("_bucket", pa.table({"wallet": pa.array(list(wallets), pa.string())}))


def read_state(con: duckdb.DuckDBPyConnection, wallets: np.ndarray, end: int) -> model.ScoreState:
    """The stored state of ``wallets`` (the registered ``_bucket``); a wallet it does not hold starts empty."""
    t = (
        con.sql(f"SELECT * FROM {STATE_TABLE} WHERE wallet IN (SELECT wallet FROM _bucket)")
        .arrow()
        .read_all()
    )
    if t.num_rows == 0:
        return model.ScoreState.empty(wallets, end)
    values = {k: t.column(k).to_numpy() for k in model.STATE_FIELDS}
    for k in model.WINDOW_FIELDS:
        col = t.column(k).combine_chunks()
        values[k] = col.flatten().to_numpy().reshape(t.num_rows, model.STATE_WINDOW)
    held = np.asarray(t.column("wallet").to_pylist(), dtype=object)
    return model.ScoreState(end, held, values).reindex(wallets)  # reindex looks each wallet up: any row order


def state_table(state: model.ScoreState) -> pa.Table:
    """The state as rows of :data:`STATE_COLUMNS` (NaN and infinities kept as they are)."""
    cols = {"wallet": pa.array(list(state.wallets), pa.string())}
    for k in model.STATE_FIELDS:
        cols[k] = pa.array(np.asarray(state.values[k], dtype=float), pa.float64())
    for k in model.WINDOW_FIELDS:
        flat = pa.array(np.ascontiguousarray(state.values[k], dtype=float).ravel(), pa.float64())
        cols[k] = pa.FixedSizeListArray.from_arrays(flat, model.STATE_WINDOW)
    return pa.table(cols)


_NO_ACTIVITY = pd.DataFrame(
    {
        "wallet": pd.Series([], dtype=object),
        "day": pd.Series([], dtype="datetime64[ns]"),
        "volume": [],
        "volume_sq": [],
    }
)


def _stage_chunk(con: duckdb.DuckDBPyConnection, d0: date, start: int, stop: int) -> None:
    """The days ``start .. stop - 1`` of the returns and the activity, for every bucket to read: the returns a
    copy when only the last days are read (a few rows per wallet), a view over the mart when all of them are."""
    lo, hi = d0 + timedelta(days=start), d0 + timedelta(days=stop)
    since = (d0 - _EPOCH).days + start
    _drop_chunk(con)
    days = f"SELECT * FROM ({DAILY_RETURNS_SQL}) WHERE day >= DATE '{lo.isoformat()}' AND day < DATE '{hi.isoformat()}'"
    if start > 0:
        con.execute(f"CREATE TEMP TABLE _score_returns_rows AS {days}")
        days = "SELECT * FROM _score_returns_rows"
    con.execute(f"CREATE TEMP VIEW _score_returns AS {days}")
    con.execute(
        f"CREATE TEMP TABLE _score_activity AS SELECT * FROM ({activity_sql(since=True)}) "
        f"WHERE day < DATE '{hi.isoformat()}'",
        {"since": since},
    )


def _drop_chunk(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP VIEW IF EXISTS _score_returns")
    for name in ("_score_returns_rows", "_score_activity", "_score_rows"):
        con.execute(f"DROP TABLE IF EXISTS {name}")


def _bucket_frames(con, activity: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bucket's (the registered ``_bucket``'s) returns and, with ``activity``, activity of the chunk."""
    pick = "WHERE wallet IN (SELECT wallet FROM _bucket)"

    def frame(sql: str) -> pd.DataFrame:
        """Wallets as Arrow's dictionary (categorical), days as datetime64: no Python object per row."""
        return con.sql(sql).to_arrow_table().to_pandas(date_as_object=False, strings_to_categorical=True)

    returns = frame(f"SELECT * FROM _score_returns {pick}")
    return returns, frame(f"SELECT * FROM _score_activity {pick}") if activity else _NO_ACTIVITY


@dataclass
class ScoreRun:
    """What a run did, for the asset's metadata and log."""

    plan: model.ScorePlan
    rows: int = 0
    buckets: int = 0
    wallets: int = 0
    days_read: int = 0
    state_end: date | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def score_increment(
    con: duckdb.DuckDBPyConnection,
    grid: Grid,
    todo: Sequence[date],
    params: model.ScoreParams,
    *,
    rebuild: bool = False,
    bucket_wallets: int = 10_000,
    state_lag_days: int = 3,
    scored_at: pd.Timestamp,
    log: Callable[[str], None] = lambda _: None,
) -> ScoreRun:
    """Score the as-of dates ``todo`` (none of them held) into ``analytics.whale_scores``, carrying the stored
    state when :func:`~assets.score.model.score_plan` allows it, ``bucket_wallets`` wallets at a time; keep the
    state ``state_lag_days`` days before the last day, so that fills arriving that late are still read."""
    if bucket_wallets < 1:
        raise ValueError(f"bucket_wallets must be at least 1, not {bucket_wallets}")
    if state_lag_days < 0:
        raise ValueError(f"state_lag_days must be 0 or more, not {state_lag_days}")
    clock = time.perf_counter()
    todo = sorted(set(todo))
    dates = np.array(todo, dtype="datetime64[D]")
    ends = np.array([grid.end(d) for d in todo], dtype=np.int64)
    stored, compatible = read_stored(con)
    first_end = int(ends.min())
    dig = digest(con, grid.d0, stored.end) if stored is not None and compatible else None
    plan = model.score_plan(stored, grid.d0, first_end, dig, rebuild=rebuild, compatible=compatible)
    run = ScoreRun(plan)
    log(f"whale_scores: {plan.reason}")
    start, stop = plan.start, int(ends.max())
    last_end = grid.end(grid.last_day + timedelta(days=1))
    keep = min(max(last_end - state_lag_days, start), stop) - start
    run.days_read = stop - start

    # the chunk's returns and activity, once for every bucket
    _stage_chunk(con, grid.d0, start, stop)
    try:
        wallets = scored_wallets(con)
        buckets = [wallets[i : i + bucket_wallets] for i in range(0, len(wallets), bucket_wallets)]
        # the resolved positions as spans of as-of dates, summed per wallet and category in SQL and sorted by
        # wallet, a wallet as its index in ``wallets`` (no address strings): each bucket's are one slice
        con.register("_wallet_codes", pa.table({"wallet": pa.array(list(wallets), pa.string()),
                                                "code": pa.array(np.arange(len(wallets)), pa.int64())}))  # fmt: skip
        con.register(
            "_score_dates", pa.table({"d": pa.array(model.unix_seconds(dates) // 86_400, pa.int64())})
        )
        spans = con.sql(position_spans_sql("_score_dates", "_wallet_codes")).to_arrow_table().to_pandas()
        con.unregister("_wallet_codes")
        con.unregister("_score_dates")
        codes = spans["code"].to_numpy()
        cuts = np.searchsorted(codes, np.arange(len(buckets) + 1) * bucket_wallets)
        rates = model.category_rates(spans, dates.size)
        run.buckets, run.wallets = len(buckets), len(wallets)
        run.seconds["read"] = time.perf_counter() - clock

        # pass 1: the benchmark over the days read, bucket after bucket in wallet order
        clock = time.perf_counter()
        total, count = np.zeros(stop - start), np.zeros(stop - start, dtype=np.int64)
        kept = None
        one = len(buckets) == 1  # one bucket: its matrices are kept for pass 2, so read it all once
        for bucket in buckets:
            _bucket_view(con, bucket)
            frames = _bucket_frames(con, activity=one)
            mats = model.day_matrices(*frames, pd.Index(bucket), np.datetime64(grid.d0, "D"), start, stop)
            total, count = model.benchmark_sums(total, count, mats[0])
            if one:
                kept = mats
        bench = model.benchmark(total, count)
        run.seconds["benchmark"] = time.perf_counter() - clock

        # pass 2 and the writes, in one transaction (nothing of a run that stops is kept): per bucket, the metrics
        # from its state, its rows and its next state; then the ranked rows, the state and its digest
        with Transaction(con):
            clock = time.perf_counter()
            _temp_table(
                con, "_score_rows", {c: k for c, k in WHALE_SCORES_COLUMNS.items() if c != "scored_at"}
            )
            # the next state goes straight to a table of its own, in wallet order bucket after bucket (no copy of it
            # through a temporary table, no sort); the commit makes it the state
            con.execute(create_table_sql(NEXT_STATE_TABLE, STATE_COLUMNS, key="wallet"))
            for b, bucket in enumerate(buckets):
                t = time.perf_counter()
                _bucket_view(con, bucket)
                index = pd.Index(bucket)
                if kept is not None:
                    mats, kept = kept, None
                else:
                    mats = model.day_matrices(
                        *_bucket_frames(con), index, np.datetime64(grid.d0, "D"), start, stop
                    )
                state = (
                    read_state(con, bucket, start) if plan.carry else model.ScoreState.empty(bucket, start)
                )
                metrics, after = model.advance_scores(state, *mats, bench, ends, params, keep=keep)
                mine = slice(cuts[b], cuts[b + 1])
                # the bucket's wallets are codes b * bucket_wallets on
                rows_of = codes[mine] - b * bucket_wallets
                metrics |= model.position_metrics(spans.iloc[mine], rows_of, len(bucket), rates, params)
                rows = model.history_rows(bucket, dates, metrics, params)
                append_frame(con, "_score_rows", rows)
                append_frame(con, NEXT_STATE_TABLE, state_table(after))
                run.rows += len(rows)
                log(f"whale_scores: bucket {b + 1}/{len(buckets)}: {len(bucket):,} wallets, {len(rows):,} rows "
                    f"({time.perf_counter() - t:.1f} s)")  # fmt: skip
            con.unregister("_bucket")
            run.seconds["score"] = time.perf_counter() - clock

            clock = time.perf_counter()
            end = start + keep
            run.state_end = grid.d0 + timedelta(days=end - 1) if end > 0 else None
            # carried: the rows before the state's old end are those the checked digest covers; only the new days read
            new_digest = (
                add_digests(dig, digest(con, grid.d0, end, start=start))
                if plan.carry
                else digest(con, grid.d0, end)
            )
            cols = ", ".join(f'"{c}"' for c in model.HISTORY_COLUMNS if c != "rank")
            con.execute(
                f"""INSERT INTO analytics.whale_scores BY NAME
                    SELECT {cols}, CASE WHEN wqs IS NOT NULL THEN row_number() OVER (
                               PARTITION BY as_of ORDER BY wqs IS NULL, wqs DESC, wallet) END AS rank,
                           CAST($at AS TIMESTAMPTZ) AS scored_at
                    FROM _score_rows ORDER BY as_of, wqs IS NULL, rank, wallet""",
                {"at": scored_at.to_pydatetime()},
            )  # fmt: skip
            con.execute(f"DROP TABLE IF EXISTS {STATE_TABLE}")
            con.execute(f"ALTER TABLE {NEXT_STATE_TABLE} RENAME TO {STATE_TABLE.split('.')[1]}")
            con.execute(f"DROP TABLE IF EXISTS {STATE_META_TABLE}")
            con.execute(create_table_sql(STATE_META_TABLE, STATE_META_COLUMNS))
            con.execute(
                f"INSERT INTO {STATE_META_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [grid.d0, end, grid.d0 + timedelta(days=end - 1), *new_digest, len(wallets),
                 scored_at.to_pydatetime()],
            )  # fmt: skip
    finally:
        _drop_chunk(con)
    run.seconds["write"] = time.perf_counter() - clock
    return run


def _temp_table(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, str]) -> None:
    """A run's temporary table of ``columns``, empty."""
    con.execute(f"DROP TABLE IF EXISTS {name}")
    con.execute(create_table_sql(name, columns))
