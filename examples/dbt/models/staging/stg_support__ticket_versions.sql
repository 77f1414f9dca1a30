with

source as (

    select * from {{ source('support', 'tickets') }}

),

renamed as (

    select
        nullif(trim(ticket_id), '') as ticket_id,
        nullif(trim(customer_id), '') as customer_id,
        {{ normalize_status('status', 'ticket') }} as status,
        {{ normalize_channel('channel') }} as channel,
        {{ parse_satisfaction('satisfaction') }} as satisfaction,
        subject,
        {{ parse_timestamp_utc('created_at') }} as created_at,
        {{ parse_timestamp_utc('updated_at') }} as updated_at,
        {#- The text each parsed column came from; `refused` keeps only the
            texts the parser refused (counted as metadata in Dagster). -#}
        struct_pack(
            status := status,
            channel := channel,
            satisfaction := satisfaction,
            created_at := created_at,
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
            'status', 'channel', 'satisfaction', 'created_at', 'updated_at'
        ]) }} as _delivered
    )
    from renamed

),

deduplicated as (

    {#-
        Only exact re-deliveries collapse (updated_since is inclusive, so the
        version at the cursor comes back); each change of a ticket is kept.
    #}
    select *

    from refused

    qualify row_number() over (
        partition by ticket_id, updated_at
        order by _ingested_at desc, _batch_id desc, _source_ref desc
    ) = 1

)

select * from deduplicated
