-- A view: a projection of intermediate.int_position_fills' fills (no second copy of every fill).
{{ config(materialized='view') }}

-- One row per accepted fill with its notional, fee and, once its market resolved, its realised P&L.
select
    fill_key,
    wallet,
    condition_id,
    token_id,
    outcome_index,
    side,
    size,
    price,
    notional,
    fee,
    traded_at,
    trade_date,
    transaction_hash,
    payout,
    is_resolved,
    resolved_at,
    pnl_gross_at_resolution as pnl_gross,
    pnl_gross_at_resolution - fee as pnl_net,
    avg_cost_before,
    realised_on_sell,
    shares_after
from {{ ref('int_position_fills') }}
where kind = 'trade'  -- the legs of splits, merges and conversions are in fct_positions, not fills
