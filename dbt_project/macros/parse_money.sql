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
    {#- groups: 1 sign, 2 prefix, 3 sign after the prefix, 4 number,
        5 suffix #}
    {%- set grammar -%}
        \s*([-+]?)\s*(\$|USD)?\s*([-+]?)\s*{{ number }}\s*(USD)?\s*
    {%- endset -%}
    {%- set text = 'upper(trim(cast(' ~ expr ~ ' as varchar)))' -%}
    {%- set extract = 'regexp_extract(' ~ text ~ ", '" ~ grammar ~ "', " -%}
    case
        when regexp_full_match({{ text }}, '{{ grammar }}')
            {#- one sign; a sign after the marker only follows a prefix #}
            and ({{ extract }}1) = '' or {{ extract }}3) = '')
            and ({{ extract }}3) = '' or {{ extract }}2) <> '')
            {#- one currency marker #}
            and ({{ extract }}2) = '' or {{ extract }}5) = '')
            then try_cast(
                {{ extract }}1) || {{ extract }}3)
                || replace({{ extract }}4), ',', '')
                as decimal(12, 2)
            )
    end
{%- endmacro %}
