with

customers as (

    select * from {{ ref('stg_crm__customers') }}

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
        _batch_id

    from customers

)

select * from final
