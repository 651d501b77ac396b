-- One row per /activity row (raw.activity), with how the marts booked it (docs/metrics.md#wallet-activity):
--   legs:      a SPLIT, MERGE or CONVERSION leg in the positions' books (int_activity_legs, fct_positions);
--   income:    a REWARD or a rebate (wallet_income), outside trading P&L;
--   check:     a REDEEM: it adds no P&L (the shares are counted at their payout once the market resolved), so it is
--              checked: what the wallet redeemed in the market against the payout of the shares the marts hold
--              for it there (`redeem_gap`: a gap is an input the warehouse lacks, as fills before its history);
--   fill:      a TRADE row (the fills themselves come from raw.trades);
--   unbooked:  a row the marts could not place, with `unbooked_reason`.
with activity as (
    select * from {{ ref('stg_polymarket__activity') }}
),

legged as (
    select activity_key, count(*) as n_legs
    from {{ ref('int_activity_legs') }}
    group by 1
),

market_known as (
    select condition_id from {{ ref('dim_markets') }}
),

redeems as (
    select wallet, condition_id, {{ exact_sum('usdc_size') }} as market_redeemed_usdc
    from activity
    where type = 'REDEEM'
    group by 1, 2
),

expected as (
    -- the payout of the shares the marts hold for the wallet in each market it redeemed in
    select p.wallet, p.condition_id, bool_and(p.is_resolved) as is_resolved,
           {{ exact_sum('p.payout * greatest(p.net_shares, 0.0)') }} as expected_usdc
    from {{ ref('fct_positions') }} p
    semi join redeems r using (wallet, condition_id)
    group by 1, 2
)

select
    a.activity_key,
    a.wallet,
    a.type,
    a.condition_id,
    a.token_id,
    a.side,
    a.size,
    a.usdc_size,
    a.activity_at,
    a.transaction_hash,
    case
        when l.n_legs > 0 then 'legs'
        when a.type in ('REWARD', 'MAKER_REBATE', 'TAKER_REBATE') then 'income'
        when a.type = 'REDEEM' then 'check'
        when a.type = 'TRADE' then 'fill'
        else 'unbooked'
    end as booked_as,
    cast(coalesce(l.n_legs, 0) as BIGINT) as n_legs,
    case
        when l.n_legs > 0 or a.type not in ('SPLIT', 'MERGE', 'CONVERSION') then null
        when k.condition_id is null then 'market not in raw.markets'
        when a.type = 'CONVERSION' and a.transaction_hash is null then 'conversion leg without a transaction hash'
        when a.type = 'CONVERSION' then 'conversion without a NO leg given up, or its token not in raw.markets'
        else 'market has no outcome tokens'
    end as unbooked_reason,
    r.market_redeemed_usdc,
    case when a.type = 'REDEEM' and e.is_resolved then e.expected_usdc end as expected_usdc,
    case when a.type = 'REDEEM' and e.is_resolved then r.market_redeemed_usdc - e.expected_usdc end as redeem_gap,
    case
        when a.type <> 'REDEEM' then null
        when e.condition_id is null then 'no position of the wallet in this market (fills before the history?)'
        when not e.is_resolved then 'market not resolved in raw.markets'
    end as redeem_note
from activity a
left join legged l using (activity_key)
left join market_known k on k.condition_id = a.condition_id
left join redeems r on a.type = 'REDEEM' and r.wallet = a.wallet and r.condition_id = a.condition_id
left join expected e on a.type = 'REDEEM' and e.wallet = a.wallet and e.condition_id = a.condition_id
