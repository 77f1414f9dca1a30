with

ticket_versions as (

    select * from {{ ref('stg_support__ticket_versions') }}

),

latest as (

    {#-
        Parsing lives in stg_support__ticket_versions; this model only picks
        each ticket's current version.
    #}
    select *

    from ticket_versions

    qualify row_number() over (
        partition by ticket_id
        order by
            updated_at desc nulls last,
            _ingested_at desc,
            _batch_id desc
    ) = 1

)

select * from latest
