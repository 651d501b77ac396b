"""The live loop's pure rules (live/model.py, live/checks.py): frames, one validation with the batch, the fill key,
dedupe, the market clock, coverage and loss events, state, pacing, latency. Each threshold has a row on it."""

from __future__ import annotations

import math
import random

import duckdb
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest

from assets.ingest.clients import Page
from assets.ingest.records import Batch, parse_trades
from assets.ingest.store import FILL_KEY_SQL
from live import checks, model
from live.loop import read_watchlist

CAPTURED = (
    '{"connection_id":"gXseIO-NQWeIKEhJwA==","payload":{"asset":"72551024098258542594534683942523606143014690620243'
    '023298497729957846870197074","bio":"","conditionId":"0x1d8720896546460a48d4f7fd5b3f0705a8d427921222de498d1cd334'
    'd4890c52","eventSlug":"highest-temperature-in-wellington-on-august-19-2026","icon":"https://x.jpg","name":"PPMT",'
    '"outcome":"No","outcomeIndex":1,"price":0.26,"profileImage":"","proxyWallet":"0x510F4963b66B1B18505faaB74b0bB94'
    '3D1dDa43C","pseudonym":"Rowdy-Tenement","side":"BUY","size":2.7027,"slug":"highest-temperature-in-wellington-on'
    '-august-19-2026-10c","timestamp":1787102287,"title":"Will the highest temperature in Wellington be 10C on August'
    ' 19?","transactionHash":"0xb6acf6859bc84216f4b3e2567fb392a2eae19d275340ad96ea17218ccfec27b7"},"timestamp":17871'
    '02287053,"topic":"activity","type":"trades"}'
)  # polymarket_realtime.md §2, as captured on 2026-08-19
NOW = 1_787_102_300


# ------------------------------------------------------------------------------------------------ frames


def test_the_captured_frame_routes_to_one_trade_and_validates_with_its_wallet_lower_cased():
    frame = model.route_frame(CAPTURED)
    assert frame.kind == "trade" and frame.rtds_type == "trades" and frame.server_ms == 1787102287053
    (payload,) = frame.payloads
    out = model.normalise(list(frame.payloads), ["rtds"], source="live", now_ts=NOW)
    (row,) = out.rows
    assert row["proxy_wallet"] == payload["proxyWallet"].lower() and out.rejected == []
    assert row["size"] == 2.7027 and row["ts"] == 1787102287 and row["outcome_index"] == 1


@pytest.mark.parametrize(
    ("text", "kind", "detail"),
    [
        ("", "empty", None), ("   ", "empty", None), ("pong", "pong", None), ("not json {", "bad", "non_json_frame"),
        ("[1, 2]", "bad", "not_an_object"), ('{"topic": "activity", "type": "trades", "payload": {"a": 1}}', "bad",
                                             "payload_not_a_trade"),
        ('{"topic": "comments", "type": "created", "payload": {}}', "other", None),
        ('{"topic": "activity", "type": "reactions", "payload": {}}', "other", None),
        ('{"type": "subscribed"}', "other", None), (b"\xff\xfe", "bad", "not_utf8"),
    ],
)  # fmt: skip
def test_every_frame_routes_somewhere_and_never_raises(text, kind, detail):
    frame = model.route_frame(text)
    assert frame.kind == kind and frame.reason == detail


def test_a_frame_without_topic_or_type_is_routed_by_its_payload_shape():
    doc = orjson.loads(CAPTURED)
    del doc["topic"], doc["type"]
    frame = model.route_frame(orjson.dumps(doc))
    assert frame.kind == "trade" and frame.rtds_type is None and len(frame.payloads) == 1
    doc["payload"] = [doc["payload"], doc["payload"]]
    assert len(model.route_frame(orjson.dumps(doc)).payloads) == 2


def test_the_simulated_clock_frame():
    text = '{"topic": "whalecopy_sim", "type": "end", "payload": {"market_ts": 1787102400}}'
    frame = model.route_frame(text)
    assert frame.kind == "clock" and frame.clock_ts == 1787102400 and frame.end


# ------------------------------------------------------------------------------------------------ one validation


def _trade(rng: random.Random) -> dict:
    return {"proxyWallet": "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40)), "side": rng.choice(["BUY", "SELL"]),
            "asset": str(rng.randrange(10**75, 10**77)), "conditionId": "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(64)),
            "size": round(rng.lognormvariate(3, 2), 2), "price": round(rng.uniform(0, 1), 3), "timestamp": NOW - rng.randrange(0, 10**6),
            "outcome": rng.choice(["Yes", "No"]), "outcomeIndex": rng.choice([0, 1]), "title": "t", "slug": "s", "eventSlug": "e",
            "name": "", "pseudonym": "", "transactionHash": "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(64))}  # fmt: skip


HOSTILE = [
    ("proxyWallet", None), ("proxyWallet", "0xabc"), ("proxyWallet", "redkollantai"), ("proxyWallet", 12),
    ("conditionId", "0x12"), ("conditionId", None), ("asset", 123), ("asset", "12a"), ("asset", "9" * 79),
    ("asset", str(2**256)), ("side", "buy"), ("side", None), ("size", 0), ("size", -1.0), ("size", float("nan")),
    ("size", float("inf")), ("size", "12.5"), ("size", "abc"), ("size", True), ("size", 2e11), ("price", 1.5),
    ("price", -0.01), ("price", "0.5"), ("price", None), ("timestamp", NOW * 1000), ("timestamp", NOW + 301),
    ("timestamp", NOW + 300), ("timestamp", 1_499_999_999), ("timestamp", 1_500_000_000), ("timestamp", 1.5e9 + 0.5),
    ("timestamp", "1787102287"), ("transactionHash", "0xzz"), ("outcomeIndex", "1"), ("outcomeIndex", 2**31),
    ("title", "a\x00b"), ("price", 0), ("price", 1), ("size", 1e11),
]  # fmt: skip


def test_the_live_validation_gives_the_batchs_verdict_on_clean_and_hostile_rows():
    """The fast path accepts only what ``parse_trades`` accepts, as the same row; everything else takes the
    batch's own function, so accepted rows and reasons match the batch's exactly (boundary values included)."""
    rng = random.Random(3)
    records = [_trade(rng) for _ in range(300)]
    for field, value in HOSTILE:
        r = _trade(rng)
        r[field] = value
        records.append(r)
    records += ["not json", [1, 2], None, {k: v for k, v in _trade(rng).items() if k != "price"}]
    mine = model.normalise(records, ["o"] * len(records), source="live", now_ts=NOW)
    batch = Batch()
    for r in records:
        batch.add(Page("o", [r]))
    theirs = parse_trades(batch, source="live", now_ts=NOW)
    assert mine.rows == theirs.accepted.to_pylist()
    assert mine.positions == theirs.accepted_rows.tolist()
    assert sorted(r["reasons"] for r in mine.rejected) == sorted(
        theirs.rejected.column("reasons").to_pylist()
    )
    fast = sum(model.fast_row(r, NOW) is not None for r in records)
    assert fast >= 300 and len(mine.rows) > fast - 5  # the clean rows took the fast path


def test_the_fill_key_is_the_warehouses_bit_for_bit():
    rng = random.Random(5)
    rows = model.normalise([_trade(rng) for _ in range(500)], ["o"] * 500, source="live", now_ts=NOW).rows
    rows[0]["transaction_hash"] = None
    rows[1]["size"], rows[2]["size"] = 5.0, 1e16
    with duckdb.connect() as con:
        con.register("t", pa.Table.from_pylist(rows))
        expected = [
            int(k) for (k,) in con.execute(f"SELECT CAST({FILL_KEY_SQL} AS VARCHAR) FROM t").fetchall()
        ]
    assert [model.fill_key(r) for r in rows] == expected


def test_identity_and_the_decision_key():
    row = {"transaction_hash": "0xt", "proxy_wallet": "0xw", "condition_id": "0xc", "asset": "1", "side": "BUY",
           "outcome_index": 0, "price": 0.5, "size": 10.0, "ts": 1}  # fmt: skip
    assert model.identity(row) == ("0xt", "0xw", "0xc", "1", "BUY", 0, 0.5, 10.0, 1)
    assert model.decision_key("0xw", "0xt", "1", "BUY", 7) == "0xw|0xt|1|BUY"
    assert model.decision_key("0xw", None, "1", "BUY", 7) == "0xw|fill:7|1|BUY"


# ------------------------------------------------------------------------------------------------ time


def test_the_seen_set_forgets_exactly_past_its_horizon():
    seen = model.SeenSet(horizon_s=100)
    assert seen.add(("a",), 1000) and not seen.add(("a",), 1000) and seen.add(("b",), 1050)
    assert seen.forget_before(1100) == 0  # 1000 is exactly at the horizon: kept
    assert seen.forget_before(1101) == 1 and ("a",) not in seen and ("b",) in seen


def test_the_market_clock_follows_the_feed_and_falls_back_to_the_wall_clock():
    clock = model.MarketClock(lag_s=10, grace_s=0.5)
    assert clock.now(wall=1000) == 990  # silent feed: the wall clock less the lag
    clock.saw(995)
    assert clock.now(wall=1000) == 995 and clock.settled_through(1000) == 994.5
    clock.saw(990)  # an older frame never moves it back
    assert clock.now(wall=1000) == 995


def test_the_due_queue_releases_in_due_then_rank_then_key_order():
    q = model.DueQueue()
    for due, rank, key in [(10, 1, 5), (10, 0, 9), (9, 1, 1), (10, 0, 3), (11, 0, 0)]:
        q.push(due, rank, key, (due, rank, key))
    assert q.pop_through(10) == [(9, 1, 1), (10, 0, 3), (10, 0, 9), (10, 1, 5)]  # 10 itself is released
    assert q.next_due() == 11 and len(q) == 1


# ------------------------------------------------------------------------------------------------ coverage


@pytest.mark.parametrize(
    ("rows", "recovered", "advanced", "recovery", "loss"),
    [
        ([130, 120], False, 1000 - 15, False, False),  # a short page: everything since
        ([150, 140, 100], False, 985, False, False),  # full, and its oldest is exactly the boundary
        ([150, 140, 101], False, None, True, False),  # full, newer than the boundary: page back once
        ([150, 140, 101], True, 985, False, True),  # still newer after the recovery page: a loss
    ],
)  # fmt: skip
def test_a_poll_proves_continuity_or_asks_for_one_recovery_then_records_a_loss(
    rows, recovered, advanced, recovery, loss
):
    out = model.poll_continuity(100, 1000, 15, rows, page_limit=3, recovered=recovered)
    assert out.advanced_to == advanced and out.needs_recovery == recovery and (out.loss is not None) == loss
    if loss:
        assert out.loss.reason == "continuity-mismatch" and (out.loss.start_ts, out.loss.end_ts) == (100, 101)


def test_an_rtds_gap_closes_when_every_wallet_has_passed_it_and_expires_past_the_horizon():
    cov = model.Coverage(horizon_s=3600)
    cov.track(["a", "b"], since=1000)
    cov.open_gap(1000, "watchdog")
    cov.close_gap(1500)
    cov.boundary["a"] = 1500
    assert cov.settle(now=1600) == [] and len(cov.gaps) == 1  # b has not passed it yet
    cov.boundary["b"] = 1500  # exactly the gap's end: proven
    assert cov.settle(now=1700) == [] and cov.gaps == []
    cov.open_gap(5000, "closed")
    assert cov.settle(now=5000 + 3600) == []  # exactly the horizon: still recoverable
    (lost,) = cov.settle(now=5000 + 3601)
    assert (
        lost.reason == "horizon-expired" and set(lost.wallets) == {"a", "b"} and cov.open_losses() == [lost]
    )
    assert cov.gaps and cov.gaps[0].end_ts is None  # the feed is still down: the rest is watched
    (closed,) = cov.close_losses_through(data_end_ts=lost.end_ts, now=9000, by="batch x")
    assert closed.closed_by == "batch x" and cov.open_losses() == []


def test_starting_late_records_a_loss_and_never_skips_silently():
    kw = dict(snapshot_end=1000, now=1000 + 3600, horizon_s=3600)
    bounds, events = model.start_coverage(["a"], stored={}, restarted=False, **kw)
    assert bounds == {"a": 1000} and events == []  # exactly at the horizon: recovered, not lost
    bounds, events = model.start_coverage(["a", "b"], stored={"a": 4000}, restarted=True, snapshot_end=999,
                                          now=4601, horizon_s=3600)  # fmt: skip
    assert bounds == {"a": 4000, "b": 1001} and events[0].reason == "restart-beyond-horizon"
    assert events[0].wallets == ("b",) and (events[0].start_ts, events[0].end_ts) == (999, 1001)
    _, events = model.start_coverage(
        ["a"], stored={}, restarted=False, snapshot_end=999, now=4601, horizon_s=3600
    )
    assert events[0].reason == "start-beyond-horizon"
    with pytest.raises(ValueError, match="unknown loss reason"):
        model.LossEvent("gremlins", 0, 1, "")


@pytest.mark.parametrize(
    ("kw", "state"),
    [
        (dict(fatal=True, open_losses=1, rtds_ok=False, polls_ok=False, gaps_open=1), "failed"),
        (dict(fatal=False, open_losses=1, rtds_ok=True, polls_ok=True, gaps_open=0), "possible-data-loss"),
        (dict(fatal=False, open_losses=0, rtds_ok=False, polls_ok=True, gaps_open=0), "degraded"),
        (dict(fatal=False, open_losses=0, rtds_ok=True, polls_ok=True, gaps_open=1), "degraded"),
        (dict(fatal=False, open_losses=0, rtds_ok=True, polls_ok=True, gaps_open=0), "running"),
    ],
)
def test_the_state_is_the_worst_thing_true(kw, state):
    assert model.loop_state(**kw) == state


def test_percentiles_are_numpys():
    xs = [random.Random(1).random() for _ in range(101)]
    for q in (50, 90, 99):
        assert model.percentile(xs, q) == pytest.approx(np.percentile(xs, q), abs=1e-15)
    assert math.isnan(model.percentile([], 50))


def test_the_status_line_and_its_json():
    s = model.Status(frames=3, decisions=2, decide_p99_ms=12.5)
    assert "2 decisions" in s.line() and "p99 12.5 ms" in s.line() and s.as_json()["e2e_p50_s"] is None


def test_the_watchlist_file(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("# mine\n0x" + "A" * 40 + "  # upper case is fine\n\n")
    assert read_watchlist(path) == {"0x" + "a" * 40}
    path.write_text("0x12\n")
    with pytest.raises(ValueError, match="w.txt:1: '0x12' is not a wallet"):
        read_watchlist(path)
    assert read_watchlist(None) == set()


# ------------------------------------------------------------------------------------------------ checks


def test_the_coverage_check_passes_exactly_at_its_bound():
    fills = pd.DataFrame({"sources": ["rtds_trades"] * 19 + ["poll"] + ["snapshot"] * 5})
    out = checks.coverage(fills, minimum=0.95)
    assert out.passed and out.metadata["rtds_share"] == 0.95 and out.metadata["poll_only"] == 1
    assert not checks.coverage(fills.iloc[1:], 0.95).passed  # 18 of 19
    assert checks.coverage(pd.DataFrame({"sources": ["snapshot"]}), 0.95).passed
    assert checks.coverage(pd.DataFrame({"sources": []}), 0.95).passed


def test_the_loss_and_latency_checks():
    losses = pd.DataFrame({"reason": ["feed-gap", "horizon-expired"], "start_ts": [1, 2], "detail": ["x", "y"],
                           "closed_at": [5.0, None]})  # fmt: skip
    out = checks.open_losses(losses)
    assert not out.passed and out.metadata["open"] == 1 and "horizon-expired" in out.description
    assert checks.open_losses(losses.assign(closed_at=1.0)).passed
    dec = pd.DataFrame(
        {"seq": range(100), "frame_to_decision_s": [0.01] * 99 + [0.05], "fill_to_decision_s": 61.0}
    )
    assert checks.latency(dec, budget_ms=50.0).passed  # p99 is under 50 ms
    assert not checks.latency(dec.assign(frame_to_decision_s=0.051), budget_ms=50.0).passed


def test_the_gates_know_the_live_stages_and_loss_reasons():
    """quality/ imports nothing of the project, so it spells them out: they must stay the loop's."""
    from quality.expectations import LIVE_LOSS_REASONS, LIVE_STAGES

    assert tuple(LIVE_STAGES) == model.DECISION_STAGES and tuple(LIVE_LOSS_REASONS) == model.LOSS_REASONS
