{#
    Parse a calendar date into DATE, or null.

    Grammar (case and surrounding spaces ignored, inner spaces collapsed):
      yyyy-m-d | yyyy/m/d                      "2025-03-04", "2025/3/4"
      Mon d yyyy | Month d, yyyy               "Mar 4 2025", "March 4, 2025"
      d Mon yyyy | d Month, yyyy               "4 Mar 2025", "4 March 2025"
    with a four-digit year from 1900 to 2099. Two-digit years ("4 Mar 25"),
    day-first or month-first numeric dates ("03/04/2025", ambiguous),
    impossible dates ("2026-02-31") and anything else are null, never
    guessed.
#}
{% macro parse_date(expr) -%}
    {%- set formats = [
        '%Y-%m-%d', '%Y/%m/%d',
        '%b %d %Y', '%B %d %Y', '%b %d, %Y', '%B %d, %Y',
        '%d %b %Y', '%d %B %Y', '%d %b, %Y', '%d %B, %Y'
    ] -%}
    {#- numeric | month name first | day first #}
    {%- set grammar -%}
        \d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2}
        {{- '|' }}[a-z]+ \d{1,2},? \d{4}|\d{1,2} [a-z]+,? \d{4}
    {%- endset -%}
    {%- set text -%}
        lower(regexp_replace(
            trim(cast({{ expr }} as varchar)), '\s+', ' ', 'g'
        ))
    {%- endset -%}
    {%- set parsed -%}
        cast(try_strptime({{ text }}, ['{{ formats | join("', '") }}']) as date)
    {%- endset -%}
    case
        when regexp_full_match({{ text }}, '{{ grammar }}')
            and year({{ parsed }}) between 1900 and 2099
            then {{ parsed }}
    end
{%- endmacro %}
