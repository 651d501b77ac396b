"""Running the live loop: against Polymarket, or against the simulated live market on loopback, and what it did.

``whalecopy live`` (Polymarket), ``whalecopy live --source sim --speed X --days N`` (the simulated world replayed
after the batch's last day through a real websocket and HTTP servers on 127.0.0.1), ``whalecopy live --status``
(the store, read-only) and ``whalecopy live-demo`` (a batch through a few days before the world's end, then those
days live, then the decisions, intents, book and latency).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import shutil
import sys
from datetime import UTC, datetime, timedelta

import pandas as pd

from assets.ingest.sim import SimConfig, cached_world
from orchestration.settings import Settings

from . import snapshot
from .assets import read_store
from .loop import LiveConfig, LiveLoop
from .model import Status, percentile
from .sim_market import Delays, RtdsFaults, SimClock, http_servers, start_rtds

DAY = 86_400


def live_config(settings: Settings, **overrides) -> LiveConfig:
    cfg = LiveConfig(
        live_dir=settings.live_root, rtds_url=settings.rtds_url, data_url=settings.data_api_url,
        gamma_url=settings.gamma_api_url, clob_url=settings.clob_api_url, watchlist=settings.live_watchlist,
        max_fill_age_s=settings.live_max_fill_age_s, horizon_s=settings.live_horizon_s,
        poll_every_s=settings.live_poll_every_s, http_timeout_s=settings.http_timeout_s,
        http_max_attempts=settings.http_max_attempts,
    )  # fmt: skip
    return dataclasses.replace(cfg, **overrides)


def alerts_for(settings: Settings):
    from assets.risk.alerts import AlertsResource

    return AlertsResource(webhook_url=settings.alert_webhook_url, timeout_s=settings.http_timeout_s)


def run_polymarket(settings: Settings, *, json_status: bool = False, out=sys.stdout) -> Status:
    """The loop against Polymarket's RTDS and Data API, until SIGINT or SIGTERM. It holds no keys and places no
    orders: it writes intents."""
    loop = LiveLoop(live_config(settings, json_status=json_status), alerts=alerts_for(settings), out=out)
    return asyncio.run(loop.run())


def sim_world(settings: Settings):
    cache = None if settings.sim_cache_dir is None else str(settings.sim_cache_dir)
    return cached_world(SimConfig.scaled(settings.sim_scale, seed=settings.sim_seed, start=settings.sim_start,
                                         days=settings.sim_days), cache)  # fmt: skip


async def run_simulated(settings: Settings, *, days: float, speed: float, json_status: bool = False, out=sys.stdout,
                        faults: RtdsFaults | None = None, delays: Delays | None = None, http_faults=None,
                        on_decision=None, config: dict | None = None, start_ts: int | None = None,
                        extra_s: float | None = None, stop: asyncio.Event | None = None,
                        finish_wall_s: float = 20.0) -> Status:  # fmt: skip
    """The simulated world after the batch's snapshot, replayed live on loopback at ``speed`` for ``days``."""
    delays = delays or Delays()
    snap = snapshot.load(settings.live_root / "snapshot")
    built = snap.meta.get("source") or {}
    want = {k: v for k, v in settings.source_info().items() if k != "source"}
    if built.get("source") != "sim" or any(built.get(k) != v for k, v in want.items()):
        raise ValueError(f"the batch snapshot in {settings.live_root} was built from {built or 'an unknown source'}; "
                         f"the simulated live market would replay {want}: run the batch on that world first "
                         "(`whalecopy run --source sim --end DAY` with the same --seed and --scale)")  # fmt: skip
    world = sim_world(settings)
    start = int(start_ts if start_ts is not None else snap.data_end_ts)
    end = int(min(start + days * DAY, world.now))
    if end <= start:
        raise SystemExit(f"whalecopy live: the simulated world ends at {_day(world.now)}, before the snapshot's "
                         f"last day {_day(start)}: build the batch through an earlier day (`whalecopy run --end`)")  # fmt: skip
    clock = SimClock(start - 30, speed)
    lat = int(snap.meta["strategy"].get("copy_latency_seconds", 60))
    if callable(http_faults):  # a fault plan that needs the market clock (an outage window)
        http_faults = http_faults(clock)
    with http_servers(world, clock, delays, data=http_faults) as (transport, lb):
        rtds = await start_rtds(world, clock, start, end, delays, faults, seed=settings.sim_seed)
        cfg = live_config(settings, rtds_url=rtds.url, data_url=lb.data.url, gamma_url=lb.gamma.url,
                          clob_url=lb.clob.url, speed=speed, json_status=json_status, **(config or {}))  # fmt: skip
        loop = LiveLoop(cfg, clock=clock.now, alerts=alerts_for(settings), out=out, on_decision=on_decision)
        if stop is not None:
            loop.stop = stop
        # the replay's last frame (in band, after every trade) moves market time past the end by the copy latency,
        # so the orders of the last minute are priced and the last day closes; the loop stops when it reads it
        rtds.end_margin_s = extra_s if extra_s is not None else lat + cfg.grace_s + 5

        async def finish() -> None:
            """A client away when the end frame went out never reads it: stop anyway, saying so."""
            await rtds.done.wait()
            await asyncio.sleep(finish_wall_s)
            if not loop.stop.is_set():
                print("whalecopy live: the replay ended but its end frame was not read; stopping", file=out)
                loop.stop.set()

        finisher = asyncio.create_task(finish())
        try:
            status = await loop.run(until_ts=None, install_signals=stop is None)
        finally:
            finisher.cancel()
            await rtds.stop()
        stats = loop.poller.data.stats
        loop.sim = {"rtds_frames_sent": rtds.sent, "cdn_hits": transport.cdn_hits, "start": start, "end": end,
                    "requests": stats.requests, "retries": stats.retries, "throttled": stats.throttled,
                    "slept_s": stats.slept_s, "http": lb, "bursts_sent_at": list(rtds.bursts_sent_at),
                    "rtds_drops": rtds.dropped, "synthetic_frames_sent": rtds.synthetic_sent}  # fmt: skip
    status.sim = loop.sim  # type: ignore[attr-defined]
    return status


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


# ------------------------------------------------------------------------------------------------ reports


def report(settings: Settings, out=sys.stdout, limit: int = 15) -> None:
    """What the live loop did: decisions by stage, the copies, the intents, the book, the latency."""
    path = settings.live_root / "live.sqlite"
    if not path.exists():
        print(f"whalecopy live: no live store at {path}", file=out)
        return
    t = read_store(path)
    dec, intents, nav, fills, losses = t["decisions"], t["intents"], t["nav"], t["fills"], t["loss_events"]
    print(f"live store {path}: {len(fills):,} tracked fills, {len(dec):,} decisions, {len(intents):,} intents",
          file=out)  # fmt: skip
    if len(dec):
        print("decisions by stage reached:", file=out)
        for stage, n in dec["stage_reached"].value_counts().items():
            print(f"  {stage:<14} {n:>7,}", file=out)
        reasons = (
            dec.loc[dec["stage_reached"].isin(["whale", "trade", "portfolio"]), "reason"]
            .value_counts()
            .head(5)
        )
        for r, n in reasons.items():
            print(f"      {n:>6,}  {r}", file=out)
        copied = dec[dec["copied"] == 1]
        if len(copied):
            print(f"copied ({len(copied)}):", file=out)
            show = copied.sort_values("seq").tail(limit)
            for r in show.itertuples():
                print(f"  {_when(r.ts)} {r.side:<4} {r.wallet[:10]}.. {r.token_id[:10]}.. {r.shares or 0:>8.0f} sh @ "
                      f"{r.price or 0:.3f}  {r.stage_reached}", file=out)  # fmt: skip
    if len(intents):
        print(f"intents (intents.jsonl, last {min(limit, len(intents))}):", file=out)
        for r in intents.sort_values("created_at").tail(limit).itertuples():
            print(f"  {r.created_at} {r.side:<4} {r.shares:>8g} {r.token_id[:16]}.. limit {r.limit_price:.3f} "
                  f"{r.kind}", file=out)  # fmt: skip
    if len(nav):
        print("paper book (the live engine's NAV at each day's end):", file=out)
        for r in nav.sort_values("day").itertuples():
            print(f"  {_when(r.day * DAY)[:10]}  NAV ${r.nav:,.2f}  cash ${r.cash:,.2f}  open {int(r.open_positions)}"
                  f"  exposure {r.exposure_share:.1%}", file=out)  # fmt: skip
    open_losses = losses[losses["closed_at"].isna()] if len(losses) else losses
    print(f"loss events: {len(losses)} ({len(open_losses)} open)", file=out)
    for r in open_losses.itertuples():
        print(f"  {r.reason}: {_when(r.start_ts)} .. {_when(r.end_ts)}  {r.detail}", file=out)
    if len(dec):
        print(latency_table(dec, fills), file=out)


def latency_table(dec: pd.DataFrame, fills: pd.DataFrame) -> str:
    rows = [("frame -> decision committed (ms)", dec["frame_to_decision_s"] * 1000),
            ("first leg seen -> committed (s, wall)", dec["first_seen_to_decision_s"]),
            ("fill timestamp -> committed (s, market)", dec["fill_to_decision_s"])]  # fmt: skip
    lines = ["latency                                       n      p50      p90      p99      max"]
    for name, s in rows:
        v = pd.to_numeric(s, errors="coerce").dropna().tolist()
        cells = [percentile(v, q) for q in (50, 90, 99)] + [max(v) if v else math.nan]
        lines.append(f"  {name:<40} {len(v):>6} " + " ".join(f"{c:>8.2f}" for c in cells))
    if len(fills):
        first = fills.assign(delay=fills["received_at"] - fills["ts"])
        for source, g in first.groupby("source"):
            v = g["delay"].tolist()
            cells = [percentile(v, q) for q in (50, 90, 99)] + [max(v)]
            lines.append(f"  {'seen after the fill, ' + source + ' (s)':<40} {len(v):>6} "
                         + " ".join(f"{c:>8.2f}" for c in cells))  # fmt: skip
    return "\n".join(lines)


def _when(ts) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")


def demo_batch(settings: Settings, *, days: float = 3, scale: float = 1.0, out=sys.stdout) -> Settings | int:
    """The live demo's batch (``data/live-demo``): the simulated world through ``days`` + 1 days before its end,
    built once and reused. Returns its settings, or the failed run's exit code."""
    from orchestration.cli import run_sync

    root = settings.warehouse_path.parent / "live-demo"
    wh = root / "warehouse.duckdb"
    s = dataclasses.replace(settings, source="sim", sim_scale=scale, warehouse_path=wh, live_dir=root / "live",
                            report_path=root / "report.html", real_warehouse_path=None)  # fmt: skip
    # the first day the world has no data for
    world_end = datetime.fromtimestamp(sim_world(s).now, UTC).date()
    last_batch_day = world_end - timedelta(days=int(math.ceil(days)) + 1)
    gen = snapshot.current_generation(s.live_root / "snapshot")
    if gen is not None:
        built = json.loads((s.live_root / "snapshot" / gen / "meta.json").read_text()).get("source", {})
        if {k: built.get(k) for k in ("sim_seed", "sim_scale")} != {
            "sim_seed": s.sim_seed,
            "sim_scale": s.sim_scale,
        }:
            print(f"whalecopy live-demo: {root} holds another world ({built}); building it again", file=out)
            shutil.rmtree(root)
            gen = None
    if gen is None or not wh.exists():
        print(f"whalecopy live-demo: the batch on the simulated world (scale {scale:g}) through {last_batch_day}",
              file=out, flush=True)  # fmt: skip
        result = run_sync(s, end=last_batch_day, skip_groups=("evaluation",), out=out)
        if not result.success:
            from orchestration.summary import print_run_report

            return print_run_report(result, s, 0.0)
    return s


def demo(
    settings: Settings, *, days: float = 3, speed: float = 4320.0, scale: float = 1.0, out=sys.stdout
) -> int:
    """``make live-demo``: the demo's batch (built once), then the days after it replayed live at ``speed``, then
    what the live loop decided."""
    s = demo_batch(settings, days=days, scale=scale, out=out)
    if isinstance(s, int):
        return s
    for f in ("live.sqlite", "live.sqlite-wal", "live.sqlite-shm", "intents.jsonl"):
        (s.live_root / f).unlink(missing_ok=True)  # the demo starts its book afresh
    print(f"whalecopy live-demo: {days:g} simulated days live at {speed:g}x on loopback (RTDS websocket, Data API, "
          f"CLOB, Gamma on 127.0.0.1)", file=out, flush=True)  # fmt: skip
    status = asyncio.run(run_simulated(s, days=days, speed=speed, out=out))
    report(s, out=out)
    print(f"state {status.state}; frames {status.frames:,}; sim sent {status.sim['rtds_frames_sent']:,} frames",
          file=out)  # fmt: skip
    return 0 if status.state != "failed" else 1
