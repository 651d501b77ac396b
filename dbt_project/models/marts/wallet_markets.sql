-- One row per (wallet, market): the wallet's fills, volume, fees and resolved record in that market, the sums exact
-- (DECIMAL(38, 12), each term rounded to 1e-12 as `exact_sum` does). The wallet features add these rows up, so a
-- sync re-reads a touched wallet's markets, not all its fills and positions (docs/warehouse.md#wallet_markets).
-- Incremental: a sync recomputes the (wallet, market) pairs of the positions in `int_changes`, each from all its
-- fills and positions; a pair never loses its fills, so its new row replaces its old one.
-- depends_on: {{ ref('int_changes') }}
{{ config(materialized='incremental', incremental_strategy='replace', on_schema_change='fail',
          replace_where='(wallet, condition_id) in (select wallet, condition_id from {new})') }}

{% if is_incremental() %}
with changed as (
    -- every market a changed position's fills name (a fill's market never changes)
    select distinct wallet, condition_id
    from {{ ref('int_position_fills') }}
    where position_id in (select position_id from {{ ref('int_changes') }})
),

positions as (
    -- every position of a changed (wallet, market) pair
    select *
    from {{ ref('fct_positions') }}
    where (wallet, condition_id) in (select wallet, condition_id from changed)
),
{% else %}
with positions as (
    select * from {{ ref('fct_positions') }}
),
{% endif %}

fills as (
    -- each position's fills summed on its 128-bit id (grouping every fill by the text pair was slower), then the
    -- pair's positions added up below: the same exact sums
    select
        position_id,
        count(*) as n_fills,
        sum(cast(notional as decimal(38, 12))) as volume,
        sum(cast(fee as decimal(38, 12))) as fees,
        min(traded_at) as first_fill_at,
        max(traded_at) as last_fill_at
    from {{ ref('int_position_fills') }}
    {% if is_incremental() %}
    where position_id in (select position_id from positions)
    {% endif %}
    group by position_id
),

pairs as (
    -- a position's fills all name its market, and every position has fills
    select
        p.wallet,
        p.condition_id,
        cast(sum(f.n_fills) as BIGINT) as n_fills,
        sum(f.volume) as volume,
        sum(f.fees) as fees,
        min(f.first_fill_at) as first_fill_at,
        max(f.last_fill_at) as last_fill_at,
        count(*) as n_positions,
        count(*) filter (where p.is_resolved and p.is_scorable) as n_resolved_positions,
        count(*) filter (where p.won and p.is_scorable) as wins,
        count(*) filter (where p.is_resolved and p.is_scorable and p.pnl_gross < 0) as losses,
        count(*) filter (where not p.is_scorable) as n_flagged_positions,
        sum(cast(p.pnl_gross as decimal(38, 12))) filter (where p.is_scorable) as pnl_gross,
        sum(cast(p.pnl_net as decimal(38, 12))) filter (where p.is_scorable) as pnl_net
    from positions p
    join fills f using (position_id)
    group by p.wallet, p.condition_id
)

select
    p.wallet,
    p.condition_id,
    m.category,
    p.n_fills,
    p.volume,
    p.fees,
    p.first_fill_at,
    p.last_fill_at,
    p.n_positions,
    p.n_resolved_positions,
    p.wins,
    p.losses,
    p.n_flagged_positions,
    p.pnl_gross,
    p.pnl_net
from pairs p
left join {{ ref('dim_markets') }} m on m.condition_id = p.condition_id
