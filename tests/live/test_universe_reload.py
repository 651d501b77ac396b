"""A batch completes while the live loop runs: the loop picks up the new generation (universe, scores, markets)
without a restart, and the loss events the new data covers are closed."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import pyarrow.parquet as pq

from live import snapshot
from tests.live.world import fresh_copy, run_live


def test_the_loop_tracks_the_universe_of_the_batch_that_just_completed(live_batch, tmp_path):
    settings = fresh_copy(live_batch, tmp_path / "w")
    root = settings.live_root / "snapshot"
    old = snapshot.current_generation(root)
    whales = pq.read_table(root / old / "whales.parquet").to_pandas()
    dropped = sorted(whales.loc[whales["tracked"], "wallet"])[:3]

    def publish_later() -> None:  # the next batch: three wallets left the universe
        while not (settings.live_root / "live.sqlite").exists():
            time.sleep(0.05)
        time.sleep(0.5)
        new = old + "-next"
        shutil.copytree(root / old, root / new)
        w = whales.assign(tracked=~whales["wallet"].isin(dropped) & whales["tracked"])
        pq.write_table(pq.read_table(root / old / "whales.parquet").from_pandas(w, preserve_index=False),
                       root / new / "whales.parquet")  # fmt: skip
        meta = json.loads((root / new / "meta.json").read_text()) | {"generation": new}
        (root / new / "meta.json").write_text(json.dumps(meta))
        (root / ".CURRENT.tmp").write_text(new)
        os.replace(root / ".CURRENT.tmp", root / "CURRENT")

    t = threading.Thread(target=publish_later)
    t.start()
    status = run_live(settings, days=1 / 12, speed=600, config={"snapshot_wall_s": 0.2})
    t.join()
    assert status.snapshot == old + "-next"
    assert status.tracked_wallets == int(whales["tracked"].sum()) - 3
