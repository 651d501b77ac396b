{# Models land in the schema they name (staging, intermediate, marts), not <target>_<schema>:
   the warehouse's schemas are the interface (docs/warehouse.md). #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
