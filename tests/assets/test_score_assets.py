"""The score and evaluation assets on a small simulated market: a clean, immutable, point-in-time history."""

import io
import json
import shutil
from datetime import date

import dagster as dg
import duckdb
import pytest

from assets.evaluate.assets import PREDICTORS
from assets.score.assets import WHALE_SCORES_COLUMNS, whale_scores
from assets.transform.assets import build_dbt_assets
from orchestration.cli import run_sync
from orchestration.resources import build_resources
from tests.assets.helpers import content_hash, small_settings

FLOATS = [c for c, kind in WHALE_SCORES_COLUMNS.items() if kind == "DOUBLE"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    path = tmp_path_factory.mktemp("score") / "w.duckdb"
    settings = small_settings(path)
    result = run_sync(settings, out=io.StringIO())
    assert result.success
    return settings


def test_whale_scores_are_clean(scored):
    with duckdb.connect(str(scored.warehouse_path), read_only=True) as con:
        not_finite = " + ".join(f"count(*) FILTER (WHERE isnan({c}) OR isinf({c}))" for c in FLOATS)
        assert con.execute(f"SELECT {not_finite} FROM analytics.whale_scores").fetchall()[0][0] == 0
        rows, dates, scored_rows, unscored_with_reason, unscored = con.execute(
            """SELECT count(*), count(DISTINCT as_of), count(wqs),
                      count(*) FILTER (WHERE wqs IS NULL AND reason IS NOT NULL), count(*) FILTER (WHERE wqs IS NULL)
               FROM analytics.whale_scores"""
        ).fetchall()[0]
        assert dates > 50 and scored_rows > 0 and unscored > 0
        assert unscored_with_reason == unscored
        # NaN never ranks first: at every date the rank-1 row has a score
        (bad_first,) = con.execute(
            "SELECT count(*) FROM analytics.whale_scores WHERE rank = 1 AND wqs IS NULL"
        ).fetchall()[0]
        assert bad_first == 0
        # the universe is the latest date's wallets with WQS >= 60, best first
        universe = con.execute("SELECT wallet, wqs FROM analytics.whale_universe ORDER BY rank").fetchall()
        expected = con.execute(
            "SELECT wallet, wqs FROM analytics.whale_scores WHERE as_of = (SELECT max(as_of) FROM "
            "analytics.whale_scores) AND wqs >= 60 ORDER BY rank"
        ).fetchall()
        assert universe == expected
        # the quarantine covers every row of the history, and only a whale with 3 strikes is quarantined
        q_rows, s_rows, early = con.execute(
            """SELECT (SELECT count(*) FROM analytics.whale_quarantine), (SELECT count(*) FROM analytics.whale_scores),
                      (SELECT count(*) FROM analytics.whale_quarantine WHERE quarantined AND released_on IS NULL)"""
        ).fetchall()[0]
        assert q_rows == s_rows and early == 0
        ic = con.execute("SELECT universe, predictor, mean_ic FROM evaluation.score_ic").fetchall()
        assert {(u, p) for u, p, _ in ic} == {(u, p) for u in ("all", "active") for p in PREDICTORS}
        assert all(-1 <= v <= 1 for *_, v in ic)


def _gates(result) -> dict[str, dict]:
    return {e.asset_check_key.name: {"passed": e.passed, **{k: v.value for k, v in e.metadata.items()}}
            for e in result.get_asset_check_evaluations()}  # fmt: skip


def test_a_second_run_appends_nothing_and_rewrites_nothing(scored, tmp_path):
    path = tmp_path / "again.duckdb"
    shutil.copy(scored.warehouse_path, path)
    before = content_hash(path, "analytics.whale_scores", "as_of, wallet")
    result = run_sync(small_settings(path), out=io.StringIO())
    assert result.success
    assert content_hash(path, "analytics.whale_scores", "as_of, wallet") == before
    # its gates read what it wrote: nothing new in the raw fills, the scores and the quarantine, no position the
    # build recomputed
    gates = _gates(result)
    for name in ("raw_trades_gate", "whale_scores_expectations", "whale_quarantine_expectations",
                 "fct_fills_expectations", "fct_positions_expectations", "wallet_features_expectations",
                 "wallet_daily_returns_expectations"):  # fmt: skip
        assert gates[name]["passed"] and gates[name]["scope"] != "every row", name
        assert gates[name]["rows_in_scope"] == 0 < gates[name]["rows"], name
    assert gates["raw_markets_gate"]["scope"] == "every row"  # no increment: read whole


def test_a_bad_row_written_after_the_last_pass_fails_the_next_gate_and_then_every_row_is_read(
    scored, tmp_path
):
    """A fill written after raw.trades last passed, with a price out of range, is in the next run's scope: its gate
    fails and blocks what is downstream. Once it is gone, the run after reads the whole table again (a failure
    forgets where the table last passed) and passes."""
    path = tmp_path / "bad.duckdb"
    shutil.copy(scored.warehouse_path, path)
    with duckdb.connect(str(path)) as con:
        con.execute("""INSERT INTO raw.trades SELECT * REPLACE (fill_key + 1 AS fill_key, 1.5 AS price, now() AS ingested_at)
                       FROM raw.trades ORDER BY fill_key DESC LIMIT 1""")  # fmt: skip
    result = run_sync(small_settings(path), skip_groups=("evaluation",), out=io.StringIO())
    assert not result.success
    gate = _gates(result)["raw_trades_gate"]
    assert (
        not gate["passed"]
        and gate["rows_in_scope"] == 1
        and "price between 0 and 1" in gate["failed_because"]
    )
    assert "transform" not in {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM raw.trades WHERE price > 1")
    again = _gates(run_sync(small_settings(path), skip_groups=("evaluation",), out=io.StringIO()))[
        "raw_trades_gate"
    ]
    assert again["passed"] and again["scope"] == "every row" and again["rows_in_scope"] == again["rows"]


def test_rewriting_fills_and_outcomes_after_as_of_leaves_the_stored_scores_at_as_of_unchanged(
    scored, tmp_path
):
    """End to end through dbt: fills from t on are resized and repriced, every market resolving from t on has its
    outcome flipped, the marts are rebuilt and the history is scored again from scratch. Every row at or before t
    is identical; the latest date changes (the rewrite reached the scores)."""
    path = tmp_path / "rewritten.duckdb"
    shutil.copy(scored.warehouse_path, path)
    with duckdb.connect(str(path)) as con:
        dates = [
            r[0]
            for r in con.execute("SELECT DISTINCT as_of FROM analytics.whale_scores ORDER BY 1").fetchall()
        ]
        t = dates[len(dates) // 2]
        con.execute(
            "UPDATE raw.trades SET size = size * 2, price = least(price * 1.1, 0.99) "
            "WHERE ts >= epoch(CAST(? AS TIMESTAMP))",
            [t],
        )
        (flipped,) = con.execute(
            """UPDATE raw.markets SET outcome_prices = CASE outcome_prices WHEN '["1","0"]' THEN '["0","1"]'
                                                                    WHEN '["0","1"]' THEN '["1","0"]' END
               WHERE outcome_prices IN ('["1","0"]', '["0","1"]') AND condition_id IN (
                   SELECT condition_id FROM intermediate.int_market_resolutions
                   WHERE resolved_at >= CAST(? AS TIMESTAMP) AT TIME ZONE 'UTC')""",
            [t],
        ).fetchall()[0]
        assert flipped > 0
    settings = small_settings(path)
    result = dg.materialize(
        [build_dbt_assets(settings.fee_rate), whale_scores],
        resources=build_resources(settings),
        run_config={"ops": {"analytics__whale_scores": {"config": {"rebuild_scores": True}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    cols = ", ".join(c for c in WHALE_SCORES_COLUMNS if c != "scored_at")
    query = f"SELECT {cols} FROM analytics.whale_scores WHERE as_of {{}} ? ORDER BY as_of, wallet"
    with (
        duckdb.connect(str(scored.warehouse_path), read_only=True) as a,
        duckdb.connect(str(path), read_only=True) as b,
    ):
        early_a = a.execute(query.format("<="), [t]).fetchall()
        early_b = b.execute(query.format("<="), [t]).fetchall()
        late_a = a.execute(query.format("="), [dates[-1]]).fetchall()
        late_b = b.execute(query.format("="), [dates[-1]]).fetchall()
    assert len(early_a) > 1000
    assert len(early_a) == len(early_b)
    names = [c for c in WHALE_SCORES_COLUMNS if c != "scored_at"]
    differ = [
        (ra[0], ra[1], name, x, y)
        for ra, rb in zip(early_a, early_b, strict=True)
        for name, x, y in zip(names, ra, rb, strict=True)
        if not _same(x, y)
    ]
    assert not differ, differ[:10]
    assert late_a != late_b


def _same(x, y) -> bool:
    """Equal; floats to 1e-9 relative (DuckDB's parallel sums may order additions differently between builds)."""
    if isinstance(x, float) and isinstance(y, float):
        return abs(x - y) <= 1e-9 * max(abs(x), abs(y), 1e-3)
    return x == y


def test_a_history_from_another_version_is_never_rewritten_silently(scored, tmp_path):
    path = tmp_path / "old.duckdb"
    shutil.copy(scored.warehouse_path, path)
    with duckdb.connect(str(path)) as con:
        con.execute("ALTER TABLE analytics.whale_scores DROP COLUMN current_drawdown")
    settings = small_settings(path)
    result = dg.materialize(
        [whale_scores], resources=build_resources(settings), instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.user_failure_data.description
    assert "missing columns: ['current_drawdown']" in message and "--rebuild-scores" in message


def test_signals_cover_every_whale_buy_with_what_was_known_before_it(scored):
    """One candidate per BUY order (the legs of one wallet's transaction on one token are one decision), and
    every BUY fill is a leg of exactly one of them."""
    with duckdb.connect(str(scored.warehouse_path), read_only=True) as con:
        buys, orders = con.execute(
            "SELECT count(*), count(DISTINCT (wallet, token_id, coalesce(transaction_hash, CAST(fill_key AS VARCHAR)))) "
            "FROM marts.fct_fills WHERE side = 'BUY'"
        ).fetchall()[0]
        (n, legs, bad_reason, future_score, stale_score) = con.execute(
            """
            SELECT
                count(*), sum(legs),
                count(*) FILTER (WHERE (reason IS NULL) <> (stage_reached = 'portfolio')),
                count(*) FILTER (WHERE score_as_of > CAST(traded_at AT TIME ZONE 'UTC' AS DATE)),
                count(*) FILTER (WHERE EXISTS (
                    SELECT 1 FROM analytics.whale_scores w
                    WHERE w.wallet = s.wallet AND w.as_of > coalesce(s.score_as_of, DATE '1970-01-01')
                      AND w.as_of <= CAST(s.traded_at AT TIME ZONE 'UTC' AS DATE)))
            FROM analytics.signals s
            """
        ).fetchall()[0]
        assert n == orders > 0 and legs == buys > orders  # the small world has multi-leg orders too
        assert bad_reason == 0
        assert future_score == 0  # never a score from after the fill
        assert stale_score == 0  # always the latest one before it
        # a quarantined whale never passes stage 1; every stage-1 failure says why
        (leak,) = con.execute(
            "SELECT count(*) FROM analytics.signals WHERE quarantined AND passed_whale"
        ).fetchall()[0]
        assert leak == 0
        # a whale's flags are those of its score's date, and a flagged whale never passes stage 1
        flagged, passed, wrong = con.execute(
            """
            SELECT count(*) FILTER (WHERE s.flags IS NOT NULL),
                   count(*) FILTER (WHERE s.flags IS NOT NULL AND s.passed_whale),
                   count(*) FILTER (WHERE s.flags IS DISTINCT FROM h.flags)
            FROM analytics.signals s LEFT JOIN (
                SELECT as_of, wallet, string_agg(flag, ', ' ORDER BY flag) AS flags
                FROM analytics.wallet_flags_history GROUP BY ALL
            ) h ON h.wallet = s.wallet AND h.as_of = s.score_as_of
            """
        ).fetchall()[0]
        assert flagged > 0 and passed == 0 and wrong == 0


LOOSE = {
    "min_wqs": 0.0, "max_whale_drawdown": 1.0, "min_notional": 0.0, "max_slippage": 10.0,
    "max_days_to_resolution": 10_000.0, "min_edge": 0.0, "strikes_to_quarantine": 1_000,
}  # fmt: skip


def test_paper_portfolio_on_loosened_thresholds_books_each_order_once_and_replays_identically(
    scored, tmp_path
):
    """The default thresholds copy nothing on the small simulated market, so this run loosens stages 1 and 2
    (the config every run can override) and checks the portfolio's books."""
    from assets.paper.assets import build_paper_portfolio
    from assets.risk.assets import whale_quarantine
    from assets.signal.assets import signals

    path = tmp_path / "paper.duckdb"
    shutil.copy(scored.warehouse_path, path)
    settings = small_settings(path)
    paper_assets = build_paper_portfolio(settings.fee_rate)
    run_config = {"resources": {"strategy": {"config": LOOSE}}}  # one config: every asset of the run sees it

    def run():
        result = dg.materialize([whale_quarantine, signals, paper_assets], resources=build_resources(settings),
                                run_config=run_config, instance=dg.DagsterInstance.ephemeral())  # fmt: skip
        assert result.success
        with duckdb.connect(str(path), read_only=True) as con:
            return {t: con.execute(f"SELECT * FROM analytics.{t} ORDER BY ALL").fetchall()
                    for t in ("orders", "paper_fills", "paper_positions", "paper_nav", "risk_daily", "alerts")}  # fmt: skip

    first = run()
    with duckdb.connect(str(path), read_only=True) as con:
        (passed,) = con.execute(
            "SELECT count(*) FROM analytics.signals WHERE stage_reached = 'portfolio'"
        ).fetchall()[0]
        copied, entries, unique_keys, over_cap, days, span = con.execute(
            """SELECT (SELECT count(*) FROM analytics.orders WHERE copied),
                      (SELECT count(*) FROM analytics.paper_fills WHERE kind = 'entry'),
                      (SELECT count(DISTINCT key) FROM analytics.paper_fills WHERE kind = 'entry'),
                      (SELECT count(*) FROM analytics.orders WHERE fraction > 0.08 + 1e-12 OR shares < 0),
                      (SELECT count(*) FROM analytics.paper_nav),
                      (SELECT max(day) - min(day) + 1 FROM analytics.paper_nav)"""
        ).fetchall()[0]
        (orders,) = con.execute("SELECT count(*) FROM analytics.orders").fetchall()[0]
        (joined,) = con.execute(
            "SELECT count(*) FROM analytics.orders o JOIN marts.fct_fills f USING (fill_key)"
        ).fetchall()[0]
    assert passed > 0 and orders == passed == joined  # every candidate decided once, keyed to its whale fill
    assert copied > 0 and entries == copied == unique_keys and over_cap == 0
    assert days == span  # one NAV row per day, no gaps
    with duckdb.connect(str(path), read_only=True) as con:
        kinds = {k for (k,) in con.execute("SELECT DISTINCT kind FROM analytics.alerts").fetchall()}
    assert kinds <= {"var_breach", "trailing_stop", "time_exit", "whale_quarantined"}
    with duckdb.connect(str(path), read_only=True) as con:
        through, last = con.execute(
            "SELECT (SELECT through_day FROM analytics.paper_state), (SELECT max(day) FROM analytics.paper_nav)"
        ).fetchall()[0]
    assert through == last - 3  # the book as it was three days before the last day
    assert run() == first  # a rerun goes on from the kept book to the same books: nothing booked twice
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE analytics.paper_state")
    assert run() == first  # and a replay of the whole history too

    # the orders as intents for a user's own executor: every fill but settlements, each id unique
    from orchestration.cli import main

    out = tmp_path / "intents.json"
    assert main(["intents", "--warehouse", str(path), "--format", "json", "--out", str(out)]) == 0
    intents = json.loads(out.read_text())["intents"]
    with duckdb.connect(str(path), read_only=True) as con:
        (orders_needed,) = con.execute(
            "SELECT count(*) FROM analytics.paper_fills WHERE kind <> 'settlement'"
        ).fetchall()[0]
    assert len(intents) == orders_needed > 0 and len({i["intent_id"] for i in intents}) == len(intents)


class _Webhook:
    """A Slack-style webhook on loopback: records each POST's JSON, answers ``status``."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        hook = self
        self.bodies, self.status = [], 200

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def lines(self) -> list[str]:
        return [line for b in self.bodies for line in b["text"].splitlines() if line.startswith("[")]


def test_the_daily_run_posts_each_portfolio_alert_once(scored, tmp_path):
    """Every run's book finds the history's alerts again; the webhook gets each once: on the first run the last
    day's, then only those no run found before, and those a failing webhook did not take on the next run."""
    from assets.paper.assets import build_paper_portfolio
    from assets.risk.assets import whale_quarantine
    from assets.signal.assets import signals

    path = tmp_path / "alerts.duckdb"
    shutil.copy(scored.warehouse_path, path)
    hook = _Webhook()
    settings = small_settings(path, alert_webhook_url=hook.url)
    assets = [whale_quarantine, signals, build_paper_portfolio(settings.fee_rate)]

    def run():
        result = dg.materialize(assets, resources=build_resources(settings), instance=dg.DagsterInstance.ephemeral(),
                                run_config={"resources": {"strategy": {"config": LOOSE}}})  # fmt: skip
        assert result.success
        with duckdb.connect(str(path), read_only=True) as con:
            return con.execute("SELECT day, kind, message, delivery, posted_at IS NOT NULL FROM analytics.alerts "
                               "ORDER BY rowid").fetchall()  # fmt: skip

    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE IF EXISTS analytics.alerts")  # the first run of the book
    first = run()
    with duckdb.connect(str(path), read_only=True) as con:
        (last_day,) = con.execute(
            "SELECT max(day) FROM analytics.paper_nav"
        ).fetchone()  # the book's last day
    assert len(first) > 10 and {r[3] for r in first} <= {"history", "posted"}
    assert [r[:3] for r in first if r[3] == "posted"] == [r[:3] for r in first if r[0] == last_day]
    assert all(r[4] == (r[3] == "posted") for r in first)
    assert len(hook.lines()) == min(sum(r[0] == last_day for r in first), 20)
    posts = len(hook.bodies)

    assert run() == first and len(hook.bodies) == posts  # found again: nothing posted

    # alerts no run found before (here: forgotten by the warehouse), while the webhook fails: kept to post
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM analytics.alerts WHERE rowid IN (0, 2)")
    hook.status = 503
    failed = run()
    assert [r[3] for r in failed[:3]] == ["pending", first[1][3], "pending"] and failed[3:] == first[3:]
    hook.status = 200
    posted = run()
    assert [r[3] for r in posted[:3]] == ["posted", first[1][3], "posted"] and posted[3:] == first[3:]
    text = hook.bodies[-1]["text"]
    assert len(hook.bodies) == posts + 2 and len(text.splitlines()) == 3  # the header and the two alerts
    assert all(f"day {r[0]}: {r[2]}" in text for r in (first[0], first[2]))
    run()
    assert len(hook.bodies) == posts + 2  # posted once
    hook.server.shutdown()


def test_the_terminal_summary_shows_every_stage(scored):
    from orchestration.summary import summary_lines

    with duckdb.connect(str(scored.warehouse_path), read_only=True) as con:
        text = "\n".join(summary_lines(con))
    for heading in ("analytics.whale_scores", "whales by WQS", "score IC", "signal funnel", "stage 3 portfolio",
                    "paper portfolio as of", "VaR95"):  # fmt: skip
        assert heading in text, heading


def test_the_backtest_neither_discovers_nor_draws_a_wallet_flagged_at_its_date_unless_kept(scored, tmp_path):
    from assets.evaluate.backtest_assets import DAY, load_inputs
    from assets.strategy import StrategyConfig

    path = tmp_path / "w.duckdb"
    shutil.copy(scored.warehouse_path, path)
    with duckdb.connect(str(path)) as con:
        first, last = con.execute(
            f"SELECT {DAY.format('min(day)')}, {DAY.format('max(day)')} FROM marts.wallet_daily_returns"
        ).fetchall()[0]
        flagged = {(int(d), w) for d, w in con.execute(
            f"SELECT DISTINCT {DAY.format('as_of')}, wallet FROM analytics.wallet_flags_history").fetchall()}  # fmt: skip
        pairs = {}
        for keep in (False, True):
            strategy = StrategyConfig(keep_flagged_wallets=keep)
            scores = load_inputs(con, strategy, strategy.backtest_params(), int(first), int(last))[4]
            pairs[keep] = set(zip(scores["as_of_day"].astype(int), scores["wallet"], strict=True))
    assert not (pairs[False] & flagged)  # the pool of whales and random wallets at each origin is unflagged
    assert pairs[True] & flagged and pairs[False] == pairs[True] - flagged


def test_the_backtest_compares_every_strategy_and_the_report_shows_it(scored, tmp_path):
    """The walk-forward tables come out of the run, the targets table is the pipeline's, a rerun of the backtest
    writes the same tables, and the report (asset and CLI) draws every plot."""
    from assets.evaluate.backtest import STRATEGIES, TARGETS
    from assets.evaluate.backtest_assets import build_backtest
    from orchestration.cli import main
    from orchestration.summary import summary_lines

    path = scored.warehouse_path
    tables = ("backtest_daily", "backtest_summary", "backtest_folds", "validation", "attribution_brinson",
              "attribution_regression", "attribution_contribution", "targets")  # fmt: skip
    with duckdb.connect(str(path), read_only=True) as con:
        strategies = [
            s for (s,) in con.execute("SELECT strategy FROM evaluation.backtest_summary").fetchall()
        ]
        days, folds, targets = con.execute(
            """SELECT (SELECT count(DISTINCT day) FROM evaluation.backtest_daily),
                      (SELECT count(*) FROM evaluation.backtest_folds),
                      (SELECT list(documented ORDER BY target) FROM evaluation.targets)"""
        ).fetchall()[0]
        (rows,) = con.execute("SELECT count(*) FROM evaluation.backtest_daily").fetchall()[0]
        checks = {
            c for (c,) in con.execute("SELECT DISTINCT check_name FROM evaluation.validation").fetchall()
        }
        text = "\n".join(summary_lines(con))
        before = {t: con.execute(f"SELECT * FROM evaluation.{t} ORDER BY ALL").fetchall() for t in tables}
    assert strategies == list(STRATEGIES) and rows == days * len(STRATEGIES) and folds >= 5
    assert sorted(targets) == sorted(t[2] for t in TARGETS)
    assert {"score_ic", "kupiec_pof", "christoffersen_independence", "overfitting", "drawdown"} <= checks
    assert "walk-forward backtest" in text and "documented targets" in text

    result = dg.materialize([build_backtest(scored.fee_rate)], resources=build_resources(scored),
                            instance=dg.DagsterInstance.ephemeral())  # fmt: skip
    assert result.success
    with duckdb.connect(str(path), read_only=True) as con:
        after = {t: con.execute(f"SELECT * FROM evaluation.{t} ORDER BY ALL").fetchall() for t in tables}
    assert after == before  # deterministic for its seed: a rerun writes the same evidence

    html = scored.report_path.read_text()  # written by the evaluation.report asset in the run
    expected = int(html.split('data-plots-expected="')[1].split('"')[0])
    assert html.count("<img data-plot=") == expected
    for plot in ("equity", "drawdown", "var", "funnel", "ic_by_month", "wqs_distribution"):
        assert f'data-plot="{plot}"' in html, plot
    assert "Documented targets against what was measured" in html
    out = tmp_path / "r.html"
    assert main(["report", "--warehouse", str(path), "--out", str(out)]) == 0
    assert out.read_text().count("<img data-plot=") == expected
    with pytest.raises(SystemExit, match="no such warehouse"):
        main(["report", "--warehouse", str(path), "--out", str(out), "--real", str(tmp_path / "none.duckdb")])

    # a history shorter than the warm-up: no fold, empty tables and a warning, never a failed run
    short = tmp_path / "short.duckdb"
    shutil.copy(path, short)
    result = dg.materialize([build_backtest(scored.fee_rate)], resources=build_resources(small_settings(short)),
                            run_config={"resources": {"strategy": {"config": {"backtest_warmup_days": 10_000}}}},
                            instance=dg.DagsterInstance.ephemeral())  # fmt: skip
    assert result.success
    with duckdb.connect(str(short), read_only=True) as con:
        assert all(con.execute(f"SELECT count(*) FROM evaluation.{t}").fetchall()[0][0] == 0 for t in tables)


#: the quarantine's rows without the time each run wrote them
QUARANTINE_ROWS = "(SELECT * EXCLUDE (computed_at) FROM analytics.whale_quarantine)"


def test_the_quarantine_carried_on_from_its_state_is_the_full_run(scored, tmp_path):
    """``analytics.whale_quarantine`` run on a history cut short, then carried on from its stored state over the
    dates after the cut, is the table the sync's full run wrote (every column of every row), with wallets that
    first appear after the cut; a changed parameter or a rewritten score row before the cut is run in full."""
    from dagster_duckdb import DuckDBResource

    from assets.risk.assets import STATE_META, whale_quarantine
    from assets.strategy import StrategyConfig

    path = tmp_path / "quarantine.duckdb"
    shutil.copy(scored.warehouse_path, path)
    full = content_hash(path, QUARANTINE_ROWS, "as_of, wallet")

    def run(**strategy) -> dict:
        result = whale_quarantine(context=dg.build_asset_context(), strategy=StrategyConfig(**strategy),
                                  warehouse=DuckDBResource(database=str(path)))  # fmt: skip
        return {k: v.value if hasattr(v, "value") else v for k, v in result.metadata.items()}

    with duckdb.connect(str(path)) as con:
        dates = [
            d
            for (d,) in con.execute("SELECT DISTINCT as_of FROM analytics.whale_scores ORDER BY 1").fetchall()
        ]
        cut = dates[len(dates) // 2]
        con.execute("CREATE TABLE main.later AS SELECT * FROM analytics.whale_scores WHERE as_of > ?", [cut])
        (new_wallets,) = con.execute(
            "SELECT count(DISTINCT wallet) FROM main.later WHERE wallet NOT IN "
            "(SELECT wallet FROM analytics.whale_scores WHERE as_of <= ?)",
            [cut],
        ).fetchone()
        con.execute("DELETE FROM analytics.whale_scores WHERE as_of > ?", [cut])
    assert new_wallets > 0  # the carried run meets wallets the state does not hold
    assert run()["plan"].startswith(
        "full"
    )  # the sync's run stored a state through the last date: not this one
    with duckdb.connect(str(path)) as con:
        con.execute("INSERT INTO analytics.whale_scores SELECT * FROM main.later")
    carried = run()
    assert carried["plan"] == f"carried on from {cut}" and 0 < carried["rows_written"] < carried["rows"]
    assert content_hash(path, QUARANTINE_ROWS, "as_of, wallet") == full
    assert run()["rows_written"] == 0  # nothing new
    with duckdb.connect(
        str(path)
    ) as con:  # the rows of each run carry its time (the quarantine gate reads after it)
        assert con.execute(
            "SELECT count(DISTINCT computed_at) FROM analytics.whale_quarantine"
        ).fetchall() == [(2,)]

    assert run(quarantine_days=31)["plan"] == "full: the rule's parameters changed"
    assert run()["plan"] == "full: the rule's parameters changed"  # and back
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE analytics.whale_scores SET scored_at = scored_at + INTERVAL 1 SECOND "
                    "WHERE as_of = ? AND wallet = (SELECT min(wallet) FROM analytics.whale_scores WHERE as_of = ?)",
                    [dates[0], dates[0]])  # fmt: skip
        (through,) = con.execute(f"SELECT through FROM {STATE_META}").fetchone()
    assert run()["plan"] == f"full: the score history up to {through} changed"
    assert content_hash(path, QUARANTINE_ROWS, "as_of, wallet") == full


def test_signals_decide_again_only_what_changed_and_match_a_full_run(scored, tmp_path):
    """``analytics.signals`` carried on from the digests the last run stored is, after every kind of change to
    what the candidates read, the table a run from scratch writes (every column of every row), and a run decides
    only the orders a change can move. The stages are loosened (``LOOSE``) so every candidate's volatility is
    taken; the changes sit on the boundaries the scope is cut at."""
    from dagster_duckdb import DuckDBResource

    from assets.signal.assets import STATE_TABLE, signals
    from assets.strategy import StrategyConfig

    path = tmp_path / "signals.duckdb"
    shutil.copy(scored.warehouse_path, path)
    strategy = StrategyConfig(**LOOSE)
    latency = strategy.copy_latency_seconds

    def run(db=path, config=strategy) -> dict:
        result = signals(context=dg.build_asset_context(), strategy=config,
                         warehouse=DuckDBResource(database=str(db)))  # fmt: skip
        return result.metadata

    def same_as_a_full_run(name: str) -> None:
        full = tmp_path / f"full-{name}.duckdb"
        shutil.copy(path, full)
        with duckdb.connect(str(full)) as con:
            con.execute(f"DROP TABLE {STATE_TABLE}")
        assert run(full)["plan"] == "full"
        assert content_hash(path, "analytics.signals", "fill_key") == content_hash(
            full, "analytics.signals", "fill_key"
        ), f"after {name}, the carried signals differ from a full run"

    def sql(query: str, params=None):
        with duckdb.connect(str(path)) as con:
            return con.execute(query, params or []).fetchall()

    def add_fill(like_key, ts: int, side: str, price: float) -> int:
        """A copy of fill ``like_key`` at ``ts`` as its own order (a new key and transaction), at ``price``."""
        (key,) = sql("SELECT max(fill_key) + 1 FROM intermediate.int_position_fills")[0]
        sql(
            """INSERT INTO intermediate.int_position_fills SELECT * REPLACE (
                   $key::UHUGEINT AS fill_key, $ts::BIGINT AS ts, $side AS side, $price AS price,
                   size * $price AS notional, '0xnew' || $key::VARCHAR AS transaction_hash,
                   to_timestamp($ts) AS traded_at, CAST(to_timestamp($ts) AT TIME ZONE 'UTC' AS DATE) AS trade_date)
               FROM intermediate.int_position_fills WHERE fill_key = $like""",
            {"key": key, "ts": ts, "side": side, "price": price, "like": like_key},
        )
        return key

    (last_ts,) = sql("SELECT max(ts) FROM intermediate.int_position_fills")[0]
    cut = (last_ts // 86_400 - 3) * 86_400  # three days before the end, at midnight UTC
    sql(f"CREATE TABLE main.later AS SELECT * FROM intermediate.int_position_fills WHERE ts >= {cut}")
    sql(f"DELETE FROM intermediate.int_position_fills WHERE ts >= {cut}")
    first = run()
    assert first["plan"] == "full" and first["decided"] == first["candidates"] > 0

    # 1. new days: the fills from midnight on (and the orders of the day before whose copy price they can set)
    sql("INSERT INTO intermediate.int_position_fills SELECT * FROM main.later")
    new = run()
    assert new["plan"] == "increment" and 0 < new["decided"] < new["candidates"]
    same_as_a_full_run("new days")

    # 2. an order in the last second of a day, then a print exactly one copy latency after it, on the next day:
    #    the copy price the order pays
    (like, price) = sql(
        """SELECT fill_key, price FROM intermediate.int_position_fills
           WHERE side = 'BUY' AND ts < ? AND price < 0.5 ORDER BY ts DESC, fill_key LIMIT 1""",
        [cut - 10 * 86_400],
    )[0]
    order_ts = cut - 5 * 86_400 - 1
    order = add_fill(like, order_ts, "BUY", price)
    assert run()["plan"] == "increment"
    same_as_a_full_run("a late order at 23:59:59")
    add_fill(like, order_ts + latency, "SELL", price + 0.25)
    assert run()["plan"] == "increment"
    (copy_price,) = sql("SELECT copy_price FROM analytics.signals WHERE fill_key = ?", [order])[0]
    assert copy_price == pytest.approx(price + 0.25)  # the print at exactly the latency is the price paid
    same_as_a_full_run("a print one latency after an order, past midnight")
    add_fill(like, order_ts + latency + 1, "SELL", price + 0.4)  # one second later: too late for the copy
    run()
    assert sql("SELECT copy_price FROM analytics.signals WHERE fill_key = ?", [order])[0][0] == copy_price
    same_as_a_full_run("a print one second past the latency")

    # 3. a market's schedule changes (its orders of every day)
    (condition,) = sql(
        "SELECT condition_id FROM analytics.signals GROUP BY 1 ORDER BY min(traded_at) LIMIT 1"
    )[0]
    sql(
        "UPDATE marts.dim_markets SET end_date = end_date + INTERVAL 3 DAY WHERE condition_id = ?",
        [condition],
    )
    moved = run()
    assert moved["plan"] == "increment" and "1 market(s) changed" in moved["plan_reason"]
    same_as_a_full_run("a market's end date")

    # 4. a score rewritten at an as-of date, a quarantine flipped at another, a daily return changed
    (as_of, scored_wallet) = sql(
        "SELECT score_as_of, wallet FROM analytics.signals WHERE wqs IS NOT NULL ORDER BY traded_at LIMIT 1 OFFSET 50"
    )[0]
    sql(
        "UPDATE analytics.whale_scores SET wqs = wqs + 1 WHERE as_of = ? AND wallet = ?",
        [as_of, scored_wallet],
    )
    assert "scores changed from day" in run()["plan_reason"]
    same_as_a_full_run("a rewritten score")
    (q_as_of, q_wallet) = sql(
        "SELECT as_of, wallet FROM analytics.whale_quarantine ORDER BY as_of, wallet LIMIT 1 OFFSET 30"
    )[0]
    sql("UPDATE analytics.whale_quarantine SET quarantined = NOT quarantined WHERE as_of = ? AND wallet = ?",
        [q_as_of, q_wallet])  # fmt: skip
    assert "quarantine changed" in run()["plan_reason"]
    same_as_a_full_run("a flipped quarantine")
    (day,) = sql(
        "SELECT max(day) FROM marts.wallet_daily_returns WHERE wallet = ? AND day < ?", [scored_wallet, as_of]
    )[0]
    sql("UPDATE marts.wallet_daily_returns SET daily_return = daily_return + 0.01 WHERE wallet = ? AND day = ?",
        [scored_wallet, day])  # fmt: skip
    changed = run()
    assert f"returns changed from day {(day - date(1970, 1, 1)).days + 1}" in changed["plan_reason"]
    same_as_a_full_run("a changed daily return")

    # 5. nothing new: nothing decided; other settings: every order again
    assert run()["plan"] == "unchanged" and run()["decided"] == 0
    tighter = StrategyConfig(**(LOOSE | {"min_edge": 0.05}))
    assert run(config=tighter)["plan"] == "full"
