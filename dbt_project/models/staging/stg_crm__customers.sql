with

source as (

    select * from {{ source('raw', 'crm_customers') }}

),

renamed as (

    select
        try_cast(record_id as bigint) as record_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(full_name), '') as full_name,
        {{ normalize_email('email') }} as email,
        {{ parse_age('age') }} as age,
        {{ normalize_country('country') }} as country_code,
        {{ normalize_segment('segment') }} as segment,
        {{ parse_date('signup_date') }} as signup_date,
        {{ parse_timestamp_utc('updated_at') }} as updated_at,
        _source,
        _source_ref,
        _batch_id,
        _ingested_at

    from source

),

deduplicated as (

    select *

    from renamed

    qualify row_number() over (
        partition by customer_id
        order by updated_at desc nulls last, record_id desc nulls last
    ) = 1

)

select * from deduplicated
