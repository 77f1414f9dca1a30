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

    fast_forms=false gives the grammar alone (the tests compare the two).
#}
{% macro parse_money(expr, fast_forms=true) -%}
    {%- set delivered = 'cast(' ~ expr ~ ' as varchar)' -%}
    {%- set number -%} ((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?) {%- endset -%}
    {%- set grammar -%}
        \s*([-+]?)\s*(\$|USD)?\s*([-+]?)\s*{{ number }}\s*(USD)?\s*
    {%- endset -%}
    {%- set text = 'upper(trim(' ~ delivered ~ '))' -%}
    {%- set match = 'regexp_extract(' ~ text ~ ", '^" ~ grammar ~ "$', "
        ~ "['sign', 'prefix', 'sign_after', 'number', 'suffix'])" -%}
    {%- if fast_forms -%}
    {#- First the forms files mostly hold, as delivered: "12.50",
        "$12.50" and "12.50 USD". A match without groups is a cheap scan
        and the digits cast as they stand. Every other text goes through
        the whole grammar, in a lambda so that it runs for those texts
        only (written inline, DuckDB computes its repeated match for every
        row before choosing a branch). -#}
    {%- set digits -%} \d+(?:\.\d+)? {%- endset -%}
    case
        when regexp_full_match({{ delivered }}, '{{ digits }}')
            then try_cast({{ delivered }} as decimal(12, 2))
        when regexp_full_match({{ delivered }}, '\${{ digits }}')
            then try_cast(substr({{ delivered }}, 2) as decimal(12, 2))
        when regexp_full_match({{ delivered }}, '{{ digits }} USD')
            then try_cast(left({{ delivered }}, length({{ delivered }}) - 4) as decimal(12, 2))
        else list_transform(
            [{{ match }}], lambda part: {{ _money_from_parts('part.') }}
        )[1]
    end
    {%- else -%}
    {#- One anchored match gives every part (the number is never empty in
        a match); the same expression repeated is computed once by DuckDB. -#}
    {{ _money_from_parts(match ~ '.') }}
    {%- endif -%}
{%- endmacro %}

{#- The amount from the grammar's parts (`part` + sign, prefix,
    sign_after, number, suffix), null where the grammar did not match. -#}
{% macro _money_from_parts(part) -%}
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
