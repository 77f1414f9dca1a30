{#
    Map a free-text status onto the closed set of its kind, or null.

    kind 'order':  placed, shipped, completed, cancelled, returned
    kind 'ticket': open, pending, resolved, closed
    Matching ignores case and surrounding spaces; synonyms are listed
    below. An unknown status is null, so accepted_values tests and
    not_null tests surface it instead of it being guessed.
#}
{% macro normalize_status(expr, kind) -%}
    {%- set synonyms_by_kind = {
        'order': {
            'placed': ['placed', 'pending', 'new'],
            'shipped': ['shipped'],
            'completed': ['completed', 'complete', 'done'],
            'cancelled': ['cancelled', 'canceled'],
            'returned': ['returned', 'refunded'],
        },
        'ticket': {
            'open': ['open'],
            'pending': ['pending', 'waiting'],
            'resolved': ['resolved', 'solved'],
            'closed': ['closed'],
        },
    } -%}
    {%- if kind not in synonyms_by_kind -%}
        {{ exceptions.raise_compiler_error(
            "normalize_status: unknown kind '" ~ kind ~ "', expected one of "
            ~ synonyms_by_kind.keys() | list | join(', ')
        ) }}
    {%- endif -%}
    case lower(trim(cast({{ expr }} as varchar)))
        {%- for status, synonyms in synonyms_by_kind[kind].items() %}
        {%- for synonym in synonyms %}
        when '{{ synonym }}' then '{{ status }}'
        {%- endfor %}
        {%- endfor %}
    end
{%- endmacro %}
