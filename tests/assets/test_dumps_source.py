"""The public full-history dumps as a file source (assets/ingest/dumps.py): poly_data's processed trades and the
on-chain OrderFilled events, each row its maker's fill, through the same validation, quarantine and loader.

The fixtures (tests/fixtures/dumps) are written to those schemas: one taker BUY matched against two maker SELLs
(with the taker's own event, the CTF Exchange as its taker), a maker BUY filled by a taker SELL through the CTF
Exchange V2, and one row for each way a dump row can be refused. ``trades.csv`` holds the same good events as
poly_data's ``process_live`` writes them.
"""

import io
import json

import duckdb
import pyarrow as pa
import pytest

from assets.ingest import dumps
from assets.ingest.records import parse_trades
from assets.ingest.sources import FileFormatError, FileSource
from orchestration.cli import main, run_sync
from orchestration.settings import TRADE_FORMATS
from tests.assets.helpers import small_settings
from tests.conftest import FIXTURES

DUMPS = FIXTURES.parent / "dumps"
NOW = 1_790_000_000
ALICE, BOB, CAROL, DAVE = ("0x" + c * 20 for c in ("11", "22", "33", "44"))
YES_501 = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO_502 = "48331043336612883890938759509493159234755048973500640148014422747788308965732"
KEY = ["proxy_wallet", "side", "asset", "size", "price", "ts"]

#: the five fills of the good events: the makers' sides only (carol's BUY is her own event's, never the taker
#: side of alice's or bob's)
FILLS = sorted([
    (ALICE, "SELL", YES_501, 100.0, 0.4, 1_731_000_000),
    (BOB, "SELL", YES_501, 50.0, 0.42, 1_731_000_000),
    (CAROL, "BUY", YES_501, 150.0, 61 / 150, 1_731_000_000),
    (ALICE, "BUY", NO_502, 30.0, 0.55, 1_731_100_000),
    (DAVE, "SELL", NO_502, 30.0, 0.55, 1_731_100_000),
])  # fmt: skip


def parsed(fmt: str, trades: str, batch_rows: int | None = None):
    src = FileSource(str(DUMPS / trades), str(DUMPS / "markets.json"), now_ts=NOW, trade_format=fmt,
                     batch_rows=batch_rows or 100_000)  # fmt: skip
    accepted, rejected, unknown = [], [], set()
    for batch in src.trade_batches():
        p = parse_trades(batch, source="files", now_ts=NOW)
        accepted.append(p.accepted)
        rejected.append(p.rejected)
        unknown |= set(p.unknown_fields)
    return pa.concat_tables(accepted), pa.concat_tables(rejected), unknown


def rows(table: pa.Table) -> list[tuple]:
    return sorted(zip(*(table[c].to_pylist() for c in KEY), strict=True))


def test_each_orderfilled_event_is_its_makers_fill_and_every_bad_row_is_quarantined_with_its_reason():
    accepted, rejected, unknown = parsed("orderfilled", "orderFilled.csv")
    assert rows(accepted) == FILLS
    assert unknown == set()  # the dump's own fields are not schema drift
    reasons = dict(zip(rejected["record_ref"].to_pylist(), rejected["reason_code"].to_pylist(), strict=True))
    path = DUMPS / "orderFilled.csv"
    assert reasons == {
        f"{path}:6": "unknown_token", f"{path}:7": "no_usdc_leg", f"{path}:8": "bad_amount",
        f"{path}:9": "size_not_positive", f"{path}:10": "exchange_as_maker", f"{path}:11": "bad_wallet",
        f"{path}:12": "bad_timestamp",
    }  # fmt: skip
    assert accepted.num_rows + rejected.num_rows == 12  # nothing lost, nothing duplicated
    # a refused row keeps what the file held, so the quarantine shows it
    (unknown_token,) = [r for r, c in zip(*(rejected[k].to_pylist() for k in ("record", "reason_code")),
                                          strict=True) if c == "unknown_token"]  # fmt: skip
    assert '"takerAssetId":"999"' in unknown_token
    # market, outcome and title come from the markets file
    first = accepted.filter(pa.compute.equal(accepted["proxy_wallet"], CAROL)).to_pylist()[0]
    assert (first["condition_id"], first["outcome"], first["outcome_index"]) == ("0x" + "a1" * 32, "Yes", 0)
    assert (
        first["title"] == "Will it rain in Paris on 2024-11-10?"
        and first["transaction_hash"] == "0x" + "0" * 63 + "1"
    )


def test_poly_data_processed_trades_give_the_same_fills_as_the_events_they_were_made_from():
    events, _, _ = parsed("orderfilled", "orderFilled.csv")
    trades, rejected, _ = parsed("poly-data", "trades.csv")
    assert rows(trades) == rows(events) == FILLS
    columns = [c for c in events.column_names if c != "name"]
    assert (
        trades.select(columns)
        .sort_by([(c, "ascending") for c in KEY])
        .equals(events.select(columns).sort_by([(c, "ascending") for c in KEY]))
    )
    assert rejected["reason_code"].to_pylist() == ["unknown_market"]  # market 777 is not in the markets file


@pytest.mark.parametrize("fmt, trades", [("orderfilled", "orderFilled.csv"), ("poly-data", "trades.csv")])
def test_a_dump_read_two_rows_at_a_time_gives_what_one_read_gives(fmt, trades, tmp_path):
    whole = parsed(fmt, trades)
    small = parsed(fmt, trades, batch_rows=2)
    src = FileSource(
        str(DUMPS / trades), str(DUMPS / "markets.json"), now_ts=NOW, trade_format=fmt, batch_rows=2
    )
    sizes = [len(b) for b in src.trade_batches()]
    assert max(sizes) == 2 and sum(sizes) == whole[0].num_rows + whole[1].num_rows  # never more than a batch
    assert rows(small[0]) == rows(whole[0])
    assert small[1].sort_by("record_ref").equals(whole[1].sort_by("record_ref"))
    # and a Parquet copy of the dump reads the same (every column kept as text)
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(DUMPS / trades, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in dumps.REQUIRED[fmt]}))  # fmt: skip
    pq.write_table(table, tmp_path / "dump.parquet")
    src = FileSource(
        str(tmp_path / "dump.parquet"), str(DUMPS / "markets.json"), now_ts=NOW, trade_format=fmt
    )
    accepted = pa.concat_tables(
        parse_trades(b, source="files", now_ts=NOW).accepted for b in src.trade_batches()
    )
    assert rows(accepted) == rows(whole[0])
    # the bounds count every usable timestamp, a refused row's too (it is quarantined within the run's range)
    assert src.trade_bounds() == (1_731_000_000, 1_731_200_000 if fmt == "orderfilled" else 1_731_216_000)


def test_a_dump_that_is_not_what_it_is_said_to_be_is_a_clear_error(tmp_path):
    with pytest.raises(FileFormatError, match="is not a poly-data dump: it has no column market_id"):
        list(FileSource(str(DUMPS / "orderFilled.csv"), str(DUMPS / "markets.json"), now_ts=NOW,
                        trade_format="poly-data").trade_batches())  # fmt: skip
    (tmp_path / "events.json").write_text("[]")
    with pytest.raises(FileFormatError, match=r"read from \.csv, \.csv\.gz or \.parquet"):
        list(FileSource(str(tmp_path / "events.json"), str(DUMPS / "markets.json"), now_ts=NOW,
                        trade_format="orderfilled").trade_batches())  # fmt: skip
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(FileFormatError, match="is empty"):
        list(FileSource(str(tmp_path / "empty.csv"), str(DUMPS / "markets.json"), now_ts=NOW,
                        trade_format="orderfilled").trade_batches())  # fmt: skip
    with pytest.raises(FileFormatError, match="unknown trades format 'csv'"):
        FileSource(None, None, now_ts=NOW, trade_format="csv")
    assert TRADE_FORMATS == dumps.FORMATS  # the CLI's choices are the formats the file source reads


def test_cli_refuses_an_unknown_format_and_a_format_without_files(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["run", "--source", "files", "--format", "csv", "--trades", "x", "--markets", "y"])
    assert "invalid choice: 'csv'" in capsys.readouterr().err
    with pytest.raises(
        SystemExit, match="--format orderfilled is how a trades file is written: it needs --source"
    ):
        main(["run", "--source", "sim", "--format", "orderfilled", "--warehouse", str(tmp_path / "w.duckdb")])


def test_whalecopy_run_on_orderfilled_events_builds_the_marts_from_the_makers_fills(tmp_path):
    path = tmp_path / "dump.duckdb"
    # seven of the twelve rows are refused: the raw.trades gate's bound (5%) is raised for this fixture, or it
    # would block the run (as it should on a real dump that bad)
    # the activity: alice split 100 in market A before she sold 100 Yes there, and redeemed her No for $0; carol
    # redeemed her 150 Yes for $150 and earned a $5 reward; one row of an unknown type
    settings = small_settings(path, source="files", trades_format="orderfilled", quarantine_max_share=0.6,
                              trades_path=str(DUMPS / "orderFilled.csv"), markets_path=str(DUMPS / "markets.json"),
                              activity_path=str(DUMPS / "activity.json"))  # fmt: skip
    result = run_sync(settings, out=io.StringIO(), skip_groups=("evaluation",))
    assert result.success
    with duckdb.connect(str(path), read_only=True) as con:
        loaded = con.execute(f"SELECT {', '.join(KEY)} FROM raw.trades ORDER BY ALL").fetchall()
        reasons = sorted(r for (r,) in con.execute("SELECT reason_code FROM raw.quarantine").fetchall())
        # carol bought 150 Yes for $61 in a market that resolved Yes: $89 before fees
        carol = con.execute(
            "SELECT pnl_gross, is_resolved FROM marts.fct_positions WHERE wallet = ? AND token_id = ?",
            [CAROL, YES_501],
        ).fetchone()
        alice = con.execute(
            "SELECT outcome_index, pnl_gross, has_negative_shares, shares_split, net_shares FROM marts.fct_positions "
            "WHERE wallet = ? AND condition_id = ? ORDER BY outcome_index",
            [ALICE, "0x" + "a1" * 32],
        ).fetchall()
        booked = con.execute("SELECT wallet, type, booked_as, n_legs, redeem_gap FROM marts.fct_activity "
                             "ORDER BY activity_at").fetchall()  # fmt: skip
        income = con.execute("SELECT wallet, type, usdc FROM marts.wallet_income").fetchall()
    assert [tuple(r) for r in loaded] == FILLS
    assert reasons == sorted(["unknown_token", "no_usdc_leg", "bad_amount", "size_not_positive", "exchange_as_maker",
                              "bad_wallet", "bad_timestamp", "unknown_activity_type"])  # fmt: skip
    assert carol == (pytest.approx(89.0, abs=1e-9), True)
    # the split's Yes sold at 0.40 against a $0.50 basis (-10), its No lost (-50): -60, her one fill's P&L, and no
    # longer a sale of shares she never had
    assert alice == [
        (0, pytest.approx(-10.0), False, 100.0, 0.0),
        (1, pytest.approx(-50.0), False, 100.0, 100.0),
    ]
    assert booked == [(ALICE, "SPLIT", "legs", 2, None), (ALICE, "REDEEM", "check", 0, 0.0),
                      (CAROL, "REDEEM", "check", 0, 0.0), (CAROL, "REWARD", "income", 0, None)]  # fmt: skip
    assert income == [(CAROL, "REWARD", 5.0)]
    # the report and the UI name the source with its format
    assert settings.source_description == f"files ({DUMPS / 'orderFilled.csv'}, orderfilled)"


def test_poly_datas_markets_csv_in_either_form_maps_the_tokens_as_the_gamma_objects_do():
    from assets.ingest.records import parse_markets

    def source(markets: str) -> FileSource:
        return FileSource(
            str(DUMPS / "orderFilled.csv"), str(DUMPS / markets), now_ts=NOW, trade_format="orderfilled"
        )

    fills = {m: rows(pa.concat_tables(parse_trades(b, source="files", now_ts=NOW).accepted
                                      for b in source(m).trade_batches()))
             for m in ("markets.json", "markets_v2.csv", "markets_v1.csv")}  # fmt: skip
    assert fills["markets_v2.csv"] == fills["markets_v1.csv"] == fills["markets.json"] == FILLS
    cols = ["condition_id", "market_id", "outcomes", "clob_token_ids", "closed", "uma_resolution_status",
            "outcome_prices", "neg_risk", "volume_num"]  # fmt: skip
    gamma, v2, v1 = (parse_markets(source(m).market_batch(), source="files").accepted.select(cols).to_pylist()
                     for m in ("markets.json", "markets_v2.csv", "markets_v1.csv"))  # fmt: skip
    assert v2 == gamma  # every Gamma field as written: the same markets, resolutions included

    # the v1 form has no resolution: the same markets and tokens, unresolved
    def decoded(m: dict) -> dict:
        return {**m, "outcomes": json.loads(m["outcomes"]), "clob_token_ids": json.loads(m["clob_token_ids"])}

    strip = {"closed": None, "uma_resolution_status": None, "outcome_prices": None}
    assert [decoded(m) for m in v1] == [{**decoded(m), **strip} for m in gamma]


@pytest.mark.parametrize("fmt, trades", [("orderfilled", "orderFilled.csv"), ("poly-data", "trades.csv")])
def test_a_dump_load_stopped_half_way_is_read_again_and_adds_nothing_twice(tmp_path, fmt, trades):
    from assets.ingest import ingest
    from assets.ingest.store import ensure_raw

    class Stopping(FileSource):
        def trade_batches(self):  # stops after two batches, as a killed run would
            for n, batch in enumerate(super().trade_batches()):
                if n == 2:
                    raise KeyboardInterrupt("stopped")
                yield batch

    def source(cls=FileSource, batch_rows=2):
        return cls(str(DUMPS / trades), str(DUMPS / "markets.json"), now_ts=NOW, trade_format=fmt,
                   batch_rows=batch_rows)  # fmt: skip

    def loaded(con) -> tuple:
        return (con.execute("SELECT * EXCLUDE (ingested_at) FROM raw.trades ORDER BY fill_key").fetchall(),
                con.execute("SELECT * EXCLUDE (quarantined_at) FROM raw.quarantine ORDER BY record_key").fetchall())  # fmt: skip

    whole = duckdb.connect(str(tmp_path / "whole.duckdb"))
    ensure_raw(whole)
    ingest.ingest_trades(whole, source(batch_rows=10**6), start=1_500_000_000, end=NOW)
    con = duckdb.connect(str(tmp_path / "stopped.duckdb"))
    ensure_raw(con)
    with pytest.raises(KeyboardInterrupt):
        ingest.ingest_trades(con, source(Stopping), start=1_500_000_000, end=NOW)
    (n,) = con.execute("SELECT count(*) FROM raw.trades").fetchone()
    assert 0 < n < len(FILLS) and con.execute("SELECT count(*) FROM raw.ingest_state").fetchone() == (0,)
    again = ingest.ingest_trades(con, source(), start=1_500_000_000, end=NOW)
    assert again.load.inserted == len(FILLS) - n and loaded(con) == loaded(whole)


def test_a_folder_of_parquet_files_as_poly_datas_store_writes_it_reads_as_the_one_file(tmp_path):
    """poly_data's Parquet store writes a folder per month, its amounts Int64 in older files and text in newer
    ones, with an ``id`` column: read file after file, in path order, each row's ``record_ref`` its own file's."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(DUMPS / "orderFilled.csv", convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in dumps.ORDERFILLED_COLUMNS}))  # fmt: skip
    table = table.append_column("id", pa.array([f"e{i}" for i in range(table.num_rows)]))
    first, second = table.slice(0, 5), table.slice(5)
    amounts = ["makerAmountFilled", "takerAmountFilled"]
    first = first.set_column(first.schema.get_field_index(amounts[0]), amounts[0],
                             pa.compute.cast(first[amounts[0]], pa.int64()))  # fmt: skip
    for part, name in ((first, "year=2024/month=11/a.parquet"), (second, "year=2024/month=12/a.parquet")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, tmp_path / name)
    src = FileSource(str(tmp_path), str(DUMPS / "markets.json"), now_ts=NOW, trade_format="orderfilled",
                     batch_rows=3)  # fmt: skip
    parts = [parse_trades(b, source="files", now_ts=NOW) for b in src.trade_batches()]
    assert rows(pa.concat_tables([p.accepted for p in parts])) == FILLS
    refs = sorted(r for p in parts for r in p.rejected["record_ref"].to_pylist())
    assert (
        refs[0] == f"{tmp_path / 'year=2024/month=12/a.parquet'}:1"
    )  # the sixth row is the second file's first
    assert src.trade_bounds() == (1_731_000_000, 1_731_200_000)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileFormatError, match="a folder with no .csv, .csv.gz or .parquet file"):
        list(FileSource(str(tmp_path / "empty"), str(DUMPS / "markets.json"), now_ts=NOW,
                        trade_format="orderfilled").trade_batches())  # fmt: skip
