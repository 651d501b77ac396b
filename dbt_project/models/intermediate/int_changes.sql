-- The positions (wallet x outcome token) whose history changed since the last complete build, the rows every
-- incremental model replaces (docs/warehouse.md#incremental-builds):
--   new fills:      fills (and splits, merges, conversions) ingested since the last complete build, whatever day
--                   they happen on (late data too);
--   market changed: a token whose market, category, outcome or resolution differs from what the marts last saw
--                   (a resolution that arrives late, or changes after a dispute).
-- `since_d` (epoch day): the first day of the position's wallet whose daily return can change; for new fills the
-- earliest new fill's day, or the position's resolution day (before or after the change) if that is earlier; null
-- when no day changes (a new category alone). Empty on a first build (every model then builds in full).
-- depends_on: {{ ref('int_sync_window') }}
-- depends_on: {{ ref('int_activity_legs') }}
-- depends_on: {{ ref('int_market_tokens') }}
-- depends_on: {{ ref('stg_polymarket__markets') }}
{% set snapshot = sync_relation('int_sync_markets') if execute else none %}
{% set state = sync_relation('int_sync_state') if execute else none %}
{% if snapshot is none or state is none %}
select
    cast(null as UHUGEINT) as position_id,
    cast(null as VARCHAR) as wallet,
    cast(null as VARCHAR) as token_id,
    cast(null as VARCHAR) as condition_id,
    cast(null as INTEGER) as since_d,
    cast(null as BOOLEAN) as has_new_fills,
    cast(null as BOOLEAN) as market_changed
where false
{% else %}
with tokens_now as (
    {{ market_token_state() }}
),

compared as (
    select
        coalesce(n.token_id, o.token_id) as token_id,
        n.resolved_at as new_resolved_at,
        o.resolved_at as old_resolved_at,
        n.payout is distinct from o.payout or n.is_resolved is distinct from o.is_resolved
            or n.has_valid_payout is distinct from o.has_valid_payout or n.resolved_at is distinct from o.resolved_at
            as resolution_changed,
        n.token_id is null or o.token_id is null or n.condition_id is distinct from o.condition_id
            or n.category is distinct from o.category or n.outcome_index is distinct from o.outcome_index
            as market_changed
    from tokens_now n
    full join {{ snapshot }} o on n.token_id = o.token_id
),

changed_tokens as (
    select
        token_id,
        case when resolution_changed
            then least({{ epoch_day('new_resolved_at') }}, {{ epoch_day('old_resolved_at') }})
        end as resolution_d
    from compared
    where resolution_changed or market_changed
),

legs as (
    -- every position leg: the fills, and the legs of splits, merges and conversions (int_activity_legs), each
    -- with whether it was ingested after what the last complete build applied
    select proxy_wallet as wallet, asset as token_id, condition_id, ts,
           ingested_at > (select trades_ingested_from from {{ ref('int_sync_window') }}) as is_new
    from {{ source('raw', 'trades') }}
    union all
    select wallet, token_id, condition_id, ts,
           ingested_at > coalesce((select activity_ingested_from from {{ ref('int_sync_window') }}),
                                  '-infinity'::TIMESTAMPTZ) as is_new
    from {{ ref('int_activity_legs') }}
),

new_fills as (
    select f.wallet, f.token_id, any_value(f.condition_id) as condition_id,
           least(min(cast(f.ts // 86400 as INTEGER)),
                 {{ epoch_day('any_value(n.resolved_at)') }}, {{ epoch_day('any_value(o.resolved_at)') }}) as since_d
    from legs f
    left join tokens_now n on n.token_id = f.token_id
    left join {{ snapshot }} o on o.token_id = f.token_id
    where f.is_new
    group by 1, 2
),

market_positions as (
    select f.wallet, f.token_id, any_value(f.condition_id) as condition_id,
           any_value(c.resolution_d) as since_d
    from legs f
    join changed_tokens c on c.token_id = f.token_id
    group by 1, 2
),

changes as (
    select wallet, token_id, any_value(condition_id) as condition_id, min(since_d) as since_d,
           bool_or(kind = 'fills') as has_new_fills, bool_or(kind = 'market') as market_changed
    from (
        select *, 'fills' as kind from new_fills
        union all
        select *, 'market' as kind from market_positions
    )
    group by 1, 2
)

select md5_number(wallet || '|' || token_id) as position_id, wallet, token_id, condition_id, since_d,
       has_new_fills, market_changed
from changes
{% endif %}
