{#
    Use a model's custom schema as-is (staging, marts) instead of dbt's default
    "<target schema>_<custom schema>", so every target writes to the schemas
    the rest of the pipeline reads: raw (ingestion), staging and marts.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
