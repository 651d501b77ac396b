"""The live loop alone, in its own process, against a simulated market another process serves: for the kill -9
test to kill and start again. It imports, prints READY, and starts the loop when a line with the market time to
run until arrives on stdin (so the test can spawn the next process while this one runs: the kills land on the
loop, not on the imports).

    python -m tests.reliability.live_target LIVE_DIR RTDS DATA GAMMA CLOB START_TS SPEED STARTED_AT
"""

import asyncio
import sys
from pathlib import Path

from live.loop import LiveConfig, LiveLoop
from live.sim_market import SimClock


def main(argv: list[str]) -> None:
    # No fill is too old to copy: at 300x, the default 60 market-seconds is 0.2 s of wall time, so whether a buy
    # is copied or skipped as stale would turn on this machine's load, and a loaded run could emit no intent at
    # all (nothing left to check for duplicates). Every buy the filters pass is then copied, on every restart.
    live_dir, rtds, data, gamma, clob = argv[:5]
    start_ts, speed, started_at = (float(x) for x in argv[5:8])
    print("READY", flush=True)
    until = float(sys.stdin.readline())
    clock = SimClock(start_ts, speed, started_at=started_at)
    cfg = LiveConfig(live_dir=Path(live_dir), rtds_url=rtds, data_url=data, gamma_url=gamma, clob_url=clob,
                     speed=speed, watchdog_wall_s=1.0, ping_wall_s=0.3, poll_share=5.0, horizon_s=86_400.0,
                     status_wall_s=0.5, max_fill_age_s=1e12)  # fmt: skip
    print("STARTED", flush=True)
    status = asyncio.run(LiveLoop(cfg, clock=clock.now).run(until_ts=until))
    print(f"DONE {status.state}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
