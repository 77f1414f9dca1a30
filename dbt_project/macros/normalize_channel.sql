{#
    Map a support-ticket channel onto email, phone or chat (case and
    surrounding spaces ignored); anything else is null.
#}
{% macro normalize_channel(expr) -%}
    case lower(trim(cast({{ expr }} as varchar)))
        when 'email' then 'email'
        when 'phone' then 'phone'
        when 'chat' then 'chat'
    end
{%- endmacro %}
