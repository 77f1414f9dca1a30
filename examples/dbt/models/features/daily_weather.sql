{#- Offsets are calendar days (RANGE frames over the date), not rows: a missing
    day leaves its lag null instead of shifting an older day into its place. -#}
{%- set lag_days = [1, 2, 3] -%}

with

days as (

    select * from {{ ref('stg_weather__seattle_days') }}

),

features as (

    select
        day,
        precipitation_mm,
        temp_max_c,
        temp_min_c,
        wind_m_s,
        weather,
        {% for n in lag_days -%}
        max(temp_max_c) over (
            order by day
            range between interval {{ n }} day preceding
                and interval {{ n }} day preceding
        ) as temp_max_c_lag_{{ n }},
        {% endfor -%}
        avg(temp_max_c) over (
            order by day
            range between interval 6 day preceding and current row
        ) as temp_max_c_mean_7d,
        sum(precipitation_mm) over (
            order by day
            range between interval 6 day preceding and current row
        ) as precipitation_mm_sum_7d,
        sin(2 * pi() * dayofyear(day) / 365.25) as season_sin,
        cos(2 * pi() * dayofyear(day) / 365.25) as season_cos,
        {#- The label looks one day ahead; the newest day has none yet and
            is the row that gets scored. -#}
        max(temp_max_c) over (
            order by day
            range between interval 1 day following
                and interval 1 day following
        ) as temp_max_next_day

    from days

)

select * from features
