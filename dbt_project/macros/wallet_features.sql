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
{%- set m_k = 'm.' ~ keys | join(', m.') %}
with markets as (
    select *
    from {{ ref('wallet_markets') }}
    {% if is_incremental() %}
    where wallet in (select wallet from {{ ref('int_changes') }})
    {% endif %}
),

totals as (
    -- one pass over the markets: the activity sums over the markets with fills, the record over those with
    -- positions (`n_act`, `n_rec`: how many of each), and `total`, the volume the HHI divides by: the markets'
    -- DOUBLE volumes added back as decimals (the sum of the DOUBLE volumes, each rounded to 1e-12)
    select
        {{ k }},
        count(*) filter (where n_fills is not null) as n_act,
        cast(sum(n_fills) filter (where n_fills is not null) as bigint) as n_fills,
        count(condition_id) filter (where n_fills is not null) as n_markets,
        cast(sum(volume) filter (where n_fills is not null) as double) as volume,
        cast(sum(fees) filter (where n_fills is not null) as double) as fees_paid,
        min(first_fill_at) filter (where n_fills is not null) as first_fill_at,
        max(last_fill_at) filter (where n_fills is not null) as last_fill_at,
        cast(sum(cast(cast(volume as double) as decimal(38, 12))) filter (where n_fills is not null) as double)
            as total,
        count(*) filter (where n_positions is not null) as n_rec,
        cast(sum(n_positions) filter (where n_positions is not null) as bigint) as n_positions,
        cast(sum(n_resolved_positions) filter (where n_positions is not null) as bigint) as n_resolved_positions,
        cast(sum(wins) filter (where n_positions is not null) as bigint) as wins,
        cast(sum(losses) filter (where n_positions is not null) as bigint) as losses,
        cast(sum(n_flagged_positions) filter (where n_positions is not null) as bigint) as n_flagged_positions,
        coalesce(cast(sum(pnl_gross) filter (where n_positions is not null) as double), 0.0) as pnl_gross,
        coalesce(cast(sum(pnl_net) filter (where n_positions is not null) as double), 0.0) as pnl_net
    from markets
    group by {{ k }}
),

concentration as (
    -- each market's share of the total volume, squared, summed exactly (a join on the totals, where a window
    -- over every market row took twice as long)
    select {{ m_k }},
           10000.0 * {{ exact_sum('power(cast(m.volume as double) / t.total, 2)') }} as market_hhi
    from markets m
    join totals t on {{ same_keys(keys, 't', 'm') }}
    where m.n_fills is not null and t.total > 0
    group by {{ m_k }}
)

-- the keys with a market with fills; the record's columns are NULL where the key has no market with positions.
-- Keys match null-safely: a traded market missing from dim_markets has no category, and its group keeps its
-- record and HHI like any other
select
    {% for key in keys %}t.{{ key }},{% endfor %}
    t.n_fills,
    t.n_markets,
    case when t.n_rec > 0 then t.n_positions end as n_positions,
    case when t.n_rec > 0 then t.n_resolved_positions end as n_resolved_positions,
    case when t.n_rec > 0 then t.wins end as wins,
    case when t.n_rec > 0 then t.losses end as losses,
    case when t.n_rec > 0 then t.n_flagged_positions end as n_flagged_positions,
    t.volume,
    t.fees_paid,
    case when t.n_rec > 0 then t.pnl_gross end as pnl_gross,
    case when t.n_rec > 0 then t.pnl_net end as pnl_net,
    c.market_hhi,
    t.first_fill_at,
    t.last_fill_at
from totals t
left join concentration c on {{ same_keys(keys, 'c', 't') }}
where t.n_act > 0
{%- endmacro %}

{#- `a.key = b.key` for each key, NULLs equal -#}
{% macro same_keys(keys, a, b) -%}
    {%- for key in keys -%}{{ a }}.{{ key }} is not distinct from {{ b }}.{{ key }}{{ ' and ' if not loop.last }}{%- endfor -%}
{%- endmacro %}
