"""A simulated Polymarket on real sockets (127.0.0.1 only), with faults injected at the HTTP and TCP level.

Each API (Data, Gamma, CLOB) gets its own ``ThreadingHTTPServer`` on an ephemeral loopback port. A request is
handed to a transport (``SimPolymarket``, the same answers the in-process transport gives, or the live
simulation's clock-aware one in ``live/sim_market.py``) unless the server's ``Faults`` script says otherwise for
that request. The reliability tests and ``whalecopy live --source sim`` both use it. Faults are decided by request number, so a sequential client meets the
same faults on every run:

- ``429`` / ``429ra``: Too Many Requests, without / with ``Retry-After``;
- ``500`` .. ``504``: server errors;
- ``reset``: the connection is closed with a TCP RST (SO_LINGER 0) before any response;
- ``timeout``: the server holds the request longer than the client's read timeout;
- ``cut``: a 200 whose body stops halfway while ``Content-Length`` promised all of it (a dropped download);
- ``truncated``: a 200 whose complete body is half a JSON document;
- ``html403``: Cloudflare's HTML challenge page with 403;
- ``repeat``: the page the previous request got, again (an offset the server ignored);
- ``stuck``: a Gamma keyset page whose ``next_cursor`` is the cursor it was asked for.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson

from .sim_api import CLOB_HOST, DATA_HOST, GAMMA_HOST

CLOUDFLARE_403 = (
    b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    b"<body><h1>Attention Required! | Cloudflare</h1></body></html>"
)


@dataclass
class Faults:
    """Which fault (if any) the n-th request (1-based) to one server meets.

    ``script`` names faults by request number; ``rule`` may decide for any request (it sees the number and the
    request's path and query); the rest draw from the probabilities with a seeded generator, one draw per request.
    """

    script: dict[int, str] = field(default_factory=dict)
    rule: Callable[[int, httpx.URL], str | None] | None = None
    p_5xx: float = 0.0
    p_reset: float = 0.0
    p_timeout: float = 0.0
    paths: tuple[str, ...] = ("/trades",)  # random faults hit only these paths
    seed: int = 0
    retry_after_s: int = 2
    timeout_hold_s: float = 0.6

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def pick(self, n: int, url: httpx.URL) -> str | None:
        draw = self._rng.random()  # drawn for every request, so the sequence does not depend on the script
        kind = self.script.get(n) or (self.rule(n, url) if self.rule else None)
        if kind or url.path not in self.paths:
            return kind
        if draw < self.p_5xx:
            return ("500", "502", "503", "504")[int(draw / self.p_5xx * 4) % 4]
        draw -= self.p_5xx
        if draw < self.p_reset:
            return "reset"
        draw -= self.p_reset
        if draw < self.p_timeout:
            return "timeout"
        return None


@dataclass
class Served:
    """What one loopback server saw: every request's URL and the fault (or None) it met."""

    log: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def faults(self) -> Counter:
        with self.lock:
            return Counter(kind for _, kind in self.log if kind)

    def attempts_per_url(self) -> Counter:
        with self.lock:
            return Counter(url for url, _ in self.log)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sim: httpx.BaseTransport, host: str, faults: Faults):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sim, self.sim_host, self.faults = sim, host, faults
        self.served = Served()
        self.count = 0
        self.count_lock = threading.Lock()
        self.last_body: bytes | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        with srv.count_lock:
            srv.count += 1
            n = srv.count
        url = httpx.URL(f"http://{srv.sim_host}{self.path}")
        kind = srv.faults.pick(n, url)
        with srv.served.lock:
            srv.served.log.append((self.path, kind))
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return  # the socket is closed with an RST and no bytes
        if kind == "timeout":
            time.sleep(srv.faults.timeout_hold_s)
            self.close_connection = True
            return
        if kind in ("429", "429ra"):
            headers = {"Retry-After": str(srv.faults.retry_after_s)} if kind == "429ra" else {}
            return self._send(429, b'{"error":"Too Many Requests"}', headers)
        if kind in ("500", "502", "503", "504"):
            return self._send(int(kind), b'{"error":"upstream"}')
        if kind == "html403":
            return self._send(403, CLOUDFLARE_403, content_type="text/html; charset=UTF-8")
        if kind == "repeat" and srv.last_body is not None:
            return self._send(200, srv.last_body)
        response = srv.sim.handle_request(httpx.Request("GET", url))
        body = response.read()
        if kind == "stuck":
            doc = orjson.loads(body)
            doc["next_cursor"] = url.params.get("after_cursor") or doc.get("next_cursor")
            body = orjson.dumps(doc)
        if kind == "truncated":
            return self._send(response.status_code, body[: len(body) // 2])
        if kind == "cut":
            self.send_response(response.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if response.status_code == 200:
            srv.last_body = body
        passed = {
            k: v for k, v in response.headers.items() if k.lower() in ("cache-control", "age", "retry-after")
        }
        self._send(response.status_code, body, passed)

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Loopback:
    data: _Server
    gamma: _Server
    clob: _Server


@contextmanager
def loopback_polymarket(
    sim: httpx.BaseTransport,
    *,
    data: Faults | None = None,
    gamma: Faults | None = None,
    clob: Faults | None = None,
) -> Iterator[Loopback]:
    """Three loopback servers answering from ``sim`` (a ``SimPolymarket`` or a transport wrapping one), each with
    its own fault script."""
    servers = [
        _Server(sim, host, faults or Faults())
        for host, faults in ((DATA_HOST, data), (GAMMA_HOST, gamma), (CLOB_HOST, clob))
    ]
    threads = [
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True) for s in servers
    ]
    for t in threads:
        t.start()
    try:
        yield Loopback(*servers)
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
