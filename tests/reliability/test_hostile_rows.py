"""Hostile input (issue 7): 1,000 malformed or hostile rows among ~100,000 good ones, through the file source and
the whole job. Every bad row is quarantined with its reason code and none reaches the marts; every good row, every
legitimate extra leg of a transaction and every row whose only oddity is its text is kept; exact duplicates are
kept once."""

import dataclasses
import io
import json
import secrets
from collections import Counter

import duckdb
import numpy as np
import pytest

from assets.ingest.sim import SimConfig, generate_world
from assets.ingest.sim_api import SimPolymarket
from orchestration.cli import run_sync
from tests.assets.helpers import small_settings

pytestmark = pytest.mark.reliability

#: category -> (how a good row is corrupted, the reason code it must be quarantined with, or None if it is kept)
RULES = {
    "price_nan": (lambda r: r | {"price": "NaN"}, "non_finite"),
    "price_inf": (lambda r: r | {"price": "Infinity"}, "non_finite"),
    "price_above_one": (lambda r: r | {"price": 1.5}, "price_out_of_range"),
    "price_negative": (lambda r: r | {"price": -0.2}, "price_out_of_range"),
    "size_zero": (lambda r: r | {"size": 0}, "size_not_positive"),
    "size_negative": (lambda r: r | {"size": -5}, "size_not_positive"),
    "size_huge": (lambda r: r | {"size": 1e308}, "size_out_of_range"),
    "token_above_uint256": (lambda r: r | {"asset": str(2**256)}, "bad_token_id"),
    "token_not_decimal": (lambda r: r | {"asset": "0xabc"}, "bad_token_id"),
    "wallet_mixed_case": (lambda r: r | {"proxyWallet": "0x" + r["proxyWallet"][2:].upper()}, "bad_wallet"),
    "wallet_sql_injection": (lambda r: r | {"proxyWallet": "0x'; DROP TABLE raw.trades; --"}, "bad_wallet"),
    "wallet_short": (lambda r: r | {"proxyWallet": "0x1234"}, "bad_wallet"),
    "timestamp_millis": (lambda r: r | {"timestamp": r["timestamp"] * 1000}, "timestamp_millis"),
    "timestamp_future": (lambda r: r | {"timestamp": 4_000_000_000}, "timestamp_future"),
    "side_unknown": (lambda r: r | {"side": "HOLD"}, "bad_side"),
    # kept: odd text is data, not an error (NUL bytes are removed); a repeat is one fill; a second leg is a fill
    "text_hostile": (lambda r: r | {"title": "Robert'); DROP TABLE raw.trades;-- \U0001f40b\x00end"}, None),
    "exact_duplicate": (lambda r: dict(r), None),
    "same_tx_other_leg": (lambda r: r | {"size": round(r["size"] + 1.37, 2)}, None),
}
N_HOSTILE = 1_000


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    world = generate_world(SimConfig.scaled(0.1, seed=5))
    api = SimPolymarket(world, dirty_share=0.0)
    good = json.loads(api.trades_json(np.arange(len(world.tape.ts))))
    rng = np.random.default_rng(5)
    names = list(RULES)
    bad, expected = [], Counter()
    for i in range(N_HOSTILE):
        name = names[i % len(names)]
        corrupt, code = RULES[name]
        base = good[int(rng.integers(len(good)))]
        row = corrupt(base)
        if name not in ("exact_duplicate", "same_tx_other_leg"):  # its own transaction: traceable below
            row["transactionHash"] = "0x" + secrets.token_hex(32)
        bad.append((name, row))
        expected[code] += 1
    rows = [*good, *(r for _, r in bad)]
    order = rng.permutation(len(rows))
    trades = tmp / "trades.jsonl"
    trades.write_text("\n".join(json.dumps(rows[i]) for i in order))
    markets = tmp / "markets.json"
    markets.write_text(json.dumps(api.market_objects()))
    settings = dataclasses.replace(small_settings(tmp / "w.duckdb"), source="files", trades_path=str(trades),
                                   markets_path=str(markets))  # fmt: skip
    result = run_sync(settings, out=io.StringIO())
    assert result.success
    return settings, good, bad, expected


def test_every_hostile_row_is_quarantined_with_its_reason(hostile):
    settings, _, bad, expected = hostile
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        got = Counter(
            dict(
                con.execute(
                    "SELECT reason_code, count(*) FROM raw.quarantine WHERE entity = 'trades' GROUP BY 1"
                ).fetchall()
            )
        )
    del expected[None]
    assert got == expected


def test_no_hostile_row_reaches_the_marts_and_every_good_row_does(hostile):
    settings, good, bad, _ = hostile
    kinds = Counter(name for name, _ in bad)
    quarantined_tx = [r["transactionHash"] for name, r in bad if RULES[name][1] is not None]
    text_tx = [r["transactionHash"] for name, r in bad if name == "text_hostile"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        (raw,) = con.execute("SELECT count(*) FROM raw.trades").fetchall()[0]
        (fills,) = con.execute("SELECT count(*) FROM marts.fct_fills").fetchall()[0]
        (leaked,) = con.execute(
            "SELECT count(*) FROM marts.fct_fills WHERE transaction_hash IN (SELECT UNNEST(?::VARCHAR[]))",
            [quarantined_tx],
        ).fetchall()[0]
        titles = [
            t
            for (t,) in con.execute(
                "SELECT DISTINCT title FROM raw.trades WHERE transaction_hash IN (SELECT UNNEST(?::VARCHAR[]))",
                [text_tx],
            ).fetchall()
        ]
        tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    kept = len(good) + kinds["text_hostile"] + kinds["same_tx_other_leg"]  # duplicates add nothing
    assert raw == kept and fills == kept and leaked == 0
    assert titles == ["Robert'); DROP TABLE raw.trades;-- \U0001f40bend"]  # stored as text, NUL removed
    assert "trades" in tables  # and nothing was dropped
