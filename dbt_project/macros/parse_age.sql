{#
    Parse a free-text age into an integer number of years, or null.

    Accepts digits or English words (1-99, "twenty-five" / "twenty five"),
    optionally prefixed by "age" / "age:" and suffixed by y, yr(s), year(s)
    or "years old". Fractions, other text and ages outside 0 < age < 120
    are null: an unparseable age is missing, never guessed.
#}
{% macro parse_age(expr) -%}
    {%- set units = [
        'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight',
        'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen',
        'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'
    ] -%}
    {%- set tens = [
        'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty',
        'ninety'
    ] -%}
    {%- set unit_list = "['" ~ units | join("', '") ~ "']" -%}
    {%- set tens_list = "['" ~ tens | join("', '") ~ "']" -%}
    {%- set word_pattern = '(' ~ tens | join('|') ~ ')(?:[- ](' ~ units[:9]
        | join('|') ~ '))?' -%}
    {%- set core -%}
        trim(regexp_replace(
            regexp_replace(
                lower(trim(regexp_replace(
                    cast({{ expr }} as varchar), '\s+', ' ', 'g'
                ))),
                '^age\s*[:=]?\s*', ''
            ),
            '(\d|\s)\s*(y/o|yrs?|years?|y)(\s+old)?\.?$', '\1'
        ))
    {%- endset -%}
    cast(
        case
            {#- 1 to 119 only: 0, negatives and 120+ fall through to null #}
            when regexp_full_match({{ core }}, '0*([1-9]|[1-9]\d|1[01]\d)')
                then cast({{ core }} as integer)
            when list_position({{ unit_list }}, {{ core }}) is not null
                then list_position({{ unit_list }}, {{ core }})
            when regexp_full_match({{ core }}, '{{ word_pattern }}')
                then 10 + 10 * list_position(
                    {{ tens_list }},
                    regexp_extract({{ core }}, '{{ word_pattern }}', 1)
                ) + coalesce(list_position(
                    {{ unit_list }},
                    regexp_extract({{ core }}, '{{ word_pattern }}', 2)
                ), 0)
        end
    as integer)
{%- endmacro %}
