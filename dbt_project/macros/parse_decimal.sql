{#
    Parse a plain decimal number (a measurement) into DOUBLE, or null.

    Grammar (surrounding spaces ignored): [sign] digits [. digits] or
    [sign] . digits ("12.8", "-2.1", "+0.5", ".5", "7"). Thousands
    separators ("1,234"), decimal commas ("12,5"), exponents ("1e3"),
    units ("12 mm"), "nan", "inf" and other text are null: a plain cast
    would read "nan" and "1e3" as numbers no instrument reported. For
    currency text use parse_money.
#}
{% macro parse_decimal(expr) -%}
    {%- set text = 'trim(cast(' ~ expr ~ ' as varchar))' -%}
    case
        when regexp_full_match({{ text }}, '[-+]?(\d+(\.\d*)?|\.\d+)')
            then cast({{ text }} as double)
    end
{%- endmacro %}
