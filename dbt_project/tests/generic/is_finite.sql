{# Fails on NaN or +-inf (DuckDB sorts NaN above every number: it must never reach a ranking). NULL passes. #}
{% test is_finite(model, column_name) %}
select {{ column_name }} from {{ model }}
where {{ column_name }} is not null and not isfinite({{ column_name }})
{% endtest %}
