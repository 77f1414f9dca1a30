{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        unique_key='ticket_id',
    )
}}

with

tickets as (

    select * from {{ ref('stg_support__tickets') }}

    {#-
        Only the tickets whose latest version arrived after the last build: a
        version from an older batch cannot become the latest one, since every
        newer candidate arrives in a newer batch. delete+insert replaces them.
    #}
    {{ after_last_build('_ingested_at') }}

),

final as (

    select
        ticket_id,
        customer_id,
        status,
        channel,
        satisfaction,
        subject,
        created_at,
        updated_at,
        _batch_id,
        _ingested_at

    from tickets

)

select * from final
