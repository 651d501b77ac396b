-- One row: what this build brings the marts up to, and where the last complete build left them
-- (docs/warehouse.md#incremental-builds). Fills are new when ingested after `trades_ingested_from`.
{% set state = sync_relation('int_sync_state') if execute else none %}
select
    uuid() as build_id,
    (select max(ingested_at) from {{ source('raw', 'trades') }}) as trades_ingested_to,
    {% if state is not none %}
    (select trades_ingested_to from {{ state }}) as trades_ingested_from,
    (select build_id from {{ state }}) as previous_build_id
    {% else %}
    cast(null as TIMESTAMPTZ) as trades_ingested_from,
    cast(null as UUID) as previous_build_id
    {% endif %}
