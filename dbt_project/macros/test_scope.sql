{#-
    What a data test reads (docs/warehouse.md#what-the-tests-read). In an incremental build a test reads the rows
    this build wrote (the model's `meta.test_scope`), not the whole table: a sync's tests then cost what its new data
    costs, as its models do. dbt's own `where` hook: every data test is configured `where: "__increment__"`
    (dbt_project.yml) and this override of dbt's `get_where_subquery` turns that into the tested model's predicate.

    A model's `meta.test_scope` names the rows a build rewrote, a superset of them: a key test (`unique`) must see
    every row that could share a key with a written one (the key's whole position, wallet or fill key). In it
    `{changes}` stands for `intermediate.int_changes`, `{window}` for `intermediate.int_sync_window` and
    `{raw_trades}` for `raw.trades`.

    The whole table is read:
    - where the model declares no `test_scope` (the small tables: markets, the sync state, the day digests);
    - in a build with no build before it (`previous_build_id` is null: a first build) and with `--full-refresh`;
    - when the transform asks for it (WHALECOPY_DBT_TEST_SCOPE=all): when the marts' gates read every row (their
      first run, after a failure, once a week: quality/checks.py:whole_read_due) and with WHALECOPY_GATE_SCOPE=all.
    The env var is read only when the test runs, so a change of it costs dbt no parse.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and '__increment__' in where -%}
        {%- set where = where | replace('__increment__', test_increment()) -%}
        {%- if where == 'true' -%}
            {%- do return(relation) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{#- The predicate for the rows the tested model's last build wrote (`true`: every row). -#}
{% macro test_increment() -%}
    {%- if not execute or flags.FULL_REFRESH or env_var('WHALECOPY_DBT_TEST_SCOPE', 'increment') == 'all' -%}
        {{- return('true') -}}
    {%- endif -%}
    {%- set window = sync_relation('int_sync_window') -%}
    {%- set changes = sync_relation('int_changes') -%}
    {%- set scopes = [] -%}
    {%- for id in model.depends_on.nodes -%}
        {%- set node = graph.nodes.get(id) or graph.sources.get(id) -%}
        {%- set meta = (node.config.meta or node.meta or {}) if node else {} -%}
        {%- if meta.get('test_scope') -%}
            {%- do scopes.append(meta['test_scope']) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if scopes | length != 1 or window is none or changes is none -%}
        {{- return('true') -}}
    {%- endif -%}
    {%- set scope = scopes[0] -%}
    {%- set raw_trades = adapter.get_relation(database=this.database, schema='raw', identifier='trades') -%}
    {%- set predicate = scope | replace('{changes}', changes | string) | replace('{window}', window | string)
                              | replace('{raw_trades}', raw_trades | string) -%}
    {{- return('((select previous_build_id from ' ~ window ~ ') is null or (' ~ predicate ~ '))') -}}
{%- endmacro %}
