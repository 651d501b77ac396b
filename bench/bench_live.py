"""The live loop's latency and cost, measured (a benchmark, never a test).

The simulated market runs in this process at real speed (market time = wall time): the demo world's tape after the
live demo's batch, plus synthetic trades at ``--rate`` frames a second of which ``--tracked-share`` are fills of
tracked whales (the real RTDS feed is about 50 frames a second, a few per cent of them tracked). The live loop runs
in its own process, with the batch's snapshot but a copy latency of 0, so each tracked fill is decided when the
feed passes its second. Measured, from its store and its rusage:

- frame -> decision committed: from the frame that released the decision to its commit (p50, p99);
- fill -> decision committed: from the fill's own timestamp (the feed's delay of about 1.9 s included);
- CPU seconds of the loop process per 1,000 frames;
- with ``--burst N``: N frames at once (untracked wallets) 20 s into the run, then the longest tick and the
  frame -> decision p99 of the ten seconds after it.

    python bench/bench_live.py --rate 50 --seconds 60 [--parse-all] [--burst 10000]
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from live import snapshot
from live.assets import read_store
from live.model import percentile
from live.run import demo_batch, sim_world
from live.sim_market import RtdsFaults, SimClock, SyntheticLoad, http_servers, start_rtds
from orchestration.settings import Settings

CHILD = """
import asyncio, json, sys
from pathlib import Path
from live.loop import LiveConfig, LiveLoop
from live.sim_market import SimClock
a = json.loads(sys.argv[1])
clock = SimClock(a["start"], 1.0, started_at=a["started_at"])
cfg = LiveConfig(live_dir=Path(a["dir"]), rtds_url=a["rtds"], data_url=a["data"], gamma_url=a["gamma"],
                 clob_url=a["clob"], fast_validation=not a["parse_all"], json_status=True, status_wall_s=1.0)
asyncio.run(LiveLoop(cfg, clock=clock.now).run(until_ts=a["until"]))
"""


def bench_snapshot(live_dir: Path) -> Path:
    """The demo batch's snapshot, with a copy latency of 0 (decide at the next second), in a directory of its own."""
    settings = Settings.from_env()
    s = demo_batch(settings, days=3, scale=1.0, out=sys.stderr)
    if isinstance(s, int):
        raise SystemExit("bench_live: the live demo's batch failed")
    src = s.live_root / "snapshot"
    gen = snapshot.current_generation(src)
    dst = live_dir / "snapshot"
    shutil.copytree(src / gen, dst / gen)
    meta = json.loads((dst / gen / "meta.json").read_text())
    meta["strategy"]["copy_latency_seconds"] = 0
    (dst / gen / "meta.json").write_text(json.dumps(meta))
    (dst / "CURRENT").write_text(gen)
    return s.warehouse_path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=50.0, help="synthetic frames per second on top of the tape")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--tracked-share", type=float, default=0.03)
    p.add_argument(
        "--parse-all", action="store_true", help="every frame through parse_trades (the comparison)"
    )
    p.add_argument("--burst", type=int, default=0, help="frames sent at once 20 s in (untracked wallets)")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    bench_snapshot(tmp)
    snap = snapshot.load(tmp / "snapshot")
    settings = Settings.from_env()
    from dataclasses import replace

    world = sim_world(replace(settings, sim_scale=1.0))
    start = snap.data_end_ts
    clock = SimClock(start, 1.0).start()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    load = SyntheticLoad(args.rate, tracked=snap.tracked(), tracked_share=args.tracked_share)
    with http_servers(world, clock) as (_, lb):
        rtds = asyncio.run_coroutine_threadsafe(
            start_rtds(
                world,
                clock,
                start,
                int(start + args.seconds + 120),
                load=load,
                faults=RtdsFaults(bursts=[args.burst] if args.burst else [], burst_after_wall_s=20.0),
            ),
            loop,
        ).result()
        child_args = {"start": start, "started_at": clock.started_at, "dir": str(tmp), "rtds": rtds.url,
                      "data": lb.data.url, "gamma": lb.gamma.url, "clob": lb.clob.url, "parse_all": args.parse_all,
                      "until": start + args.seconds}  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(child_args)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        out, _ = proc.communicate(timeout=args.seconds + 120)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        sent = rtds.sent
        burst_at = rtds.bursts_sent_at[0] if rtds.bursts_sent_at else None
        asyncio.run_coroutine_threadsafe(rtds.stop(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    status = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    final = status[-1] if status else {}
    dec = read_store(tmp / "live.sqlite", tables=("decisions",))["decisions"]
    ms = (dec["frame_to_decision_s"] * 1000).dropna().tolist()
    e2e = dec["fill_to_decision_s"].dropna().tolist()
    after_burst = []
    if burst_at is not None:  # the decisions of the ten seconds after the burst left the server
        near = dec[(dec["decided_wall"] >= burst_at) & (dec["decided_wall"] < burst_at + 10)]
        after_burst = (near["frame_to_decision_s"] * 1000).dropna().tolist()
    process_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = float(final.get("cpu_s") or process_cpu)  # the loop's own, after its start-up
    frames = int(final.get("frames", 0))
    row = {
        "case": f"live_{args.rate:g}_per_s" + ("_parse_all" if args.parse_all else "")
        + (f"_burst_{args.burst}" if args.burst else ""),
        "rate_per_s": args.rate, "seconds": args.seconds, "tracked_share": args.tracked_share,
        "parse_all": args.parse_all, "frames_sent": sent, "frames_seen": frames,
        "fills_seen": final.get("fills_seen"), "decisions": len(dec), "state": final.get("state"),
        "frame_to_decision_p50_ms": round(percentile(ms, 50), 2), "frame_to_decision_p99_ms": round(percentile(ms, 99), 2),
        "frame_to_decision_max_ms": round(max(ms), 2) if ms else None,
        "fill_to_decision_p50_s": round(percentile(e2e, 50), 2), "fill_to_decision_p99_s": round(percentile(e2e, 99), 2),
        "cpu_s": round(cpu, 2), "process_cpu_s": round(process_cpu, 2), "cpu_ms_per_1000_frames": round(1000 * cpu / frames * 1000, 1) if frames else None,
        "wall_s": round(wall, 1), "max_backlog": final.get("max_backlog"), "max_tick_ms": final.get("max_tick_ms"),
        "burst": args.burst, "after_burst_decisions": len(after_burst),
        "after_burst_p99_ms": round(percentile(after_burst, 99), 2) if after_burst else None,
        "pid": os.getpid(),
    }  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
