"""The live loop against a hostile simulated market, on real sockets (127.0.0.1): RTDS over a websocket, the Data
API, CLOB and Gamma over HTTP, each fault injected where the real one happens.

The loopback servers are ours, not Polymarket's, so the polls here may use five times the half-budget pace (a pass
over the ~500 tracked wallets of the test world in seconds, not minutes); the watchdog is one second of wall time
so a stall is seen quickly at the replay's speed.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from assets.ingest.sim_server import Faults
from live import snapshot
from live.assets import read_store
from live.poller import Poller
from live.run import sim_world
from live.sim_market import RtdsFaults, SimClock, http_servers
from tests.live.world import FIRST_LIVE_DAY, fresh_copy, run_live

pytestmark = [pytest.mark.reliability, pytest.mark.serial]  # wall-clock: not beside other tests

START = FIRST_LIVE_DAY * 86_400
H = 3600
# at 1,200x a wall second of backoff is twenty minutes of market: fewer attempts keep the retries within the replay
FAST = {
    "watchdog_wall_s": 1.0,
    "ping_wall_s": 0.3,
    "poll_share": 5.0,
    "horizon_s": 86_400.0,
    "http_max_attempts": 4,
}


def tape_fills(settings, tracked: set[str], lo: int, hi: int) -> set[tuple]:
    """(tx, wallet, token, side, ts, size, price) of every fill of a tracked wallet in [lo, hi) on the tape."""
    w = sim_world(settings)
    t, m = w.tape, w.markets
    rows = np.flatnonzero((t.ts >= lo) & (t.ts < hi))
    wallets = w.wallets["address"].to_numpy()[t.wallet[rows]]
    keep = np.isin(wallets, sorted(tracked))
    rows, wallets = rows[keep], wallets[keep]
    token = np.where(t.outcome_index[rows] == 0, m.token_yes[t.market[rows]], m.token_no[t.market[rows]])
    side = np.where(t.side[rows] == 0, "BUY", "SELL")
    return set(zip(w.tx_hash[t.tx[rows]], wallets, token, side, t.ts[rows].tolist(), t.size[rows].tolist(),
                   t.price[rows].tolist(), strict=True))  # fmt: skip


def stored_fills(fills) -> list[tuple]:
    return list(zip(fills["transaction_hash"], fills["wallet"], fills["token_id"], fills["side"], fills["ts"].tolist(),
                    fills["size"].tolist(), fills["price"].tolist(), strict=True))  # fmt: skip


def tracked_of(settings) -> set[str]:
    return set(snapshot.load(settings.live_root / "snapshot").tracked())


def test_a_messy_feed_loses_nothing_and_stores_every_fill_once(live_batch, tmp_path):
    """Both RTDS types for one fill, frames without topic and type, empty and non-JSON frames, repeated frames,
    mixed-case wallets (every RTDS frame), a silent stall (sockets open, pings answered, no data), a close 1006,
    two fills delivered two hours late, and 429s with Retry-After and 5xx on the polls: the watchdog reconnects,
    the polls replay the gaps, and the store ends with exactly the tape's fills of the tracked wallets."""
    settings = fresh_copy(live_batch, tmp_path / "w")
    tracked = tracked_of(settings)
    world = sim_world(settings)
    t = world.tape
    wallets = world.wallets["address"].to_numpy()[t.wallet]
    early = np.flatnonzero(
        (t.ts >= START + 600) & (t.ts < START + H) & (t.side == 0) & np.isin(wallets, sorted(tracked))
    )
    late_rows = {int(r): 2.0 * H for r in early[:2]}
    faults = RtdsFaults(unlabelled_share=0.2, junk_share=0.05, duplicate_share=0.1, stall_from=START + 1.5 * H,
                        stall_until=START + 2.5 * H, drop_at=[START + 4 * H], late=late_rows, seed=3)  # fmt: skip
    http = Faults(rule=lambda n, url: "429ra" if n % 301 == 0 else None, p_5xx=0.03, seed=5, retry_after_s=1)
    status = run_live(settings, days=0.25, speed=1200, faults=faults, http_faults=http, config=FAST)
    live = read_store(settings.live_root / "live.sqlite")
    fills = live["fills"]

    stored = stored_fills(fills[fills["source"] != "snapshot"])
    assert len(stored) == len(set(stored)), "a fill stored twice"
    expected = tape_fills(settings, tracked, START, START + 6 * H)
    assert set(stored) == expected, (len(expected - set(stored)), len(set(stored) - expected))
    sources = fills["sources"]
    assert sources.str.contains("rtds_trades").any() and sources.str.contains("rtds_orders_matched").any()
    assert sources.str.contains("rtds_trades,rtds_orders_matched|rtds_orders_matched,rtds_trades").any()
    assert sources.str.contains("rtds_unlabelled").any()  # routed by the payload's shape
    assert sources.str.contains("poll").any() and (sources == "poll").any()  # the stall's fills came by poll
    assert status.sim["rtds_drops"] == 1 and status.reconnects >= 2 and status.duplicates > 0  # stall + 1006
    decided = set(live["decisions"]["decision_key"])
    assert decided <= set(fills["decision_key"]) and not live["decisions"]["decision_key"].duplicated().any()
    # every order decided, once
    assert set(fills.loc[fills["source"] != "snapshot", "decision_key"]) <= decided
    # the two late BUYs were seen long after their fills and not bought
    late_keys = {(world.tx_hash[t.tx[r]], wallets[r]) for r in late_rows}
    dec = live["decisions"]
    stale = dec[dec["stage_reached"] == "skipped_stale"]
    assert late_keys <= {(k.split("|")[1], k.split("|")[0]) for k in stale["decision_key"]}
    # junk is rejected with its reason, never dropped silently
    rejected = read_store(settings.live_root / "live.sqlite", tables=("rejected",))["rejected"]
    assert status.rejected == len(rejected) > 0 and set(rejected["reason_code"]) <= {
        "non_json_frame",
        "not_an_object",
    }
    # the polls met the 429s and waited as told, and never hit the CDN's stale copy
    served = status.sim["http"].data.served.faults()
    assert served["429ra"] >= 1 and status.sim["throttled"] >= served["429ra"]
    assert status.sim["slept_s"] >= 1.0 * served["429ra"] and status.sim["cdn_hits"] == 0
    assert status.open_losses == 0 and status.state == "running"


def test_an_outage_longer_than_the_horizon_is_a_recorded_loss(live_batch, tmp_path):
    """RTDS refuses connections and the Data API answers 503 for an hour, longer than a ten-minute horizon: the
    loop cannot prove it saw that hour, says so (``possible-data-loss``) and records a ``horizon-expired`` loss;
    once the APIs are back the fills are recovered, and the loss stays open until a batch covers it."""
    settings = fresh_copy(live_batch, tmp_path / "w")
    outage = (START + 1 * H, START + 2 * H)

    def http(clock):  # the Data API is down for the same hour of market time
        return Faults(rule=lambda n, url: "503" if outage[0] <= clock.now() < outage[1] else None, seed=1)

    faults = RtdsFaults(down_from=outage[0], down_until=outage[1])
    status = run_live(settings, days=0.125, speed=1200, faults=faults, http_faults=http,
                      config=FAST | {"horizon_s": 600.0})  # fmt: skip
    live = read_store(settings.live_root / "live.sqlite")
    losses = live["loss_events"]
    assert status.state == "possible-data-loss" and status.open_losses >= 1
    assert "horizon-expired" in set(losses["reason"]) and losses["closed_at"].isna().all()
    first = losses.sort_values("start_ts").iloc[0]
    assert outage[0] - 600 <= first["start_ts"] <= outage[0] + 60  # the loss starts where the feed stopped
    fills = live["fills"]
    assert (
        (fills["ts"] >= outage[0]) & (fills["ts"] < outage[1])
    ).any()  # the outage's fills came back by poll


def test_a_burst_of_ten_thousand_frames_is_absorbed_whole_and_the_loop_catches_up(live_batch, tmp_path):
    """10,000 frames at once (untracked wallets): every one handled, nothing rejected or lost, every tracked order
    after it decided once and on time (not late), the loop still running. How long the burst takes is measured in
    ``bench/bench_live.py --burst 10000``, not here."""
    settings = fresh_copy(live_batch, tmp_path / "w")
    faults = RtdsFaults(bursts=[10_000])
    status = run_live(settings, days=1 / 24, speed=300, faults=faults, config=FAST)
    assert status.sim["bursts_sent_at"] and status.fills_seen >= 10_000 and status.rejected == 0
    assert status.state == "running" and status.open_losses == 0 and status.pending == 0
    live = read_store(settings.live_root / "live.sqlite")
    fills, dec = live["fills"], live["decisions"]
    assert set(fills.loc[fills["source"] != "snapshot", "decision_key"]) <= set(dec["decision_key"])
    assert len(dec) > 0 and not dec["decision_key"].duplicated().any() and (dec["late"] == 0).all()


def test_the_cache_buster_avoids_the_cdns_old_body_on_real_sockets(live_batch, tmp_path):
    """The CDN in front of /trades answers an unchanged URL with the body it cached (max-age 300 s): polled again
    after a new fill, the same URL misses it, while the cache-busted one (a new ``_`` each time) sees it."""
    settings = fresh_copy(live_batch, tmp_path / "w")
    world = sim_world(settings)
    t = world.tape
    row = int(np.flatnonzero(t.ts >= START + 100)[0])
    wallet = world.wallets["address"].to_numpy()[t.wallet[row]]
    clock = SimClock(int(t.ts[row]) - 30, speed=1.0).start()
    with http_servers(world, clock) as (transport, lb):
        for buster in (False, True):
            poller = Poller(lb.data.url, lb.clob.url, lb.gamma.url, clock=clock.now, cache_buster=buster)
            before, _, url = poller.trades(wallet, start=int(t.ts[row]) - 3600)
            clock.start_ts += 60  # a minute later in market time: the fill is served now
            after, _, url2 = poller.trades(wallet, start=int(t.ts[row]) - 3600)
            clock.start_ts -= 60
            seen = {r["timestamp"] for r in after}
            if buster:
                assert url != url2 and int(t.ts[row]) in seen
            else:
                assert url == url2 and after == before and int(t.ts[row]) not in seen  # the trap
            poller.close()
    assert transport.cdn_hits == 1


def test_the_poller_honours_retry_after_and_retries_5xx_with_bounded_attempts(live_batch, tmp_path):
    settings = fresh_copy(live_batch, tmp_path / "w")
    world = sim_world(settings)
    clock = SimClock(START + 3600, speed=1.0).start()
    wallet = world.wallets["address"].iloc[0]
    faults = Faults(script={1: "429ra", 2: "503", 4: "502", 5: "502", 6: "502", 7: "502"}, retry_after_s=1)
    with http_servers(world, clock, data=faults) as (_, lb):
        poller = Poller(lb.data.url, lb.clob.url, lb.gamma.url, clock=clock.now, max_attempts=4)
        t0 = time.monotonic()
        rows, _, _ = poller.trades(wallet)  # 429 (Retry-After: 1), 503, then the page
        assert time.monotonic() - t0 >= 1.0 and isinstance(rows, list)
        assert poller.data.stats.throttled == 1 and poller.data.stats.retries == 2
        with pytest.raises(Exception, match="gave up after 4 attempts.*127.0.0.1"):
            poller.trades(wallet)  # 502 four times: the error names the URL
        poller.close()
