"""The dashboard's SQL: each page's reads of the warehouse (marts, analytics, evaluation) and the live store.

Pages read the marts and the Python stages' tables, never staging or intermediate models. Every query is
bounded (the latest date, one wallet, the last rows), so a page costs the same on a large warehouse.
"""

from __future__ import annotations

from assets.score.flags import FLAGS_AT_SQL

# ------------------------------------------------------------------------------------------------ warehouse
OVERVIEW = {
    "nav": "SELECT day, nav, drawdown, exposure_share, max_category_share, var, entries_blocked, open_positions "
    "FROM analytics.paper_nav ORDER BY day",
    "var_limit": "SELECT any_value(var_limit) AS var_limit FROM analytics.risk_daily",
    "open_positions": "SELECT category, shares_open * coalesce(mark, entry_price) AS value "
    "FROM analytics.paper_positions WHERE closed_day IS NULL",
    "alerts": "SELECT day, kind, message FROM analytics.alerts ORDER BY day DESC, kind LIMIT 200",
}

WHALES = {
    "scores": f"""
SELECT s.rank, s.wallet, s.wqs, s.tier, s.regime, u.wallet IS NOT NULL AS in_universe, fl.flags,
       q.quarantined, q.strikes, q.released_on, s.sharpe, s.current_drawdown, s.consistency,
       s.win_rate_mean, s.win_rate_lower, s.win_rate_upper, s.edge_mean, s.edge_lower, s.edge_upper,
       u.predicted_wins_mean, u.predicted_wins_lower, u.predicted_wins_upper,
       s.raw_win_rate, s.pnl_net_to_date, s.information_ratio, s.n_resolved_positions, s.n_return_days, s.volume,
       s.as_of
FROM analytics.whale_scores s
LEFT JOIN analytics.whale_quarantine q USING (as_of, wallet)
LEFT JOIN analytics.whale_universe u USING (wallet)
LEFT JOIN ({FLAGS_AT_SQL}) fl USING (as_of, wallet)
WHERE s.as_of = (SELECT max(as_of) FROM analytics.whale_scores) AND s.wqs IS NOT NULL
ORDER BY s.rank""",
    "ic": "SELECT predictor, mean_ic, ci_low, ci_high FROM evaluation.score_ic WHERE universe = 'all'",
}

WHALE = {  # one wallet: each query binds it once
    "history": """
SELECT s.as_of, s.wqs, s.rank, s.tier, s.sharpe, s.consistency, s.win_rate_mean, s.win_rate_lower,
       s.win_rate_upper, s.edge_mean, s.current_drawdown, q.quarantined, q.strikes, s.reason
FROM analytics.whale_scores s LEFT JOIN analytics.whale_quarantine q USING (as_of, wallet)
WHERE s.wallet = ? ORDER BY s.as_of""",
    "positions": """
SELECT p.last_fill_at, m.question, m.category, p.outcome_index, p.n_fills, p.shares_bought, p.shares_sold,
       p.net_shares, p.cost, p.proceeds, p.fees, p.pnl_net, p.is_resolved, p.won, p.first_fill_at, p.token_id
FROM marts.fct_positions p LEFT JOIN marts.dim_markets m USING (condition_id)
WHERE p.wallet = ? ORDER BY p.last_fill_at DESC""",
    "copied": """
SELECT s.traded_at, m.question, s.token_id, s.whale_price, s.copy_price, o.shares, o.notional,
       p.entry_price, p.mark, p.closed_day, p.close_reason, p.realised_pnl,
       CASE WHEN p.closed_day IS NULL THEN p.shares_open * coalesce(p.mark, p.entry_price) - p.cost + p.proceeds - p.fees
       END AS unrealised_pnl
FROM analytics.signals s JOIN analytics.orders o USING (fill_key)
LEFT JOIN analytics.paper_positions p USING (key)
LEFT JOIN marts.dim_markets m USING (condition_id)
WHERE s.wallet = ? AND o.copied ORDER BY s.traded_at""",
}

SIGNALS = {
    "funnel": """
SELECT count(*) AS orders, count(*) FILTER (WHERE passed_whale) AS passed_whale,
       count(*) FILTER (WHERE passed_trade) AS passed_trade,
       (SELECT count(*) FROM analytics.orders WHERE copied) AS copied
FROM analytics.signals""",
    "reasons": """
SELECT stage_reached AS stage, reason, count(*) AS orders FROM analytics.signals WHERE reason IS NOT NULL
GROUP BY ALL UNION ALL
SELECT 'portfolio', reason, count(*) FROM analytics.orders WHERE NOT copied GROUP BY ALL
ORDER BY orders DESC LIMIT 15""",
}

PORTFOLIO = {
    "positions": """
SELECT p.key, p.wallet, m.question, p.category, p.entry_day, p.entry_price, p.shares_open, p.cost, p.mark,
       p.stop_level, p.time_exit_day, p.closed_day, p.close_reason, p.proceeds, p.fees, p.realised_pnl,
       CASE WHEN p.closed_day IS NULL THEN p.shares_open * coalesce(p.mark, p.entry_price) - p.cost + p.proceeds - p.fees
       END AS unrealised_pnl, p.token_id
FROM analytics.paper_positions p
LEFT JOIN marts.dim_markets m ON list_contains(m.token_ids, p.token_id)
ORDER BY p.key""",
    "contribution": "SELECT strategy, dimension, item, pnl, share_of_pnl FROM evaluation.attribution_contribution",
    "brinson": "SELECT category, allocation, selection, interaction, total FROM evaluation.attribution_brinson",
}

EVIDENCE = {
    "summary": "SELECT * FROM evaluation.backtest_summary ORDER BY is_control, sharpe DESC",
    "daily": "SELECT strategy, day, nav, drawdown FROM evaluation.backtest_daily ORDER BY strategy, day",
    "targets": "SELECT target, description, kind, documented, measured, ci_low, ci_high, status, reason "
    "FROM evaluation.targets",
    "ic_monthly": "SELECT universe, predictor, month, ic, n_as_of, mean_wallets FROM evaluation.score_ic_monthly "
    "ORDER BY month",
    "ic": "SELECT universe, predictor, mean_ic, t_stat, ci_low, ci_high, n_months, share_positive_months "
    "FROM evaluation.score_ic ORDER BY universe, mean_ic DESC",
    "validation": "SELECT check_name, subject, statistic, value, p_value, threshold, passed, detail "
    "FROM evaluation.validation",
}

# ------------------------------------------------------------------------------------------------ live store
LIVE_DECISION_COLUMNS = (
    "seq, decided_wall, ts, wallet, token_id, side, stage_reached, copied, reason, legs, whale_price, copy_price, "
    "wqs, edge_at_copy, shares, price, notional, fraction, frame_to_decision_s, fill_to_decision_s, late"
)


def live_overview(recent: int = 200) -> dict[str, str]:
    return {
        "nav": "SELECT day, nav, drawdown, exposure_share, var, open_positions FROM nav ORDER BY day",
        "last_fill": "SELECT ts, received_wall, wallet, side, price, size, source FROM fills "
        "ORDER BY received_wall DESC LIMIT 1",
        "latency": f"SELECT frame_to_decision_s, fill_to_decision_s FROM decisions ORDER BY seq DESC LIMIT {recent}",
        "alerts": "SELECT seq, day, kind, message, posted FROM alerts ORDER BY seq DESC LIMIT 50",
        "losses": "SELECT reason, start_ts, end_ts, detail, wallets FROM loss_events WHERE closed_at IS NULL",
    }


def live_signals(limit: int = 200) -> dict[str, str]:
    return {
        "decisions": f"SELECT {LIVE_DECISION_COLUMNS} FROM decisions ORDER BY seq DESC LIMIT {int(limit)}",
        "stages": "SELECT stage_reached, count(*) AS decisions FROM decisions GROUP BY 1",
        "intents": "SELECT intent_id, created_at, kind, side, token_id, shares, limit_price, notional, "
        "copied_wallet, emitted_at FROM intents ORDER BY created_at DESC LIMIT 200",
    }


LIVE_COPIED_BY = (
    f"SELECT {LIVE_DECISION_COLUMNS} FROM decisions WHERE wallet = ? AND stage_reached IN "
    "('copied', 'exit') ORDER BY seq"
)
