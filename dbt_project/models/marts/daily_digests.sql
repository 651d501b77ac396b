-- One row per UTC day with a daily return or a fill: how many rows `wallet_daily_returns` and `fct_fills` hold for
-- the day, and the XOR of their row hashes (docs/warehouse.md#martsdaily_digests). The scores check that the days
-- their carried state read have not changed (assets/score/incremental.py:digest): the XOR over days is the XOR over
-- rows, so a few rows of this table replace hashing every stored row.
-- Incremental: a sync recomputes every day from the first it can have changed, `digests_from_day()`: the earliest
-- `since_d` of `int_changes` (a recomputed wallet's days, a new fill's day), the day after the last one this table
-- held (every wallet's spine grows to the new last day) and the day after the new last day (a spine that shrank
-- leaves no day past its end). A fill's hashed columns never change, and a resolution changes the returns only.
-- depends_on: {{ ref('int_changes') }}
-- depends_on: {{ ref('fct_positions') }}
{{ config(materialized='incremental', incremental_strategy='replace', on_schema_change='fail',
          replace_where="_target.day >= DATE '1970-01-01' + {digests_from_day}") }}
{% set incremental = is_incremental() %}

with
{% if incremental %}
bounds as materialized (
    -- the first epoch day hashed again, computed once
    select {{ digests_from_day(this) }} as m
),
{% endif %}

returns as (
    select day, count(*) as return_rows, bit_xor(hash(wallet, day, daily_return, pnl_net)) as return_hash
    from {{ ref('wallet_daily_returns') }}
    {% if incremental %}
    where day >= DATE '1970-01-01' + (select m from bounds)
    {% endif %}
    group by day
),

fills as (
    -- `fct_fills`' rows and columns, read from the relation it projects: the fill's UTC day from its epoch seconds
    -- (`ts`, a BIGINT: `traded_at` is `to_timestamp(ts)`), compared without a timestamp conversion per fill
    select
        DATE '1970-01-01' + cast(ts // 86400 as INTEGER) as day,
        count(*) as fill_rows,
        bit_xor(hash(fill_key, wallet, condition_id, traded_at, notional)) as fill_hash
    from {{ ref('int_position_fills') }}
    where kind = 'trade'
    {% if incremental %}
        and ts >= (select m from bounds) * 86400
    {% endif %}
    group by 1
)

select
    cast(coalesce(r.day, f.day) as DATE) as day,
    coalesce(r.return_rows, 0) as return_rows,
    coalesce(r.return_hash, 0) as return_hash,
    coalesce(f.fill_rows, 0) as fill_rows,
    coalesce(f.fill_hash, 0) as fill_hash
from returns r
full join fills f on f.day = r.day
