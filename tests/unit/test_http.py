"""The HTTP core: retries, Retry-After, backoff bounds, token buckets and errors that name the URL."""

import email.utils

import httpx
import pytest

from assets.ingest.http import (
    ApiClient,
    ApiStatusError,
    NonJsonBodyError,
    RetriesExhaustedError,
    RetryPolicy,
    TokenBucket,
    parse_retry_after,
)


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def scripted(responses):
    """A transport answering from a list of callables/responses, one per request."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses[min(len(seen), len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler), seen


def client(transport, clock=None, attempts=6, limits=None):
    clock = clock or FakeClock()
    return ApiClient(
        "https://data-api.polymarket.com",
        transport=transport,
        retry=RetryPolicy(max_attempts=attempts),
        sleep=clock.sleep,
        clock=clock.time,
        limits=limits,
        seed=1,
    ), clock


def ok(body=b"[]"):
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


def test_retry_after_is_honoured_then_succeeds():
    transport, seen = scripted([
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(503),
        ok(b'[{"a": 1}]'),
    ])  # fmt: skip
    api, clock = client(transport)
    assert api.get_json("/trades", {"user": "0xabc"}) == [{"a": 1}]
    assert len(seen) == 3
    assert clock.sleeps[0] == 7.0  # Retry-After, exactly
    assert 0.0 <= clock.sleeps[1] <= 1.0  # full jitter on attempt 1: uniform(0, 0.5 * 2**1)
    assert api.stats.retries == 2 and api.stats.throttled == 1


def test_retry_after_as_http_date():
    when = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after(when, now=1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "fault",
    [httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.ReadError("connection reset by peer")],
)
def test_transport_faults_are_retried(fault):
    transport, seen = scripted([fault, ok()])
    api, _ = client(transport)
    assert api.get_json("/trades") == []
    assert len(seen) == 2


def test_attempts_are_bounded_and_the_error_names_the_url():
    transport, seen = scripted([httpx.Response(500)])
    api, clock = client(transport, attempts=4)
    with pytest.raises(RetriesExhaustedError) as info:
        api.get_json("/trades", {"market": "0xdead", "limit": 500})
    assert len(seen) == 4
    assert "https://data-api.polymarket.com/trades?market=0xdead&limit=500" in str(info.value)
    assert "HTTP 500" in str(info.value)
    # full jitter: each backoff within [0, min(cap, base * 2**attempt)]
    assert all(0 <= s <= 0.5 * 2**i for i, s in enumerate(clock.sleeps))


def test_cloudflare_html_is_an_error_naming_the_url_and_not_retried():
    html = b"<!DOCTYPE html><html><title>Just a moment...</title></html>"
    transport, seen = scripted([httpx.Response(403, content=html, headers={"content-type": "text/html"})])
    api, _ = client(transport)
    with pytest.raises(NonJsonBodyError) as info:
        api.get_json("/trades", {"user": "0x1"})
    assert "Cloudflare" in str(info.value) and "/trades?user=0x1" in str(info.value)
    assert len(seen) == 1


def test_html_with_200_is_never_read_as_no_more_data():
    transport, _ = scripted([httpx.Response(200, content=b"<html>Attention Required</html>")])
    api, _ = client(transport)
    with pytest.raises(NonJsonBodyError):
        api.get_json("/trades")


def test_truncated_json_is_retried_then_reported():
    transport, seen = scripted([ok(b'[{"proxyWallet": "0x'), ok(b'[{"a": 2}]')])
    api, _ = client(transport)
    assert api.get_json("/trades") == [{"a": 2}]
    transport, seen = scripted([ok(b'[{"proxyWallet": "0x')])
    api, _ = client(transport, attempts=3)
    with pytest.raises(RetriesExhaustedError, match="not valid JSON"):
        api.get_json("/trades")
    assert len(seen) == 3


def test_client_errors_are_not_retried():
    transport, seen = scripted([httpx.Response(400, content=b'{"error": "offset too large"}')])
    api, _ = client(transport)
    with pytest.raises(ApiStatusError) as info:
        api.get_json("/trades", {"offset": 20000})
    assert info.value.status == 400 and "offset too large" in str(info.value)
    assert len(seen) == 1


def test_token_bucket_holds_the_documented_rate():
    clock = FakeClock()
    bucket = TokenBucket(200, 10.0, clock=clock.time, sleep=clock.sleep)
    for _ in range(1000):
        bucket.acquire()
    # 200 free, then 800 more at 20/s: 40 s of waiting, and never more than 200 in any 10 s window
    assert clock.now == pytest.approx(40.0, abs=0.05)


def test_per_endpoint_buckets_pick_the_longest_prefix():
    transport, _ = scripted([ok()])
    clock = FakeClock()
    api, _ = client(transport, clock=clock, limits={"": 1000, "/trades": 2})
    for _ in range(4):
        api.get_json("/trades")
    assert clock.now == pytest.approx(10.0)  # 2 per 10 s on /trades: the 3rd and 4th wait 5 s each
    for _ in range(10):
        api.get_json("/activity")
    assert clock.now == pytest.approx(10.0)  # the general bucket is far from empty
