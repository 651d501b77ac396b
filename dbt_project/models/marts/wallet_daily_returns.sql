-- One row per (wallet, UTC day) from the wallet's first fill to the last day in the warehouse: realised P&L
-- net of fees, the capital base and the daily return (docs/metrics.md#daily-returns).
--   capital_base = cost basis of open positions at the start of the day + the day's buys
--   daily_return = pnl_net / capital_base; 0 on a day with no capital and no P&L (return_reason 'no_capital').
-- Flagged (not scorable) positions are left out.
with scorable as (
    select wallet, token_id from {{ ref('fct_positions') }} where is_scorable
),

fill_days as (
    select
        f.wallet,
        f.trade_date as day,
        count(*) as n_fills,
        sum(case when f.side = 'BUY' then f.notional else 0.0 end) as buys,
        sum(f.basis_removed) as basis_removed,
        sum(f.realised_on_sell) as realised,
        sum(f.fee) as fees
    from {{ ref('int_position_fills') }} f
    semi join scorable s using (wallet, token_id)
    group by 1, 2
),

resolution_days as (
    select
        wallet,
        cast(resolved_at as DATE) as day,
        0 as n_fills,
        0.0 as buys,
        sum(open_basis) as basis_removed,
        sum(realised_at_resolution) as realised,
        0.0 as fees
    from {{ ref('fct_positions') }}
    where is_resolved and is_scorable
    group by 1, 2
),

events as (
    select wallet, day, sum(n_fills) as n_fills, sum(buys) as buys, sum(basis_removed) as basis_removed,
           sum(realised) as realised, sum(fees) as fees
    from (select * from fill_days union all select * from resolution_days)
    group by 1, 2
),

last_day as (
    select max(day) as day from events
),

spine as (
    select wallet, cast(unnest(generate_series(min(day), (select day from last_day), interval 1 day)) as DATE) as day
    from events
    group by wallet
),

dense as (
    select
        s.wallet,
        s.day,
        coalesce(e.n_fills, 0) as n_fills,
        coalesce(e.buys, 0.0) as buys,
        coalesce(e.basis_removed, 0.0) as basis_removed,
        coalesce(e.realised, 0.0) as realised,
        coalesce(e.fees, 0.0) as fees
    from spine s
    left join events e using (wallet, day)
),

running as (
    select
        *,
        greatest(coalesce(sum(buys - basis_removed) over (
            partition by wallet order by day rows between unbounded preceding and 1 preceding
        ), 0.0), 0.0) as open_basis_start
    from dense
)

select
    wallet,
    day,
    cast(n_fills as BIGINT) as n_fills,
    buys as buy_notional,
    realised as pnl_gross,
    fees,
    realised - fees as pnl_net,
    open_basis_start,
    open_basis_start + buys as capital_base,
    case
        when open_basis_start + buys >= 0.01 then (realised - fees) / (open_basis_start + buys)
        when abs(realised - fees) < 0.01 then 0.0
    end as daily_return,
    case
        when open_basis_start + buys >= 0.01 then null
        when abs(realised - fees) < 0.01 then 'no_capital'
        else 'pnl_without_capital'
    end as return_reason
from running
