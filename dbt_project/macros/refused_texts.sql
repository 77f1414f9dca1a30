{#
    The `_delivered` struct a staging model keeps: one field per parsed
    column, holding the text as delivered only where the parser refused it
    (non-blank text that parsed to null), null everywhere else.

    The step that parses packs every delivered text of the parsed columns
    into `_delivered` (fields named like the parsed columns); a step of its
    own then keeps only the refused ones:

        renamed as (
            select
                {{ parse_money('amount') }} as amount,
                struct_pack(amount := amount) as _delivered,
                ...
            from source
        ),

        refused as (
            select * replace (
                {{ refused_texts(['amount']) }} as _delivered
            )
            from renamed
        )

    Why only the refused texts: a full copy of every delivered text cost
    about a fifth of writing the orders staging table; fields that are
    mostly null cost almost nothing to store, and the refused values stay
    listable (`where _delivered.amount is not null`) without raw, whose rows
    have no id to join on. The non-blank delivered count is the parsed
    values plus the refused ones, as every parser turns blank text into
    null. Why a step of its own: DuckDB computes a parse once as a column of
    its own projection, while naming the parsed value again in the same
    projection (a lateral alias) runs the parser a second time.
#}
{% macro refused_texts(columns, delivered='_delivered') -%}
    {%- if columns is string or not columns -%}
        {{ exceptions.raise_compiler_error(
            "refused_texts: columns must be a non-empty list of the parsed "
            ~ "column names, got " ~ columns
        ) }}
    {%- endif -%}
    struct_pack(
        {%- for column in columns %}
        {{ column }} := case
            when {{ column }} is null
                and trim(cast({{ delivered }}.{{ column }} as varchar)) <> ''
                then cast({{ delivered }}.{{ column }} as varchar)
        end{{ ',' if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}
