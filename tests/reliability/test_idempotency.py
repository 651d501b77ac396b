"""Idempotency: thirty daily increments build the same warehouse as one full build. (The whole job run again,
refetching every window, changing no table: ``tests/assets/test_ingest_assets.py``,
``test_ingesting_twice_leaves_identical_tables``, on the warehouse that module's job built.)

What may differ, by design, and is checked as such rather than ignored:
- ``raw.ingest_state`` is bookkeeping: which windows were fetched, and how many rows the latest fetch returned.
- ``intermediate.int_changes`` is the incremental marts' bookkeeping: what the latest build applied (empty after a
  first, full build; the last day's positions after a daily one).
- ``analytics.whale_scores`` is an append-only history: a daily run also keeps the scores as of that run's day
  (the "current" date after the last full day), so the increments hold one extra as-of date per day. Every
  as-of date of the full build is there too, row for row identical.
"""

import duckdb
import pytest

from assets.ingest.resources import PolymarketResource
from tests.reliability import stages
from tests.reliability.hashing import differences, relation_hash, warehouse_hashes

pytestmark = pytest.mark.reliability

DAY = 86_400
INCREMENTS = 30


def _full_days(history: tuple[int, int]) -> list[tuple[int, int]]:
    lo, hi = history
    last = (hi + 1) // DAY * DAY  # start of the day after the last full day
    return [(last - DAY * k, last - DAY * (k - 1) - 1) for k in range(INCREMENTS, 0, -1)]


@pytest.mark.long  # make test-long (CI runs it after make test)
def test_thirty_daily_increments_equal_one_full_build(reference_build, tmp_path):
    history = PolymarketResource(sim_scale=stages.SCALE, sim_seed=stages.SEED).history()
    full, daily = reference_build[0], tmp_path / "daily.duckdb"  # conftest.py: one full build

    days = _full_days(history)
    stages.ingest_window(daily, history[0], days[0][0] - 1)
    stages.dbt_models(daily)
    stages.score(daily)
    for start, end in days:  # what the daily schedule does: the new day, the models, the scores
        stages.ingest_window(daily, start, end)
        stages.dbt_models(daily)
        stages.score(daily)

    a, b = warehouse_hashes(full), warehouse_hashes(daily)
    apart = ("raw.ingest_state", "intermediate.int_changes", "analytics.whale_scores",
             "analytics.wallet_flags_history")  # fmt: skip
    diff = differences(
        {k: v for k, v in a.items() if k not in apart}, {k: v for k, v in b.items() if k not in apart}
    )
    assert not diff, "thirty increments differ from one full build:\n" + "\n".join(diff)
    assert a["raw.trades"][0] > 30_000
    assert (
        a["intermediate.int_changes"][0] == 0 < b["intermediate.int_changes"][0]
    )  # the daily builds were incremental

    with duckdb.connect(str(full), read_only=True) as f, duckdb.connect(str(daily), read_only=True) as d:
        full_dates = [
            r[0] for r in f.execute("SELECT DISTINCT as_of FROM analytics.whale_scores ORDER BY 1").fetchall()
        ]
        daily_dates = [
            r[0] for r in d.execute("SELECT DISTINCT as_of FROM analytics.whale_scores ORDER BY 1").fetchall()
        ]
        extra = sorted(set(daily_dates) - set(full_dates))
        assert set(full_dates) <= set(daily_dates)
        assert len(extra) <= INCREMENTS  # at most one "current" date per daily run
        common = "NOT list_contains(?, as_of)"
        assert relation_hash(f, "analytics.whale_scores") == relation_hash(
            d, "analytics.whale_scores", common, [extra]
        )
        # the flags are kept at every score date: the same at the common ones (recomputed from the same marts)
        assert relation_hash(f, "analytics.wallet_flags_history") == relation_hash(
            d, "analytics.wallet_flags_history", common, [extra]
        )
        # the same streams were fetched, however many windows each took
        streams = "SELECT stream FROM raw.ingest_state ORDER BY 1"
        assert f.execute(streams).fetchall() == d.execute(streams).fetchall()
