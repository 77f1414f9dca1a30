{#
    Parse a calendar date into DATE, or null.

    Accepts "2025-03-04", "2025/03/04", "Mar 4 2025", "March 4, 2025",
    "4 March 2025" and "4 Mar 2025". Day-first or month-first numeric
    dates ("03/04/2025") are ambiguous and impossible dates
    ("2026-02-31") do not exist: both are null, never guessed.
#}
{% macro parse_date(expr) -%}
    {%- set formats = [
        '%Y-%m-%d', '%Y/%m/%d',
        '%b %d %Y', '%B %d %Y', '%b %d, %Y', '%B %d, %Y',
        '%d %b %Y', '%d %B %Y', '%d %b, %Y', '%d %B, %Y'
    ] -%}
    cast(try_strptime(
        regexp_replace(trim(cast({{ expr }} as varchar)), '\s+', ' ', 'g'),
        ['{{ formats | join("', '") }}']
    ) as date)
{%- endmacro %}
