"""Validation at the boundary: every rule has a reason code, good rows pass untouched."""

import json

import pytest

from assets.ingest.clients import Page
from assets.ingest.records import Batch, parse_leaderboard, parse_markets, parse_price_history, parse_trades
from quality.quarantine import REASONS
from tests.conftest import load_fixture

NOW = 1_790_000_000
GOOD = load_fixture("edulabrador_trades.json")[0]


def parse(rows):
    batch = Batch()
    batch.add(Page("https://data-api.polymarket.com/trades?user=x", rows))
    return parse_trades(batch, source="live", now_ts=NOW)


def test_recorded_trades_pass_with_values_intact():
    rows = load_fixture("edulabrador_trades.json")
    out = parse(rows)
    assert out.n_accepted == 5 and out.n_rejected == 0
    first = out.accepted.slice(0, 1).to_pylist()[0]
    assert first["asset"] == rows[0]["asset"]  # 77-digit token id kept as text, exactly
    assert first["size"] == rows[0]["size"] and first["price"] == rows[0]["price"]
    assert first["ts"] == rows[0]["timestamp"] and first["proxy_wallet"] == rows[0]["proxyWallet"]


CASES = [
    ("bad_wallet", {"proxyWallet": "0xAC482F27AC3D1144CA4F778AF405EB5CAC5D2FEB"}),  # mixed case
    ("bad_wallet", {"proxyWallet": "redkollantai"}),
    ("bad_condition_id", {"conditionId": "0x1234"}),
    ("bad_token_id", {"asset": "12ab"}),
    ("bad_token_id", {"asset": str(2**256)}),  # 78 digits but above uint256
    ("bad_tx_hash", {"transactionHash": "not-a-hash"}),
    ("bad_side", {"side": "buy"}),
    ("size_not_positive", {"size": 0}),
    ("size_not_positive", {"size": -3.5}),
    ("size_out_of_range", {"size": 1e308}),
    ("missing_value", {"price": None}),
    ("bad_number", {"price": "abc"}),
    ("bad_number", {"price": True}),
    ("non_finite", {"price": "NaN"}),
    ("non_finite", {"size": float("inf")}),
    ("price_out_of_range", {"price": 1.2}),
    ("price_out_of_range", {"price": -0.01}),
    ("timestamp_millis", {"timestamp": 1_784_327_295_000}),
    ("timestamp_future", {"timestamp": NOW + 3600}),
    ("timestamp_invalid", {"timestamp": 12345}),
]


@pytest.mark.parametrize(("code", "change"), CASES, ids=[f"{c}-{list(v)[0]}" for c, v in CASES])
def test_each_rule_quarantines_with_its_reason(code, change):
    out = parse([GOOD, {**GOOD, **change}])
    assert out.n_accepted == 1 and out.n_rejected == 1
    rej = out.rejected.to_pylist()[0]
    assert rej["reason_code"] == code
    assert code in REASONS
    assert rej["origin"].startswith("https://data-api.polymarket.com/trades")
    assert rej["record"]  # the row as received, for the user to inspect


def test_missing_field_and_non_objects():
    row = dict(GOOD)
    del row["proxyWallet"]
    out = parse([row, "not an object", GOOD])
    assert sorted(out.rejected.column("reason_code").to_pylist()) == ["missing_value", "not_an_object"]


def test_all_failing_rules_are_listed_first_one_is_the_code():
    out = parse([{**GOOD, "size": 0, "price": None}])
    rej = out.rejected.to_pylist()[0]
    assert rej["reason_code"] == "size_not_positive"  # a dust fill first
    assert rej["reasons"] == "size_not_positive|missing_value|missing:price"  # the absent field is named


def test_negative_zero_price_is_zero_and_numeric_strings_parse():
    out = parse([{**GOOD, "price": -0.0}, {**GOOD, "price": "0.5", "size": "12.25"}])
    assert out.n_rejected == 0
    prices = out.accepted.column("price").to_pylist()
    assert str(prices[0]) == "0.0" and prices[1] == 0.5


def test_distinct_legs_of_one_transaction_are_kept():
    legs = [GOOD, {**GOOD, "size": GOOD["size"] / 2}, {**GOOD, "proxyWallet": "0x" + "1" * 40}]
    assert parse(legs).n_accepted == 3


def test_nul_bytes_are_removed_from_text():
    out = parse([{**GOOD, "title": "evil\x00title 🐋"}])
    assert out.accepted.column("title").to_pylist() == ["eviltitle 🐋"]


def test_markets_recorded_shapes():
    event = load_fixture("pscanner_event_with_resolved_markets.json")
    wrapper = {k: event[k] for k in ("id", "slug", "title", "tags")}
    nested = [{**m, "events": [wrapper]} for m in event["markets"]]  # /markets embeds the market's events
    rows = nested + [
        load_fixture("pscanner_market_open.json"),
        load_fixture("cascadian_market_2020_closed_raw.json"),
    ]
    batch = Batch()
    batch.add(Page("https://gamma-api.polymarket.com/markets?closed=true", rows))
    out = parse_markets(batch, source="live")
    assert out.n_rejected == 0 and out.n_accepted == 6
    by_id = {r["condition_id"]: r for r in out.accepted.to_pylist()}
    resolved = [r for r in by_id.values() if r["uma_resolution_status"] == "resolved"]
    assert len(resolved) == 2
    assert all(r["closed_time"].endswith("+00") for r in resolved)  # Postgres style kept as fetched
    assert all(r["outcome_prices"].startswith("[") for r in by_id.values())  # still JSON text
    labels = {t["label"] for r in by_id.values() for t in json.loads(r["tags"])}
    assert {"Crypto", "Finance"} <= labels  # categories come from the market's and its events' tags
    assert {r["event_slug"] for r in resolved} == {event["slug"]}
    assert "US-current-affairs" in {r["category"] for r in by_id.values()}  # legacy category kept as fetched


def test_markets_with_mismatched_arrays_are_quarantined():
    m = dict(load_fixture("pscanner_market_open.json"))
    m["clobTokenIds"] = '["1"]'  # two outcomes, one token
    batch = Batch()
    batch.add(Page("u", [m]))
    out = parse_markets(batch, source="live")
    assert out.rejected.column("reason_code").to_pylist() == ["bad_outcomes"]


def test_a_new_market_without_prices_is_kept_whether_the_field_is_null_or_absent():
    m = dict(load_fixture("pscanner_market_open.json"))
    absent = {k: v for k, v in m.items() if k != "outcomePrices"}
    batch = Batch()
    batch.add(Page("u", [{**m, "outcomePrices": None}, {**absent, "conditionId": "0x" + "c" * 64}]))
    out = parse_markets(batch, source="live")
    assert (out.n_accepted, out.n_rejected) == (2, 0)  # an absent key read as NaN once failed as bad_outcomes
    assert out.accepted.column("outcome_prices").to_pylist() == [None, None]


def test_price_history_points():
    token = "1" * 77
    pages = [
        Page(
            "u",
            [{"t": 1_760_000_000, "p": 0.42}, {"t": 1_760_003_600, "p": 1.5}],
            context={"token_id": token},
        )
    ]
    out = parse_price_history(pages, source="live", now_ts=NOW)
    assert out.accepted.to_pylist() == [{"token_id": token, "ts": 1_760_000_000, "price": 0.42}]
    assert out.rejected.column("reason_code").to_pylist() == ["price_out_of_range"]


def test_leaderboard_rank_is_a_string_on_the_wire():
    batch = Batch()
    batch.add(Page("u", load_fixture("edulabrador_leaderboard.json")))
    out = parse_leaderboard(batch, source="live", category="OVERALL", time_period="ALL", order_by="PNL")
    assert out.n_accepted == 50 and out.accepted.column("rank").to_pylist()[:3] == [1, 2, 3]
