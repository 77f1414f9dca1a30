{#
    Lower-case and trim an e-mail address, or null.

    Grammar (after lower-casing and trimming surrounding spaces), at most
    254 characters:
      local "@" domain
      local:  dot-separated words of a-z 0-9 _ % + ' - (no leading,
              trailing or doubled dot)
      domain: dot-separated labels of a-z 0-9 - (not starting or ending
              with "-"), the last one of two or more letters
    Anything else (spaces, a second "@", double quotes, brackets, "a@b",
    "x@..y") is null, never repaired.
#}
{% macro normalize_email(expr) -%}
    {%- set email = 'lower(trim(cast(' ~ expr ~ ' as varchar)))' -%}
    {%- set word = "[a-z0-9_%+''-]+" -%}
    {%- set label = '[a-z0-9]([a-z0-9-]*[a-z0-9])?' -%}
    {%- set grammar -%}
        {{ word }}(\.{{ word }})*@({{ label }}\.)+[a-z]{2,}
    {%- endset -%}
    case
        when length({{ email }}) <= 254
            and regexp_full_match({{ email }}, '{{ grammar }}')
            then {{ email }}
    end
{%- endmacro %}
