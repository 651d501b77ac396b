-- One row per (wallet, UTC day) from the wallet's first fill to the last day in the warehouse (the last day with a
-- fill or with the resolution of a counted position): realised P&L net of fees, the capital base and the daily
-- return (docs/metrics.md#daily-returns).
--   capital_base = cost basis of open positions at the start of the day + the day's buys
--   daily_return = pnl_net / capital_base; 0 on a day with no capital and no P&L (return_reason 'no_capital').
-- Causal (docs/metrics.md#point-in-time): a day depends only on fills and resolutions up to that day. A position
-- that goes short of shares (an oversold fill: splits or merges the trades do not show) counts until that fill;
-- there its remaining cost basis is written off without P&L, and its later fills and its resolution are left out.
-- Incremental (docs/warehouse.md#incremental-builds): a sync recomputes each wallet in `int_changes` from its first
-- changed day, carrying the exact running open basis of the days before it, and extends every other wallet to the
-- new last day. The result equals a full build's, bit for bit (tests/assets/test_incremental.py). The rows replaced
-- are named by a correlated scalar subquery, which DuckDB runs as one join (an EXISTS with the day condition in it
-- scanned the table thirty times slower).
-- depends_on: {{ ref('int_changes') }}
{{ config(materialized='incremental', incremental_strategy='replace', on_schema_change='fail',
          replace_where="_target.day >= DATE '1970-01-01' + (select min(c.since_d) from {changes} c
                                                              where c.wallet = _target.wallet)
                         or _target.day > DATE '1970-01-01' + {end_day}") }}
{% set incremental = is_incremental() %}

with
{% if incremental %}
bounds as (
    select (select max(day) from {{ this }}) as old_end, {{ daily_returns_end() }} as end_d
),

changed as (
    select wallet, min(since_d) as since_d
    from {{ ref('int_changes') }}
    where since_d is not null
    group by 1
),

last_rows as (
    -- the other wallets' rows on the last stored day
    select r.*
    from {{ this }} r
    where r.day = (select old_end from bounds) and r.wallet not in (select wallet from changed)
),

work as (
    -- the wallets recomputed, each from `since_d`: the changed ones, and those whose open basis moved on the last
    -- stored day (their running sum is carried exactly, as a DECIMAL, not from the rounded DOUBLE column)
    select wallet, since_d from changed
    union all
    select wallet, cast(day - DATE '1970-01-01' as INTEGER) + 1
    from last_rows
    where cast(buy_notional - basis_removed as decimal(38, 12)) <> 0
),

carry as (
    -- the exact running open basis before `since_d`, summed from the stored days as the full build sums them
    select w.wallet, w.since_d, coalesce(sum(cast(r.buy_notional - r.basis_removed as decimal(38, 12))), 0)
        as basis_before, count(r.day) > 0 as has_history
    from work w
    left join {{ this }} r on r.wallet = w.wallet and r.day < DATE '1970-01-01' + w.since_d
    group by 1, 2
),

extension as (
    -- the other wallets: the new days after the last stored one, with no events and the same open basis
    select l.wallet, d, l.open_basis_start
    from last_rows l, range((select coalesce(old_end - DATE '1970-01-01', end_d) from bounds) + 1, (select end_d from bounds) + 1) t(d)
    where l.wallet not in (select wallet from work)
),

fills as (
    -- the recomputed wallets' fills from `since_d` on, and their oversold fills of any day (a position's first one
    -- cuts it even when it came before `since_d`); first by the earliest `since_d`, which skips most rows cheaply
    select f.*, w.since_d
    from {{ ref('int_position_fills') }} f
    join carry w using (wallet)
    where (f.ts >= (select min(since_d) from carry) * 86400 or f.oversold)
        and (f.ts >= w.since_d * 86400 or f.oversold)
),
{% else %}
bounds as (
    select {{ daily_returns_end() }} as end_d
),

fills as not materialized (  -- read three times, as before (DuckDB would keep a copy of every fill)
    select *, cast(null as INTEGER) as since_d from {{ ref('int_position_fills') }}
),
{% endif %}

oversold as (
    -- the first oversold fill of each position, in the position's own order
    select position_id, ts as cut_ts, fill_key as cut_key, wallet, basis_before as written_off, since_d
    from fills
    where oversold
    qualify row_number() over (partition by position_id order by ts, fill_key) = 1
),

counted_fills as (
    select f.*
    from fills f
    left join oversold o using (position_id)
    where (o.cut_ts is null or f.ts < o.cut_ts or (f.ts = o.cut_ts and f.fill_key < o.cut_key))
        and (f.since_d is null or f.ts >= f.since_d * 86400)
),

wallets as (
    -- integer ids: the dense spine below is sorted and windowed by wallet, cheaper on an integer than on text
    select wallet, cast(row_number() over (order by wallet) as INTEGER) as wallet_id
    {% if incremental %}
    -- every recomputed wallet (`fills` keeps only the days it reads): each has a fill, as it has a changed position
    -- or a stored day
    from (select distinct wallet from carry)
    {% else %}
    from (select distinct wallet from fills)
    {% endif %}
),

fill_days as (
    select
        f.wallet,
        cast(f.ts // 86400 as INTEGER) as d,
        count(*) filter (where f.kind = 'trade') as n_fills,
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
    where since_d is null or cut_ts >= since_d * 86400
    group by 1, 2
),

resolution_days as (
    select
        p.wallet,
        {{ epoch_day('p.resolved_at') }} as d,
        0 as n_fills,
        0.0 as buys,
        {{ exact_sum('p.open_basis') }} as basis_removed,
        {{ exact_sum('p.realised_at_resolution') }} as realised,
        0.0 as fees
    from {{ ref('fct_positions') }} p
    {% if incremental %}
    join carry w using (wallet)
    where p.is_resolved and p.is_scorable and {{ epoch_day('p.resolved_at') }} >= w.since_d
        and {{ epoch_day('p.resolved_at') }} >= (select min(since_d) from carry)
    {% else %}
    where p.is_resolved and p.is_scorable
    {% endif %}
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
    {% if incremental %}
    -- from `since_d` where the wallet has stored days before it, else from its first event
    select w.wallet_id, unnest(range(
        case when c.has_history then c.since_d else (select min(e.d) from events e where e.wallet_id = w.wallet_id) end,
        (select end_d from bounds) + 1)) as d
    from wallets w
    join carry c using (wallet)
    {% else %}
    select wallet_id, unnest(range(min(d), (select end_d from bounds) + 1)) as d
    from events
    group by wallet_id
    {% endif %}
),

running as (
    select
        s.wallet_id,
        s.d,
        coalesce(e.n_fills, 0) as n_fills,
        coalesce(e.buys, 0.0) as buys,
        coalesce(e.basis_removed, 0.0) as basis_removed,
        coalesce(e.realised, 0.0) as realised,
        coalesce(e.fees, 0.0) as fees,
        -- the exact running sum of (buys - basis removed) over the days before, as exact_sum() adds: on an
        -- incremental build it starts from the carried sum of the stored days
        greatest(cast(
            {% if incremental %}c.basis_before + {% endif %}
            coalesce(sum(cast(coalesce(e.buys, 0.0) - coalesce(e.basis_removed, 0.0) as decimal(38, 12))) over (
                partition by s.wallet_id order by s.d rows between unbounded preceding and 1 preceding), 0)
            as double), 0.0) as open_basis_start
    from spine s
    left join events e using (wallet_id, d)
    {% if incremental %}
    join wallets w on w.wallet_id = s.wallet_id
    join carry c on c.wallet = w.wallet
    {% endif %}
),

days as (
    select w.wallet, r.d, r.n_fills, r.buys, r.basis_removed, r.realised, r.fees, r.open_basis_start
    from running r
    join wallets w using (wallet_id)
    {% if incremental %}
    union all
    select wallet, d, 0, 0.0, 0.0, 0.0, 0.0, open_basis_start
    from extension
    {% endif %}
)

select
    r.wallet,
    cast(DATE '1970-01-01' + cast(r.d as INTEGER) as DATE) as day,
    cast(r.n_fills as BIGINT) as n_fills,
    r.buys as buy_notional,
    r.basis_removed,
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
from days r
