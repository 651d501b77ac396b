-- One row per outcome token: its market, outcome index and label, and its payout once the market resolved.
with m as (
    select m.*, r.is_resolved, r.has_valid_payout, r.payouts, r.resolved_at
    from {{ ref('stg_polymarket__markets') }} m
    join {{ ref('int_market_resolutions') }} r using (condition_id)
),

tokens as (
    select
        condition_id,
        unnest(token_ids) as token_id,
        unnest(range(len(token_ids))) as outcome_index,
        outcomes,
        payouts,
        is_resolved,
        has_valid_payout,
        resolved_at
    from m
)

select
    token_id,
    condition_id,
    cast(outcome_index as INTEGER) as outcome_index,
    outcomes[outcome_index + 1] as outcome,
    payouts[outcome_index + 1] as payout,
    is_resolved,
    has_valid_payout,
    resolved_at
from tokens
