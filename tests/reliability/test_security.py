"""Security (issue 7): user SQL runs in a sandbox that reads the warehouse and nothing else; values reach SQL bound,
identifiers from allow-lists; hostile ids are rejected at the boundary; servers listen on loopback; secrets come
from the environment only and are not logged."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import httpx
import pytest

from assets.evaluate.assets import PREDICTORS, forward_returns, forward_sql
from assets.ingest.assets import _result
from assets.ingest.clients import Page
from assets.ingest.records import Batch, parse_leaderboard, parse_markets, parse_trades
from assets.ingest.store import ensure_raw, load_trades
from assets.paper.assets import WHALE_SELLS_SQL
from assets.risk.alerts import AlertsResource
from assets.warehouse import checked_table, create_table_sql, replace_table
from orchestration import cli
from orchestration.sandbox import SANDBOX_CONFIG, connect_sandboxed
from orchestration.settings import Settings

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
WALLET = "0x" + "ab" * 20
HOSTILE_WALLET = "0x'; DROP TABLE raw.trades; --"
NOW = 1_790_000_000


@pytest.fixture
def warehouse(tmp_path) -> Path:
    """A tiny warehouse: raw.trades with 250 rows."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(
            "CREATE TABLE raw.trades AS SELECT ? AS proxy_wallet, range AS ts, range / 1000 AS price "
            "FROM range(250)",
            [WALLET],
        )
    return path


def _trades(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*) FROM raw.trades").fetchone()[0]


# ------------------------------------------------------------------------------------------------ sandbox


def test_a_select_over_the_warehouse_works(warehouse):
    with connect_sandboxed(warehouse) as con:
        assert con.execute("SELECT count(*), max(ts) FROM raw.trades").fetchone() == (250, 249)
        assert con.execute("SELECT count(*) FROM raw.trades WHERE proxy_wallet = ?", [WALLET]).fetchone() == (
            250,
        )


def test_every_sandbox_setting_is_in_force(warehouse):
    with connect_sandboxed(warehouse) as con:
        for key, value in SANDBOX_CONFIG.items():
            (current,) = con.execute("SELECT current_setting(?)", [key]).fetchone()
            assert current == value, key
        (access,) = con.execute("SELECT current_setting('access_mode')").fetchone()
        assert access.lower() == "read_only"


def _refused(tmp_path: Path) -> list[tuple[str, str]]:
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    (tmp_path / "data.csv").write_text("a\n1\n")
    out = tmp_path / "out"
    return [
        ("SELECT * FROM read_csv('/etc/passwd')", "Permission"),
        (f"SELECT * FROM read_csv('{tmp_path / 'data.csv'}')", "Permission"),
        (f"SELECT * FROM read_parquet('{tmp_path / 'x.parquet'}')", "Permission"),
        ("SELECT * FROM read_text('/etc/hostname')", "Permission"),
        ("SELECT * FROM glob('/etc/*')", "Permission"),
        ("SELECT * FROM read_parquet('https://example.com/x.parquet')", "Permission"),
        (f"COPY raw.trades TO '{out}.csv'", "Permission"),
        (f"COPY (SELECT 1) TO '{out}.parquet' (FORMAT parquet)", "Permission"),
        (f"EXPORT DATABASE '{out}'", "Permission"),
        (f"ATTACH '{other}' AS other", "Permission"),
        ("INSTALL httpfs", "Permission"),
        ("LOAD httpfs", "Permission"),
        ("SET enable_external_access = true", "locked"),
        ("RESET enable_external_access", "locked"),
        ("SET lock_configuration = false", "locked"),
        ("SET temp_directory = '/tmp'", "locked"),
        ("SET allow_community_extensions = true", "locked"),
        ("CREATE TABLE raw.evil (x INTEGER)", "read-only"),
        ("INSERT INTO raw.trades VALUES ('0x', 1, 0.5)", "read-only"),
        ("UPDATE raw.trades SET price = 1", "read-only"),
        ("DELETE FROM raw.trades", "read-only"),
        ("DROP TABLE raw.trades", "read-only"),
        ("CREATE SCHEMA evil", "read-only"),
    ]


def test_the_sandbox_refuses_files_extensions_settings_and_writes(warehouse, tmp_path):
    with connect_sandboxed(warehouse) as con:
        for query, why in _refused(tmp_path):
            with pytest.raises(duckdb.Error, match=why):
                con.execute(query).fetchall()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "other.duckdb", "warehouse.duckdb"]
    assert _trades(warehouse) == 250


def test_the_warehouse_temp_directory_is_no_way_out(warehouse):
    """DuckDB allows file access inside the temp directory; the sandbox has none, so this existing one is closed."""
    spill = Path(f"{warehouse}.tmp")
    spill.mkdir()
    with connect_sandboxed(warehouse) as con:
        with pytest.raises(duckdb.Error, match="Permission"):
            con.execute(f"COPY raw.trades TO '{spill / 'x.csv'}'")
    assert list(spill.iterdir()) == []


def test_a_missing_warehouse_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError, match="no warehouse at"):
        connect_sandboxed(tmp_path / "none.duckdb")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- whalecopy sql


@pytest.fixture
def sql(warehouse, monkeypatch, capsys):
    """``whalecopy sql ...`` with WAREHOUSE_PATH at the tiny warehouse: (exit code, stdout, stderr)."""
    monkeypatch.setenv("WAREHOUSE_PATH", str(warehouse))

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(["sql", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_sql_prints_an_aligned_table_and_says_how_many_rows_it_left_out(sql):
    code, out, err = sql("SELECT proxy_wallet, ts, price FROM raw.trades ORDER BY ts")
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert lines[0].split() == ["proxy_wallet", "ts", "price"]
    assert len(lines) == 2 + 100 + 1  # header, rule, the default 100 rows, the note
    assert lines[-1] == "(first 100 of 250 rows; 150 more not shown: raise --limit, 0 for all)"
    assert len({len(line) for line in lines[1:-1]}) == 1  # aligned: every row as wide as the rule
    assert lines[3].endswith("1  0.001")  # numbers to the right

    code, out, _ = sql("SELECT count(*) AS n FROM raw.trades")
    assert code == 0 and out.splitlines()[2].strip() == "250" and out.splitlines()[-1] == "(1 row)"
    code, out, _ = sql("SELECT ts FROM raw.trades", "--limit", "0")  # 0: every row
    assert code == 0 and len(out.splitlines()) == 2 + 250 + 1 and out.splitlines()[-1] == "(250 rows)"


def test_sql_writes_csv_and_json(sql):
    code, out, err = sql("SELECT ts, price, ts % 2 = 0 AS even FROM raw.trades ORDER BY ts", "--format", "csv",
                         "--limit", "2")  # fmt: skip
    assert code == 0 and out == "ts,price,even\n0,0.0,true\n1,0.001,false\n"
    assert "248 more not shown" in err  # the note stays out of the data
    code, out, _ = sql("SELECT 'a' AS s, NULL AS n, 'nan'::DOUBLE AS f", "--format", "json")
    assert code == 0 and out == '[\n{"s": "a", "n": null, "f": "nan"}\n]\n'


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY raw.trades TO '{tmp}/out.csv'",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "CREATE TABLE raw.evil (x INTEGER)",
        "INSERT INTO raw.trades VALUES ('0x', 1, 0.5)",
        "DROP TABLE raw.trades",
        "SELECT 1; DROP TABLE raw.trades",
    ],
)
def test_sql_refuses_with_exit_code_2_and_one_line(sql, warehouse, tmp_path, query):
    duckdb.connect(str(tmp_path / "other.duckdb")).close()
    code, out, err = sql(query.format(tmp=tmp_path))
    assert code == 2 and out == ""
    assert err.startswith("whalecopy sql: refused: ") and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.duckdb", "warehouse.duckdb"]
    assert _trades(warehouse) == 250


def test_sql_errors_are_one_line_with_exit_code_2(sql, tmp_path):
    code, _, err = sql("SELEC 1")
    assert code == 2 and err.startswith("whalecopy sql: Parser Error") and err.count("\n") == 1
    code, _, err = sql("SELECT 1", "--warehouse", str(tmp_path / "none.duckdb"))
    assert code == 2 and "no warehouse at" in err and not (tmp_path / "none.duckdb").exists()
    code, _, err = sql("SELECT 1", "--limit", "-1")
    assert code == 2 and "--limit -1" in err


HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE TABLE raw.held (x INTEGER)")
    print("holding", flush=True)
    time.sleep(60)
    """
)


def test_sql_while_another_process_writes_fails_clearly(sql, warehouse):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(warehouse)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"
        code, _, err = sql("SELECT count(*) FROM raw.trades")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert code == 2 and "locked by another process" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------- ids at the boundary


def _page(rows: list[dict]) -> Batch:
    batch = Batch()
    batch.add(Page("file:hostile.jsonl", rows))
    return batch


def test_an_injection_shaped_wallet_is_quarantined_and_reaches_sql_only_as_data(tmp_path):
    good = {"proxyWallet": WALLET, "side": "BUY", "asset": "123", "conditionId": "0x" + "cd" * 32, "size": 10,
            "price": 0.5, "timestamp": NOW - 86400}  # fmt: skip
    hostile = [
        good | {"proxyWallet": HOSTILE_WALLET},
        good | {"conditionId": "0x'); DROP TABLE raw.trades; --"},
        good | {"asset": "1 OR 1=1"},
    ]
    parsed = parse_trades(_page([good, *hostile]), source="files", now_ts=NOW)
    assert parsed.n_accepted == 1 and parsed.accepted.column("proxy_wallet").to_pylist() == [WALLET]
    assert parsed.rejected.column("reason_code").to_pylist() == [
        "bad_wallet",
        "bad_condition_id",
        "bad_token_id",
    ]
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ensure_raw(con)
        load_trades(con, parsed.accepted, parsed.rejected, source="files")
        assert con.execute("SELECT count(*) FROM raw.trades").fetchone() == (1,)
        records = [r for (r,) in con.execute("SELECT record FROM raw.quarantine ORDER BY record").fetchall()]
        assert any(HOSTILE_WALLET in r for r in records)  # kept verbatim, as data

    board = parse_leaderboard(_page([{"rank": 1, "proxyWallet": HOSTILE_WALLET, "vol": 1, "pnl": 1}]),
                              source="files", category="OVERALL", time_period="ALL", order_by="PNL")  # fmt: skip
    assert board.n_accepted == 0 and board.rejected.column("reason_code").to_pylist() == ["bad_wallet"]
    markets = parse_markets(_page([{"conditionId": "0x' OR '1'='1", "outcomes": "[]", "clobTokenIds": "[]"}]),
                            source="files")  # fmt: skip
    assert markets.n_accepted == 0 and "bad_condition_id" in markets.rejected.column("reasons").to_pylist()[0]


# ------------------------------------------------------------------ identifiers allow-listed, values bound


@pytest.mark.parametrize(
    "table",
    ["raw.trades; DROP TABLE raw.trades", "main.t", "analytics.Orders", "analytics.x\n", "analytics", '"raw".trades',
     "evaluation.a.b", "pg_catalog.t", "_rows; DROP TABLE raw.trades", "_Rows", "_"],
)  # fmt: skip
def test_a_table_name_outside_the_allow_list_never_reaches_sql(table, tmp_path):
    with pytest.raises(ValueError, match="is not <schema>.<name>"):
        checked_table(table)
    with pytest.raises(ValueError):
        create_table_sql(table, {"x": "INTEGER"})
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.trades (x INTEGER)")
        with pytest.raises(ValueError):
            replace_table(con, table, {"x": "INTEGER"}, None)
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (1,)
    assert checked_table("analytics.paper_nav") == "analytics.paper_nav"
    assert checked_table("_score_rows") == "_score_rows"  # a run's temporary table
    assert create_table_sql("_score_rows", {"x": "INTEGER"}).startswith("CREATE TEMP TABLE")


@pytest.mark.parametrize(
    ("columns", "key"),
    [
        ({'x" INTEGER); DROP TABLE raw.trades; --': "INTEGER"}, None),
        ({"x": "INTEGER); DROP TABLE raw.trades; --"}, None),
        ({"x": "INTEGER"}, "x); DROP TABLE raw.trades; --"),
    ],
)
def test_a_hostile_column_type_or_key_never_reaches_sql(columns, key):
    with pytest.raises(ValueError):
        create_table_sql("analytics.t", columns, key=key)
    assert "PRIMARY KEY (as_of, wallet)" in create_table_sql(
        "analytics.t", {"as_of": "DATE NOT NULL"}, "as_of, wallet"
    )


def test_ingest_counts_only_raw_tables_it_knows():
    with pytest.raises(ValueError, match="is not one of"):
        _result(None, None, "trades; DROP TABLE raw.trades")


@pytest.fixture
def marts(tmp_path):
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA analytics; CREATE SCHEMA intermediate")
    con.execute(
        "CREATE TABLE marts.wallet_daily_returns AS SELECT ? AS wallet, DATE '2025-01-01' + CAST(range AS INTEGER) "
        "AS day, 0.01 AS daily_return, 1 AS n_fills FROM range(60)",
        [WALLET],
    )
    scores = ", ".join(f"0.5 AS {c}" for c in PREDICTORS.values())
    con.execute(f"CREATE TABLE analytics.whale_scores AS SELECT DATE '2025-01-01' AS as_of, ? AS wallet, {scores}",
                [WALLET])  # fmt: skip
    con.execute(
        "CREATE TABLE intermediate.int_position_fills AS SELECT 1::UHUGEINT AS fill_key, ? AS wallet, '1' AS token_id, "
        "'0xc' AS condition_id, '0xt' AS transaction_hash, 1000 AS ts, 0.5 AS price, 5.0 AS size, 2.5 AS notional, "
        "10.0 AS shares_before, 'SELL' AS side, 'trade' AS kind",
        [WALLET],
    )
    con.execute("CREATE TABLE _paper_candidates AS SELECT ? AS wallet, '1' AS token_id", [WALLET])
    yield con
    con.close()


def test_forward_returns_binds_its_values_and_allow_lists_its_relation(marts):
    frame = forward_returns(marts, 30, 20)
    assert len(frame) == 1 and frame["fwd_days"].iloc[0] == 30
    assert forward_returns(marts, 30, 31).empty
    with pytest.raises(ValueError):
        forward_returns(marts, "30 + 0; DROP TABLE marts.wallet_daily_returns", 20)
    with pytest.raises(duckdb.Error):  # a value reaching DuckDB unconverted is data, never SQL
        marts.execute(forward_sql(), {"horizon_days": "30; DROP TABLE marts.wallet_daily_returns",
                                      "min_forward_days": 20})  # fmt: skip
    with pytest.raises(ValueError, match="scores must be one of"):
        forward_sql("analytics.whale_scores s, marts.wallet_daily_returns --")
    assert marts.execute("SELECT count(*) FROM marts.wallet_daily_returns").fetchone() == (60,)


def test_the_copy_latency_is_bound(marts):
    assert marts.execute(WHALE_SELLS_SQL, {"latency_seconds": 60}).fetchall()[0][2] == 1060
    with pytest.raises(duckdb.Error):
        marts.execute(
            WHALE_SELLS_SQL, {"latency_seconds": "0 AS ts; DROP TABLE intermediate.int_position_fills"}
        )
    assert marts.execute("SELECT count(*) FROM intermediate.int_position_fills").fetchone() == (1,)


# ------------------------------------------------------------------------------------- loopback, secrets


def test_the_ui_listens_on_loopback_only(monkeypatch):
    make_ui = (REPO / "Makefile").read_text().split("\nui:")[1].split("\n\n")[0]
    assert "dagster dev" in make_ui and "-h 127.0.0.1" in make_ui
    seen = []

    def execvp(file, argv):  # the real one never returns
        seen.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(cli.os, "execvp", execvp)
    with pytest.raises(SystemExit):
        cli.main(["ui", "--port", "3999"])
    (argv,) = seen
    assert argv[argv.index("-h") + 1] == "127.0.0.1" and "0.0.0.0" not in argv


def test_the_dashboard_listens_on_loopback_only_and_passes_its_sources(monkeypatch, tmp_path, capsys):
    seen = []

    def execvpe(file, argv, env):  # the real one never returns
        seen.append((argv, env))
        raise SystemExit(0)

    monkeypatch.setattr(cli.os, "execvpe", execvpe)
    with pytest.raises(SystemExit):
        cli.main(["dashboard", "--port", "8599", "--warehouse", str(tmp_path / "w.duckdb"),
                  "--live-dir", str(tmp_path / "live")])  # fmt: skip
    ((argv, env),) = seen
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1" and "0.0.0.0" not in argv
    assert argv[argv.index("--server.port") + 1] == "8599" and argv[argv.index("run") + 1].endswith(
        "dashboard/app.py"
    )
    assert env["WAREHOUSE_PATH"] == str(tmp_path / "w.duckdb") and env["WHALECOPY_LIVE_DIR"] == str(
        tmp_path / "live"
    )
    assert argv[argv.index("--browser.gatherUsageStats") + 1] == "false"
    assert "http://127.0.0.1:8599" in capsys.readouterr().out


def test_the_webhook_comes_from_the_environment_and_its_secret_path_is_never_logged(monkeypatch):
    monkeypatch.delenv("WHALECOPY_ALERT_WEBHOOK_URL", raising=False)
    assert Settings().alert_webhook_url is None and Settings.from_env().alert_webhook_url is None
    url = "https://hooks.example.com/services/T0/B0/not-a-real-secret-path"
    monkeypatch.setenv("WHALECOPY_ALERT_WEBHOOK_URL", url)
    assert Settings.from_env().alert_webhook_url == url

    class Log:
        def __init__(self):
            self.warnings = []

        def warning(self, msg):
            self.warnings.append(msg)

    def refused(request):
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    alerts = [{"day": 20_000, "kind": "var_breach", "message": "VaR"}]
    for transport in (httpx.MockTransport(lambda r: httpx.Response(404)), httpx.MockTransport(refused)):
        log = Log()
        assert AlertsResource(webhook_url=url).send(alerts, log, transport=transport) == 0
        (warning,) = log.warnings
        assert "hooks.example.com" in warning and "not-a-real-secret-path" not in warning


SECRET_PATTERNS = [
    r"hooks\.slack\.com/services/T[A-Z0-9]+/",  # a Slack incoming webhook
    r"xox[abpr]-[0-9A-Za-z-]{10,}",  # a Slack token
    r"AKIA[0-9A-Z]{16}",  # an AWS access key id
    r"gh[pousr]_[0-9A-Za-z]{36}",  # a GitHub token
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
]


def test_no_secret_is_checked_in():
    try:
        files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    pattern = re.compile("|".join(SECRET_PATTERNS))
    found = []
    for name in files:
        path = REPO / name
        if path.suffix in {".duckdb", ".parquet", ".gz", ".png"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        found += [f"{name}: {m.group(0)[:12]}..." for m in pattern.finditer(text)]
    assert found == []
