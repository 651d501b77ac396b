"""The HTTP core every Polymarket client shares: retries, backoff, rate limits, and errors that name the URL.

- Retries on 429 (honouring ``Retry-After``), 5xx, timeouts, connection resets and truncated bodies, with
  exponential backoff and full jitter, and a bounded number of attempts.
- A client-side token bucket per endpoint at the documented limits (requests per 10-second window).
- A body that is not JSON (a Cloudflare HTML page, a truncated download) is an error naming the URL; it is never
  read as "no more data".
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson


class PolymarketError(RuntimeError):
    """Base error. ``url`` names the request that failed."""

    def __init__(self, message: str, url: str, status: int | None = None):
        url = str(url)
        super().__init__(f"{message} [{url}]")
        self.url = url
        self.status = status


class ApiStatusError(PolymarketError):
    """A non-retryable HTTP status (a 4xx other than 429), or retries exhausted on 429/5xx."""


class NonJsonBodyError(PolymarketError):
    """The body was not JSON: an HTML page (Cloudflare), an empty or a truncated body."""

    def __init__(self, message: str, url: str, status: int | None = None, excerpt: str = ""):
        super().__init__(message, url, status)
        self.excerpt = excerpt


class RetriesExhaustedError(PolymarketError):
    """Every attempt failed with a retryable fault."""


class PaginationError(PolymarketError):
    """A repeated page, a cursor that does not advance, or a loop that hit its bound."""


# Documented limits (requests per 10 s), see polymarket_api.md §3. Longest matching prefix wins.
DATA_API_LIMITS: dict[str, int] = {"": 1000, "/trades": 200, "/positions": 150, "/closed-positions": 150}
GAMMA_LIMITS: dict[str, int] = {"": 4000, "/markets": 300, "/events": 500}
CLOB_LIMITS: dict[str, int] = {"": 9000, "/prices-history": 1000}
WINDOW_S = 10.0


class TokenBucket:
    """Classic token bucket: ``capacity`` tokens refilled continuously over ``period`` seconds."""

    def __init__(
        self,
        capacity: int,
        period: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if capacity <= 0:
            raise ValueError("token bucket capacity must be positive")
        self.capacity = float(capacity)
        self.rate = capacity / period
        self.tokens = float(capacity)
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.waited_s = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available. Returns the time slept."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            wait = 0.0
            if self.tokens < 1.0:
                wait = (1.0 - self.tokens) / self.rate
                self.sleep(wait)
                self.waited_s += wait
                self.tokens = 1.0
                self.updated = self.clock()
            self.tokens -= 1.0
            return wait


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**attempt)) (AWS architecture blog, 'Exponential Backoff')."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * (2.0**attempt)))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date. None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class CallStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    slept_s: float = 0.0


class ApiClient:
    """One Polymarket API host. ``transport`` lets tests and the simulator answer in process."""

    RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        limits: Mapping[str, int] | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.stats = CallStats()
        self._buckets = {
            prefix: TokenBucket(n, WINDOW_S, clock=clock, sleep=self._sleep)
            for prefix, n in (limits or {}).items()
        }
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            headers={
                "User-Agent": "whalecopy/0.1 (+https://github.com/whalecopy)",
                "Accept": "application/json",
            },
            follow_redirects=True,
        )

    def _sleep(self, seconds: float) -> None:
        self.stats.slept_s += seconds
        self.sleep(seconds)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _bucket(self, path: str) -> TokenBucket | None:
        best = None
        for prefix in self._buckets:
            if path.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return None if best is None else self._buckets[best]

    def url_for(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        return str(self._http.build_request("GET", path, params=_clean(params)).url)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` and decode JSON, retrying transient faults. Raises a ``PolymarketError`` naming the URL."""
        params = _clean(params)
        url = _LazyUrl(self, path, params)  # built only for an error message
        bucket = self._bucket(path)
        last: str = ""
        for attempt in range(self.retry.max_attempts):
            if bucket is not None:
                bucket.acquire()
            self.stats.requests += 1
            wait: float | None = None
            try:
                response = self._http.get(path, params=params)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status == 429:
                    self.stats.throttled += 1
                    last = "HTTP 429 Too Many Requests"
                    wait = parse_retry_after(response.headers.get("Retry-After"))
                    if wait is not None:
                        wait = min(wait, self.retry.max_retry_after_s)
                elif status in self.RETRY_STATUSES or status >= 500:
                    last = f"HTTP {status}"
                elif status >= 400:
                    if response.content.lstrip()[:1] == b"<":
                        raise NonJsonBodyError(
                            f"HTTP {status} with an HTML page (Cloudflare block?)",
                            url,
                            status,
                            _excerpt(response.content),
                        )
                    raise ApiStatusError(f"HTTP {status}: {_excerpt(response.content)}", url, status=status)
                else:
                    try:
                        return decode_json(
                            response.content, url, status, response.headers.get("content-type")
                        )
                    except NonJsonBodyError as exc:
                        if exc.excerpt.lstrip().startswith("<"):
                            raise  # an HTML page (Cloudflare challenge) with 2xx: not transient
                        last = str(exc)  # truncated or empty body: retry, it is usually a dropped connection
            if attempt + 1 >= self.retry.max_attempts:
                break
            self.stats.retries += 1
            delay = self.retry.backoff(attempt, self.rng) if wait is None else wait
            self._sleep(delay)
        raise RetriesExhaustedError(
            f"gave up after {self.retry.max_attempts} attempts; last fault: {last}", url
        )


class _LazyUrl:
    def __init__(self, client: ApiClient, path: str, params: dict[str, Any]):
        self.client, self.path, self.params = client, path, params

    def __str__(self) -> str:
        return self.client.url_for(self.path, self.params)

    __repr__ = __str__


def decode_json(body: bytes, url: str, status: int | None = None, content_type: str | None = None) -> Any:
    """Decode a JSON body or raise ``NonJsonBodyError`` naming the URL (HTML, empty, truncated)."""
    if not body or not body.strip():
        raise NonJsonBodyError("empty body where JSON was expected", url, status, "")
    head = body.lstrip()[:1]
    if head == b"<" or (content_type and "html" in content_type.lower()):
        raise NonJsonBodyError(
            "HTML page where JSON was expected (Cloudflare block or error page?)", url, status, _excerpt(body)
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NonJsonBodyError(f"body is not valid JSON ({exc})", url, status, _excerpt(body)) from exc


def _excerpt(body: bytes, n: int = 200) -> str:
    return body[:n].decode("utf-8", "replace")


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Drop None values and render booleans the way the Polymarket APIs expect (``true``/``false``)."""
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = value
    return out
