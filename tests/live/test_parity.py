"""Parity: the live loop replaying a simulated week over loopback makes exactly the batch paper run's decisions,
orders, fills and NAV over the same week.

The batch is built through Sunday 2026-10-18 and publishes its snapshot; the week from Monday is replayed live
(RTDS websocket, Data API, CLOB and Gamma on 127.0.0.1); then the same warehouse is synced through Sunday
2026-10-25 and the batch's paper engine runs over that week on an empty book. The week's scores are the ones
dated Monday in both (the history is append-only), so every candidate fact must come out the same from the
stream as from SQL. The batch has no freshness gate, so the live one is off here (it is tested on its own).
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from assets.paper.assets import paper_run
from assets.paper.intents import intents_frame
from assets.strategy import StrategyConfig
from live.assets import read_store
from tests.live.world import FIRST_LIVE_DAY, LOOSE, build_batch, fresh_copy, run_live

pytestmark = pytest.mark.serial  # the live loop in accelerated real time: not beside other tests

WEEK = (FIRST_LIVE_DAY, FIRST_LIVE_DAY + 6)


def test_a_simulated_week_live_gives_exactly_the_batch_paper_runs_orders_and_nav(live_batch, tmp_path):
    settings = fresh_copy(live_batch, tmp_path / "world")
    status = run_live(settings, days=7, speed=40_000, config={"max_fill_age_s": 1e12})
    assert status.state == "running" and status.open_losses == 0
    live = read_store(settings.live_root / "live.sqlite")

    build_batch(settings.warehouse_path.parent, start=date(2026, 10, 19), end=date(2026, 10, 25))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        batch, _ = paper_run(con, StrategyConfig(**LOOSE), settings.fee_rate, *WEEK)
        keys = con.execute("SELECT key, CAST(fill_key AS VARCHAR) AS fill_key FROM _paper_candidates").df()
        signals = con.execute(
            "SELECT CAST(fill_key AS VARCHAR) AS fill_key, stage_reached, reason, wallet FROM analytics.signals "
            "WHERE epoch(traded_at) + 60 >= ? AND epoch(traded_at) + 60 < ?", [WEEK[0] * 86400, (WEEK[1] + 1) * 86400]
        ).df()  # fmt: skip
    key_of = keys.set_index("key")["fill_key"]

    dec = live["decisions"]
    buys = dec[dec["side"] == "BUY"]
    # every BUY order of the week reaches the same stage with the same reasons (stage 3's own, live, below)
    m = signals.merge(buys, on="fill_key", how="outer", suffixes=("_batch", "_live"), indicator=True)
    tracked = m["wallet_batch"].isin(set(live["fills"]["wallet"])) | m["wallet_live"].notna()
    assert (m.loc[tracked, "_merge"] == "both").all(), m.loc[tracked & (m["_merge"] != "both")].head()
    early = m[(m["_merge"] == "both") & m["stage_reached_batch"].isin(["whale", "trade"])]
    assert (early["stage_reached_batch"] == early["stage_reached_live"]).all()
    assert (early["reason_batch"] == early["reason_live"]).all()

    # stage 3 and sizing: the same orders, sizes and reasons, to the bit
    b = batch.decisions.assign(fill_key=batch.decisions["key"].map(key_of))
    lv = buys[buys["stage_reached"].isin(["portfolio", "copied"])]
    s3 = b.merge(lv, on="fill_key", how="outer", suffixes=("_batch", "_live"), indicator=True)
    assert (s3["_merge"] == "both").all(), s3[s3["_merge"] != "both"][["fill_key", "_merge"]]
    assert (s3["copied_batch"] == s3["copied_live"].astype(bool)).all()
    assert (s3["reason_batch"].fillna("") == s3["reason_live"].fillna("")).all()
    for col in ("nav", "correlation", "fraction"):
        np.testing.assert_array_equal(s3[f"{col}_batch"].to_numpy(float), s3[f"{col}_live"].to_numpy(float))
    copied = s3[s3["copied_batch"]]
    np.testing.assert_array_equal(
        copied["shares_batch"].to_numpy(float), copied["shares_live"].to_numpy(float)
    )

    # every paper fill (entries, mirrored sells, stops, time exits, settlements) and the NAV of every day
    bf = batch.fills.assign(key=batch.fills["key"].map(key_of)).reset_index(drop=True)
    lf = live["paper_fills"].sort_values("seq").reset_index(drop=True)
    assert list(bf["key"]) == list(lf["key"]) and list(bf["kind"]) == list(lf["kind"])
    for col in ("day", "ts", "shares", "price", "fee", "cash_after"):
        np.testing.assert_array_equal(bf[col].to_numpy(float), lf[col].to_numpy(float), err_msg=col)
    ln = live["nav"].sort_values("day").reset_index(drop=True)
    assert list(ln["day"]) == list(range(WEEK[0], WEEK[1] + 1)) == list(batch.nav["day"])
    for col in ("nav", "cash", "positions_value", "drawdown", "daily_return"):
        np.testing.assert_array_equal(batch.nav[col].to_numpy(float), ln[col].to_numpy(float), err_msg=col)

    # the intents carry the batch export's ids
    wallet = {
        str(k): w for k, w in zip(batch.positions["key"].map(key_of), batch.positions["wallet"], strict=True)
    }
    needed = bf[bf["kind"] != "settlement"]
    expected = intents_frame(pd.DataFrame({"whale_fill": needed["key"], "kind": needed["kind"], "ts": needed["ts"],
                                           "token_id": needed["token_id"], "shares": needed["shares"],
                                           "price": needed["price"], "copied_wallet": needed["key"].map(wallet)}))  # fmt: skip
    assert sorted(live["intents"]["intent_id"]) == sorted(expected["intent_id"])

    # a week that tests something: many stage-3 decisions, copies, refusals and exits of more than one kind
    assert len(s3) >= 20 and copied.shape[0] >= 5 and (~s3["copied_batch"]).sum() >= 5
    assert {"entry", "whale_sell"} <= set(bf["kind"]) and len(set(bf["kind"])) >= 3
