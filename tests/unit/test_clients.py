"""Pagination and endpoint handling of the Polymarket clients, against mock servers with the recorded shapes."""

import httpx
import orjson
import pytest

from assets.ingest.clients import DataApi, GammaApi
from assets.ingest.http import ApiClient, PaginationError, RetryPolicy
from tests.conftest import load_fixture

TEMPLATE = load_fixture("edulabrador_trades.json")[0]


def make_rows(n: int, ts0: int = 1_760_000_000, same_ts_every: int = 1) -> list[dict]:
    rows = []
    for i in range(n):
        r = dict(TEMPLATE)
        r["transactionHash"] = "0x" + f"{i:064x}"
        r["timestamp"] = ts0 + i // same_ts_every
        r["size"] = 10.0 + i
        rows.append(r)
    return rows


class TradesServer:
    """/trades over an in-memory tape: newest first, page cap, offset cap (answered 400), start/end inclusive."""

    def __init__(self, rows, page_cap=100, offset_cap=300, ignore_offset=False):
        self.rows = sorted(rows, key=lambda r: (r["timestamp"], r["transactionHash"]), reverse=True)
        self.page_cap, self.offset_cap, self.ignore_offset = page_cap, offset_cap, ignore_offset
        self.requests: list[httpx.QueryParams] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        self.requests.append(q)
        offset = int(q.get("offset", 0))
        if offset > self.offset_cap:
            return httpx.Response(400, json={"error": "max offset exceeded"})
        start, end = int(q.get("start", 0)), int(q.get("end", 2**62))
        hits = [r for r in self.rows if start <= r["timestamp"] <= end]
        if self.ignore_offset:
            offset = 0
        page = hits[offset : offset + min(int(q.get("limit", 100)), self.page_cap)]
        return httpx.Response(200, content=orjson.dumps(page))


def data_api(server, page_limit=500, offset_cap=10_000) -> DataApi:
    api = ApiClient("https://data-api.polymarket.com", transport=httpx.MockTransport(server),
                    retry=RetryPolicy(max_attempts=2), sleep=lambda s: None)  # fmt: skip
    return DataApi(api, page_limit=page_limit, offset_cap=offset_cap)


def keys(pages):
    return [(r["transactionHash"], r["timestamp"]) for p in pages for r in p.rows]


def test_reads_the_page_size_it_got_and_stops_on_a_short_page():
    server = TradesServer(make_rows(250), page_cap=100, offset_cap=10_000)
    pages = list(data_api(server).trades(user="0xabc", start=1, end=2**40))
    assert [len(p.rows) for p in pages] == [100, 100, 50]
    assert len(server.requests) == 3  # no request after the short page
    assert all(q["takerOnly"] == "false" for q in server.requests)  # maker fills are not hidden


def test_offset_cap_switches_to_time_windows_and_loses_nothing():
    rows = make_rows(1000, same_ts_every=3)  # three fills per second: windows meet inside a second
    server = TradesServer(rows, page_cap=100, offset_cap=300)
    pages = list(data_api(server, offset_cap=300).trades(markets=["0x" + "a" * 64], start=1, end=2**40))
    got = keys(pages)
    assert set(got) == {(r["transactionHash"], r["timestamp"]) for r in rows}
    assert len(got) > len(set(got))  # boundary seconds were read twice: the loader's natural key drops them
    assert any(q.get("end") not in (None, str(2**40)) for q in server.requests)


def test_a_400_at_a_deep_offset_also_switches_to_windows():
    rows = make_rows(700)
    server = TradesServer(rows, page_cap=100, offset_cap=200)  # the server's cap is lower than ours
    pages = list(data_api(server, offset_cap=10_000).trades(user="0xabc", start=1, end=2**40))
    assert set(keys(pages)) == {(r["transactionHash"], r["timestamp"]) for r in rows}


def test_a_repeated_page_is_an_error_naming_the_url():
    server = TradesServer(make_rows(500), page_cap=100, ignore_offset=True)
    with pytest.raises(PaginationError, match=r"same page twice.*data-api.polymarket.com/trades\?"):
        list(data_api(server).trades(user="0xabc", start=1, end=2**40))


def test_a_window_that_cannot_advance_is_an_error():
    rows = make_rows(600, same_ts_every=600)  # 600 fills in one second, offset cap 300
    server = TradesServer(rows, page_cap=100, offset_cap=300)
    with pytest.raises(PaginationError, match="cannot advance"):
        list(data_api(server, offset_cap=300).trades(user="0xabc", start=1, end=2**40))


def test_an_error_body_instead_of_an_array_is_not_no_more_data():
    server = lambda request: httpx.Response(200, json={"error": "internal"})  # noqa: E731
    with pytest.raises(PaginationError, match="expected a JSON array"):
        list(data_api(server).trades(user="0xabc"))


def test_the_bare_feed_is_refused():
    with pytest.raises(ValueError, match="user=, markets= or min_cash="):
        list(data_api(TradesServer([])).trades())


def test_large_trade_discovery_sends_cash_filter():
    server = TradesServer(make_rows(3))
    list(data_api(server).trades(min_cash=10_000, start=1, end=2))
    q = server.requests[0]
    assert q["filterType"] == "CASH" and float(q["filterAmount"]) == 10_000


def test_leaderboard_pages_of_50_with_the_recorded_shape():
    board = load_fixture("edulabrador_leaderboard.json")
    seen = []

    def server(request):
        seen.append(request.url.params)
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        assert limit <= 50
        return httpx.Response(200, content=orjson.dumps(board[offset : offset + limit]))

    api = DataApi(ApiClient("https://data-api.polymarket.com", transport=httpx.MockTransport(server)))
    pages = list(api.leaderboard(limit=80))
    assert sum(len(p.rows) for p in pages) == 50  # the recorded board has 50 rows: stops on the short page
    assert seen[0]["timePeriod"] == "ALL"  # the API's default is DAY


def gamma_server(markets, keyset=True, stuck_cursor=False):
    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        closed = q.get("closed", "false") == "true"
        rows = [m for m in markets if m["closed"] == closed]
        limit = int(q.get("limit", 20))
        if request.url.path == "/markets/keyset":
            if not keyset:
                return httpx.Response(404, json={"error": "not found"})
            start = int(q.get("after_cursor") or 0)
            body = {"markets": rows[start : start + limit]}
            if start + limit < len(rows):
                body["next_cursor"] = "0" if stuck_cursor else str(start + limit)
            return httpx.Response(200, content=orjson.dumps(body))
        offset = int(q.get("offset", 0))
        return httpx.Response(200, content=orjson.dumps(rows[offset : offset + limit]))

    return httpx.MockTransport(handler)


def recorded_markets(n=7):
    event = load_fixture("pscanner_event_with_resolved_markets.json")
    out = []
    for i in range(n):
        m = dict(event["markets"][i % 4])
        m["conditionId"] = "0x" + f"{i:064x}"
        out.append(m)
    return out


@pytest.mark.parametrize("keyset", [True, False])
def test_gamma_reads_open_and_closed_markets(keyset):
    markets = recorded_markets(9)
    api = GammaApi(
        ApiClient("https://gamma-api.polymarket.com", transport=gamma_server(markets, keyset)), page_limit=2
    )
    got = [m["conditionId"] for closed in (False, True) for p in api.markets(closed=closed) for m in p.rows]
    assert sorted(got) == sorted(m["conditionId"] for m in markets)


def test_a_keyset_cursor_that_does_not_advance_is_an_error():
    api = GammaApi(ApiClient("https://gamma-api.polymarket.com",
                             transport=gamma_server(recorded_markets(9), stuck_cursor=True)), page_limit=1)  # fmt: skip
    with pytest.raises(PaginationError, match="cursor did not advance"):
        list(api.markets(closed=True))
