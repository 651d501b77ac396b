"""The dashboard's pages (each file under ``dashboard/screens/`` draws one).

Each reads its sources through :mod:`dashboard.sources` (read-only, never held open), shapes them with
:mod:`dashboard.model` and draws them with :mod:`dashboard.charts`; a source that is missing or busy is said, not
raised."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st

from assets.evaluate.backtest import unmeasurable
from dashboard import charts, queries
from dashboard import model as m
from dashboard.context import Context
from dashboard.sources import SourceUnavailable

#: how many of the ranked whales the drill-down's selectbox lists, and the table shows (a browser list or grid of
#: every wallet of a 10x world is slow); a typed address reaches the others
PICK_LIMIT = 1_000
TABLE_LIMIT = 5_000


# ------------------------------------------------------------------------------------------------ helpers
def _say(exc: SourceUnavailable) -> None:
    if exc.kind == "busy":
        st.warning(str(exc), icon=":material/hourglass_top:")
    else:
        st.info(str(exc), icon=":material/info:")


def from_warehouse(
    ctx: Context, q: dict[str, str], params: dict | None = None
) -> dict[str, pd.DataFrame] | None:
    try:
        read = ctx.warehouse.read(q, params)
    except SourceUnavailable as exc:
        _say(exc)
        return None
    if read.stale:
        st.caption(f":material/hourglass_top: {read.stale}")
    return read.frames


def from_live(ctx: Context, q: dict[str, str], params: dict | None = None) -> dict[str, pd.DataFrame] | None:
    try:
        return ctx.live.read(q, params)
    except SourceUnavailable as exc:
        _say(exc)
        return None


def table(df: pd.DataFrame, name: str, *, key: str, select: bool = False, height: int | None = None,
          formats: dict[str, str] | None = None, download: pd.DataFrame | None = None):  # fmt: skip
    """A sortable table (click a header) with a CSV download of its rows (of ``download`` when the table shows
    only the first of them)."""
    config = {
        c: st.column_config.NumberColumn(format=f) for c, f in (formats or {}).items() if c in df.columns
    }
    kw = {"on_select": "rerun", "selection_mode": "single-row"} if select else {}
    event = st.dataframe(df, key=key, hide_index=True, width="stretch", height=height or "auto",
                         column_config=config, **kw)  # fmt: skip
    rows = df if download is None else download
    # The CSV goes with the page (a deferred one, made on the click, is revoked by any rerun in between and then
    # never arrives), written once per content: the cache key is a hash of the rows, not the rows themselves.
    digest = _content_hash(rows)
    st.download_button(f"Download {name} (CSV)", _csv(f"{name}:{len(rows)}:{digest}", rows), file_name=f"{name}.csv",
                       mime="text/csv", key=f"{key}_csv", icon=":material/download:")  # fmt: skip
    return event


def _content_hash(rows: pd.DataFrame) -> int:
    try:
        return int(pd.util.hash_pandas_object(rows, index=False).sum())
    except TypeError:  # a cell pandas cannot hash (a list): its text
        return int(pd.util.hash_pandas_object(rows.astype(str), index=False).sum())


@st.cache_data(max_entries=32, show_spinner=False)
def _csv(key: str, _rows: pd.DataFrame) -> bytes:
    """``_rows`` as CSV, cached under ``key`` (Streamlit does not hash an argument whose name starts with _)."""
    return _rows.to_csv(index=False).encode()


def _pct(x: float, digits: int = 1) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}%}"


def _usd(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


# ------------------------------------------------------------------------------------------------ overview
def overview(ctx: Context) -> None:
    st.title("Overview")
    st.caption("What the paper book holds and risks now, and what the live loop is doing.")
    _live_status(ctx)
    f = from_warehouse(ctx, queries.OVERVIEW)
    if f is None:
        return
    nav = f["nav"]
    if nav.empty:
        st.info("The paper portfolio has no day yet: the batch has not copied anything.")
        return
    strategy = ctx.strategy()
    last = nav.iloc[-1]
    var_limit = (
        float(f["var_limit"]["var_limit"].iloc[0]) if f["var_limit"]["var_limit"].notna().any() else np.nan
    )
    nav["date"] = m.day_to_date(nav["day"])
    st.subheader(f"Batch paper book on {nav['date'].iloc[-1]:%Y-%m-%d}")
    c = st.columns(5)
    c[0].metric("NAV", _usd(last["nav"]), f"{last['nav'] / nav['nav'].iloc[0] - 1:+.1%} since start")
    c[1].metric(
        "Drawdown",
        _pct(last["drawdown"]),
        f"max {nav['drawdown'].max():.1%}",
        delta_color="off",
        delta_arrow="off",
    )
    c[2].metric("VaR95 (1 day)", _pct(last["var"]), f"limit {var_limit:.0%}" if np.isfinite(var_limit) else None,
                delta_color="off", delta_arrow="off",
                help="Cornish-Fisher VaR of the last 60 daily returns, as a return; new entries are blocked while it "
                "is below the limit")  # fmt: skip
    c[3].metric("Exposure", _pct(last["exposure_share"]), f"limit {strategy.get('max_exposure_nav', np.nan):.0%}",
                delta_color="off", delta_arrow="off")  # fmt: skip
    c[4].metric("Open positions", f"{int(last['open_positions'])}",
                "entries blocked (VaR)" if bool(last["entries_blocked"]) else None, delta_color="inverse")  # fmt: skip
    left, right = st.columns(2)
    with left:
        st.markdown("**NAV**")
        st.altair_chart(charts.time_lines(nav, "date", "nav", y_title="USDC", zero=False), width="stretch")
        st.markdown("**Drawdown from peak**")
        st.altair_chart(charts.time_lines(nav, "date", "drawdown", y_title="drawdown", y_format=".1%", height=160),
                        width="stretch")  # fmt: skip
    with right:
        limit = float(strategy.get("max_category_nav", np.nan))
        exp = m.exposure_by_category(f["open_positions"], float(last["nav"]), limit)
        st.markdown(f"**Exposure by category** (share of NAV; limit {limit:.0%} each)")
        if exp.empty:
            st.caption("No open position.")
        else:
            st.altair_chart(charts.bars(exp, "category", "share", value_title="share of NAV", value_format=".1%",
                                        limit=limit), width="stretch")  # fmt: skip
        st.markdown(f"**VaR95 against its limit** ({var_limit:.0%})")
        st.altair_chart(charts.time_lines(nav.dropna(subset=["var"]), "date", "var", y_title="VaR95 (return)",
                                          y_format=".1%", height=160, rule=var_limit), width="stretch")  # fmt: skip
    st.subheader("Alerts")
    alerts = f["alerts"].assign(date=lambda a: m.day_to_date(a["day"]))
    recent = alerts[alerts["day"] >= int(last["day"]) - 7]
    st.caption(f"The batch book's alerts, latest first (at most 200): {len(recent)} in the 7 days to its last "
               "day.")  # fmt: skip
    table(alerts[["date", "kind", "message"]], "alerts", key="overview_alerts", height=220)


def _live_status(ctx: Context) -> None:
    @st.fragment(run_every=ctx.settings.dashboard_refresh_s)
    def body() -> None:
        st.subheader("Live loop")
        if not ctx.live.path.exists():
            st.info(f"No live store at {ctx.live.path}: start `whalecopy live` (or `make live-demo`).")
            return
        try:
            state = ctx.live.state()
            f = ctx.live.read(queries.live_overview())
        except SourceUnavailable as exc:
            _say(exc)
            return
        s = m.live_state(state, ctx.live.holder_pid() is not None, time.time())
        lat = m.latency_ms(f["latency"])
        c = st.columns(5)
        c[0].metric(
            "State", s.label, s.detail, delta_color="normal" if s.healthy else "inverse", delta_arrow="off"
        )
        fill = f["last_fill"]
        if len(fill):
            r = fill.iloc[0]
            c[1].metric("Last fill seen", f"{time.time() - r['received_wall']:,.0f} s ago",
                        f"{r['side']} {r['size']:,.0f} @ {r['price']:.3f} ({r['source']})", delta_color="off", delta_arrow="off")  # fmt: skip
        else:
            c[1].metric("Last fill seen", "none yet")
        c[2].metric("Frame → decision p50 / p99", f"{lat['frame_p50_ms']:.1f} / {lat['frame_p99_ms']:.1f} ms",
                    help="over the last 200 decisions")  # fmt: skip
        c[3].metric("Fill → decision p50 / p99", f"{lat['fill_p50_s']:.1f} / {lat['fill_p99_s']:.1f} s",
                    help="from the fill's own timestamp (includes the copy latency)")  # fmt: skip
        nav = f["nav"]
        c[4].metric("Live NAV", _usd(nav["nav"].iloc[-1]) if len(nav) else "–",
                    f"{len(nav)} day ends" if len(nav) else None, delta_color="off", delta_arrow="off")  # fmt: skip
        losses, alerts = f["losses"], f["alerts"]
        if len(losses):
            st.warning(f"{len(losses)} open loss event(s): stretches the loop cannot prove it saw — "
                       + "; ".join(f"{r.reason} ({r.detail})" for r in losses.itertuples()), icon=":material/warning:")  # fmt: skip
        if len(alerts):
            st.caption("Live alerts (latest first)")
            table(alerts.assign(date=m.day_to_date(alerts["day"]))[["seq", "date", "kind", "message", "posted"]],
                  "live_alerts", key="live_alerts", height=160)  # fmt: skip

    body()


# ------------------------------------------------------------------------------------------------ whales
def whales(ctx: Context) -> None:
    st.title("Whales")
    st.caption("The scored wallets at the latest as-of date, ranked by WQS beside the rival predictors, with their "
               "flags at that date (market maker, farmer, bot, wash: analytics.wallet_flags_history; a flagged wallet "
               "is out of the universe unless keep_flagged_wallets is set); pick one to see its score history, "
               "positions and the trades of it we copied.")  # fmt: skip
    f = from_warehouse(ctx, queries.WHALES)
    if f is None:
        return
    scores = m.with_strike_reasons(f["scores"], ctx.strategy())
    if scores.empty:
        st.info("No wallet has a score yet (a wallet needs 60 days of returns).")
        return
    as_of = pd.Timestamp(scores["as_of"].iloc[0])
    c = st.columns(4)
    c[0].metric(
        "Scored wallets", f"{len(scores):,}", f"as of {as_of:%Y-%m-%d}", delta_color="off", delta_arrow="off"
    )
    c[1].metric("In the universe", f"{int(scores['in_universe'].sum()):,}")
    c[2].metric("Quarantined", f"{int(scores['quarantined'].fillna(False).sum()):,}")
    ic = f["ic"].set_index("predictor")["mean_ic"] if len(f["ic"]) else pd.Series(dtype=float)
    c[3].metric("Mean IC of WQS (30 d)", f"{ic.get('wqs', np.nan):.3f}",
                f"raw win rate {ic.get('raw_win_rate', np.nan):.3f}", delta_color="off", delta_arrow="off")  # fmt: skip
    show = scores[["rank", "wallet", "wqs", "tier", "regime", "in_universe", "flags", "quarantined", "strikes",
                   "strike_reasons",
                   "released_on", "sharpe", "consistency", "win_rate_mean", "win_rate_lower", "win_rate_upper",
                   "edge_mean", "edge_lower", "edge_upper", "predicted_wins_mean", "raw_win_rate", "pnl_net_to_date",
                   "current_drawdown", "n_resolved_positions", "volume"]]  # fmt: skip
    if len(show) > TABLE_LIMIT:
        st.caption(
            f"The table shows the best {TABLE_LIMIT:,} of the {len(show):,} scored wallets; its CSV has all."
        )
    event = table(show.iloc[:TABLE_LIMIT], "whales", key="whales_table", select=True, height=360, download=show,
                  formats={"wqs": "%.1f", "sharpe": "%.2f", "consistency": "%.1f", "win_rate_mean": "%.3f",
                           "win_rate_lower": "%.3f", "win_rate_upper": "%.3f", "edge_mean": "%.3f",
                           "edge_lower": "%.3f", "edge_upper": "%.3f", "raw_win_rate": "%.3f",
                           "pnl_net_to_date": "$%.0f", "current_drawdown": "%.3f", "volume": "$%.0f",
                           "predicted_wins_mean": "%.1f"})  # fmt: skip
    picked = event.selection.rows if event is not None and hasattr(event, "selection") else []
    # the selectbox lists the best PICK_LIMIT (a browser list of every wallet of a large world is slow); a click
    # on any row of the table, or an address typed below, reaches the others
    row = show["wallet"].iloc[picked[0]] if picked else None
    wallets = show["wallet"].iloc[:PICK_LIMIT].tolist()
    if row is not None and row not in wallets:
        wallets.append(row)
    top = show.set_index("wallet").loc[wallets]
    labels = {w: f"#{r} {w} (WQS {q:.1f})" for w, r, q in zip(wallets, top["rank"], top["wqs"], strict=True)}
    if (
        row is not None and st.session_state.get("whale_row") != row
    ):  # a newly clicked row drives the selectbox
        st.session_state["whale_row"] = st.session_state["whale_pick"] = row
    chosen = st.selectbox(f"Drill down into a whale (the best {min(PICK_LIMIT, len(show)):,}; or click a row)",
                          wallets, format_func=labels.get, key="whale_pick")  # fmt: skip
    typed = st.text_input("…or any scored wallet's address", key="whale_typed").strip().lower()
    if typed:
        if typed in labels or (show["wallet"] == typed).any():
            chosen = typed
        else:
            st.caption(f"`{typed}` has no score at this date; showing the selectbox's whale.")
    _whale(ctx, chosen, scores.set_index("wallet").loc[chosen])


def _whale(ctx: Context, wallet: str, score: pd.Series) -> None:
    st.header(f"Whale {wallet}")
    reasons = score.get("strike_reasons") or "none"
    state = "quarantined" if bool(score.get("quarantined")) else "copyable"
    st.caption(f"Rank {int(score['rank'])}, tier {score['tier']}, regime {score['regime']}; {state}, "
               f"{int(score['strikes']) if pd.notna(score['strikes']) else 0} strike(s); this date's strike "
               f"reasons: {reasons}")  # fmt: skip
    f = from_warehouse(ctx, queries.WHALE, {k: [wallet] for k in queries.WHALE})
    if f is None:
        return
    hist = f["history"].assign(as_of=lambda h: pd.to_datetime(h["as_of"]))
    left, right = st.columns(2)
    with left:
        st.markdown("**Point-in-time WQS** (each score uses data before its date)")
        st.altair_chart(charts.time_lines(hist.dropna(subset=["wqs"]), "as_of", "wqs", y_title="WQS",
                                          y_format=".1f", height=200), width="stretch")  # fmt: skip
    with right:
        st.markdown("**Bayesian win rate and its 95% interval**")
        st.altair_chart(charts.intervals(hist.dropna(subset=["win_rate_mean"]), "as_of", "win_rate_lower",
                                         "win_rate_mean", "win_rate_upper", y_title="win rate"), width="stretch")  # fmt: skip
    pos, copied = f["positions"], f["copied"]
    resolved = pos[pos["is_resolved"].fillna(False)]
    c = st.columns(4)
    c[0].metric(
        "Positions", f"{len(pos):,}", f"{len(resolved):,} resolved", delta_color="off", delta_arrow="off"
    )
    c[1].metric("Realised P&L (net)", _usd(float(pos["pnl_net"].sum())) if len(pos) else "–")
    earned = float(copied["realised_pnl"].fillna(0).sum() + copied["unrealised_pnl"].fillna(0).sum())
    c[2].metric("Trades of it we copied", f"{len(copied):,}")
    c[3].metric("What the copies earned", _usd(earned) if len(copied) else "–",
                "realised + open at the mark", delta_color="off", delta_arrow="off")  # fmt: skip
    st.subheader(f"Copied trades ({len(copied)})")
    if copied.empty:
        st.caption("The paper book never copied this whale.")
    else:
        copied = copied.assign(closed_date=m.day_to_date(copied["closed_day"])).drop(columns=["closed_day"])
        table(copied, f"copied_{wallet[:10]}", key="whale_copied", height=220,
              formats={"realised_pnl": "$%.2f", "unrealised_pnl": "$%.2f", "notional": "$%.2f"})  # fmt: skip
    live = (
        from_live(ctx, {"copied": queries.LIVE_COPIED_BY}, {"copied": [wallet]})
        if ctx.live.path.exists()
        else None
    )
    if live is not None and len(live["copied"]):
        st.markdown(f"**Copied live** ({len(live['copied'])} decisions)")
        table(live["copied"], f"live_copied_{wallet[:10]}", key="whale_live_copied", height=160)
    st.subheader(f"Positions ({len(pos)})")
    table(pos, f"positions_{wallet[:10]}", key="whale_positions", height=260,
          formats={"cost": "$%.2f", "proceeds": "$%.2f", "pnl_net": "$%.2f", "fees": "$%.2f"})  # fmt: skip
    with st.expander("Score history"):
        table(hist, f"scores_{wallet[:10]}", key="whale_history", height=240)


# ------------------------------------------------------------------------------------------------ signals
def signals(ctx: Context) -> None:
    st.title("Signals")
    st.caption("Every whale order decided: live as the loop decides it, and the batch's whole history.")
    _live_signals(ctx)
    st.header("Historical funnel (batch)")
    f = from_warehouse(ctx, queries.SIGNALS)
    if f is None:
        return
    funnel = m.batch_funnel(f["funnel"])
    st.altair_chart(charts.bars(funnel, "stage", "orders", value_title="whale orders", in_order=True),
                    width="stretch")  # fmt: skip
    table(funnel, "funnel", key="funnel", formats={"pass_rate": "%.3f", "of_orders": "%.5f"})
    st.markdown("**Why orders stopped** (the most common reasons)")
    table(f["reasons"], "reasons", key="reasons", height=300)


def _live_signals(ctx: Context) -> None:
    @st.fragment(run_every=ctx.settings.dashboard_refresh_s)
    def body() -> None:
        st.header("Live decisions")
        if not ctx.live.path.exists():
            st.info(f"No live store at {ctx.live.path}: start `whalecopy live` (or `make live-demo`).")
            return
        f = from_live(ctx, queries.live_signals())
        if f is None:
            return
        dec = f["decisions"]
        funnel = m.live_funnel(f["stages"])
        c = st.columns(4)
        c[0].metric("Decisions", f"{int(funnel['decisions'].sum()):,}")
        c[1].metric("Copied", f"{int(funnel.set_index('stage_reached').loc['copied', 'decisions']):,}")
        c[2].metric("Intents", f"{len(f['intents']):,}")
        lat = m.latency_ms(dec)
        c[3].metric("Frame → decision p99", f"{lat['frame_p99_ms']:.1f} ms", help="over the decisions shown")
        if dec.empty:
            st.caption("No decision yet.")
        else:
            r = dec.iloc[0]
            st.markdown(f"Latest decision **#{int(r['seq'])}**: {r['side']} by `{r['wallet']}` → "
                        f"**{r['stage_reached']}**" + (f" ({r['reason']})" if r["reason"] else "")
                        + f", decided {time.time() - r['decided_wall']:,.1f} s ago")  # fmt: skip
        shown = dec.assign(decided=m.epoch_to_time(dec["decided_wall"]), fill_time=m.epoch_to_time(dec["ts"]))
        table(shown.drop(columns=["decided_wall", "ts"]), "live_decisions", key="live_decisions", height=300,
              formats={"frame_to_decision_s": "%.4f", "fill_to_decision_s": "%.1f", "wqs": "%.1f"})  # fmt: skip
        left, right = st.columns(2)
        with left:
            st.markdown("**Live funnel** (stage reached)")
            st.altair_chart(charts.bars(funnel, "stage_reached", "decisions", value_title="decisions", in_order=True),
                            width="stretch")  # fmt: skip
        with right:
            st.markdown("**Intents** (`intents.jsonl`, latest first)")
            table(f["intents"], "intents", key="intents", height=260)

    body()


# ------------------------------------------------------------------------------------------------ portfolio
def portfolio(ctx: Context) -> None:
    st.title("Portfolio")
    st.caption("The batch paper book's positions, with the mark its NAV uses, the trailing stop's level and the "
               "time exit, and where its P&L came from.")  # fmt: skip
    f = from_warehouse(ctx, queries.PORTFOLIO)
    if f is None:
        return
    open_, closed = m.positions_view(f["positions"])
    c = st.columns(4)
    c[0].metric(
        "Open positions",
        f"{len(open_):,}",
        _usd(float(open_["pnl"].sum())) + " unrealised",
        delta_color="off",
        delta_arrow="off",
    )
    c[1].metric("Closed positions", f"{len(closed):,}", _usd(float(closed["pnl"].sum())) + " realised",
                delta_color="off", delta_arrow="off")  # fmt: skip
    c[2].metric("Hit rate (closed)", _pct(float((closed["pnl"] > 0).mean())) if len(closed) else "–")
    c[3].metric(
        "Realised return on cost",
        _pct(float(closed["pnl"].sum() / closed["cost"].sum())) if len(closed) else "–",
    )
    fmt = {"entry_price": "%.3f", "mark": "%.3f", "stop_level": "%.3f", "cost": "$%.2f", "pnl": "$%.2f",
           "return": "%.3f", "proceeds": "$%.2f", "fees": "$%.2f", "shares_open": "%.0f"}  # fmt: skip
    st.subheader(f"Open ({len(open_)})")
    table(open_, "open_positions", key="open_positions", height=240, formats=fmt)
    st.subheader(f"Closed ({len(closed)})")
    table(closed, "closed_positions", key="closed_positions", height=300, formats=fmt)
    st.header("Attribution (walk-forward backtest, `full` strategy)")
    contrib = f["contribution"]
    contrib = contrib[contrib["strategy"] == "full"]
    if contrib.empty:
        st.info("No attribution yet: the evaluation group has not run on this warehouse.")
        return
    cols = st.columns(3)
    for col, dim, title in zip(cols, ("category", "whale", "execution"), ("By category", "By whale (top 20)",
                                                                          "Execution costs"), strict=True):  # fmt: skip
        d = contrib[contrib["dimension"] == dim].assign(item=lambda x: x["item"].map(m.short))
        with col:
            st.markdown(f"**{title}** (P&L, USDC)")
            st.altair_chart(charts.bars(d, "item", "pnl", value_title="USDC"), width="stretch")
    st.markdown("**Brinson attribution against `naive_copy`** (per category)")
    table(f["brinson"], "brinson", key="brinson", formats={c: "%.4f" for c in ("allocation", "selection",
                                                                               "interaction", "total")})  # fmt: skip


# ------------------------------------------------------------------------------------------------ evidence
def evidence(ctx: Context) -> None:
    st.title("Evidence")
    st.caption("The walk-forward backtest against its baselines and controls, the documented targets, and whether "
               "the score predicts: the report's content, interactive.")  # fmt: skip
    f = from_warehouse(ctx, queries.EVIDENCE)
    if f is None:
        return
    if f["summary"].empty:
        st.info("No backtest yet: run the evaluation group (`whalecopy demo`).")
        return
    st.subheader("Strategies (out of sample)")
    summ = f["summary"]
    cols = ["strategy", "is_control", "sharpe", "sharpe_ci_low", "sharpe_ci_high", "cagr", "max_drawdown", "sortino",
            "calmar", "hit_rate", "turnover", "trades", "final_nav", "deflated_sharpe", "days"]  # fmt: skip
    table(summ[[c for c in cols if c in summ.columns]], "backtest_summary", key="backtest_summary",
          formats={c: "%.3f" for c in ("sharpe", "sharpe_ci_low", "sharpe_ci_high", "cagr", "max_drawdown", "sortino",
                                       "calmar", "hit_rate", "turnover", "deflated_sharpe")} | {"final_nav": "$%.0f"})  # fmt: skip
    daily = f["daily"].assign(day=lambda d: pd.to_datetime(d["day"]))
    left, right = st.columns(2)
    with left:
        st.markdown("**Equity curves** (NAV, USDC)")
        st.altair_chart(
            charts.time_lines(daily, "day", "nav", "strategy", y_title="NAV", zero=False), width="stretch"
        )
    with right:
        st.markdown("**Drawdowns** (from each strategy's peak)")
        st.altair_chart(charts.time_lines(daily, "day", "drawdown", "strategy", y_title="drawdown", y_format=".1%"),
                        width="stretch")  # fmt: skip
    st.subheader("Targets")
    for why, names in unmeasurable(f["targets"]).items():  # up front: no trade is no evidence
        st.warning(f"Not measurable ({names}): {why}")
    table(f["targets"], "targets", key="targets", formats={"documented": "%.3f", "measured": "%.3f",
                                                           "ci_low": "%.3f", "ci_high": "%.3f"})  # fmt: skip
    st.subheader("Information coefficient by month (30-day forward returns)")
    ic_m = f["ic_monthly"].assign(month=lambda d: pd.to_datetime(d["month"]))
    universes = sorted(ic_m["universe"].unique()) or ["all"]
    uni = st.segmented_control("Universe", universes, default=universes[0], key="ic_universe") or universes[0]
    st.altair_chart(charts.time_lines(ic_m[ic_m["universe"] == uni], "month", "ic", "predictor", y_title="mean IC",
                                      y_format=".2f", rule=0.0), width="stretch")  # fmt: skip
    table(f["ic"], "score_ic", key="score_ic", formats={c: "%.3f" for c in ("mean_ic", "t_stat", "ci_low", "ci_high",
                                                                             "share_positive_months")})  # fmt: skip
    st.subheader("Validation")
    table(f["validation"], "validation", key="validation", height=300)
