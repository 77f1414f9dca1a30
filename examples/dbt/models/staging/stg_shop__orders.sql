with

source as (

    select * from {{ source('shop', 'orders') }}

),

renamed as (

    select
        nullif(trim(order_id), '') as order_id,
        nullif(trim(customer_id), '') as customer_id,
        {{ parse_timestamp_utc('ordered_at') }} as ordered_at,
        {{ parse_money('amount') }} as amount,
        {{ normalize_status('status', 'order') }} as status,
        {#- The text each parsed column came from: a null beside non-blank text
            here is a value the parser refused (counted as metadata in Dagster). -#}
        struct_pack(
            ordered_at := ordered_at,
            amount := amount,
            status := status
        ) as _delivered,
        _source,
        _source_ref,
        _batch_id,
        _ingested_at

    from source

)

{#-
    No deduplication here: the incremental orders mart deduplicates only the
    rows of the new batch, which a window over this whole view would defeat.
#}
select * from renamed
