{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
    )
}}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

    {% if is_incremental() %}
    {#- Only batches newer than the last one loaded; an empty mart loads all. #}
    where _ingested_at > (
        select coalesce(max(_ingested_at), timestamp '-infinity')
        from {{ this }}
    )
    {% endif %}

),

deduplicated as (

    {#-
        A re-delivered order keeps its most recently ingested version. Within
        a run that is decided here; across runs delete+insert on order_id
        replaces the version already in the mart.
    #}
    select
        order_id,
        customer_id,
        ordered_at,
        amount,
        status,
        _source_ref,
        _batch_id,
        _ingested_at

    from orders

    qualify row_number() over (
        partition by order_id
        order by _ingested_at desc, _batch_id desc, _source_ref desc
    ) = 1

)

select * from deduplicated
