{#-
    Point in time: every feature of a snapshot reads only rows dated strictly
    before its snapshot_at (midnight UTC): orders by ordered_at, CRM records
    and ticket versions by updated_at. Only the label looks at the 30 days
    from snapshot_at on.

    Incremental: the pre-hook deletes the snapshots new rows can change
    (dbt_project/macros/customer_snapshots_increment.sql says which) and this
    appends every snapshot after the newest one kept.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ customer_snapshots_delete_changed() }}",
        post_hook="{{ customer_snapshots_remember_ingested() }}",
    )
}}

with

orders as (

    select * from {{ ref('orders') }}

),

customer_versions as (

    select * from {{ ref('stg_crm__customer_versions') }}

),

ticket_versions as (

    select * from {{ ref('stg_support__ticket_versions') }}

),

dated_orders as (

    select
        customer_id,
        ordered_at,
        amount,
        {#- money kept: cancelled and returned orders are not spend #}
        coalesce(status not in ('cancelled', 'returned'), true) as is_kept

    from orders

    where customer_id is not null and ordered_at is not null
        {#- An order dated after the newest ingestion (plus the tolerance
            ingestion's row contract allows) had not happened when it was
            delivered. Ingestion rejects such rows; this bound also keeps
            one that slipped in from stretching the weekly snapshot grid up
            to its date (one order dated 2099 made the grid 70 years long). #}
        and ordered_at <= (select max(_ingested_at) from orders) + to_seconds(
            cast('{{ env_var("TRAINING_PIPELINE_FUTURE_TOLERANCE_HOURS", "24") }}'
                as double) * 3600
        )

),

bounds as (

    select
        {#- the day after the newest order: the snapshot scoring uses #}
        cast(max(ordered_at) as date) + 1 as as_of,
        cast(min(ordered_at) as date) + 90 as first_possible_snapshot,
        {#- the first grid date with 90 days of orders before it; the grid
            runs every 7 days from 1970-01-02 so that its dates stay put
            when a new day arrives #}
        cast(min(ordered_at) as date) + 90 + cast((7 - date_diff(
            'day', date '1970-01-02', cast(min(ordered_at) as date) + 90
        ) % 7) % 7 as integer) as first_grid_snapshot

    from dated_orders

),

snapshot_series as (

    select
        unnest(generate_series(
            cast(first_grid_snapshot as timestamp),
            cast(as_of - 1 as timestamp),
            interval 7 day
        )) as snapshot_at,
        as_of

    from bounds

    union all

    select cast(as_of as timestamp) as snapshot_at, as_of

    from bounds

    where as_of >= first_possible_snapshot

),

snapshots as (

    select
        cast(snapshot_at as date) as snapshot_date,
        snapshot_at,
        snapshot_at + interval 30 day as label_window_end,
        cast(snapshot_at as date) + 30 <= as_of as is_label_observable

    from snapshot_series

    {% if is_incremental() %}
    {#- the pre-hook deleted every snapshot that can have changed #}
    where cast(snapshot_at as date) > (
        select coalesce(max(snapshot_date), date '0001-01-01') from {{ this }}
    )
    {% endif %}

),

order_history as (

    {#- each order up to the end of the snapshot's label window #}
    select
        dated_orders.customer_id,
        snapshots.snapshot_date,
        snapshots.is_label_observable,
        dated_orders.ordered_at,
        dated_orders.amount,
        dated_orders.is_kept,
        dated_orders.ordered_at < snapshots.snapshot_at as is_prior,
        dated_orders.ordered_at >= snapshots.snapshot_at - interval 30 day
            and dated_orders.ordered_at < snapshots.snapshot_at as is_in_30d,
        dated_orders.ordered_at >= snapshots.snapshot_at - interval 90 day
            and dated_orders.ordered_at < snapshots.snapshot_at as is_in_90d,
        dated_orders.ordered_at >= snapshots.snapshot_at as is_in_label_window

    from snapshots

    inner join dated_orders
        on dated_orders.ordered_at < snapshots.label_window_end

),

order_features as (

    select
        customer_id,
        snapshot_date,
        is_label_observable,
        date_diff(
            'day',
            cast(max(ordered_at) filter (where is_prior) as date),
            snapshot_date
        ) as recency_days,
        count(*) filter (where is_in_30d) as orders_30d,
        count(*) filter (where is_in_90d) as orders_90d,
        coalesce(sum(amount) filter (where is_in_30d and is_kept), 0)
            as spend_30d,
        coalesce(sum(amount) filter (where is_in_90d and is_kept), 0)
            as spend_90d,
        avg(amount) filter (where is_prior and is_kept) as avg_order_value,
        count(*) filter (where is_in_label_window) as orders_next_30d

    from order_history

    group by customer_id, snapshot_date, is_label_observable

),

customer_at_snapshot as (

    {#- the CRM record current at the snapshot (as in stg_crm__customers) #}
    select
        customer_versions.customer_id,
        snapshots.snapshot_date,
        customer_versions.age,
        customer_versions.country_code,
        customer_versions.segment,
        customer_versions.signup_date

    from snapshots

    inner join customer_versions
        on customer_versions.updated_at < snapshots.snapshot_at

    qualify row_number() over (
        partition by customer_versions.customer_id, snapshots.snapshot_date
        order by
            customer_versions.updated_at desc,
            customer_versions.record_id desc
    ) = 1

),

tickets as (

    {#-
        Who raised a ticket and when never changes, so a ticket created
        before the snapshot counts even if only later versions were ingested;
        its state at the snapshot comes from ticket_at_snapshot alone.
    #}
    select
        ticket_id,
        min_by(customer_id, updated_at) as customer_id,
        min_by(created_at, updated_at) as created_at

    from ticket_versions

    where ticket_id is not null

    group by ticket_id

),

ticket_at_snapshot as (

    {#- the latest version written before the snapshot #}
    select
        ticket_versions.ticket_id,
        snapshots.snapshot_date,
        ticket_versions.status,
        ticket_versions.satisfaction

    from snapshots

    inner join ticket_versions
        on ticket_versions.updated_at < snapshots.snapshot_at

    qualify row_number() over (
        partition by ticket_versions.ticket_id, snapshots.snapshot_date
        order by ticket_versions.updated_at desc
    ) = 1

),

ticket_history as (

    select
        tickets.customer_id,
        snapshots.snapshot_date,
        tickets.created_at >= snapshots.snapshot_at - interval 90 day
            as is_in_90d,
        ticket_at_snapshot.status,
        ticket_at_snapshot.satisfaction

    from snapshots

    inner join tickets
        on tickets.created_at < snapshots.snapshot_at

    left join ticket_at_snapshot
        on ticket_at_snapshot.ticket_id = tickets.ticket_id
        and ticket_at_snapshot.snapshot_date = snapshots.snapshot_date

),

ticket_features as (

    select
        customer_id,
        snapshot_date,
        count(*) filter (where is_in_90d) as tickets_90d,
        count(*) filter (where is_in_90d and satisfaction <= 2)
            as low_satisfaction_tickets_90d,
        avg(satisfaction) filter (where is_in_90d) as mean_satisfaction_90d,
        count(*) filter (where status in ('open', 'pending')) as open_tickets

    from ticket_history

    group by customer_id, snapshot_date

),

final as (

    select
        order_features.customer_id,
        order_features.snapshot_date,
        cast(order_features.recency_days as integer) as recency_days,
        cast(order_features.orders_30d as integer) as orders_30d,
        cast(order_features.orders_90d as integer) as orders_90d,
        cast(order_features.spend_30d as decimal(14, 2)) as spend_30d,
        cast(order_features.spend_90d as decimal(14, 2)) as spend_90d,
        cast(order_features.avg_order_value as decimal(14, 2))
            as avg_order_value,
        cast(date_diff(
            'day',
            customer_at_snapshot.signup_date,
            order_features.snapshot_date
        ) as integer) as tenure_days,
        cast(coalesce(ticket_features.tickets_90d, 0) as integer)
            as tickets_90d,
        cast(
            coalesce(ticket_features.low_satisfaction_tickets_90d, 0)
            as integer
        ) as low_satisfaction_tickets_90d,
        cast(ticket_features.mean_satisfaction_90d as double)
            as mean_satisfaction_90d,
        cast(coalesce(ticket_features.open_tickets, 0) as integer)
            as open_tickets,
        customer_at_snapshot.age,
        customer_at_snapshot.country_code,
        customer_at_snapshot.segment,
        case
            when order_features.is_label_observable
                then order_features.orders_next_30d = 0
        end as churned

    from order_features

    left join customer_at_snapshot
        on customer_at_snapshot.customer_id = order_features.customer_id
        and customer_at_snapshot.snapshot_date = order_features.snapshot_date

    left join ticket_features
        on ticket_features.customer_id = order_features.customer_id
        and ticket_features.snapshot_date = order_features.snapshot_date

    {#- active customers who had signed up (or whose signup is unknown) #}
    where
        order_features.orders_90d > 0
        and coalesce(
            customer_at_snapshot.signup_date < order_features.snapshot_date,
            true
        )

)

select * from final
