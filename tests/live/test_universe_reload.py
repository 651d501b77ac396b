"""A batch completes while the live loop runs: the loop picks up the new generation (universe, scores, markets)
without a restart. The wallets it drops no longer hold decisions back; the wallets it adds are tracked from the
batch's data end, their fills seen while untracked included."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from live import snapshot
from live.assets import read_store
from tests.live.world import FIRST_LIVE_DAY, fresh_copy, run_live
from tests.reliability.test_live_faults import stored_fills, tape_fills

pytestmark = pytest.mark.serial  # the live loop in accelerated real time: not beside other tests

START, H = FIRST_LIVE_DAY * 86_400, 3600


def test_the_loop_tracks_the_universe_of_the_batch_that_just_completed(live_batch, tmp_path):
    settings = fresh_copy(live_batch, tmp_path / "w")
    root = settings.live_root / "snapshot"
    old = snapshot.current_generation(root)
    whales = pq.read_table(root / old / "whales.parquet").to_pandas()
    tracked = set(whales.loc[whales["tracked"], "wallet"])
    # the wallets the next batch adds: scored wallets that trade in the first half hour (tracked now or not)
    added = sorted({f[1] for f in tape_fills(settings, set(whales["wallet"]), START, START + H // 2)})[:3]
    dropped = sorted(tracked - set(added))[:3]
    assert added, "no scored wallet trades in the first half hour"
    whales["tracked"] &= ~whales["wallet"].isin(added)  # the running generation does not track them yet
    joined = (~whales["wallet"].isin(dropped) & whales["tracked"]) | whales["wallet"].isin(added)
    schema = pq.read_table(root / old / "whales.parquet").schema
    pq.write_table(
        pa.Table.from_pandas(whales, schema=schema, preserve_index=False), root / old / "whales.parquet"
    )

    def publish_later() -> None:  # the next batch: three wallets left the universe, the others joined it
        while not (settings.live_root / "live.sqlite").exists():
            time.sleep(0.05)
        time.sleep(0.5)
        new = old + "-next"
        shutil.copytree(root / old, root / new)
        w = whales.assign(tracked=joined)
        pq.write_table(
            pa.Table.from_pandas(w, schema=schema, preserve_index=False), root / new / "whales.parquet"
        )
        meta = json.loads((root / new / "meta.json").read_text()) | {"generation": new}
        (root / new / "meta.json").write_text(json.dumps(meta))
        (root / ".CURRENT.tmp").write_text(new)
        os.replace(root / ".CURRENT.tmp", root / "CURRENT")

    t = threading.Thread(target=publish_later)
    t.start()
    status = run_live(settings, days=1 / 12, speed=600, config={"snapshot_wall_s": 0.2})
    t.join()
    assert status.snapshot == old + "-next"
    assert status.tracked_wallets == int(joined.sum()) == len((tracked | set(added)) - set(dropped))
    assert tape_fills(settings, set(added), START, START + H // 2)  # they traded before they were tracked
    assert status.state == "running" and status.open_losses == 0  # the dropped wallets hold nothing back
    fills = read_store(settings.live_root / "live.sqlite", tables=("fills",))["fills"]
    mine = fills[fills["wallet"].isin(added)]
    stored = stored_fills(mine)
    # every fill of the added wallets since the batch's data end, those from before they were tracked too, once
    assert len(stored) == len(set(stored)) and set(stored) == tape_fills(
        settings, set(added), START, START + 2 * H
    )
