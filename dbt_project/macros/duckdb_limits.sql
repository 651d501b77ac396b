{#- DuckDB's limits for this dbt run (on-run-start): memory_limit, threads and temp_directory from
    WHALECOPY_DBT_<SETTING>, which the transform asset sets from the warehouse resource (orchestration/settings.py:
    WHALECOPY_DUCKDB_MEMORY_LIMIT, _THREADS, _TEMP_DIR). They are global to the run's one DuckDB instance, so every
    model runs under them; unset, DuckDB's defaults hold. -#}
{% macro duckdb_limits() -%}
    {%- set statements = [] -%}
    {%- for setting in ['memory_limit', 'threads', 'temp_directory'] -%}
        {%- set value = env_var('WHALECOPY_DBT_' ~ (setting | upper), '') -%}
        {%- if value -%}
            {%- do statements.append("SET " ~ setting ~ " = '" ~ (value | replace("'", "''")) ~ "'") -%}
        {%- endif -%}
    {%- endfor -%}
    {{ statements | join(';\n') if statements else 'select 1 as no_limits_set' }}
{%- endmacro %}
