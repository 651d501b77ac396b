-- One row: the build whose changes every incremental model has applied. It runs last, after `int_sync_markets`
-- (which runs after all of them), so a build that stopped half-way leaves it behind `int_sync_window`, and the
-- next sync rebuilds from scratch (assets/transform/model.py:sync_mode).
-- depends_on: {{ ref('int_sync_markets') }}
select build_id, trades_ingested_to, activity_ingested_to from {{ ref('int_sync_window') }}
