-- Resolution per market (polymarket_api.md §4): resolved only when closed AND umaResolutionStatus = 'resolved';
-- the payout vector is one-hot or 0.5/0.5. Anything else while resolved is an anomaly: flagged, no payout.
with m as (
    select * from {{ ref('stg_polymarket__markets') }}
),

shaped as (
    select
        *,
        closed and coalesce(uma_resolution_status, '') = 'resolved' as is_resolved,
        len(outcome_prices) as n_prices,
        len(list_filter(outcome_prices, lambda p: p = 1.0)) as n_ones,
        len(list_filter(outcome_prices, lambda p: p = 0.0)) as n_zeros,
        len(list_filter(outcome_prices, lambda p: p = 0.5)) as n_halves
    from m
)

select
    condition_id,
    is_resolved,
    is_resolved and n_prices = len(token_ids) and (
        (n_ones = 1 and n_zeros = n_prices - 1) or (n_halves = n_prices)
    ) as has_valid_payout,
    case
        when is_resolved and n_prices = len(token_ids) and n_ones = 1 and n_zeros = n_prices - 1 then 'one_hot'
        when is_resolved and n_prices = len(token_ids) and n_halves = n_prices then 'fifty_fifty'
        when is_resolved then 'anomaly'
    end as resolution_kind,
    case
        when is_resolved and n_prices = len(token_ids) and (
            (n_ones = 1 and n_zeros = n_prices - 1) or n_halves = n_prices
        ) then outcome_prices
    end as payouts,
    case when is_resolved then coalesce(uma_end_at, closed_at) end as resolved_at
from shaped
