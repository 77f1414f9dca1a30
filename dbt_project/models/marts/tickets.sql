with

tickets as (

    select * from {{ ref('stg_support__tickets') }}

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
        _batch_id

    from tickets

)

select * from final
