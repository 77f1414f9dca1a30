{#
    Incremental upkeep of features.customer_snapshots (see its .yml).

    A snapshot reads orders dated before the end of its 30-day label window,
    and CRM and ticket versions written before it; its label depends on
    as_of. So new rows can change only the snapshots from
    rebuild_from on: the earliest of
      - the previous as_of minus 30 days (labels that became observable; the
        previous as_of snapshot itself, off the weekly grid, must go),
      - the earliest ordered_at, minus 30 days, of any version of an order
        re-delivered or new since the last build (an order's old version is
        replaced in marts.orders, so staging, which keeps every version, is
        read),
      - the newest order ingestion of the last build minus 30 days (orders
        dated past that ingestion's future bound enter with the new one),
      - the earliest updated_at of a new CRM version,
      - the earliest created_at or updated_at of any version of a ticket that
        has a new version (its creation and owner come from its first
        version).
    The pre-hook deletes those snapshots; the model then appends every
    snapshot after the newest one kept. What "new" means is remembered in a
    one-row table beside the model, written after each build; without it
    (a first build, a table from before this upkeep) everything is rebuilt.
#}

{% macro customer_snapshots_ingested_relation() -%}
    {{- return(api.Relation.create(
        database=this.database,
        schema=this.schema,
        identifier=this.identifier ~ '__ingested',
    )) -}}
{%- endmacro %}


{% macro customer_snapshots_delete_changed() -%}
    {%- if is_incremental() -%}
        {%- set ingested = customer_snapshots_ingested_relation() -%}
        {%- if adapter.get_relation(ingested.database, ingested.schema, ingested.identifier) is none %}
    delete from {{ this }}
        {%- else %}
    delete from {{ this }}
    where snapshot_date >= (
        select least(
            (select max(snapshot_date) from {{ this }}) - 30,
            (
                select cast(min(ordered_at) as date) - 30
                from {{ ref('stg_shop__orders') }}
                where order_id in (
                    select order_id from {{ ref('stg_shop__orders') }}
                    where _ingested_at
                        > coalesce(seen.orders, timestamp '-infinity')
                )
            ),
            cast(seen.orders as date) - 30,
            (
                select cast(min(updated_at) as date)
                from {{ ref('stg_crm__customer_versions') }}
                where _ingested_at > coalesce(seen.crm, timestamp '-infinity')
            ),
            (
                select cast(min(least(created_at, updated_at)) as date)
                from {{ ref('stg_support__ticket_versions') }}
                where ticket_id in (
                    select ticket_id
                    from {{ ref('stg_support__ticket_versions') }}
                    where _ingested_at
                        > coalesce(seen.tickets, timestamp '-infinity')
                )
            )
        )
        from {{ ingested }} as seen
    )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{% macro customer_snapshots_remember_ingested() -%}
    create or replace table {{ customer_snapshots_ingested_relation() }} as
    select
        (select max(_ingested_at) from {{ ref('stg_shop__orders') }}) as orders,
        (select max(_ingested_at) from {{ ref('stg_crm__customer_versions') }})
            as crm,
        (select max(_ingested_at) from {{ ref('stg_support__ticket_versions') }})
            as tickets
{%- endmacro %}
