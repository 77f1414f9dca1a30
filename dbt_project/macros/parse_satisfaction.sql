{#
    Parse a satisfaction score into an integer 1-5, or null.

    Grammar (surrounding spaces ignored): a digit 1-5, optionally with a
    zero fraction ("4.0", a JSON number) and optionally out of five
    ("4/5", "4 / 5"). Scores outside 1-5, fractions ("4.5"), other scales
    ("4/10") and any other text are null, never rounded or rescaled.
#}
{% macro parse_satisfaction(expr) -%}
    {%- set text = 'trim(cast(' ~ expr ~ ' as varchar))' -%}
    case
        when regexp_full_match({{ text }}, '[1-5](\.0+)?(\s*/\s*5)?')
            then cast(left({{ text }}, 1) as integer)
    end
{%- endmacro %}
