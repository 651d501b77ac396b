"""The Data API's /activity rows: what is kept, what is quarantined and why (records.parse_activity)."""

import pytest

from assets.ingest.clients import Page
from assets.ingest.records import ACTIVITY_TYPES, Batch, parse_activity
from quality.quarantine import REASONS
from tests.conftest import load_fixture

NOW = 1_790_000_000
RECORDED = load_fixture("edulabrador_activity_all.json")
TRADE = next(r for r in RECORDED if r["type"] == "TRADE")
REDEEM = next(r for r in RECORDED if r["type"] == "REDEEM")
REWARD = next(r for r in RECORDED if r["type"] == "REWARD")
SPLIT = {**REDEEM, "type": "SPLIT", "size": 250.0, "usdcSize": 250.0}
CONVERSION = {**TRADE, "type": "CONVERSION", "side": "SELL", "price": 0, "usdcSize": 0}


def parse(rows):
    batch = Batch()
    batch.add(Page("https://data-api.polymarket.com/activity?user=x", rows))
    return parse_activity(batch, source="live", now_ts=NOW)


def test_the_recorded_activity_is_kept_with_every_type_and_its_blank_ids_read_as_null():
    out = parse(RECORDED)
    assert out.n_accepted == 50 and out.n_rejected == 0
    rows = out.accepted.to_pylist()
    assert {r["type"] for r in rows} == {"TRADE", "REWARD", "REDEEM", "MAKER_REBATE", "TAKER_REBATE"}
    reward = next(r for r in rows if r["type"] == "REWARD")
    assert reward["condition_id"] is None and reward["asset"] is None and reward["side"] is None  # were ""
    assert reward["usdc_size"] == REWARD["usdcSize"] and reward["outcome_index"] == 999
    redeem = next(r for r in rows if r["type"] == "REDEEM")
    assert redeem["condition_id"] == REDEEM["conditionId"] and redeem["usdc_size"] == REDEEM["usdcSize"]
    trade = next(r for r in rows if r["type"] == "TRADE")
    assert trade["asset"] == TRADE["asset"] and trade["price"] == TRADE["price"]  # 77-digit id kept exactly


def test_the_types_are_the_documented_ones_and_taker_rebate():
    assert set(ACTIVITY_TYPES) == {"TRADE", "SPLIT", "MERGE", "REDEEM", "REWARD", "CONVERSION",
                                   "MAKER_REBATE", "TAKER_REBATE"}  # fmt: skip
    out = parse([SPLIT, {**SPLIT, "type": "merge"}, CONVERSION, {**REDEEM, "size": 0, "usdcSize": 0}])
    assert out.n_rejected == 0
    assert out.accepted.column("type").to_pylist() == ["SPLIT", "MERGE", "CONVERSION", "REDEEM"]


CASES = [
    ("unknown_activity_type", REWARD, {"type": "AIRDROP"}),
    ("missing_value", SPLIT, {"conditionId": ""}),  # a split must name its market
    ("missing_value", CONVERSION, {"asset": ""}),  # a conversion leg its token
    ("missing_value", CONVERSION, {"side": ""}),
    ("missing_value", TRADE, {"price": None}),
    ("missing_value", REWARD, {"usdcSize": None}),
    ("bad_wallet", REWARD, {"proxyWallet": "0xABC"}),
    ("bad_condition_id", REDEEM, {"conditionId": "0x12"}),
    ("bad_token_id", TRADE, {"asset": "12ab"}),
    ("bad_side", CONVERSION, {"side": "both"}),
    ("amount_negative", REDEEM, {"usdcSize": -1.0}),
    ("amount_negative", SPLIT, {"size": -5.0}),
    ("size_not_positive", TRADE, {"size": 0}),
    ("size_out_of_range", REWARD, {"usdcSize": 1e12}),
    ("bad_number", REWARD, {"size": "lots"}),
    ("non_finite", REWARD, {"usdcSize": "NaN"}),
    ("price_out_of_range", TRADE, {"price": 1.5}),
    ("timestamp_millis", REWARD, {"timestamp": REWARD["timestamp"] * 1000}),
    ("timestamp_future", REWARD, {"timestamp": NOW + 3600}),
    ("timestamp_invalid", REWARD, {"timestamp": 12345}),
]


@pytest.mark.parametrize(("code", "base", "change"), CASES, ids=[f"{c}-{list(v)[0]}" for c, _, v in CASES])
def test_each_rule_quarantines_with_its_reason(code, base, change):
    out = parse([base, {**base, **change}])
    assert out.n_accepted == 1 and out.n_rejected == 1
    rej = out.rejected.to_pylist()[0]
    assert rej["reason_code"] == code and code in REASONS
    assert rej["entity"] == "activity" and rej["origin"].startswith(
        "https://data-api.polymarket.com/activity"
    )


def test_a_future_timestamp_exactly_at_the_slack_is_kept_and_one_second_later_is_not():
    out = parse([{**REWARD, "timestamp": NOW + 300}, {**REWARD, "timestamp": NOW + 301}])
    assert out.n_accepted == 1 and out.rejected.column("reason_code").to_pylist() == ["timestamp_future"]


def test_a_missing_field_is_named():
    out = parse([{k: v for k, v in SPLIT.items() if k != "conditionId"}])
    assert out.rejected.column("reasons").to_pylist() == ["missing_value|missing:conditionId"]


def test_the_activity_plan_carries_each_wallets_stream_on_from_where_it_stopped():
    from assets.ingest.ingest import activity_plan

    held = {"a": (100, 199), "b": (100, 299), "c": (150, 250)}
    # the window [200, 299]: a carries on from 200, b is covered, c from the window (what it holds: repeats), d is
    # new: from the first fill, 100
    assert activity_plan(["a", "b", "c", "d"], held, 200, 299, history_start=100) == [
        ("a", 200), ("c", 200), ("d", 100)]  # fmt: skip
    # a stream stopped before the window: fetched from where it stopped, so the days between are not lost
    assert activity_plan(["a"], {"a": (100, 149)}, 200, 299, history_start=100) == [("a", 150)]
    assert activity_plan(["b"], held, 200, 299, history_start=100, refetch=True) == [("b", 200)]
