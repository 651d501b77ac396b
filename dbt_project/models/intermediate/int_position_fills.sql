-- Every fill, and every leg of the wallet's splits, merges and conversions (`kind`, int_activity_legs), in the order
-- its position (wallet x outcome token) saw it, with the position's running state under the average-cost method
-- (docs/metrics.md#positions-average-cost, #wallet-activity):
--   shares:  q_t = q_{t-1} + size (BUY) or - size (SELL)
--   basis:   b_t = a_t * b_{t-1} + c_t, with c_t = notional of a BUY, a_t = q_t / q_{t-1} for a partial SELL
--            (the basis of the shares sold leaves at the average cost), and b_t = 0 after a full exit.
-- The recurrence is solved in closed form with window sums in log space inside each holding segment (a segment
-- ends with a full exit): b_t = exp(L_t) * sum_{k<=t} c_k * exp(-L_k), L_t = sum_{j<=t} ln(a_j).
-- A SELL realises proceeds minus the basis it removes. Sells beyond the shares held (splits raw.activity does not
-- hold) are flagged `oversold`; such positions are kept out of scores. A leg pays no fee.
-- Incremental: a sync recomputes the positions in `int_changes`, each from all its fills, so a late fill lands in
-- its place in the order and every later row of the position is recomputed (docs/warehouse.md#incremental-builds).
-- depends_on: {{ ref('int_changes') }}
{{ config(materialized='incremental', incremental_strategy='replace', on_schema_change='fail',
          replace_where='position_id in (select position_id from {changes})') }}
{% set eps = var('share_epsilon') %}

-- read twice: in a full build not materialized (DuckDB would keep a copy of every fill), in a sync materialized (a
-- copy of the touched positions' fills, where reading them twice scanned the text keys of every fill twice)
with trades as {{ 'materialized' if is_incremental() else 'not materialized' }} (
    -- the fills, and the legs of the wallets' splits, merges and conversions (int_activity_legs): within one
    -- second, what brings shares in (a split, a conversion's YES) before the fills, what takes them out after
    select *, 'trade' as kind, 1 as seq
    from {{ ref('stg_polymarket__trades') }}
    {% if is_incremental() %}
    semi join {{ ref('int_changes') }} using (wallet, token_id)
    {% endif %}
    union all by name
    select
        fill_key, wallet, condition_id, token_id, side, size, price, notional, ts, to_timestamp(ts) as traded_at,
        DATE '1970-01-01' + cast(ts // 86400 as INTEGER) as trade_date, transaction_hash, kind,
        case when side = 'BUY' then 0 else 2 end as seq
    from {{ ref('int_activity_legs') }}
    {% if is_incremental() %}
    semi join {{ ref('int_changes') }} using (wallet, token_id)
    {% endif %}
),

narrow as (
    -- the window machinery runs on narrow rows keyed by a 128-bit position id (sorting long text keys is slow)
    select fill_key, md5_number(wallet || '|' || token_id) as position_id, ts, seq, side, size, notional
    from trades
),

held as (
    select
        *,
        {{ exact_sum("case when side = 'BUY' then size else -size end",
                     over='partition by position_id order by ts, seq, fill_key
                           rows between unbounded preceding and current row') }} as shares_after
    from narrow
),

steps as (
    select
        *,
        shares_after - case when side = 'BUY' then size else -size end as shares_before,
        side = 'SELL' and shares_after <= {{ eps }} as ends_segment,
        side = 'SELL' and shares_after < -{{ eps }} as oversold,
        case
            when side = 'SELL' and shares_after > {{ eps }} then ln(shares_after / (shares_after + size))
            else 0.0
        end as log_a,
        case when side = 'BUY' then notional else 0.0 end as c
    from held
),

segmented as (
    select
        *,
        coalesce(sum(ends_segment::INTEGER) over (
            partition by position_id order by ts, seq, fill_key rows between unbounded preceding and 1 preceding
        ), 0) as segment
    from steps
),

logs as (
    select
        *,
        greatest({{ exact_sum('log_a', over='partition by position_id, segment order by ts, seq, fill_key
                                             rows between unbounded preceding and current row') }}, -700.0) as cum_log
    from segmented
),

based as (
    select
        *,
        case
            when ends_segment then 0.0
            -- rounded to 1e-9 USDC (USDC has 6 decimals): removes the float noise of exp(ln(.))
            -- fsum (compensated): the running total at a fill does not depend on the fills after it
            else round(exp(cum_log) * fsum(c * exp(-cum_log)) over (
                partition by position_id, segment order by ts, seq, fill_key
                rows between unbounded preceding and current row
            ), 9)
        end as basis_after
    from logs
),

state as (
    select
        fill_key, position_id, shares_before, shares_after, basis_after, oversold,
        coalesce(lag(basis_after) over position_order, 0.0) as basis_before,
        lead(fill_key) over position_order is null as is_position_last
    from based
    window position_order as (partition by position_id order by ts, seq, fill_key)
),

final as (
    select f.*, s.* exclude (fill_key), t.outcome_index, t.payout,
        coalesce(t.is_resolved, false) as is_resolved,
        coalesce(t.has_valid_payout, false) as has_valid_payout,
        t.resolved_at
    from state s
    join trades f using (fill_key)
    left join {{ ref('int_market_tokens') }} t using (token_id)
)

select
    fill_key,
    position_id,
    is_position_last,
    kind,
    wallet,
    condition_id,
    token_id,
    outcome_index,
    side,
    size,
    price,
    notional,
    case when kind = 'trade' then notional * {{ var('fee_rate') }} else 0.0 end as fee,
    ts,
    traded_at,
    trade_date,
    transaction_hash,
    shares_before,
    shares_after,
    basis_before,
    basis_after,
    case when side = 'SELL' and shares_before > {{ eps }} then round(basis_before / shares_before, 9) end as avg_cost_before,
    case when side = 'SELL' then basis_before - basis_after else 0.0 end as basis_removed,
    case when side = 'SELL' then notional - (basis_before - basis_after) else 0.0 end as realised_on_sell,
    oversold,
    payout,
    is_resolved,
    has_valid_payout,
    resolved_at,
    -- per-fill attribution (polymarket_api.md §5), realised once the market resolves; order-independent
    case
        when has_valid_payout and side = 'BUY' then size * (payout - price)
        when has_valid_payout and side = 'SELL' then size * (price - payout)
    end as pnl_gross_at_resolution
from final
