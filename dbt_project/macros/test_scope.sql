{#-
    What a data test reads (docs/warehouse.md#what-the-tests-read). In an incremental build a key test reads the
    keys this build wrote (the model's `meta.test_scope`), not every key of the table: a sync's key tests then cost
    about what its new data costs, as its models do. dbt's own `where` hook: every data test is configured
    `where: "__increment__"` (dbt_project.yml) and this override of dbt's `get_where_subquery` turns that into the
    tested model's predicate for a key test, and into every row for the others.

    A model's `meta.test_scope` names a superset of the keys a build wrote, with every stored row of each (the
    key's whole position, wallet or fill key), so that a written key repeating a stored one fails. In it
    `{changes}` stands for `intermediate.int_changes`, `{state}` for `intermediate.int_sync_state` (the last
    complete build, until this one completes) and `{raw_trades}` for `raw.trades`.

    The whole table is read:
    - by a row test (below), and where the model declares no `test_scope` (markets, the sync's bookkeeping);
    - in a first build (no `int_sync_state` yet) and with `--full-refresh`;
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

{#- The predicate for the rows the tested model's build wrote (`true`: every row). Only a key test (`unique`) is
    narrowed: it groups every key of the table, where a row test (finiteness, an identity, accepted values) is one
    pass over a few columns that costs about what evaluating the scope's own predicate costs. -#}
{% macro test_increment() -%}
    {%- if not execute or flags.FULL_REFRESH or env_var('WHALECOPY_DBT_TEST_SCOPE', 'increment') == 'all'
          or (model.test_metadata or {}).get('name') != 'unique' -%}
        {{- return('true') -}}
    {%- endif -%}
    {#- the last complete build: none before a first build's end, when every row is new -#}
    {%- set state = sync_relation('int_sync_state') -%}
    {%- set changes = sync_relation('int_changes') -%}
    {%- set scopes = [] -%}
    {%- for id in model.depends_on.nodes -%}
        {%- set node = graph.nodes.get(id) or graph.sources.get(id) -%}
        {%- set meta = (node.config.meta or node.meta or {}) if node else {} -%}
        {%- if meta.get('test_scope') -%}
            {%- do scopes.append(meta['test_scope']) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if scopes | length != 1 or state is none or changes is none -%}
        {{- return('true') -}}
    {%- endif -%}
    {%- set raw_trades = adapter.get_relation(database=this.database, schema='raw', identifier='trades') -%}
    {{- return(scopes[0] | replace('{changes}', changes | string) | replace('{state}', state | string)
                         | replace('{raw_trades}', raw_trades | string)) -}}
{%- endmacro %}
