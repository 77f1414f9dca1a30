{#
    Parse a timestamp in any format of the raw contract into a naive
    TIMESTAMP in UTC, or null.

    Grammar (surrounding spaces ignored):
      date:  yyyy-m-d or yyyy/m/d, the year from 1900 to 2099
      then:  "T" or one space, hh:mm[:ss[.fraction]] with hh 00-23 and
             a fraction of 1-9 digits, cut to microseconds
      zone:  none (taken as UTC), "Z", or an offset +hh, +hhmm or +hh:mm
             (or -) of at most 14:00, optionally after one space;
    or epoch seconds: 9-10 digits, optionally with a decimal fraction,
    before 2100. Impossible dates and times ("2026-02-30", "24:00:00", a
    60th second), impossible offsets ("+99:00") and anything else are
    null: never rolled over, never guessed. The offset is subtracted from
    the local time, so the result does not depend on the session TimeZone.

    fast_forms=false gives the grammar alone (the tests compare the two).
#}
{% macro parse_timestamp_utc(expr, fast_forms=true) -%}
    {%- set delivered = 'cast(' ~ expr ~ ' as varchar)' -%}
    {%- set text = 'trim(' ~ delivered ~ ')' -%}
    {%- set year -%} (?:19|20)\d{2} {%- endset -%}
    {%- set day -%}
        ({{ year }}-\d{1,2}-\d{1,2}|{{ year }}/\d{1,2}/\d{1,2})
    {%- endset -%}
    {%- set clock -%}
        ((?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?)
    {%- endset -%}
    {%- set zone -%}
        (Z|[+-](?:0\d|1[0-3])(?::?[0-5]\d)?|[+-]14(?::?00)?)
    {%- endset -%}
    {%- set grammar = day ~ '[T ]' ~ clock ~ ' ?' ~ zone ~ '?' -%}
    {%- if fast_forms -%}
    {#- First the forms files mostly hold, as delivered (no spaces
        around): yyyy-mm-dd or yyyy/mm/dd, "T" or a space, hh:mm:ss, then
        nothing, "Z" or +hh:mm; and epoch seconds. A match without groups
        is a cheap scan, and the first 19 characters cast as they stand.
        Every other text goes through the whole grammar, which sits in a
        lambda so that it runs for those texts only: written inline,
        DuckDB computes its repeated match for every row before choosing a
        branch, and the forms here would save nothing. -#}
    {%- set local_form -%}
        (?:19|20)\d\d(?:-\d\d-\d\d|/\d\d/\d\d)[T ](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d
    {%- endset -%}
    {%- set local = 'try_cast(left(' ~ delivered ~ ', 19) as timestamp)' -%}
    case
        when regexp_full_match({{ delivered }}, '{{ local_form }}Z?')
            then {{ local }}
        when regexp_full_match(
            {{ delivered }}, '{{ local_form }}[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00)'
        )
            then {{ local }} - {{ _minutes_east(
                'substr(' ~ delivered ~ ', 20, 1)',
                'cast(substr(' ~ delivered ~ ', 21, 2) as integer)',
                'cast(substr(' ~ delivered ~ ', 24, 2) as integer)'
            ) }}
        {{ _epoch_seconds(delivered) }}
        else list_transform(
            [regexp_extract({{ text }}, '^{{ grammar }}$', ['day', 'clock', 'zone'])],
            lambda part: {{ _timestamp_from_parts('part.', text) }}
        )[1]
    end
    {%- else -%}
    {#- One anchored match gives every part (the date is never empty in a
        match). The same expression repeated is computed once by DuckDB. -#}
    {{ _timestamp_from_parts(
        'regexp_extract(' ~ text ~ ", '^" ~ grammar ~ "$', ['day', 'clock', 'zone']).",
        text
    ) }}
    {%- endif -%}
{%- endmacro %}

{#- The UTC timestamp from the grammar's parts (`part` + day, clock,
    zone), or else from `text` as epoch seconds. -#}
{% macro _timestamp_from_parts(part, text) -%}
    {#- the cast rejects a day that does not exist ("02-30"), where
        strptime with %z would roll it over to March #}
    {%- set local -%}
        try_cast(replace(
            {{ part }}day || ' ' || {{ part }}clock, '/', '-'
        ) as timestamp)
    {%- endset -%}
    {#- the zone's offset east of UTC in minutes ("Z" and none are 0),
        read from the matched digits: the grammar admits only [+-]hh,
        [+-]hhmm and [+-]hh:mm, and strptime per row costs four times as
        much -#}
    {%- set offset = _minutes_east(
        'left(' ~ part ~ 'zone, 1)',
        'coalesce(try_cast(substr(' ~ part ~ 'zone, 2, 2) as integer), 0)',
        '(case when length(' ~ part ~ 'zone) > 3 then cast(right(' ~ part
            ~ 'zone, 2) as integer) else 0 end)'
    ) -%}
    case
        when {{ part }}day <> ''
            then {{ local }} - {{ offset }}
        {{ _epoch_seconds(text) }}
    end
{%- endmacro %}

{#- A `when` branch: `text` as epoch seconds before 2100. -#}
{% macro _epoch_seconds(text) -%}
    when regexp_full_match({{ text }}, '\d{9,10}(\.\d+)?')
            and cast({{ text }} as double) < 4102444800
            then timezone('UTC', to_timestamp(cast({{ text }} as double)))
{%- endmacro %}

{#- A zone's offset east of UTC as an interval: `sign` is the text "-" or
    anything else (+, "Z", none), `hours` and `minutes` integers. -#}
{% macro _minutes_east(sign, hours, minutes) -%}
    to_minutes(
        (case {{ sign }} when '-' then -1 else 1 end) * ({{ hours }} * 60 + {{ minutes }})
    )
{%- endmacro %}
