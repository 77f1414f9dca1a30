{#
    Map a free-text country to its ISO 3166-1 alpha-2 code, or null.

    Matching ignores case, accents, dots and extra spaces (" u.s. " -> "us",
    "España" -> "espana"). Only the spellings listed here are recognised;
    anything else is null rather than a guess.
#}
{% macro normalize_country(expr) -%}
    {%- set spellings = {
        'US': ['us', 'usa', 'united states', 'united states of america',
               'the united states', 'america'],
        'DE': ['de', 'deu', 'germany', 'deutschland',
               'federal republic of germany'],
        'GB': ['gb', 'gbr', 'uk', 'united kingdom', 'great britain',
               'britain', 'the united kingdom', 'england', 'scotland',
               'wales', 'northern ireland'],
        'FR': ['fr', 'fra', 'france'],
        'ES': ['es', 'esp', 'spain', 'espana'],
        'NL': ['nl', 'nld', 'netherlands', 'the netherlands', 'holland',
               'nederland'],
        'IT': ['it', 'ita', 'italy', 'italia'],
        'CA': ['ca', 'can', 'canada'],
    } -%}
    {%- set key -%}
        trim(regexp_replace(
            strip_accents(lower(replace(cast({{ expr }} as varchar), '.', ''))),
            '\s+', ' ', 'g'
        ))
    {%- endset -%}
    case {{ key }}
        {%- for code, names in spellings.items() %}
        {%- for name in names %}
        when '{{ name }}' then '{{ code }}'
        {%- endfor %}
        {%- endfor %}
    end
{%- endmacro %}
