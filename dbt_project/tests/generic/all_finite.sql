{# Fails on NaN or +-inf in any of ``columns`` (DuckDB sorts NaN above every number: it must never reach a
   ranking). NULL passes. One test, and one scan, for all of a model's float columns: a test per column cost dbt
   and Dagster about 50 ms each on every build. A failing row shows every listed column, so the culprit is seen. #}
{% test all_finite(model, columns) %}
select {{ columns | join(", ") }}
from {{ model }}
where {% for c in columns %}not isfinite(coalesce({{ c }}, 0)){{ " or " if not loop.last }}{% endfor %}
{% endtest %}
