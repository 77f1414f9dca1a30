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
#}
{% macro parse_timestamp_utc(expr) -%}
    {%- set text = 'trim(cast(' ~ expr ~ ' as varchar))' -%}
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
    {#- One anchored match gives every part (the date is never empty in a
        match). The same expression repeated is computed once by DuckDB when
        the first branch holds it, so that branch comes first: the two forms
        cannot both match. -#}
    {%- set part = 'regexp_extract(' ~ text ~ ", '^" ~ grammar ~ "$', "
        ~ "['day', 'clock', 'zone'])." -%}
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
    {%- set offset -%}
        to_minutes(
            (case left({{ part }}zone, 1) when '-' then -1 else 1 end)
            * (coalesce(try_cast(substr({{ part }}zone, 2, 2) as integer), 0) * 60
                + (case when length({{ part }}zone) > 3
                    then cast(right({{ part }}zone, 2) as integer) else 0 end))
        )
    {%- endset -%}
    case
        when {{ part }}day <> ''
            then {{ local }} - {{ offset }}
        when regexp_full_match({{ text }}, '\d{9,10}(\.\d+)?')
            and cast({{ text }} as double) < 4102444800
            then timezone('UTC', to_timestamp(cast({{ text }} as double)))
    end
{%- endmacro %}
