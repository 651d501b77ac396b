"""The wallet flags' statistics point in time (assets/score/flags.py ``STATS_SQL``): an event counts from the first
as-of date strictly after it (an event exactly at an as-of midnight is not known at that date), running totals
carry on through dates with no event, and nothing after the last date is counted."""

from datetime import date

import duckdb
import pandas as pd
import pytest

from assets.score import flags

A, B = "0x" + "a" * 40, "0x" + "b" * 40
D1, D2, D3 = date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 5)
MIDNIGHT_D1, MIDNIGHT_D2 = "2026-01-02 00:00:00+00", "2026-01-03 00:00:00+00"


@pytest.fixture
def stats():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    fills = [  # wallet, condition, token, side, size, price, traded_at
        (A, "c1", "y1", "BUY", 100.0, 0.5, "2026-01-01 23:59:59+00"),  # the last second before D1
        (A, "c1", "y1", "BUY", 100.0, 0.5, MIDNIGHT_D1),  # exactly on D1: known from D2
        (
            A,
            "c1",
            "n1",
            "SELL",
            100.0,
            0.5,
            "2026-01-02 00:20:00+00",
        ),  # c1's second outcome
        (A, "c2", "y2", "BUY", 40.0, 0.5, "2026-01-02 23:50:00+00"),
        (A, "c2", "y2", "SELL", 40.0, 0.5, "2026-01-03 00:10:00+00"),  # a round trip of the BUY 20 min before
        (A, "c3", "y3", "BUY", 1000.0, 0.96, "2026-01-04 12:00:00+00"),  # a farm fill (market ends in 24 h)
        (A, "c3", "y3", "BUY", 1000.0, 0.96, "2026-01-05 00:00:00+00"),  # on the last date: never counted
        (B, "c1", "y1", "BUY", 10.0, 0.5, "2026-01-01 08:00:00+00"),
    ]
    con.execute("CREATE TABLE marts.fct_fills (wallet VARCHAR, condition_id VARCHAR, token_id VARCHAR, "
                "side VARCHAR, size DOUBLE, price DOUBLE, notional DOUBLE, traded_at TIMESTAMPTZ)")  # fmt: skip
    con.executemany("INSERT INTO marts.fct_fills VALUES (?, ?, ?, ?, ?, ?, ? * ?, ?)",
                    [(w, c, t, s, q, p, q, p, ts) for w, c, t, s, q, p, ts in fills])  # fmt: skip
    con.execute("CREATE TABLE marts.dim_markets AS SELECT * FROM (VALUES ('c1', TIMESTAMPTZ '2026-03-01 00:00:00+00'),"
                "('c2', TIMESTAMPTZ '2026-03-01 00:00:00+00'), ('c3', TIMESTAMPTZ '2026-01-05 12:00:00+00')) "
                "t(condition_id, end_date)")  # fmt: skip
    con.execute(f"""CREATE TABLE marts.fct_positions AS SELECT * FROM (VALUES
        ('{A}', 'c1', true, TIMESTAMPTZ '{MIDNIGHT_D2}', TIMESTAMPTZ '2026-01-02 00:20:00+00', 7.0),
        ('{B}', 'c1', true, TIMESTAMPTZ '2026-01-01 09:00:00+00', TIMESTAMPTZ '2026-01-01 08:00:00+00', -3.0),
        ('{A}', 'c2', false, NULL, TIMESTAMPTZ '2026-01-03 00:10:00+00', 0.0))
        t(wallet, condition_id, is_resolved, resolved_at, last_fill_at, pnl_gross)""")
    con.execute(f"""CREATE TABLE marts.fct_activity AS SELECT * FROM (VALUES
        ('{A}', 'c1', 'SPLIT', 'legs', TIMESTAMPTZ '{MIDNIGHT_D1}'),
        ('{A}', 'c1', 'MERGE', 'legs', TIMESTAMPTZ '2026-01-01 10:00:00+00'),
        ('{A}', 'c2', 'SPLIT', 'unbooked', TIMESTAMPTZ '2026-01-01 10:00:00+00'),
        ('{A}', 'c2', 'REDEEM', 'check', TIMESTAMPTZ '2026-01-01 10:00:00+00'))
        t(wallet, condition_id, type, booked_as, activity_at)""")
    out = con.execute(flags.STATS_SQL, {"as_of": [D1, D2, D3]}).df()
    out["as_of"] = pd.to_datetime(out["as_of"]).dt.date
    return out.set_index(["wallet", "as_of"])


def test_an_event_counts_from_the_first_as_of_date_strictly_after_it(stats):
    a = stats.loc[A]
    assert a["n_fills"].tolist() == [1, 4, 6]  # midnight D1's BUY from D2; midnight D3's never
    assert a["volume"].tolist() == [50.0, 170.0, 170.0 + 20.0 + 960.0]
    assert a["n_markets"].tolist() == [1, 2, 3] and a["two_sided_markets"].tolist() == [0, 1, 1]
    assert a["wash_volume"].tolist() == [0.0, 0.0, 40.0]  # counted at the SELL, 10 minutes after D2
    assert a["resolved_pnl"].tolist() == [0.0, 0.0, 7.0]  # resolved exactly at D2: known from D3
    assert a["split_markets"].tolist() == [1, 1, 1]  # the MERGE before D1 (the unbooked SPLIT is not a leg)
    assert a["n_farm"].tolist() == [0, 0, 1] and a["farm_volume"].tolist() == [0.0, 0.0, 960.0]
    assert a["n_small"].tolist() == [1, 4, 5]  # fills of $100 or less


def test_a_wallet_with_no_new_event_carries_its_totals_through_every_later_date(stats):
    b = stats.loc[B]
    assert b.index.tolist() == [D1, D2, D3]
    assert b["n_fills"].tolist() == [1, 1, 1] and b["resolved_pnl"].tolist() == [-3.0, -3.0, -3.0]
