"""kill -9 the live loop ten times at random points while the simulated market runs on, then let it finish: every
fill stored once, no intent emitted twice, no committed decision lost."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from live.assets import read_store
from live.run import sim_world
from live.sim_market import SimClock, http_servers, start_rtds
from tests.live.world import FIRST_LIVE_DAY, fresh_copy
from tests.reliability.test_live_faults import stored_fills, tape_fills, tracked_of

pytestmark = [pytest.mark.reliability, pytest.mark.serial]  # wall-clock: not beside other tests

ROOT = Path(__file__).resolve().parents[2]
START, H = FIRST_LIVE_DAY * 86_400, 3600


def _wait_for(out: Path, word: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while word not in out.read_text():
        assert time.monotonic() < deadline, (
            f"{out.name}: no {word} within {timeout_s:g} s:\n{out.read_text()[-2000:]}"
        )
        time.sleep(0.02)


def _decisions(dec) -> dict[str, tuple]:
    """What a committed decision said (NaN as None, so that equal is equal)."""
    return {r.decision_key: (r.stage_reached, r.copied, None if r.shares != r.shares else r.shares, r.fill_key,
                             r.seq) for r in dec.itertuples()}  # fmt: skip


def test_ten_kills_lose_no_committed_decision_store_every_fill_once_and_emit_no_intent_twice(
    live_batch, tmp_path
):
    settings = fresh_copy(live_batch, tmp_path / "w")
    world = sim_world(settings)
    speed, end = 300.0, START + 8 * H  # 96 s of wall time: ten kills take about half of it
    clock = SimClock(START - 5, speed).start()  # the market runs on its own, whatever the loop does
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    rng = random.Random(11)
    committed: dict[str, tuple] = {}
    store = settings.live_root / "live.sqlite"
    with http_servers(world, clock) as (_, lb):
        rtds = asyncio.run_coroutine_threadsafe(start_rtds(world, clock, START, end), loop).result()
        rtds.end_margin_s = 70.0

        def spawn(out: Path) -> subprocess.Popen:
            args = [str(settings.live_root), rtds.url, lb.data.url, lb.gamma.url, lb.clob.url, str(clock.start_ts),
                    str(speed), str(clock.started_at)]  # fmt: skip
            return subprocess.Popen([sys.executable, "-m", "tests.reliability.live_target", *args], cwd=ROOT,
                                    stdin=subprocess.PIPE, stdout=out.open("w"), stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip

        def go(proc: subprocess.Popen, out: Path, until: float) -> None:
            """Start a spawned process's loop once its imports are done."""
            _wait_for(out, "READY")
            proc.stdin.write(f"{until}\n".encode())
            proc.stdin.flush()
            _wait_for(out, "STARTED")

        def n_decisions() -> int:
            try:
                return len(read_store(store, tables=("decisions",))["decisions"])
            except (sqlite3.Error, pd.errors.DatabaseError):
                return 0  # the first process has not written the schema yet

        kills = 0
        nxt, nxt_out = spawn(tmp_path / "target-0.log"), tmp_path / "target-0.log"
        while kills < 10:
            proc, out = nxt, nxt_out
            go(proc, out, end + 70)
            nxt_out = tmp_path / (f"target-{kills + 1}.log" if kills < 9 else "final.log")
            nxt = spawn(nxt_out)  # the next one imports while this one runs
            # each process commits a decision before its kill (at most 5 s wall: the test's point is committed
            # decisions surviving kills; how many land otherwise depends on how fast the spawns import)
            before, deadline = n_decisions(), time.monotonic() + 5.0
            while n_decisions() <= before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.2, 2.5))  # the kill lands at a random point of the loop's run
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            if store.exists():
                dec = read_store(store, tables=("decisions",))["decisions"]
                committed.update(_decisions(dec))
        assert clock.now() < end, "the kills outlasted the replay: slow the market down"
        go(nxt, nxt_out, end + 30 * speed)
        assert nxt.wait(timeout=180) == 0, nxt_out.read_text()[-3000:]
        asyncio.run_coroutine_threadsafe(rtds.stop(), loop).result()
    loop.call_soon_threadsafe(loop.stop)

    live = read_store(store)
    fills, dec = live["fills"], live["decisions"]
    stored = stored_fills(fills[fills["source"] != "snapshot"])
    assert len(stored) == len(set(stored)) and not fills["identity"].duplicated().any()
    # every tracked fill of the replay, once; past its end the polls may find more of the world's, all genuine
    tracked = tracked_of(settings)
    assert {f for f in stored if f[4] < end} == tape_fills(settings, tracked, START, end)
    assert set(stored) <= tape_fills(settings, tracked, START, end + 30 * speed)
    assert not dec["decision_key"].duplicated().any()
    assert len(committed) >= 10, f"only {len(committed)} decisions committed before the last kill"
    final_dec = _decisions(dec)
    lost = {k: v for k, v in committed.items() if final_dec.get(k) != v}
    assert not lost, f"{len(lost)} committed decisions lost or changed"
    lines = (settings.live_root / "intents.jsonl").read_text().splitlines()
    ids = [json.loads(line)["intent_id"] for line in lines]
    assert len(ids) == len(set(ids)), "an intent emitted twice"
    assert set(ids) == set(live["intents"]["intent_id"]) and live["intents"]["emitted_at"].notna().all()
    gaps = live["loss_events"]
    assert (gaps["reason"] == "feed-gap").sum() >= kills - 1  # each restart says what it could not watch
