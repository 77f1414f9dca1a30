{#
    In an incremental build, a where clause keeping only the rows ingested
    after the newest row already in the model ({{ this }}), by `column`;
    nothing otherwise (a first or full build reads every row).

    A table built before it had `column` is read in full once (with
    on_schema_change='append_new_columns' the column is added), which
    gives the same table as a full rebuild.
#}
{% macro after_last_build(column='_ingested_at') -%}
    {%- if is_incremental() -%}
        {%- set existing = adapter.get_columns_in_relation(this)
            | map(attribute='name') | list -%}
        {%- if column in existing %}
    where {{ column }} > (
        select coalesce(max({{ column }}), timestamp '-infinity')
        from {{ this }}
    )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
