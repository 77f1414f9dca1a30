{#
    Parse a US-dollar amount into decimal(12, 2), or null.

    Grammar (case and whitespace around the parts ignored):
      [sign] ["$" | "USD"] [sign] number ["USD"]
    with at most one sign (before or right after a prefix: "-$3.00",
    "$-3.00") and at most one currency marker (prefix or suffix); number
    is digits, or digits in groups of three separated by commas
    ("1,234"), optionally followed by "." and decimals. Examples:
    "$1,234.50", "12.50 USD", "12.5", "-3.00". More than two decimals (a
    float from Parquet) round half away from zero to cents; amounts of
    10^10 or more do not fit and are null. Other currencies ("EUR 5",
    "5 €"), decimal commas ("12,50"), exponents ("1e5") and any other
    text are null: amounts are never converted or guessed.
#}
{% macro parse_money(expr) -%}
    {%- set number -%} ((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?) {%- endset -%}
    {%- set grammar -%}
        \s*([-+]?)\s*(\$|USD)?\s*([-+]?)\s*{{ number }}\s*(USD)?\s*
    {%- endset -%}
    {%- set text = 'upper(trim(cast(' ~ expr ~ ' as varchar)))' -%}
    {#- One anchored match gives every part (the number is never empty in a
        match); the same expression repeated is computed once by DuckDB. -#}
    {%- set part = 'regexp_extract(' ~ text ~ ", '^" ~ grammar ~ "$', "
        ~ "['sign', 'prefix', 'sign_after', 'number', 'suffix'])." -%}
    case
        when {{ part }}number <> ''
            {#- one sign; a sign after the marker only follows a prefix #}
            and ({{ part }}sign = '' or {{ part }}sign_after = '')
            and ({{ part }}sign_after = '' or {{ part }}prefix <> '')
            {#- one currency marker #}
            and ({{ part }}prefix = '' or {{ part }}suffix = '')
            then try_cast(
                {{ part }}sign || {{ part }}sign_after
                || replace({{ part }}number, ',', '')
                as decimal(12, 2)
            )
    end
{%- endmacro %}
