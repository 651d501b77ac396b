-- One row per position (wallet x market x outcome): shares bought and sold, cost, proceeds, the shares its splits,
-- merges and conversions moved, and average-cost realised P&L: sells (and merges, conversions) realise at their
-- time, the remaining shares at resolution (docs/metrics.md#wallet-activity). A position whose shares went negative
-- (splits or merges not in raw.activity) is flagged and not scorable.
-- Incremental: a sync recomputes the positions in `int_changes` (docs/warehouse.md#incremental-builds).
-- depends_on: {{ ref('int_changes') }}
{{ config(materialized='incremental', incremental_strategy='replace', on_schema_change='fail',
          replace_where='position_id in (select position_id from {changes})') }}
{% set eps = var('share_epsilon') %}

with agg as (
    select
        position_id,
        any_value(wallet) as wallet,
        any_value(condition_id) as condition_id,
        any_value(token_id) as token_id,
        any_value(outcome_index) as outcome_index,
        count(*) filter (where kind = 'trade') as n_fills,
        coalesce({{ exact_sum('size', filter="side = 'BUY' and kind = 'trade'") }}, 0.0) as shares_bought,
        coalesce({{ exact_sum('size', filter="side = 'SELL' and kind = 'trade'") }}, 0.0) as shares_sold,
        coalesce({{ exact_sum('notional', filter="side = 'BUY' and kind = 'trade'") }}, 0.0) as cost,
        coalesce({{ exact_sum('notional', filter="side = 'SELL' and kind = 'trade'") }}, 0.0) as proceeds,
        coalesce({{ exact_sum('size', filter="kind = 'split'") }}, 0.0) as shares_split,
        coalesce({{ exact_sum('size', filter="kind = 'merge'") }}, 0.0) as shares_merged,
        coalesce({{ exact_sum('size', filter="kind = 'conversion' and side = 'BUY'") }}, 0.0) as shares_converted_in,
        coalesce({{ exact_sum('size', filter="kind = 'conversion' and side = 'SELL'") }}, 0.0) as shares_converted_out,
        -- every leg's cash: fills, and splits, merges and conversions at their booked prices
        {{ exact_sum("case when side = 'SELL' then notional else -notional end") }} as cash_flow,
        coalesce({{ exact_sum("case when side = 'SELL' then notional else -notional end",
                              filter="kind <> 'trade'") }}, 0.0) as activity_cash,
        {{ exact_sum("case when side = 'BUY' then size else -size end") }} as net_shares_all,
        {{ exact_sum('fee') }} as fees,
        {{ exact_sum('realised_on_sell') }} as realised_at_sells,
        any_value(shares_after) filter (where is_position_last) as final_shares,
        any_value(basis_after) filter (where is_position_last) as final_basis,
        bool_or(oversold) as has_negative_shares,
        min(traded_at) filter (where oversold) as oversold_at,
        min(traded_at) as first_fill_at,
        max(traded_at) as last_fill_at,
        any_value(payout) as payout,
        bool_or(is_resolved) as is_resolved,
        bool_or(has_valid_payout) as has_valid_payout,
        any_value(resolved_at) as resolved_at
    from {{ ref('int_position_fills') }}
    {% if is_incremental() %}
    where position_id in (select position_id from {{ ref('int_changes') }})
    {% endif %}
    group by position_id
),

resolved as (
    select
        *,
        -- exact (polymarket_api.md §5): the cash flow of every leg + payout x net shares, for every resolved position
        case when has_valid_payout then cash_flow + payout * net_shares_all end as pnl_at_resolution
    from agg
)

select
    position_id,
    wallet,
    condition_id,
    token_id,
    outcome_index,
    n_fills,
    shares_bought,
    shares_sold,
    net_shares_all as net_shares,
    cost,
    proceeds,
    shares_split,
    shares_merged,
    shares_converted_in,
    shares_converted_out,
    activity_cash,
    case when final_shares > {{ eps }} then final_basis / final_shares end as avg_cost_open,
    realised_at_sells,
    coalesce(pnl_at_resolution - realised_at_sells, 0.0) as realised_at_resolution,
    coalesce(pnl_at_resolution, realised_at_sells) as pnl_gross,
    fees,
    coalesce(pnl_at_resolution, realised_at_sells) - fees as pnl_net,
    case when has_valid_payout then pnl_at_resolution > 0 end as won,
    has_valid_payout as is_resolved,
    payout,
    resolved_at,
    final_basis as open_basis,
    has_negative_shares,
    oversold_at,
    not has_negative_shares as is_scorable,
    first_fill_at,
    last_fill_at
from resolved
