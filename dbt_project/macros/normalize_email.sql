{#
    Lower-case and trim an e-mail address; null unless it looks like one
    (one "@", no spaces, a dot in the domain).
#}
{% macro normalize_email(expr) -%}
    {%- set email = 'lower(trim(cast(' ~ expr ~ ' as varchar)))' -%}
    case
        when regexp_full_match({{ email }}, '[^@\s]+@[^@\s]+\.[^@\s]+')
            then {{ email }}
    end
{%- endmacro %}
