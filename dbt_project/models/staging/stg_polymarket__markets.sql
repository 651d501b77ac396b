-- One row per market, JSON-in-string fields decoded, Gamma's dates parsed, the category taken from tags.
with src as (
    select * from {{ source('raw', 'markets') }}
)

select
    condition_id,
    market_id,
    question,
    slug,
    event_id,
    event_slug,
    event_title,
    {{ market_category('tags', 'category') }} as category,
    from_json(outcomes, '["VARCHAR"]') as outcomes,
    from_json(clob_token_ids, '["VARCHAR"]') as token_ids,
    try_cast(from_json(outcome_prices, '["VARCHAR"]') as DOUBLE[]) as outcome_prices,
    coalesce(closed, false) as closed,
    uma_resolution_status,
    try_cast(start_date as TIMESTAMPTZ) as start_at,
    try_cast(end_date as TIMESTAMPTZ) as end_at,
    try_cast(closed_time as TIMESTAMPTZ) as closed_at,
    try_cast(uma_end_date as TIMESTAMPTZ) as uma_end_at,
    coalesce(neg_risk, false) as neg_risk
from src
