{#
    Parse a satisfaction score into an integer 1-5, or null.

    Accepts "4", "4.0" (a JSON number) and "4/5"; scores outside 1-5,
    other scales ("4/10") and other text are null.
#}
{% macro parse_satisfaction(expr) -%}
    {%- set text = 'trim(cast(' ~ expr ~ ' as varchar))' -%}
    case
        when regexp_full_match({{ text }}, '[1-5](\.0+)?(\s*/\s*5)?')
            then cast(left({{ text }}, 1) as integer)
    end
{%- endmacro %}
