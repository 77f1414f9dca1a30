with

source as (

    select * from {{ source('weather', 'seattle_weather') }}

),

renamed as (

    select
        {{ parse_date('date') }} as day,
        {{ parse_decimal('precipitation') }} as precipitation_mm,
        {{ parse_decimal('temp_max') }} as temp_max_c,
        {{ parse_decimal('temp_min') }} as temp_min_c,
        {{ parse_decimal('wind') }} as wind_m_s,
        nullif(lower(trim(weather)), '') as weather,
        {#- The text each parsed column came from; `refused` keeps only the
            texts the parser refused (counted as metadata in Dagster). -#}
        struct_pack(
            day := date,
            precipitation_mm := precipitation,
            temp_max_c := temp_max,
            temp_min_c := temp_min,
            wind_m_s := wind
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
            'day', 'precipitation_mm', 'temp_max_c', 'temp_min_c', 'wind_m_s'
        ]) }} as _delivered
    )
    from renamed

),

deduplicated as (

    {#- A day delivered again (a corrected file) keeps its newest delivery. -#}
    select *
    from refused
    where day is not null
    qualify row_number() over (
        partition by day
        order by _ingested_at desc, _source_ref desc
    ) = 1

)

select * from deduplicated
