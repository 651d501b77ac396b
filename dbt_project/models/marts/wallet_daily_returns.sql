-- One row per (wallet, UTC day) from the wallet's first fill to the last day in the warehouse: realised P&L
-- net of fees, the capital base and the daily return (docs/metrics.md#daily-returns).
--   capital_base = cost basis of open positions at the start of the day + the day's buys
--   daily_return = pnl_net / capital_base; 0 on a day with no capital and no P&L (return_reason 'no_capital').
-- Causal (docs/metrics.md#point-in-time): a day depends only on fills and resolutions up to that day. A position
-- that goes short of shares (an oversold fill: splits or merges the trades do not show) counts until that fill;
-- there its remaining cost basis is written off without P&L, and its later fills and its resolution are left out.
with oversold as (
    -- the first oversold fill of each position, in the position's own order
    select position_id, ts as cut_ts, fill_key as cut_key, wallet, basis_before as written_off
    from {{ ref('int_position_fills') }}
    where oversold
    qualify row_number() over (partition by position_id order by ts, fill_key) = 1
),

counted_fills as (
    select f.*
    from {{ ref('int_position_fills') }} f
    left join oversold o using (position_id)
    where o.cut_ts is null or f.ts < o.cut_ts or (f.ts = o.cut_ts and f.fill_key < o.cut_key)
),

wallets as (
    -- integer ids: the dense spine below is sorted and windowed by wallet, cheaper on an integer than on text
    select wallet, cast(row_number() over (order by wallet) as INTEGER) as wallet_id
    from (select distinct wallet from {{ ref('int_position_fills') }})
),

fill_days as (
    select
        f.wallet,
        cast(f.ts // 86400 as INTEGER) as d,
        count(*) as n_fills,
        {{ exact_sum("case when f.side = 'BUY' then f.notional else 0.0 end") }} as buys,
        {{ exact_sum('f.basis_removed') }} as basis_removed,
        {{ exact_sum('f.realised_on_sell') }} as realised,
        {{ exact_sum('f.fee') }} as fees
    from counted_fills f
    group by 1, 2
),

write_offs as (
    select wallet, cast(cut_ts // 86400 as INTEGER) as d, 0 as n_fills, 0.0 as buys,
           {{ exact_sum('written_off') }} as basis_removed, 0.0 as realised, 0.0 as fees
    from oversold
    group by 1, 2
),

resolution_days as (
    select
        wallet,
        cast(floor(epoch(resolved_at) / 86400) as INTEGER) as d,  -- DuckDB: // on a DOUBLE does not floor
        0 as n_fills,
        0.0 as buys,
        {{ exact_sum('open_basis') }} as basis_removed,
        {{ exact_sum('realised_at_resolution') }} as realised,
        0.0 as fees
    from {{ ref('fct_positions') }}
    where is_resolved and is_scorable
    group by 1, 2
),

events as (
    select w.wallet_id, e.d, sum(n_fills) as n_fills, {{ exact_sum('buys') }} as buys,
           {{ exact_sum('basis_removed') }} as basis_removed, {{ exact_sum('realised') }} as realised,
           {{ exact_sum('fees') }} as fees
    from (select * from fill_days union all select * from write_offs union all select * from resolution_days) e
    join wallets w using (wallet)
    group by 1, 2
),

spine as (
    select wallet_id, unnest(range(min(d), (select max(d) from events) + 1)) as d
    from events
    group by wallet_id
),

running as (
    select
        s.wallet_id,
        s.d,
        coalesce(e.n_fills, 0) as n_fills,
        coalesce(e.buys, 0.0) as buys,
        coalesce(e.realised, 0.0) as realised,
        coalesce(e.fees, 0.0) as fees,
        greatest(coalesce({{ exact_sum('coalesce(e.buys, 0.0) - coalesce(e.basis_removed, 0.0)',
                                       over='partition by s.wallet_id order by s.d
                                             rows between unbounded preceding and 1 preceding') }}, 0.0), 0.0)
            as open_basis_start
    from spine s
    left join events e using (wallet_id, d)
)

select
    w.wallet,
    cast(DATE '1970-01-01' + cast(r.d as INTEGER) as DATE) as day,
    cast(r.n_fills as BIGINT) as n_fills,
    r.buys as buy_notional,
    r.realised as pnl_gross,
    r.fees,
    r.realised - r.fees as pnl_net,
    r.open_basis_start,
    r.open_basis_start + r.buys as capital_base,
    case
        when r.open_basis_start + r.buys >= 0.01 then (r.realised - r.fees) / (r.open_basis_start + r.buys)
        when abs(r.realised - r.fees) < 0.01 then 0.0
    end as daily_return,
    case
        when r.open_basis_start + r.buys >= 0.01 then null
        when abs(r.realised - r.fees) < 0.01 then 'no_capital'
        else 'pnl_without_capital'
    end as return_reason
from running r
join wallets w using (wallet_id)
