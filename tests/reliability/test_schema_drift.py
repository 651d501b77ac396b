"""Schema drift (issue 7): each change to the Data API's trade objects has a declared outcome
(docs/warehouse.md#schema-drift), and a test.

| drift | outcome |
|---|---|
| a field added | ignored, and named in the run log and the ingest metadata |
| an optional field removed | coerced: stored as NULL |
| a required field removed | every row quarantined (`missing_value`, with `missing:<field>`); the gate fails naming it |
| a field renamed | as removed plus added: the old name's outcome, and the new name logged |
| a number sent as a string | coerced; a non-number in a number field is quarantined (`bad_number`) |
| a number in a text field | coerced to text |
| a new enum value | `side`: quarantined (`bad_side`); `outcome` (free text): kept |
"""

import dataclasses
import io
import json

import duckdb
import numpy as np
import pytest

from assets.ingest.records import Batch, parse_trades
from assets.ingest.sim import SimConfig, generate_world
from assets.ingest.sim_api import SimPolymarket
from orchestration.cli import run_sync
from tests.assets.helpers import small_settings

pytestmark = pytest.mark.reliability

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def rows():
    world = generate_world(SimConfig.scaled(0.01, seed=3))
    api = SimPolymarket(world, dirty_share=0.0)
    return json.loads(api.trades_json(np.arange(200))), api.market_objects()


def parse(records):
    batch = Batch()
    batch.rows, batch.refs = list(records), [f"r{i}" for i in range(len(records))]
    batch.origins, batch.counts = ["test"], [len(records)]
    return parse_trades(batch, source="test", now_ts=NOW)


def test_an_added_field_is_ignored_and_named(rows):
    out = parse([r | {"makerFee": 0.001} for r in rows[0]])
    assert out.n_rejected == 0 and out.n_accepted == len(rows[0])
    assert out.unknown_fields == ("makerFee",)
    assert (
        parse(rows[0]).unknown_fields == ()
    )  # the documented-but-unstored fields (icon, bio, ...) are known


def test_an_optional_field_removed_is_null(rows):
    out = parse([{k: v for k, v in r.items() if k != "title"} for r in rows[0]])
    assert out.n_rejected == 0 and set(out.accepted.column("title").to_pylist()) == {None}


@pytest.mark.parametrize("field", ["size", "proxyWallet", "timestamp"])
def test_a_required_field_removed_quarantines_every_row_naming_it(rows, field):
    out = parse([{k: v for k, v in r.items() if k != field} for r in rows[0]])
    assert out.n_accepted == 0
    rej = out.rejected.to_pylist()
    assert {r["reason_code"] for r in rej} == {"missing_value"}
    assert all(r["reasons"].endswith(f"missing:{field}") for r in rej)


def test_a_renamed_field_is_removed_plus_added(rows):
    out = parse([{("px" if k == "price" else k): v for k, v in r.items()} for r in rows[0]])
    assert out.n_accepted == 0 and out.unknown_fields == ("px",)
    assert all("missing:price" in r["reasons"] for r in out.rejected.to_pylist())


def test_retyped_fields(rows):
    good = rows[0][:3]
    as_text = parse([r | {"size": str(r["size"]), "price": str(r["price"])} for r in good])
    assert as_text.n_rejected == 0
    assert as_text.accepted.column("size").to_pylist() == [r["size"] for r in good]
    not_numbers = parse([r | {"size": {"value": r["size"]}} for r in good] + [good[0] | {"price": True}])
    assert set(not_numbers.rejected.column("reason_code").to_pylist()) == {"bad_number"}
    titled = parse([good[0] | {"title": 12345}])
    assert titled.accepted.column("title").to_pylist() == ["12345"]


def test_new_enum_values(rows):
    r = rows[0][0]
    assert parse([r | {"side": "HOLD"}]).rejected.column("reason_code").to_pylist() == ["bad_side"]
    kept = parse([r | {"outcome": "Maybe"}])
    assert kept.n_rejected == 0 and kept.accepted.column("outcome").to_pylist() == ["Maybe"]


def test_a_required_field_dropped_by_the_source_fails_the_gate_naming_it(rows, tmp_path):
    trades, markets = tmp_path / "trades.jsonl", tmp_path / "markets.json"
    trades.write_text("\n".join(json.dumps({k: v for k, v in r.items() if k != "size"}) for r in rows[0]))
    markets.write_text(json.dumps(rows[1]))
    settings = dataclasses.replace(small_settings(tmp_path / "w.duckdb"), source="files", trades_path=str(trades),
                                   markets_path=str(markets))  # fmt: skip
    result = run_sync(settings, out=io.StringIO())
    assert not result.success
    gate = [e for e in result.get_asset_check_evaluations() if e.asset_check_key.name == "raw_trades_gate"]
    assert gate and not gate[0].passed
    assert "missing:size" in gate[0].metadata["failed_because"].value
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.trades").fetchall()[0][0] == 0
        assert (
            con.execute("SELECT count(*) FROM raw.quarantine WHERE entity = 'trades'").fetchall()[0][0] == 200
        )
