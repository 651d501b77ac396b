{# The category of a market: the first of its tags (market tags, then its events' tags) that names a known
   category, else Gamma's legacy `category` field, else the first tag, else 'Other'. #}
{% macro market_category(tags_json, reported) -%}
    coalesce(
        list_filter(
            list_transform(json_extract_string({{ tags_json }}, '$[*].label'), lambda x: {{ canonical_category('x') }}),
            lambda x: x IS NOT NULL
        )[1],
        nullif(trim({{ reported }}), ''),
        json_extract_string({{ tags_json }}, '$[0].label'),
        'Other'
    )
{%- endmacro %}

{% macro canonical_category(label) -%}
    CASE lower({{ label }})
        WHEN 'politics' THEN 'Politics'
        WHEN 'elections' THEN 'Politics'
        WHEN 'sports' THEN 'Sports'
        WHEN 'esports' THEN 'Esports'
        WHEN 'crypto' THEN 'Crypto'
        WHEN 'economics' THEN 'Economics'
        WHEN 'economy' THEN 'Economics'
        WHEN 'finance' THEN 'Finance'
        WHEN 'culture' THEN 'Culture'
        WHEN 'pop culture' THEN 'Culture'
        WHEN 'tech' THEN 'Tech'
        WHEN 'technology' THEN 'Tech'
        WHEN 'weather' THEN 'Weather'
        WHEN 'mentions' THEN 'Mentions'
        ELSE NULL
    END
{%- endmacro %}
