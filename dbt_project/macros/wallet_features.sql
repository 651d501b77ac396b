{# Wallet features grouped by `keys` (wallet, or wallet and category): activity, resolved record, realised P&L
   and market concentration (HHI of volume by market, 0-10,000). One definition for both marts. #}
{% macro wallet_features(keys) -%}
{#- Incremental: a sync recomputes every wallet with a position in `int_changes`, all of its history. -#}
-- depends_on: {{ ref('int_changes') }}
{{ config(materialized='incremental', incremental_strategy='replace', on_schema_change='fail',
          replace_where='wallet in (select wallet from {changes})') }}
with fills as (
    select f.*, m.category
    from {{ ref('int_position_fills') }} f
    left join {{ ref('dim_markets') }} m using (condition_id)
    {% if is_incremental() %}
    where f.wallet in (select wallet from {{ ref('int_changes') }})
    {% endif %}
),

positions as (
    select p.*, m.category
    from {{ ref('fct_positions') }} p
    left join {{ ref('dim_markets') }} m using (condition_id)
    {% if is_incremental() %}
    where p.wallet in (select wallet from {{ ref('int_changes') }})
    {% endif %}
),

activity as (
    select
        {{ keys | join(', ') }},
        count(*) as n_fills,
        count(distinct condition_id) as n_markets,
        {{ exact_sum('notional') }} as volume,
        {{ exact_sum('fee') }} as fees_paid,
        min(traded_at) as first_fill_at,
        max(traded_at) as last_fill_at
    from fills
    group by {{ keys | join(', ') }}
),

by_market as (
    select {{ keys | join(', ') }}, condition_id, {{ exact_sum('notional') }} as v
    from fills
    group by {{ keys | join(', ') }}, condition_id
),

concentration as (
    select {{ keys | join(', ') }}, 10000.0 * {{ exact_sum('power(v / total, 2)') }} as market_hhi
    from (select *, cast(sum(cast(v as decimal(38, 12))) over (partition by {{ keys | join(', ') }}) as double) as total
          from by_market)
    where total > 0
    group by {{ keys | join(', ') }}
),

record as (
    select
        {{ keys | join(', ') }},
        count(*) as n_positions,
        count(*) filter (where is_resolved and is_scorable) as n_resolved_positions,
        count(*) filter (where won and is_scorable) as wins,
        count(*) filter (where is_resolved and is_scorable and pnl_gross < 0) as losses,
        count(*) filter (where not is_scorable) as n_flagged_positions,
        coalesce({{ exact_sum('pnl_gross', filter='is_scorable') }}, 0.0) as pnl_gross,
        coalesce({{ exact_sum('pnl_net', filter='is_scorable') }}, 0.0) as pnl_net
    from positions
    group by {{ keys | join(', ') }}
)

select
    {% for k in keys %}a.{{ k }},{% endfor %}
    a.n_fills,
    a.n_markets,
    r.n_positions,
    r.n_resolved_positions,
    r.wins,
    r.losses,
    r.n_flagged_positions,
    a.volume,
    a.fees_paid,
    r.pnl_gross,
    r.pnl_net,
    c.market_hhi,
    a.first_fill_at,
    a.last_fill_at
from activity a
left join record r using ({{ keys | join(', ') }})
left join concentration c using ({{ keys | join(', ') }})
{%- endmacro %}
