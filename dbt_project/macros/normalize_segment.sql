{#
    Map a free-text customer segment onto consumer, smb or enterprise
    (case and surrounding spaces ignored, "ENT" is enterprise); else null.
#}
{% macro normalize_segment(expr) -%}
    case lower(trim(cast({{ expr }} as varchar)))
        when 'consumer' then 'consumer'
        when 'smb' then 'smb'
        when 'enterprise' then 'enterprise'
        when 'ent' then 'enterprise'
    end
{%- endmacro %}
