-- One row: what this build brings the marts up to, and where the last complete build left them
-- (docs/warehouse.md#incremental-builds). Fills are new when ingested after `trades_ingested_from`, activity rows
-- after `activity_ingested_from` (null: every row, as after a build that kept no mark for them).
{% set state = sync_relation('int_sync_state') if execute else none %}
{% set state_columns = adapter.get_columns_in_relation(state) | map(attribute='name') | list if state is not none else [] %}
select
    uuid() as build_id,
    (select max(ingested_at) from {{ source('raw', 'trades') }}) as trades_ingested_to,
    (select max(ingested_at) from {{ source('raw', 'activity') }}) as activity_ingested_to,
    {% if 'activity_ingested_to' in state_columns %}
    (select activity_ingested_to from {{ state }}) as activity_ingested_from,
    {% else %}
    cast(null as TIMESTAMPTZ) as activity_ingested_from,
    {% endif %}
    {% if state is not none %}
    (select trades_ingested_to from {{ state }}) as trades_ingested_from,
    (select build_id from {{ state }}) as previous_build_id
    {% else %}
    cast(null as TIMESTAMPTZ) as trades_ingested_from,
    cast(null as UUID) as previous_build_id
    {% endif %}
