{#
    Parse a whole non-negative number (an id) into BIGINT, or null.

    Grammar (surrounding spaces ignored): 1 to 18 digits ("9", " 9 ",
    "010"). Signs, fractions ("9.5"), exponents ("1e3"), hex ("0x10"),
    digit separators ("1_000") and other text are null: a plain cast
    would round "9.5" to 10 and read "0x10" as 16.
#}
{% macro parse_integer(expr) -%}
    {%- set text = 'trim(cast(' ~ expr ~ ' as varchar))' -%}
    case
        when regexp_full_match({{ text }}, '\d{1,18}')
            then cast({{ text }} as bigint)
    end
{%- endmacro %}
