{#
    Parse a free-text age into an integer number of years, or null.

    Grammar (case ignored, runs of whitespace read as one space):
      ["age" [":" | "="]] value [unit ["old"]] ["."]
      value: digits 1-119 (leading zeros allowed: "007" is 7), or English
             words 1-99: "one".."nineteen", a tens word ("twenty"..
             "ninety") optionally followed by "-" or " " and "one".."nine"
      unit:  y, yr, yrs, year, years or y/o
    Examples: "25", "twenty-five", "twenty five", "age: 25", "25 yrs",
    "25 years old". Fractions ("25.5"), 0, negatives, 120 and more, other
    words ("about 25", "twentyfive") and digits inside other text
    ("abc12") are null: an unparseable age is missing, never guessed.
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
