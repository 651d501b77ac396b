-- One row per market: labels, category, schedule and resolution (polymarket_api.md §4).
select
    m.condition_id,
    m.market_id,
    m.question,
    m.slug,
    m.event_id,
    m.event_slug,
    m.category,
    m.outcomes,
    m.token_ids,
    m.start_at,
    m.end_at as end_date,
    m.closed,
    m.uma_resolution_status,
    r.is_resolved,
    r.resolution_kind,
    coalesce(r.resolution_kind = 'anomaly', false) as is_resolution_anomaly,
    r.payouts,
    case when r.resolution_kind = 'one_hot' then cast(list_position(r.payouts, 1.0) - 1 as INTEGER) end
        as winning_outcome_index,
    r.resolved_at,
    m.neg_risk
from {{ ref('stg_polymarket__markets') }} m
join {{ ref('int_market_resolutions') }} r using (condition_id)
