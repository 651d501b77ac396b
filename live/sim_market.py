"""A simulated live Polymarket on loopback: the simulated world replayed in accelerated real time.

- **RTDS**: a real websocket server on 127.0.0.1 that speaks RTDS's protocol: a socket that gets no
  ``{"action": "subscribe", ...}`` gets nothing; the text ``ping`` is answered ``pong``; the first frame after
  subscribing may be empty; then every fill of the tape, in time order, as an ``activity`` frame of type
  ``trades`` (taker and makers) and, for a taker's fill, ``orders_matched`` too, in the captured envelope
  (``connection_id``, ``payload``, ``timestamp`` in ms, ``topic``, ``type``) with a mixed-case ``proxyWallet``.
  Each frame leaves after its source delay (``Delays``: RTDS about 1.9 s at the median, 2.6 s at p90,
  polymarket_realtime.md §1), frames in order, as the feed pushes blocks.
- **Data API, Gamma, CLOB**: the loopback HTTP servers of ``assets/ingest/sim_server.py`` behind a clock-aware
  transport: ``/trades`` serves only fills older than the API's lag (5.4 s), ``/v2/status`` reports that lag, the
  CLOB serves no price point from the future, and a CDN in front of ``/trades`` answers a URL it has seen in the
  last ``max-age`` (300 s) with the old body (the trap a cache-buster avoids).
- **Faults** (``RtdsFaults``, switched on while it runs): a silent stall (socket open, pings answered, no data),
  dropped connections (close 1006), an outage (connections refused), frames without ``topic``/``type``, empty and
  non-JSON frames, repeated frames, bursts, fills delivered late (stale), on top of the HTTP faults of
  ``sim_server.Faults`` (429 with ``Retry-After``, 5xx, resets).

Time is market time: ``SimClock.now()`` runs ``speed`` times faster than the wall clock from ``start_ts``, from
the moment the first client subscribes (so a replay loses nothing to the client's start-up).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import numpy as np
import orjson
import websockets
from websockets.asyncio.server import serve

from assets.ingest.sim import SimWorld
from assets.ingest.sim_api import CLOB_HOST, DATA_HOST, SimPolymarket
from assets.ingest.sim_server import Faults, loopback_polymarket

from .model import SIM_CLOCK_TOPIC


class SimClock:
    """Market time for a replay: ``start_ts`` when started, advancing ``speed`` seconds per wall-clock second. On the
    epoch clock, so another process given (``start_ts``, ``speed``, ``started_at``) keeps the same time."""

    def __init__(self, start_ts: float, speed: float, started_at: float | None = None):
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.start_ts, self.speed = float(start_ts), float(speed)
        self.started_at: float | None = started_at

    def start(self) -> SimClock:
        if self.started_at is None:
            self.started_at = time.time()
        return self

    def now(self) -> float:
        if self.started_at is None:
            return self.start_ts
        return self.start_ts + (time.time() - self.started_at) * self.speed

    def wall_seconds(self, market_seconds: float) -> float:
        return max(0.0, market_seconds / self.speed)


@dataclass(frozen=True)
class Delays:
    """Source delays after the fill's timestamp, in market seconds (polymarket_realtime.md §1, [M] figures)."""

    rtds_median_s: float = 1.9
    rtds_p90_s: float = 2.6
    rtds_max_s: float = 8.0
    api_lag_s: float = 5.4  # /trades serves a fill this long after its timestamp
    cdn_max_age_s: float = 300.0

    def rtds(self, rng: np.random.Generator, n: int) -> np.ndarray:
        sigma = np.log(self.rtds_p90_s / self.rtds_median_s) / 1.2816
        return np.minimum(self.rtds_median_s * np.exp(rng.normal(0.0, sigma, n)), self.rtds_max_s)


def mixed_case(address: str) -> str:
    """A deterministic mixed-case spelling of a lower-case address (as RTDS sends them)."""
    h = hashlib.md5(address.encode()).hexdigest()
    body = "".join(
        c.upper() if c.isalpha() and int(h[i % 32], 16) >= 8 else c for i, c in enumerate(address[2:])
    )
    return "0x" + body


# ------------------------------------------------------------------------------------------------ HTTP


class LiveTransport(httpx.BaseTransport):
    """The simulated APIs as they look at market time ``clock.now()``, with the CDN in front of ``/trades``."""

    def __init__(self, sim: SimPolymarket, clock: SimClock, delays: Delays | None = None, cdn: bool = True):
        self.sim, self.clock, self.delays, self.cdn = sim, clock, delays or Delays(), cdn
        self._cache: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.cdn_hits = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url, now = request.url, self.clock.now()
        if url.host == DATA_HOST and url.path == "/v2/status":
            body = orjson.dumps({"serving": {"lag_seconds": self.delays.api_lag_s, "head_ts": int(now)}})
            return httpx.Response(200, content=body, headers={"content-type": "application/json"})
        if url.host == DATA_HOST and url.path == "/trades":
            key = str(url)
            with self._lock:
                hit = self._cache.get(key)
                if self.cdn and hit is not None and now - hit[0] < self.delays.cdn_max_age_s:
                    self.cdn_hits += 1
                    return httpx.Response(200, content=hit[1], headers={
                        "content-type": "application/json", "age": str(int(now - hit[0])),
                        "cache-control": f"public, max-age={int(self.delays.cdn_max_age_s)}"})  # fmt: skip
            params = dict(url.params.multi_items())
            params.pop("_", None)
            served = int(now - self.delays.api_lag_s)
            params["end"] = str(min(int(params.get("end", served)), served))
            response = self.sim.handle_request(httpx.Request("GET", url.copy_with(params=params)))
            body = response.read()
            if response.status_code == 200 and self.cdn:
                with self._lock:
                    self._cache[key] = (now, body)
                    while len(self._cache) > 4096:
                        self._cache.popitem(last=False)
            return httpx.Response(response.status_code, content=body, headers={
                "content-type": "application/json",
                "cache-control": f"public, max-age={int(self.delays.cdn_max_age_s)}"})  # fmt: skip
        if url.host == CLOB_HOST and url.path == "/prices-history":
            params = dict(url.params.multi_items())
            params["endTs"] = str(min(int(params.get("endTs", now)), int(now)))
            return self.sim.handle_request(httpx.Request("GET", url.copy_with(params=params)))
        return self.sim.handle_request(request)


# ------------------------------------------------------------------------------------------------ RTDS


@dataclass
class RtdsFaults:
    """What the simulated RTDS does wrong, switched on and off while it runs (market times).

    - ``stall_from`` .. ``stall_until``: sockets stay open and pings are answered, but no data flows (the frames in
      between are lost, as the real feed loses them);
    - ``down_from`` .. ``down_until``: an outage, connections refused and dropped;
    - ``drop_at``: market times to abort every connection (the client sees close 1006); ``drop_requests``: at the
      next frame;
    - ``unlabelled_share``: frames without ``topic`` and ``type``; ``junk_share``: an empty or a non-JSON frame
      before a frame; ``duplicate_share``: a frame sent twice;
    - ``late``: tape row -> extra delay (market seconds), a fill delivered stale;
    - ``bursts``: sizes of bursts of synthetic frames (untracked wallets) to send at the next frame (of the tape
      or of a synthetic load) from ``burst_after_wall_s`` wall seconds after the replay started.
    """

    stall_from: float = -1.0
    stall_until: float = -1.0
    down_from: float = -1.0
    down_until: float = -1.0
    drop_at: list[float] = field(default_factory=list)
    drop_requests: int = 0
    unlabelled_share: float = 0.0
    junk_share: float = 0.0
    duplicate_share: float = 0.0
    late: dict[int, float] = field(default_factory=dict)
    bursts: list[int] = field(default_factory=list)
    burst_after_wall_s: float = 0.0
    seed: int = 0


def _trade(m, k: int, yes: bool, *, side: str, price: float, size: float, ts: int, tx: str, wallet: str,
           label: tuple[str, str, str]) -> dict:  # fmt: skip
    """An RTDS trade payload on market ``k`` of the world (``label``: its title, event slug and slug)."""
    title, event_slug, slug = label
    return {"asset": m.token_yes[k] if yes else m.token_no[k], "conditionId": m.condition_id[k],
            "eventSlug": event_slug, "slug": slug, "title": title, "outcome": "Yes" if yes else "No",
            "outcomeIndex": 0 if yes else 1, "price": price, "side": side, "size": size, "timestamp": ts,
            "transactionHash": tx, "proxyWallet": wallet, "name": "", "pseudonym": "", "bio": "", "icon": "",
            "profileImage": ""}  # fmt: skip


@dataclass
class SyntheticLoad:
    """Extra trades at a fixed wall-clock rate on top of the tape (the benchmark's load: the real feed is about 50
    frames a second). A ``tracked_share`` of them are fills of ``tracked`` wallets (BUYs and SELLs on the world's
    tokens, decided by the loop); the rest are other wallets'."""

    frames_per_s: float
    tracked: list[str]
    tracked_share: float = 0.03
    seed: int = 0


#: the simulated feed's in-band clock between its sparse trades, in wall seconds (the real feed is dense: about 50
#: frames a second, so it is never silent for long when it is healthy)
CLOCK_EVERY_WALL_S = 0.25


class RtdsServer:
    """The RTDS websocket server, replaying ``world``'s tape from ``start_ts`` to ``end_ts`` on ``clock``."""

    def __init__(self, world: SimWorld, clock: SimClock, start_ts: int, end_ts: int, delays: Delays = Delays(),
                 faults: RtdsFaults | None = None, seed: int = 0, load: SyntheticLoad | None = None):  # fmt: skip
        self.world, self.clock, self.delays = world, clock, delays
        self.end_ts = end_ts
        self.load = load
        self.synthetic_sent = 0
        # the end frame's market time past end_ts (the loop's copy latency, to settle it)
        self.end_margin_s = 0.0
        self.faults = faults or RtdsFaults()
        tape = world.tape
        lo, hi = np.searchsorted(tape.ts, [start_ts, end_ts])
        self.rows = np.arange(lo, hi)
        rng = np.random.default_rng(seed)
        delay = delays.rtds(rng, len(self.rows))
        send = tape.ts[self.rows] + delay
        # in order, as the feed pushes blocks
        self.send_at = np.maximum.accumulate(send) if len(send) else send
        self.payloads = self._payloads(self.rows)
        self.clients: set = set()
        self.subscriptions: dict = {}
        self.sent = 0
        self.port: int | None = None
        self.done = asyncio.Event()
        self.started = asyncio.Event()
        self.bursts_sent_at: list[float] = []
        self.dropped = 0
        self._rng = random.Random(seed)
        self._server = None

    def _payloads(self, rows: np.ndarray) -> list[dict]:
        if not len(rows):
            return []
        objs = orjson.loads(SimPolymarket(self.world, dirty_share=0.0).trades_json(rows))
        for o in objs:
            for k in ("profileImageOptimized",):
                o.pop(k, None)
            o["proxyWallet"] = mixed_case(o["proxyWallet"])
        return objs

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> RtdsServer:
        # a market already running (another process's loop connects later)
        if self.clock.started_at is not None:
            self.started.set()
        self._server = await serve(self._handle, "127.0.0.1", 0, ping_interval=None, max_queue=None)
        self.port = self._server.sockets[0].getsockname()[1]
        self._task = asyncio.create_task(self._broadcast())
        self._load_task = asyncio.create_task(self._synthetic()) if self.load else None
        return self

    async def stop(self) -> None:
        self._task.cancel()
        if self._load_task is not None:
            self._load_task.cancel()
        self._server.close()
        await self._server.wait_closed()

    def _down(self) -> bool:
        return self.faults.down_from <= self.clock.now() < self.faults.down_until

    async def _handle(self, ws) -> None:
        if self._down():
            await ws.close(1013, "try again later")
            return
        subscribed: set[str] = set()
        try:
            async for message in ws:
                if message == "ping":
                    await ws.send("pong")
                    continue
                try:
                    doc = orjson.loads(message)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(doc, dict) or doc.get("action") != "subscribe":
                    continue  # without "action" the real server accepts the socket and sends nothing
                for s in doc.get("subscriptions") or []:
                    if isinstance(s, dict) and s.get("topic") == "activity":
                        subscribed.add(s.get("type"))
                if subscribed and ws not in self.clients:
                    self.subscriptions[ws] = subscribed
                    self.clients.add(ws)
                    if not self.started.is_set():  # the replay starts when the first client listens
                        self.clock.start()
                        self.started.set()
                    if self._rng.random() < 0.5:
                        await ws.send("")  # the first frame after subscribing can be empty
        except websockets.ConnectionClosed:
            pass
        finally:
            self.clients.discard(ws)
            self.subscriptions.pop(ws, None)

    def _frames(self, payload: dict, maker: bool, ms: int) -> list[tuple[str, str]]:
        types = ["trades"] if maker else ["trades", "orders_matched"]
        out = []
        for t in types:
            doc = {"connection_id": "", "payload": payload, "timestamp": ms, "topic": "activity", "type": t}
            if self._rng.random() < self.faults.unlabelled_share:
                doc.pop("topic")
                doc.pop("type")
            out.append((t, orjson.dumps(doc).decode()))
        return out

    async def _send(self, frames: list[tuple[str, str]]) -> None:
        f = self.faults
        now = self.clock.now()
        due = [t for t in f.drop_at if t <= now]
        if f.drop_requests or due:
            f.drop_requests = 0
            f.drop_at = [t for t in f.drop_at if t > now]
            for ws in list(self.clients):
                ws.transport.abort()  # no close frame: the client sees 1006
            self.clients.clear()
            self.dropped += 1
        if self._down():
            for ws in list(self.clients):
                ws.transport.abort()
            self.clients.clear()
            return
        if f.stall_from <= now < f.stall_until:
            return  # the sockets stay open and pings are answered: only the data stops
        for ws in list(self.clients):
            try:
                for t, text in frames:
                    if t not in self.subscriptions.get(ws, ()):
                        continue
                    if self._rng.random() < f.junk_share:
                        await ws.send(self._rng.choice(["", "not json {", "[1, 2]"]))
                    await ws.send(text)
                    self.sent += 1
                    if self._rng.random() < f.duplicate_share:
                        await ws.send(text)
            except websockets.ConnectionClosed:
                self.clients.discard(ws)

    def _burst(self, n: int, ts: int) -> list[tuple[str, str]]:
        """``n`` synthetic fills of untracked wallets, at market time ``ts``."""
        frames = []
        m = self.world.markets
        for i in range(n):
            k = self._rng.randrange(len(m))
            price, size = round(self._rng.uniform(0.05, 0.95), 3), round(self._rng.uniform(1, 50), 2)
            payload = _trade(m, k, True, side="BUY", price=price, size=size, ts=ts,
                             tx="0x" + hashlib.sha256(f"burst{ts}{i}".encode()).hexdigest(),
                             wallet="0x" + hashlib.sha1(f"burst-wallet-{i % 997}".encode()).hexdigest(),
                             label=("burst", f"burst-{k}", f"burst-{k}"))  # fmt: skip
            frames += self._frames(payload, True, ts * 1000)
        return frames

    def _clock_frame(self, ts: float, end: bool = False) -> list[tuple[str, str]]:
        payload = {"market_ts": ts} | ({"through": self.end_ts} if end else {})
        doc = {"topic": SIM_CLOCK_TOPIC, "type": "end" if end else "clock", "timestamp": int(ts * 1000),
               "payload": payload}  # fmt: skip
        text = orjson.dumps(doc).decode()
        return [("trades", text)]

    async def _until(self, due: float) -> None:
        """Sleep until market time ``due``, sending the in-band clock every ``CLOCK_EVERY_WALL_S`` meanwhile."""
        while True:
            now = self.clock.now()
            if now >= due:
                return
            step = min(due, now + CLOCK_EVERY_WALL_S * self.clock.speed)
            await asyncio.sleep(self.clock.wall_seconds(step - now))
            if step < due:
                await self._send(self._clock_frame(self.clock.now() - self.delays.rtds_max_s))

    async def _synthetic(self) -> None:
        """``load.frames_per_s`` trades a second (wall clock), stamped a feed delay before market time."""
        await self.started.wait()
        load, m = self.load, self.world.markets
        rng = random.Random(load.seed)
        sent, t0 = 0, time.perf_counter()
        while True:
            due = t0 + sent / load.frames_per_s
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            ts = int(self.clock.now() - self.delays.rtds_median_s)
            k = rng.randrange(len(m))
            tracked = load.tracked and rng.random() < load.tracked_share
            wallet = (
                rng.choice(load.tracked)
                if tracked
                else "0x" + hashlib.sha1(f"load{rng.random()}".encode()).hexdigest()
            )
            yes = rng.random() < 0.5
            price, side = round(rng.uniform(0.05, 0.95), 3), "BUY" if rng.random() < 0.7 else "SELL"
            size = round(rng.lognormvariate(6, 1.5), 2)
            tx = "0x" + hashlib.sha256(f"{ts}{sent}{rng.random()}".encode()).hexdigest()
            payload = _trade(m, k, yes, side=side, price=price, size=size, ts=ts, tx=tx, wallet=mixed_case(wallet),
                             label=("synthetic", f"e{k}", f"s{k}"))  # fmt: skip
            frames = self._frames(payload, not tracked, int(self.clock.now() * 1000))
            await self._send_bursts()
            await self._send(frames)
            sent += 1
            self.synthetic_sent += len(frames)

    async def _send_bursts(self) -> None:
        if (
            not self.faults.bursts
            or time.time() < (self.clock.started_at or 0.0) + self.faults.burst_after_wall_s
        ):
            return
        while self.faults.bursts:
            n = self.faults.bursts.pop(0)
            frames = self._burst(n, int(self.clock.now()) - int(self.delays.rtds_max_s))
            self.bursts_sent_at.append(time.time())
            await self._send(frames)

    async def _broadcast(self) -> None:
        await self.started.wait()
        tape = self.world.tape
        order = np.argsort(self.send_at + np.array([self.faults.late.get(int(r), 0.0) for r in self.rows]),
                           kind="stable") if self.faults.late else np.arange(len(self.rows))  # fmt: skip
        for i in order:
            row = int(self.rows[i])
            due = self.send_at[i] + self.faults.late.get(row, 0.0)
            await self._until(due)
            await self._send_bursts()
            ms = int(self.clock.now() * 1000)
            await self._send(self._frames(self.payloads[i], bool(tape.is_maker[row]), ms))
        await self._until(self.end_ts + self.delays.rtds_max_s)
        # in order, after the last
        await self._send(self._clock_frame(self.end_ts + self.end_margin_s, end=True))
        self.done.set()


# ------------------------------------------------------------------------------------------------ all of it


@contextmanager
def http_servers(world: SimWorld, clock: SimClock, delays: Delays = Delays(), data: Faults | None = None,
                 cdn: bool = True):  # fmt: skip
    """The clock-aware Data API, Gamma and CLOB on loopback (a context manager: the servers run in threads)."""
    transport = LiveTransport(
        SimPolymarket(world, dirty_share=0.0, offset_cap=10_000), clock, delays, cdn=cdn
    )
    with loopback_polymarket(transport, data=data) as lb:
        yield transport, lb


async def start_rtds(world: SimWorld, clock: SimClock, start_ts: int, end_ts: int, delays: Delays = Delays(),
                     faults: RtdsFaults | None = None, seed: int = 0,
                     load: SyntheticLoad | None = None) -> RtdsServer:  # fmt: skip
    return await RtdsServer(world, clock, start_ts, end_ts, delays, faults, seed, load).start()
