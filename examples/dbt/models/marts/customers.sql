{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        unique_key='customer_id',
    )
}}

with

customers as (

    select * from {{ ref('stg_crm__customers') }}

    {#-
        Only the customers whose latest record arrived after the last build: a
        record from an older batch cannot become the latest one, since every
        newer candidate arrives in a newer batch. delete+insert replaces them.
    #}
    {{ after_last_build('_ingested_at') }}

),

final as (

    select
        customer_id,
        full_name,
        email,
        age,
        country_code,
        segment,
        signup_date,
        updated_at,
        _batch_id,
        _ingested_at

    from customers

)

select * from final
