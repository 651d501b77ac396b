"""What a run did and what the warehouse holds, for the terminal."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from assets.evaluate.backtest import unmeasurable, verdict
from assets.score.assets import whale_scores_integrity
from assets.score.flags import FLAGGED_LEFT_OUT_SQL, FLAGS_BY_WALLET_SQL
from assets.strategy import StrategyConfig
from assets.warehouse import table_exists
from quality.checks import GATES

from .settings import Settings

#: the gates written in Python (each printed); every other check is a dbt test (counted)
PYTHON_GATES = {g.name for g in GATES} | {next(iter(whale_scores_integrity.check_keys)).name}
#: the universe's documented bound (a run with another prints its flagged wallets against this one)
UNIVERSE_MIN_WQS = StrategyConfig().universe_min_wqs


def warehouse_lines(con: duckdb.DuckDBPyConnection, universe_min_wqs: float = UNIVERSE_MIN_WQS) -> list[str]:
    """The warehouse's tables stage by stage; ``universe_min_wqs``: the universe's bound, to count the flagged
    wallets it left out."""
    lines: list[str] = []
    if table_exists(con, "raw.markets"):
        n, resolved, pending, open_ = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE closed AND uma_resolution_status = 'resolved'),
                      count(*) FILTER (WHERE closed AND coalesce(uma_resolution_status, '') <> 'resolved'),
                      count(*) FILTER (WHERE NOT closed) FROM raw.markets"""
        ).fetchone()
        lines.append(
            f"  raw.markets          {n:>12,}  ({resolved:,} resolved, {pending:,} closed not resolved, {open_:,} open)"
        )
    if table_exists(con, "raw.trades"):
        n, wallets, markets, lo, hi, notional = con.execute(
            """SELECT count(*), count(DISTINCT proxy_wallet), count(DISTINCT condition_id), min(trade_date),
                      max(trade_date), sum(size * price) FROM raw.trades"""
        ).fetchone()
        lines.append(
            f"  raw.trades           {n:>12,}  fills, {wallets:,} wallets, {markets:,} markets, {lo} .. {hi}, "
            f"${(notional or 0) / 1e6:,.1f}M notional"
        )
    if table_exists(con, "raw.price_history"):
        n, tokens = con.execute("SELECT count(*), count(DISTINCT token_id) FROM raw.price_history").fetchone()
        lines.append(f"  raw.price_history    {n:>12,}  points, {tokens:,} tokens")
    if table_exists(con, "raw.leaderboard"):
        (n,) = con.execute("SELECT count(*) FROM raw.leaderboard").fetchone()
        lines.append(f"  raw.leaderboard      {n:>12,}  rows")
    if table_exists(con, "raw.quarantine"):
        (n,) = con.execute("SELECT count(*) FROM raw.quarantine").fetchone()
        lines.append(f"  raw.quarantine       {n:>12,}  rows")
        for entity, reason, k in con.execute(
            "SELECT entity, reason_code, count(*) FROM raw.quarantine GROUP BY ALL ORDER BY 3 DESC, 1, 2"
        ).fetchall():
            lines.append(f"      {entity}/{reason}: {k:,}")
    if table_exists(con, "marts.dim_markets"):
        n, resolved, anomalies = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_resolved), count(*) FILTER (WHERE is_resolution_anomaly) "
            "FROM marts.dim_markets"
        ).fetchone()
        lines.append(
            f"  marts.dim_markets    {n:>12,}  ({resolved:,} resolved, {anomalies:,} resolution anomalies)"
        )
    if table_exists(con, "marts.fct_positions"):
        n, resolved, flagged, pnl = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_resolved), count(*) FILTER (WHERE NOT is_scorable), "
            "sum(pnl_net) FILTER (WHERE is_scorable) FROM marts.fct_positions"
        ).fetchone()
        lines.append(
            f"  marts.fct_positions  {n:>12,}  ({resolved:,} resolved, {flagged:,} flagged: shares went negative; "
            f"scorable net realised P&L ${(pnl or 0) / 1e6:,.2f}M)"
        )
    for table in ("fct_fills", "wallet_daily_returns", "wallet_features", "wallet_category_features"):
        if table_exists(con, f"marts.{table}"):
            (n,) = con.execute(f"SELECT count(*) FROM marts.{table}").fetchone()  # constant table names
            lines.append(
                f"  marts.{table:<15}{n:>12,}  rows" if len(table) <= 15 else f"  marts.{table} {n:,} rows"
            )
    if table_exists(con, "evaluation.sim_truth"):
        rows = con.execute(
            "SELECT wallet_type, count(*) FROM evaluation.sim_truth GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        total = sum(k for _, k in rows)
        detail = ", ".join(f"{t} {k:,}" for t, k in rows) or "no ground truth (real source)"
        lines.append(f"  evaluation.sim_truth {total:>12,}  wallets ({detail})")
    if table_exists(con, "analytics.whale_scores"):
        n, dates, lo, hi = con.execute(
            "SELECT count(*), count(DISTINCT as_of), min(as_of), max(as_of) FROM analytics.whale_scores"
        ).fetchall()[0]
        scored, unscored = con.execute(
            "SELECT count(wqs), count(*) - count(wqs) FROM analytics.whale_scores "
            "WHERE as_of = (SELECT max(as_of) FROM analytics.whale_scores)"
        ).fetchall()[0]
        lines.append(
            f"  analytics.whale_scores {n:>10,}  rows, {dates:,} as-of dates {lo} .. {hi}; latest: {scored:,} scored, "
            f"{unscored:,} unscored (NULL with a reason)"
        )
    if table_exists(con, "analytics.whale_universe"):
        (n,) = con.execute("SELECT count(*) FROM analytics.whale_universe").fetchall()[0]
        left_out = ""
        if table_exists(con, "analytics.wallet_flags_history"):
            out = con.execute(FLAGGED_LEFT_OUT_SQL, [universe_min_wqs]).fetchall()
            text = ", ".join(f"{f} {k:,}" for f, k in out) or "none"
            left_out = f"; flagged at its date with WQS >= {universe_min_wqs:g}, left out: {text}"
        lines.append(f"  analytics.whale_universe {n:>8,}  wallets{left_out}")
    if table_exists(con, "analytics.wallet_flags"):
        counts = con.execute(
            "SELECT flag, count(*) FROM analytics.wallet_flags GROUP BY 1 ORDER BY 1"
        ).fetchall()
        text = ", ".join(f"{f} {n:,}" for f, n in counts) or "none"
        lines.append(f"  analytics.wallet_flags {sum(n for _, n in counts):>10,}  wallets flagged ({text})")
    return lines


def _flags_sql(con: duckdb.DuckDBPyConnection) -> str:
    """A join giving each wallet's flags as ``flags`` (empty text when none, or when no flags are stored)."""
    if table_exists(con, "analytics.wallet_flags"):
        return f"LEFT JOIN ({FLAGS_BY_WALLET_SQL}) fl USING (wallet)"
    return "LEFT JOIN (SELECT NULL::VARCHAR AS wallet, NULL::VARCHAR AS flags) fl USING (wallet)"


def root_cause(error) -> str:
    """The innermost error of a Dagster SerializableErrorInfo chain: what the user needs to read."""
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def top_wallets(con: duckdb.DuckDBPyConnection, n: int = 10) -> list[str]:
    """The wallets with the highest net realised P&L (scorable positions, fees at the configured rate)."""
    if not table_exists(con, "marts.wallet_features"):
        return []
    rows = con.execute(
        f"""
        SELECT wallet, pnl_net, pnl_gross, volume, n_resolved_positions, wins, losses, market_hhi, fl.flags
        FROM marts.wallet_features {_flags_sql(con)} ORDER BY pnl_net DESC NULLS LAST, wallet LIMIT ?
        """,
        [n],
    ).fetchall()
    out = [f"top {n} wallets by net realised P&L (flags: analytics.wallet_flags):",
           f"  {'wallet':<44}{'net P&L':>14}{'gross P&L':>14}{'volume':>14}{'resolved':>9}{'W-L':>10}{'HHI':>7}"
           f"  flags"]  # fmt: skip
    for w, net, gross, vol, res, wins, losses, hhi, fl in rows:
        out.append(
            f"  {w:<44}{net:>14,.0f}{gross:>14,.0f}{vol:>14,.0f}{res:>9,}{f'{wins}-{losses}':>10}{(hhi or 0):>7,.0f}"
            f"  {fl or '-'}"
        )
    return out


def _interval(mean, lo, hi, digits: int = 2) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def top_whales(con: duckdb.DuckDBPyConnection, n: int = 10) -> list[str]:
    """The best-scored wallets as of the latest date, with their Bayesian win rate and price-calibrated edge."""
    if not table_exists(con, "analytics.whale_universe"):
        return []
    rows = con.execute(
        """
        SELECT as_of, wallet, wqs, tier, regime, win_rate_mean, win_rate_lower, win_rate_upper, win_rate_confidence,
               edge_mean, edge_lower, edge_upper, predictive_positions, predicted_wins_mean, predicted_wins_lower,
               predicted_wins_upper, volume, flags
        FROM analytics.whale_universe ORDER BY rank LIMIT ?
        """,
        [n],
    ).fetchall()
    if not rows:
        return ["whale universe: empty (no wallet reaches the minimum WQS yet)"]
    out = [f"top {len(rows)} whales by WQS as of {rows[0][0]} (95% intervals; wins: 90% predictive interval):",
           f"  {'wallet':<44}{'WQS':>6} {'tier':<6}{'regime':<14}{'win rate':<22}{'conf':<10}{'edge':<24}"
           f"{'wins/' + str(rows[0][12]):>13}{'volume':>13}  flags"]  # fmt: skip
    for r in rows:
        wins = f"{r[13]:.1f} [{r[14]:.0f}-{r[15]:.0f}]"
        out.append(
            f"  {r[1]:<44}{r[2]:>6.1f} {r[3]:<6}{r[4] or '-':<14}{_interval(r[5], r[6], r[7], 3):<22}"
            f"{r[8] or '-':<10}{_interval(r[9], r[10], r[11], 3):<24}{wins:>13}{r[16]:>13,.0f}  {r[17] or '-'}"
        )
    return out


def ic_table(con: duckdb.DuckDBPyConnection) -> list[str]:
    """evaluation.score_ic as a table: does the score predict next-month returns, out of sample?"""
    if not table_exists(con, "evaluation.score_ic"):
        return []
    rows = con.execute(
        """
        SELECT universe, predictor, mean_ic, t_stat, ci_low, ci_high, n_months, mean_wallets, true_edge_spearman,
               diff_vs_raw_win_rate, diff_t_stat, horizon_days, target_ic, first_as_of, last_as_of
        FROM evaluation.score_ic
        """
    ).fetchall()
    if not rows:
        return ["score IC: not enough history yet for a forward window (see evaluation.score_ic)"]
    h, target, lo, hi = rows[0][11], rows[0][12], rows[0][13], rows[0][14]
    out = [f"score IC (Spearman of score at t vs realised return over the next {h} days; as-of {lo} .. {hi}; "
           f"month-clustered; target {target}):",
           f"  {'universe':<9}{'predictor':<23}{'mean IC':>8}{'t':>7}{'95% CI':>18}{'months':>7}{'wallets':>8}"
           f"{'vs raw win rate (t)':>22}{'rho true edge':>15}"]  # fmt: skip

    def f(x, spec):
        return "-" if x is None or x != x else format(x, spec)

    for u, p, m, t, a, b, months, wallets, truth, d, dt, *_ in rows:
        ci = f"[{f(a, '+.3f')}, {f(b, '+.3f')}]"
        diff = f"{f(d, '+.3f')} ({f(dt, '+.1f')})" if p != "raw_win_rate" else "-"
        out.append(
            f"  {u:<9}{p:<23}{f(m, '+.3f'):>8}{f(t, '.1f'):>7}{ci:>18}{months:>7}{f(wallets, ',.0f'):>8}"
            f"{diff:>22}{f(truth, '+.3f'):>15}"
        )
    return out


def signal_funnel(con: duckdb.DuckDBPyConnection) -> list[str]:
    """analytics.signals as a funnel: candidates entering and passing each stage, and the commonest reasons."""
    if not table_exists(con, "analytics.signals"):
        return []
    (total,) = con.execute("SELECT count(*) FROM analytics.signals").fetchall()[0]
    out = [
        f"signal funnel: {total:,} candidate copies (every whale BUY order: its fills in one transaction and token):"
    ]
    entered = total
    for stage, passed_col, label in (
        ("whale", "passed_whale", "1 whale"),
        ("trade", "passed_trade", "2 trade"),
    ):
        (passed,) = con.execute(
            f"SELECT count(*) FILTER (WHERE {passed_col}) FROM analytics.signals"
        ).fetchall()[0]
        rate = f"{passed / entered:.1%}" if entered else "-"
        out.append(f"  stage {label:<10} entered {entered:>10,}  passed {passed:>9,}  ({rate})")
        reasons = con.execute(
            "SELECT reason, count(*) FROM analytics.signals WHERE stage_reached = ? GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
            [stage],
        ).fetchall()
        for reason, n in reasons:
            out.append(f"      {n:>10,}  {reason}")
        entered = passed
    if table_exists(con, "analytics.orders"):
        (copied,) = con.execute("SELECT count(*) FILTER (WHERE copied) FROM analytics.orders").fetchall()[0]
        rate = f"{copied / entered:.1%}" if entered else "-"
        out.append(f"  stage 3 portfolio  entered {entered:>10,}  copied {copied:>9,}  ({rate})")
        for reason, n in con.execute(
            "SELECT reason, count(*) FROM analytics.orders WHERE NOT copied GROUP BY 1 ORDER BY 2 DESC LIMIT 3"
        ).fetchall():
            out.append(f"      {n:>10,}  {reason}")
        overall = f"{copied / total:.2%}" if total else "-"
        out.append(
            f"  overall: {copied:,} of {total:,} candidates copied ({overall}; the documented target is 20-25%)"
        )
    return out


def paper_portfolio(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The paper portfolio now: NAV, positions, exposure, VaR and alerts."""
    if not table_exists(con, "analytics.paper_nav"):
        return []
    rows = con.execute(
        "SELECT day, nav, cash, positions_value, open_positions, exposure_share, var, entries_blocked FROM "
        "analytics.paper_nav ORDER BY day"
    ).fetchall()
    if not rows:
        return ["paper portfolio: no days to run yet"]
    start = rows[0][1] - 0.0
    day, nav, cash, value, n_open, exposure, var, _ = rows[-1]
    peak, max_dd = 0.0, 0.0
    for r in rows:
        peak = max(peak, r[1])
        max_dd = max(max_dd, 1 - r[1] / peak if peak > 0 else 0.0)
    blocked = sum(1 for r in rows if r[7])
    (fills,) = con.execute("SELECT count(*) FROM analytics.paper_fills").fetchall()[0]
    (n_pos,) = con.execute("SELECT count(*) FROM analytics.paper_positions").fetchall()[0]
    kinds = con.execute("SELECT kind, count(*) FROM analytics.alerts GROUP BY 1 ORDER BY 2 DESC").fetchall()
    from datetime import date, timedelta

    as_of = date(1970, 1, 1) + timedelta(days=int(day))
    var_text = f"{var:.2%} of NAV" if var is not None and var == var else "n/a (under 20 days of returns)"
    return [
        f"paper portfolio as of {as_of}: NAV ${nav:,.2f} (cash ${cash:,.2f}, positions ${value:,.2f}); "
        f"from ${start:,.2f}: {nav / start - 1:+.2%}; max drawdown {max_dd:.2%}",
        f"  {n_open} open positions ({(exposure or 0):.1%} of NAV); {n_pos} opened in all, {fills} fills",
        f"  VaR95 (Cornish-Fisher, last 60 days): {var_text}; entries blocked on {blocked} days",
        "  alerts: " + (", ".join(f"{k} {n}" for k, n in kinds) if kinds else "none"),
    ]


def _pct(x) -> str:
    return "–" if x is None or x != x else f"{x:+.1%}"


def _num(x, fmt: str = ".2f") -> str:
    return "–" if x is None or x != x else format(x, fmt)


def backtest_table(con: duckdb.DuckDBPyConnection) -> list[str]:
    """evaluation.backtest_summary and evaluation.targets: the walk-forward strategies side by side."""
    if not table_exists(con, "evaluation.backtest_summary"):
        return []
    rows = con.execute(
        """
        SELECT s.strategy, s.is_control, s.cagr, s.sharpe, s.sharpe_ci_low, s.sharpe_ci_high, s.max_drawdown,
               s.tail_return_5, s.hit_rate, s.trades, s.final_nav, s.deflated_sharpe, s.days,
               (SELECT min(origin) FROM evaluation.backtest_folds), (SELECT count(*) FROM evaluation.backtest_folds)
        FROM evaluation.backtest_summary s
        """
    ).fetchall()
    if not rows:
        return ["walk-forward backtest: no strategy ran"]
    out = [
        f"walk-forward backtest ({rows[0][14]} folds from {rows[0][13]}, {rows[0][12]} days out of sample; "
        "95% intervals by market bootstrap):",
        f"  {'strategy':<24} {'CAGR':>8} {'Sharpe':>7} {'95% CI':>16} {'max DD':>7} {'p5 day':>7} {'hit':>6}"
        f" {'trades':>7} {'final NAV':>12} {'DSR':>5}",
    ]
    targets = _targets(con)
    # up front: a target on a strategy that did not trade is no evidence either way
    out[1:1] = [f"  NOT MEASURABLE ({names}): {why}" for why, names in unmeasurable(targets).items()]
    for r in rows:
        name = r[0] + (" (control)" if r[1] else "")
        ci = f"[{_num(r[4])}, {_num(r[5])}]"
        out.append(
            f"  {name:<24} {_pct(r[2]):>8} {_num(r[3]):>7} {ci:>16} {_num(r[6], '.1%'):>7} "
            f"{_pct(r[7]):>7} {_num(r[8], '.0%'):>6} {r[9]:>7,} {'$' + _num(r[10], ',.0f'):>12} {_num(r[11]):>5}"
        )
    if len(targets):
        out.append("  documented targets against the measured (evaluation.targets):")
        for t in targets.itertuples():
            fmt = ".2f" if t.target.startswith("sharpe") else ".1%"
            ci = f" [{_num(t.ci_low, fmt)}, {_num(t.ci_high, fmt)}]" if pd.notna(t.ci_low) else ""
            shown = {"not met": "NOT met", "not reproduced": "NOT reproduced"}.get(t.status, t.status)
            out.append(
                f"    {t.target:<26} documented {_num(t.documented, fmt):>7}  measured {_num(t.measured, fmt):>7}"
                f"{ci:<18} {shown}"
            )
    return out


def _targets(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """evaluation.targets (a table written before ``status`` existed gets it from ``kind`` and ``met``)."""
    if not table_exists(con, "evaluation.targets"):
        return pd.DataFrame()
    t = con.execute("SELECT * FROM evaluation.targets").df()
    if "status" not in t.columns:
        t = t.assign(status=[verdict(k, m) for k, m in zip(t["kind"], t["met"], strict=True)], reason=None)
    return t


def summary_lines(con: duckdb.DuckDBPyConnection, universe_min_wqs: float = UNIVERSE_MIN_WQS) -> list[str]:
    """Everything the terminal summary shows, stage by stage."""
    return (
        warehouse_lines(con, universe_min_wqs)
        + top_wallets(con)
        + top_whales(con)
        + ic_table(con)
        + signal_funnel(con)
        + paper_portfolio(con)
        + backtest_table(con)
    )


def print_summary(path: Path) -> None:
    if not Path(path).exists():
        raise SystemExit(f"whalecopy: no warehouse at {path} (run `make demo` first)")
    with duckdb.connect(str(path), read_only=True) as con:
        print(f"warehouse {path}:")
        print("\n".join(summary_lines(con)))


def print_run_report(result, settings: Settings, elapsed_s: float) -> int:
    status = "succeeded" if result.success else "FAILED"
    print(f"\n== whalecopy sync {status} in {elapsed_s:.1f} s (source: {settings.source}) ==")
    print("stages:")
    for step, seconds, state in getattr(result, "timings", []):
        print(f"  {step:<40} {seconds:>8.1f} s  {state}")
    evaluations = result.get_asset_check_evaluations()
    if evaluations:
        print("gates:")
        dbt_passed, dbt_failed = 0, []
        for ev in evaluations:
            meta = {k: getattr(v, "value", v) for k, v in ev.metadata.items()}
            name = ev.asset_check_key.name
            if name not in PYTHON_GATES:  # dbt tests: counted, failures named
                if ev.passed:
                    dbt_passed += 1
                else:
                    dbt_failed.append(f"{ev.asset_check_key.asset_key.to_user_string()}:{name}")
                continue
            verdict = "passed" if ev.passed else f"FAILED ({meta.get('failed_because', '')})"
            rows, q, share = meta.get("rows"), meta.get("quarantined"), meta.get("quarantine_share")
            n_exp = meta.get("expectations")
            detail = f" rows {rows:,}" if rows is not None else ""
            detail += f", {n_exp} expectations" if n_exp is not None else ""
            detail += f", quarantined {q:,} ({share:.3%})" if q is not None else ""
            print(f"  {name:<40} {verdict}{detail}")
        if dbt_passed or dbt_failed:
            print(f"  {'dbt tests':<40} {dbt_passed} passed, {len(dbt_failed)} failed")
            for name in dbt_failed:
                print(f"      FAILED {name}")
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            print(f"\nstep {event.step_key} failed: {root_cause(event.step_failure_data.error)}")
    if Path(settings.warehouse_path).exists():
        from .resources import build_resources

        # same process as the run: open it as the run did (DuckDB refuses a second configuration of one file)
        with build_resources(settings)["warehouse"].get_connection() as con:
            print(f"warehouse {settings.warehouse_path}:")
            print("\n".join(summary_lines(con)))
    return 0 if result.success else 1
