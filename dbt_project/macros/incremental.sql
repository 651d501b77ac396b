{#-
    Incremental marts (docs/warehouse.md#incremental-builds). A sync rebuilds only what its new data touched:
    `intermediate.int_changes` lists the positions whose history changed since the last complete build, and each
    incremental model replaces the rows those positions reach.

    `replace`: a custom incremental strategy. In one transaction it deletes the target rows that match the model's
    `replace_where` predicate (the target is aliased `_target`) and inserts the model's new rows. Unlike
    `delete+insert` it removes rows the new set no longer has (a wallet that left a category, days past the end).
    In the predicate `{changes}` stands for `int_changes`, `{end_day}` for `daily_returns_end()`,
    `{digests_from_day}` for `digests_from_day()` of the target and `{new}` for the model's new rows (a config is
    rendered when the project is parsed, where `ref` does not name the relation yet).
-#}
{% macro get_incremental_replace_sql(arg_dict) -%}
    {%- set predicate = config.require('replace_where') | replace('{changes}', ref('int_changes') | string)
                        | replace('{new}', arg_dict['temp_relation'] | string) -%}
    {%- if '{end_day}' in predicate -%}
        {%- set predicate = predicate | replace('{end_day}', daily_returns_end()) -%}
    {%- endif -%}
    {%- if '{digests_from_day}' in predicate -%}
        {%- set predicate = predicate | replace('{digests_from_day}', digests_from_day(arg_dict['target_relation'])) -%}
    {%- endif -%}
    {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }} as _target where {{ predicate }};
    insert into {{ arg_dict['target_relation'] }} ({{ cols }})
    select {{ cols }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}

{#- The stored state of a sync model as the last build left it (none before the first): read by name, not ref,
    because the model that reads it runs before the one that writes it in the DAG. -#}
{% macro sync_relation(name) -%}
    {{ return(adapter.get_relation(database=this.database, schema='intermediate', identifier=name)) }}
{%- endmacro %}

{#- The last day of every wallet's daily-returns spine, as an epoch day: the last day with a fill or with the
    resolution of a counted position (docs/metrics.md#daily-returns). -#}
{% macro daily_returns_end() -%}
    (select greatest(
        (select max(cast(ts // 86400 as INTEGER)) from {{ ref('int_position_fills') }}),
        (select max({{ epoch_day('resolved_at') }}) from {{ ref('fct_positions') }} where is_resolved and is_scorable)
    ))
{%- endmacro %}

{#- The first epoch day `daily_digests` recomputes in a sync (its header says why): the earliest `since_d` of
    `int_changes`, the day after the last day `digests` (the stored table) holds, the day after the new last day. -#}
{% macro digests_from_day(digests) -%}
    least(
        (select min(since_d) from {{ ref('int_changes') }}),
        (select cast(max(day) - DATE '1970-01-01' as INTEGER) + 1 from {{ digests }}),
        {{ daily_returns_end() }} + 1
    )
{%- endmacro %}

{#- The UTC day of a TIMESTAMPTZ as an epoch day (DuckDB: // on a DOUBLE does not floor). -#}
{% macro epoch_day(ts) -%}
    cast(floor(epoch({{ ts }}) / 86400) as INTEGER)
{%- endmacro %}

{#- Each outcome token's market state as the marts use it: its market, category, outcome and resolution. -#}
{% macro market_token_state() -%}
    select
        t.token_id,
        t.condition_id,
        m.category,
        t.outcome_index,
        t.payout,
        t.is_resolved,
        t.has_valid_payout,
        t.resolved_at
    from {{ ref('int_market_tokens') }} t
    left join {{ ref('stg_polymarket__markets') }} m using (condition_id)
{%- endmacro %}
