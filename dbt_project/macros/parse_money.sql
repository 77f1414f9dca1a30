{#
    Parse a US-dollar amount into decimal(12, 2), or null.

    Accepts an optional sign, "$" or "USD" prefix, "USD" suffix and
    thousands separators: "$1,234.50", "12.50 USD", "12.5", "-3.00",
    "-$3.00". Other currencies ("EUR 5", "5 €"), decimal commas ("12,50")
    and any other text are null: amounts are never converted or guessed.
    More than two decimals (a float from Parquet) round to cents.
#}
{% macro parse_money(expr) -%}
    {%- set number -%}
        [-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?
    {%- endset -%}
    {%- set pattern -%}
        ^([-+]?)\s*(?:\$|USD)?\s*({{ number | trim }})\s*(?:USD)?$
    {%- endset -%}
    {%- set text = 'upper(trim(cast(' ~ expr ~ ' as varchar)))' -%}
    case
        when regexp_full_match({{ text }}, '{{ pattern | trim }}')
            then try_cast(
                replace(
                    regexp_replace({{ text }}, '{{ pattern | trim }}', '\1\2'),
                    ',', ''
                ) as decimal(12, 2)
            )
    end
{%- endmacro %}
