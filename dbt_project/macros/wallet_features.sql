{# Wallet features grouped by `keys` (wallet, or wallet and category): activity, resolved record, realised P&L
   and market concentration (HHI of volume by market, 0-10,000). One definition for both marts, added up from the
   (wallet, market) rows of `wallet_markets`: their sums are exact decimals, so a wallet's total is the sum over
   all its fills or positions, to the bit, whatever the grouping. #}
{% macro wallet_features(keys) -%}
{#- Incremental: a sync recomputes every wallet with a position in `int_changes`, from its markets' rows. -#}
-- depends_on: {{ ref('int_changes') }}
{{ config(materialized='incremental', incremental_strategy='replace', on_schema_change='fail',
          replace_where='wallet in (select wallet from {changes})') }}
{%- set k = keys | join(', ') %}
with markets as (
    select *
    from {{ ref('wallet_markets') }}
    {% if is_incremental() %}
    where wallet in (select wallet from {{ ref('int_changes') }})
    {% endif %}
),

activity as (
    select
        {{ k }},
        cast(sum(n_fills) as bigint) as n_fills,
        count(condition_id) as n_markets,
        cast(sum(volume) as double) as volume,
        cast(sum(fees) as double) as fees_paid,
        min(first_fill_at) as first_fill_at,
        max(last_fill_at) as last_fill_at
    from markets
    where n_fills is not null
    group by {{ k }}
),

concentration as (
    -- v: the market's volume as DOUBLE; the total adds the v's back as decimals (as the sum of the markets' DOUBLE
    -- volumes, each rounded to 1e-12)
    select {{ k }}, 10000.0 * {{ exact_sum('power(v / total, 2)') }} as market_hhi
    from (select *, cast(sum(cast(v as decimal(38, 12))) over (partition by {{ k }}) as double) as total
          from (select {{ k }}, cast(volume as double) as v from markets where n_fills is not null))
    where total > 0
    group by {{ k }}
),

record as (
    select
        {{ k }},
        cast(sum(n_positions) as bigint) as n_positions,
        cast(sum(n_resolved_positions) as bigint) as n_resolved_positions,
        cast(sum(wins) as bigint) as wins,
        cast(sum(losses) as bigint) as losses,
        cast(sum(n_flagged_positions) as bigint) as n_flagged_positions,
        coalesce(cast(sum(pnl_gross) as double), 0.0) as pnl_gross,
        coalesce(cast(sum(pnl_net) as double), 0.0) as pnl_net
    from markets
    where n_positions is not null
    group by {{ k }}
)

select
    {% for key in keys %}a.{{ key }},{% endfor %}
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
left join record r using ({{ k }})
left join concentration c using ({{ k }})
{%- endmacro %}
