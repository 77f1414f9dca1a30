with

source as (

    select * from {{ source('crm', 'crm_customers') }}

),

renamed as (

    select
        {{ parse_integer('record_id') }} as record_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(full_name), '') as full_name,
        {{ normalize_email('email') }} as email,
        {{ parse_age('age') }} as age,
        {{ normalize_country('country') }} as country_code,
        {{ normalize_segment('segment') }} as segment,
        {{ parse_date('signup_date') }} as signup_date,
        {{ parse_timestamp_utc('updated_at') }} as updated_at,
        {#- The text each parsed column came from; `refused` keeps only the
            texts the parser refused (counted as metadata in Dagster). -#}
        struct_pack(
            record_id := record_id,
            email := email,
            age := age,
            country_code := country,
            segment := segment,
            signup_date := signup_date,
            updated_at := updated_at
        ) as _delivered,
        _source,
        _source_ref,
        _batch_id,
        _ingested_at

    from source

),

refused as (

    select * replace (
        {{ refused_texts([
            'record_id', 'email', 'age', 'country_code', 'segment',
            'signup_date', 'updated_at'
        ]) }} as _delivered
    )
    from renamed

),

deduplicated as (

    {#-
        Only exact re-deliveries collapse: a CRM change is a new record, so
        every (record_id, updated_at) is a version worth keeping.
    #}
    select *

    from refused

    qualify row_number() over (
        partition by record_id, updated_at
        order by _ingested_at desc, _batch_id desc, _source_ref desc
    ) = 1

)

select * from deduplicated
