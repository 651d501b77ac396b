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
{% else %}
with
{% endif %}

fills as (
    select
        wallet,
        condition_id,
        count(*) as n_fills,
        sum(cast(notional as decimal(38, 12))) as volume,
        sum(cast(fee as decimal(38, 12))) as fees,
        min(traded_at) as first_fill_at,
        max(traded_at) as last_fill_at
    from {{ ref('int_position_fills') }}
    where kind = 'trade'  -- the fills: the legs of splits, merges and conversions are not volume
    {% if is_incremental() %}
        and (wallet, condition_id) in (select wallet, condition_id from changed)
    {% endif %}
    group by wallet, condition_id
),

positions as (
    select
        wallet,
        condition_id,
        count(*) as n_positions,
        count(*) filter (where is_resolved and is_scorable) as n_resolved_positions,
        count(*) filter (where won and is_scorable) as wins,
        count(*) filter (where is_resolved and is_scorable and pnl_gross < 0) as losses,
        count(*) filter (where not is_scorable) as n_flagged_positions,
        sum(cast(pnl_gross as decimal(38, 12))) filter (where is_scorable) as pnl_gross,
        sum(cast(pnl_net as decimal(38, 12))) filter (where is_scorable) as pnl_net
    from {{ ref('fct_positions') }}
    {% if is_incremental() %}
    where (wallet, condition_id) in (select wallet, condition_id from changed)
    {% endif %}
    group by wallet, condition_id
)

select
    coalesce(f.wallet, p.wallet) as wallet,
    coalesce(f.condition_id, p.condition_id) as condition_id,
    m.category,
    f.n_fills,
    f.volume,
    f.fees,
    f.first_fill_at,
    f.last_fill_at,
    p.n_positions,
    p.n_resolved_positions,
    p.wins,
    p.losses,
    p.n_flagged_positions,
    p.pnl_gross,
    p.pnl_net
from fills f
full join positions p on p.wallet = f.wallet and p.condition_id = f.condition_id
left join {{ ref('dim_markets') }} m on m.condition_id = coalesce(f.condition_id, p.condition_id)
