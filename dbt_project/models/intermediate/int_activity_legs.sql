-- The position changes that are not trades, as legs on the fills' terms (docs/metrics.md#wallet-activity): a side, a
-- size and a price per outcome token, so the average-cost books of `int_position_fills` carry them in order.
--   SPLIT of n:  a BUY of n of every outcome of the market at 1/k each (k outcomes: $0.50 on a binary market),
--                the n dollars it cost shared evenly, as Polymarket's own P&L subgraph books it;
--   MERGE of n:  a SELL of n of every outcome at 1/k each (the n dollars it returned);
--   CONVERSION:  NegRisk legs linked by their transaction: each NO token given up (a SELL leg) at (g - 1) / g,
--                g the legs given, so the legs' proceeds are the (g - 1) dollars per share the adapter pays, and
--                each YES token received (a BUY leg) at 0. The wallet's total is exact; how it is shared between
--                the positions is a convention (docs/metrics.md#conversions).
-- REDEEM adds no leg (its payout is what the shares are counted at once the market resolved: `fct_activity`
-- checks the two agree); REWARD and rebates are income (`wallet_income`). An activity row whose market or token
-- is not in raw.markets has no leg here and is listed, with why, in `fct_activity`.
with activity as (
    select * from {{ ref('stg_polymarket__activity') }}
    where type in ('SPLIT', 'MERGE', 'CONVERSION')
),

pairs as (
    select
        a.activity_key, a.wallet, a.type, t.token_id, t.condition_id, t.outcome_index,
        case when a.type = 'SPLIT' then 'BUY' else 'SELL' end as side,
        a.size,
        1.0 / count(*) over (partition by a.activity_key) as price,
        a.ts, a.transaction_hash, a.ingested_at
    from activity a
    join {{ ref('int_market_tokens') }} t using (condition_id)
    where a.type in ('SPLIT', 'MERGE')
),

conversions as (
    select
        a.*,
        count(*) filter (where a.side = 'SELL') over (partition by a.wallet, a.transaction_hash) as n_given
    from activity a
    where a.type = 'CONVERSION'
),

conversion_legs as (
    select
        c.activity_key, c.wallet, c.type, t.token_id, t.condition_id, t.outcome_index, c.side, c.size,
        case when c.side = 'SELL' then (c.n_given - 1.0) / c.n_given else 0.0 end as price,
        c.ts, c.transaction_hash, c.ingested_at
    from conversions c
    join {{ ref('int_market_tokens') }} t on t.token_id = c.token_id
    where c.n_given > 0 and c.transaction_hash is not null
)

select
    md5_number(cast(activity_key as VARCHAR) || '|' || token_id) as fill_key,
    activity_key,
    lower(type) as kind,
    wallet,
    condition_id,
    token_id,
    outcome_index,
    side,
    size,
    price,
    size * price as notional,
    ts,
    transaction_hash,
    ingested_at
from (
    select * from pairs
    union all by name
    select * from conversion_legs
)
