{#
    Parse a timestamp in any format of the raw contract into a naive
    TIMESTAMP in UTC, or null.

    - zoned ISO 8601 ("2026-01-05T13:45:00Z", "...15:45:00+02:00",
      "...08:45:00-05:00") is converted to UTC;
    - naive ("2026/01/05 13:45:00", "2026-01-05T13:45:00") is taken as UTC;
    - 9-10 digit epoch seconds ("1767620700", optionally with decimals).
    The date part may use "-" or "/", the separator "T" or a space, and
    seconds may carry a fraction. Anything else is null.
    timezone('UTC', <timestamptz>) gives UTC whatever the session TimeZone.
#}
{% macro parse_timestamp_utc(expr) -%}
    {%- set text = 'trim(cast(' ~ expr ~ ' as varchar))' -%}
    {#- one shape for the date part: "yyyy-mm-dd hh:mm:ss..." #}
    {%- set iso -%}
        regexp_replace(
            regexp_replace(
                {{ text }},
                '^(\d{4})/(\d{1,2})/(\d{1,2})[T ]', '\1-\2-\3 '
            ),
            '^(\d{4}-\d{1,2}-\d{1,2})T', '\1 '
        )
    {%- endset -%}
    {%- set zoned_formats = [
        '%Y-%m-%d %H:%M:%S%z', '%Y-%m-%d %H:%M:%S.%f%z',
        '%Y-%m-%d %H:%M:%S %z', '%Y-%m-%d %H:%M:%S.%f %z',
        '%Y-%m-%d %H:%M%z'
    ] -%}
    {%- set naive_formats = [
        '%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M'
    ] -%}
    case
        when regexp_full_match({{ text }}, '\d{9,10}(\.\d+)?')
            then timezone('UTC', to_timestamp(cast({{ text }} as double)))
        when regexp_matches({{ text }}, '(Z|[+-]\d{2}(:?\d{2})?)$')
            then timezone('UTC', try_strptime(
                regexp_replace({{ iso }}, 'Z$', '+00:00'),
                ['{{ zoned_formats | join("', '") }}']
            ))
        else try_strptime(
            {{ iso }},
            ['{{ naive_formats | join("', '") }}']
        )
    end
{%- endmacro %}
