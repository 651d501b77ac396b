"""The file source: real dumps in JSON, JSONL(.gz) and Parquet, through the same validation and loader."""

import gzip
import io
import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets.ingest import ingest
from assets.ingest.sources import FileFormatError, FileSource, read_records
from assets.ingest.store import ensure_raw
from orchestration.cli import main, run_sync
from tests.assets.helpers import content_hash, small_settings
from tests.conftest import FIXTURES, load_fixture

NOW = 1_790_000_000


def test_midterms_dump_loads_every_good_fill_and_quarantines_the_rest(midterms, tmp_path):
    path = tmp_path / "midterms.duckdb"
    settings = small_settings(path, source="files", trades_path=str(midterms / "trades.jsonl.gz"),
                              markets_path=str(midterms / "markets.json"))  # fmt: skip
    result = run_sync(settings, out=io.StringIO())
    assert result.success
    with gzip.open(midterms / "trades.jsonl.gz") as fh:
        lines = sum(1 for line in fh if line.strip())
    with duckdb.connect(str(path), read_only=True) as con:
        (n_trades,) = con.execute("SELECT count(*) FROM raw.trades").fetchone()
        reasons = dict(con.execute("SELECT reason_code, count(*) FROM raw.quarantine GROUP BY 1").fetchall())
        (n_markets, n_resolved) = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE closed AND uma_resolution_status = 'resolved') FROM raw.markets"
        ).fetchone()
        (wallets,) = con.execute("SELECT count(DISTINCT proxy_wallet) FROM raw.trades").fetchone()
        bad = con.execute("SELECT record FROM raw.quarantine WHERE reason_code = 'bad_wallet'").fetchall()
    assert lines == 28_005
    # 286 zero-size dust fills, and 2 fills whose "wallet" is a username, not an address
    assert reasons == {"size_not_positive": 286, "bad_wallet": 2}
    assert all("redkollantai" in r[0] for r in bad)
    assert (
        n_trades == 27_717 and n_trades + sum(reasons.values()) == lines
    )  # nothing lost, nothing duplicated
    assert (n_markets, n_resolved) == (39, 37)
    assert wallets == 2_419
    before = content_hash(path, "raw.trades", "fill_key"), content_hash(path, "raw.quarantine", "record_key")
    assert run_sync(settings, out=io.StringIO(), refetch=True).success
    assert (
        content_hash(path, "raw.trades", "fill_key"),
        content_hash(path, "raw.quarantine", "record_key"),
    ) == before


@pytest.fixture
def trade_rows():
    rows = load_fixture("edulabrador_trades.json")
    return rows + [{**rows[0], "size": 0, "transactionHash": "0x" + "f" * 64}]


def write(tmp_path, fmt, rows):
    if fmt == "json":
        p = tmp_path / "trades.json"
        p.write_text(json.dumps(rows))
    elif fmt == "json-wrapped":
        p = tmp_path / "trades_wrapped.json"
        p.write_text(json.dumps({"data": rows}))
    elif fmt == "jsonl.gz":
        p = tmp_path / "trades.jsonl.gz"
        with gzip.open(p, "wt") as fh:
            fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    else:
        p = tmp_path / "trades.parquet"
        pq.write_table(pa.Table.from_pylist(rows), p)
    return p


@pytest.mark.parametrize("fmt", ["json", "json-wrapped", "jsonl.gz", "parquet"])
def test_every_format_gives_the_same_result(tmp_path, trade_rows, fmt):
    path = write(tmp_path, fmt, trade_rows)
    src = FileSource(str(path), str(FIXTURES / "pscanner_market_open.json"), now_ts=NOW)
    con = duckdb.connect(str(tmp_path / f"{fmt}.duckdb"))
    ensure_raw(con)
    report = ingest.ingest_trades(con, src, start=1_500_000_000, end=NOW)
    assert report.load.inserted == 5 and report.load.quarantined == 1
    assert (
        con.execute("SELECT asset FROM raw.trades ORDER BY ts LIMIT 1").fetchone()[0]
        == sorted(trade_rows[:5], key=lambda r: r["timestamp"])[0]["asset"]
    )


def test_parquet_nan_is_non_finite_and_null_is_missing(tmp_path, trade_rows):
    rows = [dict(trade_rows[0]), {**trade_rows[1], "price": float("nan")}, {**trade_rows[2], "price": None}]
    path = write(tmp_path, "parquet", rows)
    con = duckdb.connect(str(tmp_path / "p.duckdb"))
    ensure_raw(con)
    ingest.ingest_trades(con, FileSource(str(path), None, now_ts=NOW), start=1_500_000_000, end=NOW)
    codes = sorted(r[0] for r in con.execute("SELECT reason_code FROM raw.quarantine").fetchall())
    assert codes == ["missing_value", "non_finite"]


def test_a_line_that_is_not_json_is_quarantined_and_the_rest_loads(tmp_path, trade_rows):
    path = tmp_path / "trades.jsonl"
    path.write_text(json.dumps(trade_rows[0]) + "\n{truncated\n" + json.dumps(trade_rows[1]) + "\n")
    con = duckdb.connect(str(tmp_path / "l.duckdb"))
    ensure_raw(con)
    report = ingest.ingest_trades(con, FileSource(str(path), None, now_ts=NOW), start=1_500_000_000, end=NOW)
    assert report.load.inserted == 2
    assert con.execute("SELECT reason_code, record_ref FROM raw.quarantine").fetchall() == [
        ("non_json_body", f"{path}:2")
    ]


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_records(tmp_path / "missing.jsonl")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(FileFormatError, match="expected .json, .jsonl"):
        read_records(tmp_path / "x.csv")
    (tmp_path / "x.json").write_text("{oops")
    with pytest.raises(FileFormatError, match="not valid JSON"):
        read_records(tmp_path / "x.json")


def test_cli_names_what_is_missing(tmp_path, capsys):
    with pytest.raises(SystemExit, match="--source files needs --trades"):
        main(["run", "--source", "files", "--warehouse", str(tmp_path / "w.duckdb")])
    with pytest.raises(SystemExit, match="nope.jsonl: no such file"):
        main(["run", "--source", "files", "--trades", "nope.jsonl", "--markets", "m.json",
              "--warehouse", str(tmp_path / "w.duckdb")])  # fmt: skip
