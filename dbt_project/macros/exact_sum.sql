{#-
    A sum of DOUBLEs that does not depend on the order the rows arrive in: each term is rounded to 1e-12 and the
    terms are added exactly (DECIMAL(38, 12) is a 128-bit integer), then the total is returned as DOUBLE.
    DuckDB's parallel aggregation adds partial DOUBLE sums in whatever order its threads finish, so a plain sum()
    differs in its last bits from one build to the next; with this one, two builds of the same data are identical
    (tests/reliability: content hashes). A NaN or infinite term is an error here, never a silent NaN total.
    As a window function (``over``) it is prefix-stable as well: a running total at a row is the same whatever
    rows follow it, so history does not change in its last bits when new days arrive (a DOUBLE running sum does).
    ``filter``: an optional condition, as in ``sum(x) filter (where <condition>)``; ``over``: a window definition.
-#}
{% macro exact_sum(expr, filter=none, over=none) -%}
cast(sum(cast({{ expr }} as decimal(38, 12))){% if filter %} filter (where {{ filter }}){% endif %}{% if over %} over ({{ over }}){% endif %} as double)
{%- endmacro %}
