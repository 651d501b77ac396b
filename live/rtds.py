"""The RTDS client: subscribe to ``activity`` (``trades`` and ``orders_matched``), send ``ping`` every 5 s, and
reconnect hard, with full jitter, when no payload has come for 15 s (a socket that is open and answers pings is
not necessarily delivering data: real-time-data-client TROUBLESHOOTING.md). Re-subscribing on the same socket
does not help, so the watchdog aborts the socket and opens a new one.

Each frame is routed (``live.model.route_frame``) and handed on with the time it arrived; the handler never
raises into the stream. Connection events (connected, watchdog, closed, connect_failed) go to ``on_event`` so the
loop can open a gap and replay it from the Data API before it trusts the new session.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import orjson
import websockets
from websockets.asyncio.client import connect

from .model import Frame, route_frame

SUBSCRIBE = {
    "action": "subscribe",
    "subscriptions": [
        {"topic": "activity", "type": "trades"},
        {"topic": "activity", "type": "orders_matched"},
    ],
}


class _Watchdog(Exception):
    pass


class RtdsClient:
    def __init__(self, url: str, on_frame: Callable[[Frame, float], None], on_event: Callable[[str, dict], None], *,
                 ping_s: float = 5.0, watchdog_s: float = 15.0, connect_timeout_s: float = 10.0,
                 backoff_base_s: float = 0.5, backoff_cap_s: float = 10.0, seed: int | None = None):  # fmt: skip
        self.url, self.on_frame, self.on_event = url, on_frame, on_event
        self.ping_s, self.watchdog_s, self.connect_timeout_s = ping_s, watchdog_s, connect_timeout_s
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.rng = random.Random(seed)
        self.connected = False
        self.sessions = 0
        self.frames = 0
        self.last_payload = 0.0
        self.tripped = False

    async def _ping(self, ws) -> None:
        while True:
            await asyncio.sleep(self.ping_s)
            await ws.send("ping")

    async def _session(self, ws) -> None:
        await ws.send(orjson.dumps(SUBSCRIBE).decode())
        self.connected = True
        self.sessions += 1
        self.on_event("connected", {"session": self.sessions})
        self.last_payload = time.perf_counter()
        pinger = asyncio.create_task(self._ping(ws))
        watchdog = asyncio.create_task(self._watch(ws))
        try:
            async for message in ws:
                now = time.perf_counter()
                frame = route_frame(message)
                self.frames += 1
                if frame.kind in ("trade", "clock"):
                    self.last_payload = now
                try:
                    self.on_frame(frame, now)
                except Exception as exc:  # a handler never raises into the stream
                    self.on_event("handler_error", {"error": repr(exc)})
            raise websockets.ConnectionClosed(ws.close_rcvd, ws.close_sent)
        except websockets.ConnectionClosed:
            if self.tripped:
                raise _Watchdog from None
            raise
        finally:
            pinger.cancel()
            watchdog.cancel()
            self.connected = False

    async def _watch(self, ws) -> None:
        """No payload for ``watchdog_s``: abort the socket (the reader then sees it closed, and reconnects)."""
        self.tripped = False
        while True:
            left = self.watchdog_s - (time.perf_counter() - self.last_payload)
            if left <= 0:
                self.tripped = True
                ws.transport.abort()
                return
            await asyncio.sleep(left)

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            ws = None
            try:
                ws = await asyncio.wait_for(
                    connect(self.url, ping_interval=None, close_timeout=1, max_size=2**24, max_queue=None),
                    timeout=self.connect_timeout_s,
                )
                attempt = 0
                await self._session(ws)
            except _Watchdog:
                self.on_event("watchdog", {"silent_s": self.watchdog_s})
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                self.on_event("closed", {"code": code})
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
                self.on_event("connect_failed", {"error": f"{type(exc).__name__}: {exc}"})
            except asyncio.CancelledError:
                raise
            finally:
                if ws is not None:
                    ws.transport.abort()  # hard: no close handshake with a socket that stopped delivering
            attempt += 1
            delay = self.rng.uniform(0.0, min(self.backoff_cap_s, self.backoff_base_s * 2**attempt))
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
