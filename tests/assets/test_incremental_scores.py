"""Incremental scores: runs that carry the stored state on over the new days, in wallet buckets, write the rows
that one pass of ``score_history`` over the whole history gives, to the bit; a late fill the state has already
read makes the next run score from scratch, and one that arrives within the state's lag does not.

One small simulated warehouse is built to a few days before its history ends and scored; then days and late fills
arrive the way syncs bring them, dbt builds incrementally and the scores run again after each step.
"""

from datetime import date

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from assets.ingest.resources import PolymarketResource
from assets.score import model
from assets.score.assets import whale_scores
from assets.score.incremental import STATE_META_TABLE, WHALE_SCORES_COLUMNS, digest
from assets.score.inputs import load_score_inputs
from assets.strategy import StrategyConfig
from tests.assets.helpers import insert_late_fill
from tests.reliability import stages

DAY = 86_400
BUCKET = 41  # wallets at a time: the small world's wallets in several buckets
LAG = 2
COLUMNS = [c for c in WHALE_SCORES_COLUMNS if c != "scored_at"]


def _score(path, **config) -> dict:
    """Materialise ``analytics.whale_scores`` with small buckets; its metadata."""
    result = dg.materialize(
        [whale_scores],
        resources={"warehouse": DuckDBResource(database=str(path)), "strategy": StrategyConfig()},
        run_config={"ops": {"analytics__whale_scores": {"config": {"bucket_wallets": BUCKET,
                                                                   "state_lag_days": LAG, **config}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )  # fmt: skip
    assert result.success
    (mat,) = result.asset_materializations_for_node("analytics__whale_scores")
    return {k: v.value for k, v in mat.metadata.items()}


def _stored(path, where: str = "TRUE", params: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM analytics.whale_scores WHERE {where} ORDER BY as_of, wallet",
            params or [],
        ).df()


def _one_pass(path, dates) -> pd.DataFrame:
    """``score_history`` over every day the marts hold, in one call, at ``dates``."""
    with duckdb.connect(str(path), read_only=True) as con:
        inputs = load_score_inputs(con)
    h = model.score_history(
        inputs.daily_returns, inputs.activity, inputs.positions, dates, StrategyConfig().score_params()
    )
    return h.sort_values(["as_of", "wallet"]).reset_index(drop=True)


def _assert_same_bits(stored: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert len(stored) == len(expected) > 0
    for c in COLUMNS:
        a, b = stored[c].to_numpy(), expected[c].to_numpy()
        if c == "as_of":
            same = pd.to_datetime(a).to_numpy() == pd.to_datetime(b).to_numpy()
        elif WHALE_SCORES_COLUMNS[c].startswith(("DOUBLE", "INTEGER")):
            a, b = a.astype(float), b.astype(float)
            same = (a == b) | (np.isnan(a) & np.isnan(b))
        else:
            a = np.array([None if x is None or x != x else str(x) for x in a], dtype=object)
            b = np.array([None if x is None or x != x else str(x) for x in b], dtype=object)
            same = a == b
        assert same.all(), (
            c,
            stored.loc[~same, ["as_of", "wallet", c]].head(),
            expected.loc[~same, c].head(),
        )


def _late_fill(path, ts: int) -> None:
    """A BUY of the busiest position still open at ``ts`` (a fill after its market's resolution would move the
    resolution day's P&L: a change before ``ts``)."""
    with duckdb.connect(str(path)) as con:
        wallet, token = con.execute(
            "SELECT wallet, token_id FROM marts.fct_positions WHERE resolved_at IS NULL OR epoch(resolved_at) > ? "
            "ORDER BY n_fills DESC, 1, 2 LIMIT 1",
            [ts],
        ).fetchone()
        insert_late_fill(con, wallet, token, ts, tx=f"0xlate{ts}")


def _assert_stored_digest_is_the_marts(path) -> None:
    """The digest a run stored (on a carried run, the checked one joined with the new days') is the one the marts'
    per-day digests give, and both are the hash of the marts' rows themselves, read afresh (so
    ``marts.daily_digests``, kept incrementally, holds what its rows hash to): the next run's check compares with
    it."""
    with duckdb.connect(str(path), read_only=True) as con:
        start, end, *stored = con.execute(
            f"SELECT grid_start, state_end, return_rows, return_hash, fill_rows, fill_hash FROM {STATE_META_TABLE}"
        ).fetchone()
        cut = (start - date(1970, 1, 1)).days + int(end)  # an epoch day
        rows = con.execute(
            """SELECT (SELECT count(*) FROM marts.wallet_daily_returns WHERE day < DATE '1970-01-01' + $cut),
                      (SELECT coalesce(bit_xor(hash(wallet, day, daily_return, pnl_net)), 0)
                       FROM marts.wallet_daily_returns WHERE day < DATE '1970-01-01' + $cut),
                      (SELECT count(*) FROM marts.fct_fills WHERE epoch(traded_at) < $cut * 86400),
                      (SELECT coalesce(bit_xor(hash(fill_key, wallet, condition_id, traded_at, notional)), 0)
                       FROM marts.fct_fills WHERE epoch(traded_at) < $cut * 86400)""",
            {"cut": cut},
        ).fetchone()
        assert tuple(int(x) for x in stored) == digest(con, start, int(end)) == tuple(int(x) for x in rows)


def _state_through(path):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"SELECT state_through FROM {STATE_META_TABLE}").fetchone()[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("incremental_scores") / "w.duckdb"
    lo, hi = PolymarketResource(sim_scale=stages.SCALE, sim_seed=stages.SEED).history()
    last = (hi + 1) // DAY * DAY
    stages.ingest_window(path, lo, last - 3 * DAY - 1)
    stages.dbt_models(path)
    return path, last, hi


def test_carried_runs_in_buckets_write_the_one_pass_rows_and_late_fills_are_read(world):
    path, last, _ = world

    # the first run: no state yet, every date scored from an empty state
    meta = _score(path)
    assert meta["scoring"] == "no carried state is stored" and meta["wallet_buckets"] > 2
    _assert_stored_digest_is_the_marts(path)
    first = _stored(path)
    dates = sorted(first["as_of"].unique())
    _assert_same_bits(first, _one_pass(path, dates))

    def step(expect: str) -> None:
        before = _stored(path)
        stages.dbt_models(path)
        meta = _score(path)
        assert meta["scoring"].startswith(expect), meta["scoring"]
        _assert_stored_digest_is_the_marts(path)
        held = before["as_of"].max()
        _assert_same_bits(_stored(path, "as_of <= ?", [held]), before)  # the history is immutable
        new = _stored(path, "as_of > ?", [held])
        _assert_same_bits(new, _one_pass(path, sorted(new["as_of"].unique())))
        return meta

    # a new day: the state is carried on, and only the days after it are read
    stages.ingest_window(path, last - 3 * DAY, last - 2 * DAY - 1)
    through = _state_through(path)
    meta = step("carrying the state on")
    assert meta["days_read"] == LAG + 1
    assert _state_through(path) == through + pd.Timedelta(days=1)

    # a late fill on the first day after the state's end (exactly on its boundary, 00:00:00 UTC) is read
    through = _state_through(path)
    _late_fill(path, int(pd.Timestamp(through + pd.Timedelta(days=1), tz="UTC").timestamp()))
    stages.ingest_window(path, last - 2 * DAY, last - DAY - 1)
    step("carrying the state on")

    # a late fill on the state's last day (one second before its end): scored from scratch
    through = _state_through(path)
    _late_fill(path, int(pd.Timestamp(through + pd.Timedelta(days=1), tz="UTC").timestamp()) - 1)
    stages.ingest_window(path, last - DAY, last - 1)
    step("the marts' rows before the state's end")


def test_the_plan_scores_from_scratch_whenever_the_state_is_not_the_marts_state():
    d0 = pd.Timestamp("2026-01-01").date()
    stored = model.StoredState(d0, 100, (1, 2, 3, 4))
    plan = lambda *a, **k: model.score_plan(*a, **k)  # noqa: E731
    assert plan(stored, d0, 100, (1, 2, 3, 4)) == (True, 100, "carrying the state on from 2026-04-11")
    assert plan(stored, d0, 101, (1, 2, 3, 4)).carry
    assert plan(None, d0, 100, None).reason == "no carried state is stored"
    assert plan(stored, d0, 100, (1, 2, 3, 4), rebuild=True).reason == "a rebuild of the scores was asked for"
    assert not plan(stored, d0, 100, (1, 2, 3, 4), compatible=False).carry
    moved = plan(stored, d0 - pd.Timedelta(days=1), 101, (1, 2, 3, 4))
    assert moved == (False, 0, "the history's first day moved from 2026-01-01 to 2025-12-31")
    # an as-of date one day before the state's end reads a day the state holds
    early = plan(stored, d0, 99, (1, 2, 3, 4))
    assert not early.carry and "(2026-04-10) comes before the state's end (2026-04-11)" in early.reason
    for changed in [(1, 2, 3, 5), (2, 2, 3, 4)]:
        assert not plan(stored, d0, 100, changed).carry


def _utc(seconds: np.ndarray) -> pd.DatetimeIndex:
    """Epoch seconds (NaN: none) as UTC timestamps to the microsecond, by integer arithmetic (pandas' float path
    rounds uninitialised memory where a value is NaN, which fails under numpy's ``errstate(over="raise")``)."""
    out = np.full(seconds.shape, np.datetime64("NaT"), dtype="datetime64[us]")
    known = ~np.isnan(seconds)
    out[known] = np.rint(seconds[known] * 1e6).astype(np.int64).astype("datetime64[us]")
    return pd.DatetimeIndex(out).tz_localize("UTC")


def test_position_spans_from_sql_are_the_numpy_spans_grouped():
    """The pipeline's grouped spans (``position_spans_sql``) against :func:`model.position_spans` summed per
    (wallet, category, start, end), on positions at every boundary: resolved exactly at an as-of midnight (counts
    only from the next date) and a microsecond before it, cut exactly at one (counts at it) and a microsecond
    before, cut before its resolution, no resolution time, no category, a price of exactly 0 and 1, a price that
    is half a unit (rounded to even), no payout; then the metrics from either are the same to the bit."""
    from assets.score.inputs import POSITIONS_SQL, position_spans_sql

    dates = np.array(["2026-01-10", "2026-01-17", "2026-01-24"], dtype="datetime64[D]")
    t = model.unix_seconds(dates).astype(float)
    rng = np.random.default_rng(3)
    n = 400
    resolved = rng.choice(np.r_[t, t - 1e-6, t + 1, t[0] - 5 * DAY, t[-1] + DAY], n)
    cut = np.where(rng.uniform(size=n) < 0.4, rng.choice(np.r_[t, t - 1e-6, t[0] - 9 * DAY], n), np.nan)
    cost = rng.uniform(0.01, 0.99, n)
    cost[:6] = [0.0, 1.0, 0.0000005, 0.0000015, 0.5, np.nan]  # price = cost with one share bought
    positions = pd.DataFrame(
        {
            "wallet": rng.choice([f"0x{i:040x}" for i in range(7)], n),
            "condition_id": rng.choice(["c1", "c2", "c3", "c4"], n),
            "resolved_at": _utc(resolved),
            "oversold_at": _utc(cut),
            "won": rng.uniform(size=n) < 0.5,
            "payout": rng.choice([0.0, 0.5, 1.0, np.nan], n, p=[0.45, 0.05, 0.45, 0.05]),
            "cost": cost,
            "shares_bought": 1.0,
            "is_resolved": True,
        }
    )
    positions.loc[7, "resolved_at"] = pd.NaT
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.fct_positions AS SELECT * FROM positions")
        con.execute("CREATE TABLE marts.dim_markets AS SELECT * FROM (VALUES ('c1', 'Politics'), "
                    "('c2', 'Crypto'), ('c3', NULL)) v(condition_id, category)")  # fmt: skip
        wallets = np.sort(positions["wallet"].unique())
        con.register("codes", pd.DataFrame({"wallet": wallets, "code": np.arange(len(wallets))}))
        con.register("dates", pd.DataFrame({"d": dates.astype(np.int64)}))
        got = con.sql(position_spans_sql("dates", "codes")).df()
        raw = con.sql(POSITIONS_SQL).df()
    keys = ["wallet", "category", "start", "end"]
    want = model.position_spans(raw, dates).groupby(keys, as_index=False)[list(model.SPAN_SUMS)].sum()
    got = got.assign(wallet=wallets[got["code"]]).drop(columns="code")
    assert got["start"].min() == 0 and got["start"].max() == len(t) and got["end"].min() == 0
    assert (got["price_units"] == got["price_units"].round()).all()
    pd.testing.assert_frame_equal(
        got.sort_values(keys).reset_index(drop=True)[want.columns],
        want.sort_values(keys).reset_index(drop=True),
        check_exact=True,
        check_dtype=False,
    )
    rates = model.category_rates(want, len(t))
    params = StrategyConfig().score_params()
    a = model.position_metrics(
        want, pd.Index(wallets).get_indexer(want["wallet"]), len(wallets), rates, params
    )
    per_position = model.position_spans(raw, dates)
    b = model.position_metrics(
        per_position, pd.Index(wallets).get_indexer(per_position["wallet"]), len(wallets),
        model.category_rates(per_position, len(t)), params,
    )  # fmt: skip
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
