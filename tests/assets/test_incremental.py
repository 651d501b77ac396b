"""Incremental marts: a sync that applies only what changed builds the same warehouse, bit for bit, as a full
build of the same raw data, including when the new data is late (docs/warehouse.md#incremental-builds).

One small simulated warehouse is built up to a few days before its history ends, then changed step by step the way
syncs change it: a new day, a fill that arrives for a day already built, a late oversold sell, a resolution that
arrives after the wallet's later trades, the same resolution changed by a dispute, a new category. After every
step the incremental build is compared with a full build of a copy of its raw tables: every relation dbt builds
(the bookkeeping of the sync itself apart), every row, every column.
"""

from datetime import timedelta

import duckdb
import pytest

from assets.ingest.resources import PolymarketResource
from assets.transform.model import SyncState, sync_mode
from assets.transform.project import read_sync_state
from tests.assets.helpers import insert_late_fill
from tests.reliability import stages
from tests.reliability.hashing import differences, warehouse_hashes

DAY = 86_400
#: the sync's own bookkeeping differs between the two builds by design (build ids, what changed)
BOOKKEEPING = {"intermediate.int_sync_window", "intermediate.int_sync_state", "intermediate.int_changes"}
RAW_TABLES = ("trades", "activity", "markets", "price_history", "leaderboard", "ingest_state", "quarantine")


def _dbt_hashes(path) -> dict:
    hashes = warehouse_hashes(path, schemas=("staging", "intermediate", "marts"), fast=True)
    return {k: v for k, v in hashes.items() if k not in BOOKKEEPING}


def _full_build_of_raw(incremental, tmp_path, name: str):
    """A fresh warehouse holding a copy of ``incremental``'s raw tables, built in full."""
    full = tmp_path / f"full-{name}.duckdb"
    with duckdb.connect(str(full)) as con:
        con.execute(f"ATTACH '{incremental}' AS src (READ_ONLY)")
        con.execute("CREATE SCHEMA raw")
        for t in RAW_TABLES:
            if con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'src' "
                "AND table_schema = 'raw' AND table_name = ?",
                [t],
            ).fetchone()[0]:
                con.execute(f"CREATE TABLE raw.{t} AS SELECT * FROM src.raw.{t}")
        con.execute("DETACH src")
    stages.dbt_models(full)
    return full


def _changes(path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT wallet, token_id, since_d, has_new_fills, market_changed FROM intermediate.int_changes"
        ).fetchall()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("incremental") / "incremental.duckdb"
    lo, hi = PolymarketResource(sim_scale=stages.SCALE, sim_seed=stages.SEED).history()
    last = (hi + 1) // DAY * DAY
    stages.ingest_window(path, lo, last - 2 * DAY - 1)
    stages.dbt_models(path)  # the first build: in full
    return path, last, hi


def _step(path, tmp_path, name):
    """Build ``path`` incrementally, check it was incremental, and compare it with a full build of its raw."""
    with duckdb.connect(str(path)) as con:
        assert sync_mode(read_sync_state(con)) == (False, sync_mode(SyncState(True, "a", "a"))[1])
    stages.dbt_models(path)
    with duckdb.connect(str(path), read_only=True) as con:
        n_changes, n_positions = con.execute(
            "SELECT (SELECT count(*) FROM intermediate.int_changes), (SELECT count(*) FROM marts.fct_positions)"
        ).fetchone()
        window, state = con.execute(
            "SELECT w.build_id, s.build_id FROM intermediate.int_sync_window w, intermediate.int_sync_state s"
        ).fetchone()
    assert window == state  # the build completed
    assert 0 < n_changes < n_positions / 2  # and touched only part of the positions
    full = _full_build_of_raw(path, tmp_path, name)
    diff = differences(_dbt_hashes(full), _dbt_hashes(path))
    assert not diff, f"after {name}, the incremental build differs from a full build:\n" + "\n".join(diff)


def test_late_data_builds_what_a_full_build_builds(world, tmp_path):
    path, last, hi = world

    # 1. a new day, as the daily sync brings it
    stages.ingest_window(path, last - 2 * DAY, last - DAY - 1)
    _step(path, tmp_path, "a new day")

    with duckdb.connect(str(path)) as con:
        # a position never oversold, with fills on at least three days, the last of them at least three days ago
        wallet, token, first_ts = con.execute(
            """SELECT wallet, token_id, min(ts) FROM intermediate.int_position_fills GROUP BY 1, 2
               HAVING count(DISTINCT trade_date) >= 3 AND max(ts) < ? AND NOT bool_or(oversold)
               ORDER BY count(*) DESC, 1, 2 LIMIT 1""",
            [last - 3 * DAY],
        ).fetchone()
    late_day = (first_ts // DAY + 1) * DAY  # midnight UTC after the first fill: exactly on a day boundary

    # 2. a fill that arrives for a day already built (a BUY at 00:00:00 UTC, between the position's fills)
    with duckdb.connect(str(path)) as con:
        insert_late_fill(con, wallet, token, late_day)
    _step(path, tmp_path, "a late fill")
    assert (wallet, token, late_day // DAY, True, False) in _changes(path)

    # 3. a late SELL of more shares than the position held then: it goes oversold from that fill on
    with duckdb.connect(str(path)) as con:
        insert_late_fill(con, wallet, token, late_day + 1, side="SELL", size_factor=1000, tx="0xoversold")
        assert con.execute(
            "SELECT count(*) FROM intermediate.int_position_fills WHERE wallet = ? AND token_id = ? AND oversold",
            [wallet, token],
        ).fetchone() == (0,)
    _step(path, tmp_path, "a late oversold sell")
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute(
            "SELECT has_negative_shares FROM marts.fct_positions WHERE wallet = ? AND token_id = ?",
            [wallet, token],
        ).fetchone() == (True,)

    # 3b. a late BUY in that position days after it went oversold: the sync reads the position from a day after
    #     the oversold fill (the new fill's, or its market's resolution day if earlier), and the oversold fill
    #     before that day still cuts it (the new fill does not count)
    with duckdb.connect(str(path)) as con:
        insert_late_fill(con, wallet, token, last - 3 * DAY + 3600, tx="0xafteroversold")
    _step(path, tmp_path, "a late fill after the oversold one")
    ((since, *_),) = [c[2:] for c in _changes(path) if c[:2] == (wallet, token)]
    assert (late_day + 1) // DAY < since <= (last - 3 * DAY) // DAY

    # 4. a resolution that arrives after the wallets' later trades: an open market, resolved (YES) at 00:00:00 UTC
    #    of a day its holders traded after
    with duckdb.connect(str(path)) as con:
        condition, first_day = con.execute(
            """SELECT m.condition_id, min(t.ts) // 86400 FROM raw.markets m JOIN raw.trades t USING (condition_id)
               WHERE NOT coalesce(m.closed, false) GROUP BY 1 HAVING count(DISTINCT t.trade_date) >= 3
               ORDER BY count(*) DESC, 1 LIMIT 1"""
        ).fetchone()
        resolved_day = first_day + 2
        _resolve(con, condition, '["1", "0"]', resolved_day * DAY)
    _step(path, tmp_path, "a late resolution")
    resolved = [c for c in _changes(path) if c[4]]
    assert resolved and all(c[2] == resolved_day for c in resolved)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute(
            "SELECT bool_and(is_resolved) FROM marts.fct_positions WHERE condition_id = ?", [condition]
        ).fetchone() == (True,)

    # 5. the same market's resolution changed after a dispute: NO won, one day earlier
    with duckdb.connect(str(path)) as con:
        _resolve(con, condition, '["0", "1"]', (resolved_day - 1) * DAY)
    _step(path, tmp_path, "a disputed resolution")
    assert {c[2] for c in _changes(path) if c[4]} == {resolved_day - 1}

    # 6. a market moves to another category (the category features change, no daily return does)
    with duckdb.connect(str(path)) as con:
        con.execute(
            """UPDATE raw.markets SET tags = '[{"id": "1", "label": "Weather", "slug": "weather"}]',
                   content_hash = content_hash + 1, fetched_at = now() WHERE condition_id = ?""",
            [condition],
        )
    _step(path, tmp_path, "a new category")
    assert {c[2] for c in _changes(path) if c[4]} == {None}

    # 7. the rest of the history, and nothing new at all
    stages.ingest_window(path, last - DAY, hi)
    _step(path, tmp_path, "the last days")


def _resolve(con, condition: str, prices: str, at: int) -> None:
    con.execute(
        """UPDATE raw.markets SET closed = true, uma_resolution_status = 'resolved', outcome_prices = ?,
               uma_end_date = strftime(to_timestamp(?), '%Y-%m-%dT%H:%M:%SZ'),
               closed_time = strftime(to_timestamp(?), '%Y-%m-%d %H:%M:%S+00'),
               content_hash = content_hash + 1, fetched_at = now()
           WHERE condition_id = ?""",
        [prices, at, at, condition],
    )


def test_a_build_that_stopped_half_way_is_followed_by_a_full_rebuild(world, tmp_path):
    """When ``int_sync_state`` lags ``int_sync_window`` the next build rebuilds the incremental models."""
    path = world[0]
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE intermediate.int_sync_window SET build_id = uuid()")
        assert sync_mode(read_sync_state(con)) == (
            True,
            "the last build stopped before every incremental model had applied its changes",
        )
    stages.dbt_models(path)
    with duckdb.connect(str(path), read_only=True) as con:
        assert sync_mode(read_sync_state(con))[0] is False
    full = _full_build_of_raw(path, tmp_path, "after a stop")
    assert not differences(_dbt_hashes(full), _dbt_hashes(path))


def _dbt_test(path, select: str, scope: str | None = None) -> dict[str, int]:
    """``dbt test --select`` on ``path`` in this process: failing rows per test (0 for a pass). ``scope``: what
    the transform would set (WHALECOPY_DBT_TEST_SCOPE), None to leave it unset."""
    import os
    import re

    if scope is None:
        os.environ.pop("WHALECOPY_DBT_TEST_SCOPE", None)
    else:
        os.environ["WHALECOPY_DBT_TEST_SCOPE"] = scope
    try:
        outcome = stages.dbt_command(path, ["test", "--select", select])
    finally:
        os.environ.pop("WHALECOPY_DBT_TEST_SCOPE", None)
    assert outcome.timings, outcome.exception
    failed = {f.split(":", 1)[0]: int(re.search(r"Got (\d+) result", f).group(1)) for f in outcome.failures}
    return {name: failed.get(name, 0) for name in outcome.timings}


def test_an_incremental_builds_key_tests_read_the_keys_it_wrote(world, tmp_path):
    """dbt's key tests (``unique``) in an incremental build read the keys the build wrote (macros/test_scope.sql):
    a key repeated in a position the build recomputed fails them, one in a position it left alone does not (the
    build before tested it), and with the whole read (a first build, WHALECOPY_DBT_TEST_SCOPE=all) both do. A row
    test reads every row whatever the build. A new fill repeating an old fill's key fails, two old rows sharing one
    do not."""
    import shutil

    path = tmp_path / "scoped.duckdb"
    shutil.copy(world[0], path)
    with duckdb.connect(str(path)) as con:
        changed, untouched = con.execute(
            """SELECT wallet, token_id FROM marts.fct_positions WHERE is_resolved AND NOT has_negative_shares
               ORDER BY n_fills DESC, position_id LIMIT 2"""
        ).fetchall()
        (ts,) = con.execute(
            "SELECT max(ts) FROM raw.trades WHERE proxy_wallet = ? AND asset = ?", list(changed)
        ).fetchone()
        insert_late_fill(con, *changed, ts, tx="0xscoped")
    stages.dbt_models(path)
    assert [c[:2] for c in _changes(path)] == [changed]

    unique = "unique_fct_positions_position_id"
    finite = "all_finite_fct_positions_shares_bought__shares_sold__net_shares__cost__proceeds__avg_cost_open__realised_at_sells__realised_at_resolution__pnl_gross__fees__pnl_net__open_basis"
    assert set(_dbt_test(path, "fct_positions,test_type:data").values()) == {0}
    with duckdb.connect(str(path)) as con:
        for position in (changed, untouched):
            con.execute(
                "INSERT INTO marts.fct_positions SELECT * FROM marts.fct_positions WHERE wallet = ? AND token_id = ?",
                list(position),
            )
        con.execute(
            "UPDATE marts.fct_positions SET cost = 'inf' WHERE wallet = ? AND token_id = ?", list(untouched)
        )
    assert _dbt_test(path, unique)[unique] == 1  # the recomputed position's key
    assert _dbt_test(path, unique, scope="all")[unique] == 2  # and the other
    assert _dbt_test(path, finite)[finite] == 2  # a row test: every row (the untouched position's two copies)
    with duckdb.connect(str(path)) as con:  # as in a first build: no complete build before it
        con.execute("ALTER TABLE intermediate.int_sync_state RENAME TO int_sync_state_away")
    assert _dbt_test(path, unique)[unique] == 2
    with duckdb.connect(str(path)) as con:
        con.execute("ALTER TABLE intermediate.int_sync_state_away RENAME TO int_sync_state")

    # raw.trades: a fill is new when ingested after the last complete build's `trades_ingested_to`; exactly at it,
    # it is not (here the build above is the last complete one)
    unique = "source_unique_raw_trades_fill_key"
    with duckdb.connect(str(path)) as con:
        (since,) = con.execute("SELECT trades_ingested_to FROM intermediate.int_sync_state").fetchone()
        old_key, new_key = con.execute(
            "SELECT fill_key FROM raw.trades WHERE ingested_at < ? ORDER BY fill_key LIMIT 2", [since]
        ).fetchall()
        copy = "INSERT INTO raw.trades SELECT * REPLACE (CAST(? AS TIMESTAMPTZ) AS ingested_at) FROM raw.trades WHERE fill_key = ?"
        con.execute(copy, [since, old_key[0]])  # two rows of one key, neither new
    assert _dbt_test(path, unique)[unique] == 0
    assert _dbt_test(path, unique, scope="all")[unique] == 1
    with duckdb.connect(str(path)) as con:
        con.execute(copy, [since + timedelta(microseconds=1), new_key[0]])  # a new row repeating a stored key
    assert _dbt_test(path, unique)[unique] == 1
