-- One row per (wallet, income type): rewards and rebates (REWARD, MAKER_REBATE, TAKER_REBATE), income that does not
-- come from trading, kept out of trading P&L and so out of skill scores (docs/metrics.md#wallet-activity).
select
    wallet,
    type,
    count(*) as n_rows,
    {{ exact_sum('usdc_size') }} as usdc,
    min(activity_at) as first_at,
    max(activity_at) as last_at
from {{ ref('stg_polymarket__activity') }}
where type in ('REWARD', 'MAKER_REBATE', 'TAKER_REBATE')
group by 1, 2
