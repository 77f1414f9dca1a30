with

customer_versions as (

    select * from {{ ref('stg_crm__customer_versions') }}

),

latest as (

    {#-
        Parsing lives in stg_crm__customer_versions; this model only picks
        each customer's current record.
    #}
    select *

    from customer_versions

    qualify row_number() over (
        partition by customer_id
        order by updated_at desc nulls last, record_id desc nulls last
    ) = 1

)

select * from latest
