"""The file source: real dumps in JSON, JSONL(.gz) and Parquet, through the same validation and loader."""

import gzip
import io
import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets.ingest import ingest, sources
from assets.ingest.records import parse_trades
from assets.ingest.sources import FileFormatError, FileSource, iter_records, read_records
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
    # the report's real-data wallets show each one's flags at the score's date (the dump's bots among them)
    from assets.evaluate.report_assets import real_section

    shown = real_section(path, "midterms")["wallets"].set_index("wallet")["flags"].fillna("")
    with duckdb.connect(str(path), read_only=True) as con:
        flagged = dict(con.execute(
            "SELECT wallet, string_agg(flag, ', ' ORDER BY flag) FROM analytics.wallet_flags_history "
            "WHERE as_of = (SELECT max(as_of) FROM analytics.whale_scores) GROUP BY 1").fetchall())  # fmt: skip
    assert (shown != "").any() and shown.to_dict() == {w: flagged.get(w, "") for w in shown.index}
    # no strategy traded on this dump (no WQS reaches the thresholds): no target reads "met", each says why
    with duckdb.connect(str(path), read_only=True) as con:
        targets = con.execute("SELECT target, status, met, reason FROM evaluation.targets").df()
        (trades,) = con.execute("SELECT sum(trades) FROM evaluation.backtest_summary").fetchone()
    assert trades == 0 and (targets["status"] == "not measurable").all() and targets["met"].isna().all()
    assert targets["reason"].str.contains("made 0 trades").all()
    from orchestration.summary import backtest_table

    with duckdb.connect(str(path), read_only=True) as con:
        lines = backtest_table(con)
    said = [i for i, line in enumerate(lines) if line.startswith("  NOT MEASURABLE (")]
    first_row = next(i for i, line in enumerate(lines) if line.startswith("  naive_copy"))
    assert said and max(said) < first_row  # said first, above the strategies
    assert not any(line.rstrip().endswith(" met") for line in lines)
    assert (
        targets["reason"]
        .str.contains("stage 1 \\(whale\\): no whale BUY out of sample had a WQS of 65")
        .any()
    )
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


@pytest.mark.parametrize("batch_rows", [None, 3])
def test_parquet_read_as_columns_gives_what_its_records_give_quarantined_text_included(tmp_path, trade_rows,
                                                                                        batch_rows):  # fmt: skip
    """The trades' validation reads a Parquet batch as columns (``iter_records(columns=True)``), where it read a
    list of dicts: the same accepted rows, the same quarantined rows and record text (a record's key is a hash of
    its text: a re-run across the change adds nothing), the same drift note."""
    base = trade_rows[0]
    rows = [*trade_rows, {**base, "size": float("nan")}, {**base, "size": None}, {**base, "proxyWallet": "Bob"},
            {**base, "price": 1.5}, {**base, "timestamp": 1_900_000_000_000}, {**base, "side": "HOLD"},
            {**base, "extraField": "x"}]  # fmt: skip
    names = sorted(set().union(*(r.keys() for r in rows)))
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in names} for r in rows]), path)

    def parse(columns: bool):
        out = [
            parse_trades(b, source="files", now_ts=NOW)
            for b in iter_records(path, batch_rows, columns=columns)
        ]
        return (pa.concat_tables([p.accepted for p in out]), pa.concat_tables([p.rejected for p in out]),
                sorted({f for p in out for f in p.unknown_fields}))  # fmt: skip

    (acc_rows, rej_rows, drift_rows), (acc_cols, rej_cols, drift_cols) = parse(False), parse(True)
    assert (
        acc_cols.equals(acc_rows) and rej_cols.equals(rej_rows) and drift_cols == drift_rows == ["extraField"]
    )
    assert rej_rows.num_rows == 7 and acc_rows.num_rows == 6


def test_parquet_columns_of_other_types_read_as_their_records_do(tmp_path, trade_rows):
    import datetime as dt
    import decimal

    r = trade_rows[0]
    table = pa.table({
        "proxyWallet": pa.array([r["proxyWallet"]] * 2).dictionary_encode(), "side": ["BUY", "SELL"],
        "asset": [r["asset"]] * 2, "conditionId": [r["conditionId"]] * 2,
        "size": pa.array([decimal.Decimal("1.5"), decimal.Decimal("2")], pa.decimal128(10, 2)), "price": [0.5, 0.4],
        "timestamp": pa.array([dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)], pa.timestamp("s")),
        "transactionHash": [r["transactionHash"]] * 2,
    })  # fmt: skip
    pq.write_table(table, tmp_path / "typed.parquet")
    rows, cols = ([parse_trades(b, source="files", now_ts=NOW) for b in iter_records(tmp_path / "typed.parquet",
                                                                                     columns=c)] for c in (False, True))  # fmt: skip
    assert rows[0].accepted.equals(cols[0].accepted) and rows[0].rejected.equals(cols[0].rejected)


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


def _many(trade_rows) -> list[dict]:
    """22 records: the five fills again and again at other times and hashes (21), a zero-size one among them, and
    an exact repeat of one (dropped by the natural key)."""
    rows = [{**trade_rows[i % 5], "timestamp": trade_rows[i % 5]["timestamp"] - 3600 * i,
             "transactionHash": f"0x{i:064x}"} for i in range(21)]  # fmt: skip
    rows[7]["size"] = 0
    return [*rows, dict(rows[3])]


def _loaded(con) -> tuple:
    return (
        con.execute("SELECT * EXCLUDE (ingested_at) FROM raw.trades ORDER BY fill_key").fetchall(),
        con.execute("SELECT * EXCLUDE (quarantined_at) FROM raw.quarantine ORDER BY record_key").fetchall(),
        con.execute("SELECT stream, start_ts, cursor_ts, last_rows FROM raw.ingest_state").fetchall(),
    )


def _ingest(tmp_path, path, name: str, batch_rows: int | None):
    con = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
    ensure_raw(con)
    src = FileSource(str(path), None, now_ts=NOW, batch_rows=batch_rows or 10**9)
    return con, ingest.ingest_trades(con, src, start=1_500_000_000, end=NOW)


@pytest.mark.parametrize("fmt", ["json", "jsonl.gz", "parquet"])
def test_a_file_loads_a_batch_at_a_time_into_what_one_batch_loads(tmp_path, trade_rows, fmt):
    path = write(tmp_path, fmt, _many(trade_rows))
    whole, one = _ingest(tmp_path, path, "whole", None)
    batched, report = _ingest(tmp_path, path, "batched", 4)
    assert report.pages == 6 and one.pages == 1  # 22 records, 4 at a time
    assert report.load.inserted == one.load.inserted == 20 and report.load.quarantined == 1
    assert _loaded(batched) == _loaded(whole)
    assert _loaded(batched)[2][0][3] == 21  # the stream's count: every batch's accepted rows (a repeat too)
    assert (
        FileSource(str(path), None, now_ts=NOW, batch_rows=4).trade_bounds()
        == FileSource(str(path), None, now_ts=NOW).trade_bounds()
        == (trade_rows[20 % 5]["timestamp"] - 3600 * 20, max(r["timestamp"] for r in trade_rows))
    )


def test_jsonl_lines_keep_their_numbers_across_batches(tmp_path, trade_rows):
    """Blank lines count, CRLF and a bare CR end a line, as ``bytes.splitlines`` numbers them."""
    lines = [json.dumps(r) for r in _many(trade_rows)[:6]]
    path = tmp_path / "trades.jsonl"
    path.write_bytes(
        (lines[0] + "\r\n\n" + lines[1] + "\r" + lines[2] + "\n{bad\n" + "\n".join(lines[3:])).encode()
    )
    refs = [ref for b in sources.iter_records(path, batch_rows=2) for ref in b.refs]
    assert refs == [f"{path}:{n}" for n in (1, 3, 4, 5, 6, 7, 8)] == read_records(path).refs


class _Stopping(FileSource):
    """Stops after ``after`` batches, as a killed run would."""

    after: int = 2

    def trade_batches(self):
        for n, batch in enumerate(super().trade_batches()):
            if n == self.after:
                raise KeyboardInterrupt("stopped")
            yield batch


def test_a_load_stopped_half_way_is_read_again_and_adds_nothing_twice(tmp_path, trade_rows):
    path = write(tmp_path, "jsonl.gz", _many(trade_rows))
    whole, _ = _ingest(tmp_path, path, "whole", None)
    con = duckdb.connect(str(tmp_path / "stopped.duckdb"))
    ensure_raw(con)
    with pytest.raises(KeyboardInterrupt):
        ingest.ingest_trades(
            con, _Stopping(str(path), None, now_ts=NOW, batch_rows=4), start=1_500_000_000, end=NOW
        )
    (n,) = con.execute("SELECT count(*) FROM raw.trades").fetchone()
    assert 0 < n < 20 and con.execute("SELECT count(*) FROM raw.ingest_state").fetchone() == (
        0,
    )  # not covered
    again = ingest.ingest_trades(con, FileSource(str(path), None, now_ts=NOW, batch_rows=4), start=1_500_000_000,
                                 end=NOW)  # fmt: skip
    assert again.load.inserted == 20 - n and _loaded(con) == _loaded(whole)


def test_an_activity_file_loads_once_in_any_batch_size_and_quarantines_what_it_must(tmp_path):
    rows = load_fixture("edulabrador_activity_all.json")
    bad = [{**rows[1], "type": "AIRDROP"}, {**rows[2], "usdcSize": -1}]
    path = tmp_path / "activity.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, *bad]))

    def load(name: str, batch_rows: int, refetch: bool = False, con=None):
        con = con or duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        ensure_raw(con)
        src = FileSource(None, None, now_ts=NOW, batch_rows=batch_rows, activity_path=str(path))
        report = ingest.ingest_activity(con, src, start=1_500_000_000, end=NOW, refetch=refetch)
        return con, report

    con, report = load("one", 10**9)
    assert (report.load.inserted, report.load.quarantined) == (50, 2)
    kept = con.execute("SELECT * EXCLUDE (ingested_at) FROM raw.activity ORDER BY activity_key").fetchall()
    reasons = con.execute("SELECT reason_code, record_ref FROM raw.quarantine ORDER BY 1").fetchall()
    assert reasons == [("amount_negative", f"{path}:52"), ("unknown_activity_type", f"{path}:51")]
    _, again = load("one", 10**9, con=con)  # the file's stream is covered: not read again
    assert again.streams_skipped == 1 and again.load.received == 0
    _, refetched = load("one", 10**9, refetch=True, con=con)  # read again: every row a repeat
    assert (refetched.load.inserted, refetched.load.quarantined) == (0, 0)
    small, _ = load("small", 7)  # seven rows a batch: the same rows
    assert (
        small.execute("SELECT * EXCLUDE (ingested_at) FROM raw.activity ORDER BY activity_key").fetchall()
        == kept
    )


def test_the_cli_refuses_activity_without_the_file_source_and_a_missing_activity_file(tmp_path):
    with pytest.raises(SystemExit, match="--activity is a file of the file source"):
        main(["run", "--activity", "a.json", "--warehouse", str(tmp_path / "w.duckdb")])
    trades = tmp_path / "t.json"
    trades.write_text("[]")
    with pytest.raises(SystemExit, match="--activity nope.json: no such file"):
        main(["run", "--source", "files", "--trades", str(trades), "--markets", str(trades),
              "--activity", "nope.json", "--warehouse", str(tmp_path / "w.duckdb")])  # fmt: skip
