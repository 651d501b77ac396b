"""Order intents from paper fills."""

import json

import pandas as pd
import pytest

from assets.paper.intents import INTENT_COLUMNS, intents_frame, write_intents

FILLS = pd.DataFrame(
    {
        "whale_fill": ["11", "11", "12", "12"],
        "kind": ["entry", "trailing_stop", "entry", "settlement"],
        "ts": [1_750_000_000.0, 1_750_086_400.0, 1_750_000_100.0, 1_750_172_800.0],
        "token_id": ["7", "7", "8", "8"],
        "shares": [100.0, -100.0, 40.0, -40.0],
        "price": [0.41, 0.38, 0.6, 1.0],
        "copied_wallet": ["0xa", "0xa", "0xb", "0xb"],
    }
)


def test_entries_buy_exits_sell_settlements_need_no_order():
    i = intents_frame(FILLS)
    assert list(i.columns) == INTENT_COLUMNS
    assert i["side"].tolist() == ["BUY", "SELL", "BUY"]
    assert i["shares"].tolist() == [100.0, 100.0, 40.0]
    assert i["notional"].tolist() == pytest.approx([41.0, 38.0, 24.0])
    assert i["intent_id"].is_unique and i["intent_id"].iloc[0] == "11-entry-1750000000"
    assert i["created_at"].iloc[0] == "2025-06-15T15:06:40Z"


def test_csv_and_json_round_trip(tmp_path):
    i = intents_frame(FILLS)
    write_intents(i, tmp_path / "x.csv", "csv")
    back = pd.read_csv(tmp_path / "x.csv", dtype={"token_id": str, "intent_id": str})
    pd.testing.assert_frame_equal(back, i, check_dtype=False)
    doc = json.loads(write_intents(i, None, "json"))
    assert len(doc["intents"]) == 3 and doc["intents"][1]["side"] == "SELL"
    with pytest.raises(ValueError, match="csv or json"):
        write_intents(i, None, "xml")
