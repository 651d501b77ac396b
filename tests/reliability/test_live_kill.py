"""kill -9 the live loop ten times at random points while the simulated market runs on, then let it finish: every
fill stored once, no intent emitted twice, no committed decision lost."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from live.assets import read_store
from live.run import sim_world
from live.sim_market import SimClock, http_servers, start_rtds
from tests.live.world import FIRST_LIVE_DAY, fresh_copy
from tests.reliability.test_live_faults import stored_fills, tape_fills, tracked_of

pytestmark = [pytest.mark.reliability, pytest.mark.serial]  # wall-clock: not beside other tests

ROOT = Path(__file__).resolve().parents[2]
START, H = FIRST_LIVE_DAY * 86_400, 3600


def _decisions(dec) -> dict[str, tuple]:
    """What a committed decision said (NaN as None, so that equal is equal)."""
    return {r.decision_key: (r.stage_reached, r.copied, None if r.shares != r.shares else r.shares, r.fill_key,
                             r.seq) for r in dec.itertuples()}  # fmt: skip


def test_ten_kills_lose_no_committed_decision_store_every_fill_once_and_emit_no_intent_twice(
    live_batch, tmp_path
):
    settings = fresh_copy(live_batch, tmp_path / "w")
    world = sim_world(settings)
    speed, end = 300.0, START + 6 * H
    clock = SimClock(START - 5, speed).start()  # the market runs on its own, whatever the loop does
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    rng = random.Random(11)
    committed: dict[str, tuple] = {}
    store = settings.live_root / "live.sqlite"
    with http_servers(world, clock) as (_, lb):
        rtds = asyncio.run_coroutine_threadsafe(start_rtds(world, clock, START, end), loop).result()
        rtds.end_margin_s = 70.0

        def target(until: float, out: Path) -> subprocess.Popen:
            args = [str(settings.live_root), rtds.url, lb.data.url, lb.gamma.url, lb.clob.url, str(clock.start_ts),
                    str(speed), str(clock.started_at), str(until)]  # fmt: skip
            return subprocess.Popen([sys.executable, "-m", "tests.reliability.live_target", *args], cwd=ROOT,
                                    stdout=out.open("w"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

        kills = 0
        while kills < 10:
            out = tmp_path / f"target-{kills}.log"
            proc = target(end + 70, out)
            deadline = time.monotonic() + 60
            while "STARTED" not in out.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)  # imports done: the kill lands while it runs, at a random point
            time.sleep(rng.uniform(0.2, 2.5))
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            if store.exists():
                dec = read_store(store, tables=("decisions",))["decisions"]
                committed.update(_decisions(dec))
        assert clock.now() < end, "the kills outlasted the replay: slow the market down"
        final = target(end + 30 * speed, tmp_path / "final.log")
        assert final.wait(timeout=180) == 0, (tmp_path / "final.log").read_text()[-3000:]
        asyncio.run_coroutine_threadsafe(rtds.stop(), loop).result()
    loop.call_soon_threadsafe(loop.stop)

    live = read_store(store)
    fills, dec = live["fills"], live["decisions"]
    stored = stored_fills(fills[fills["source"] != "snapshot"])
    assert len(stored) == len(set(stored)) and not fills["identity"].duplicated().any()
    assert set(stored) == tape_fills(settings, tracked_of(settings), START, end)
    assert not dec["decision_key"].duplicated().any() and len(committed) >= 10
    final_dec = _decisions(dec)
    lost = {k: v for k, v in committed.items() if final_dec.get(k) != v}
    assert not lost, f"{len(lost)} committed decisions lost or changed"
    lines = (settings.live_root / "intents.jsonl").read_text().splitlines()
    ids = [json.loads(line)["intent_id"] for line in lines]
    assert len(ids) == len(set(ids)), "an intent emitted twice"
    assert set(ids) == set(live["intents"]["intent_id"]) and live["intents"]["emitted_at"].notna().all()
    gaps = live["loss_events"]
    assert (gaps["reason"] == "feed-gap").sum() >= kills - 1  # each restart says what it could not watch
