{# Fails on every row where the expression is false (no dbt packages here: dbt_utils is not available). #}
{% test expression_is_true(model, expression) %}
select * from {{ model }} where not ({{ expression }})
{% endtest %}
