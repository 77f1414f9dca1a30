"""Reference: the order files to de-duplicated orders and per-customer totals, in one
DuckDB SQL script, as someone without a pipeline would write it.

    python scripts/bench_reference/duckdb_script.py LANDING_DIR OUT.duckdb

Same work as our path: read every CSV, JSON Lines and Parquet file as text, parse
timestamps (ISO 8601 with or without zone, ``yyyy/mm/dd hh:mm:ss``, epoch seconds) to
UTC, US-dollar amounts (``$1,234.50``, ``12.50 USD``, numbers) to cents and statuses to
a closed set with the same grammars as the dbt macros, keep the latest delivery of
each order (the later file wins), and total each customer's orders.  Prints a summary
as JSON; no checks, no provenance, no incremental state.
"""

import json
import sys

import duckdb

TIMESTAMP = (
    r"((?:19|20)\d{2}[-/]\d{1,2}[-/]\d{1,2})[T ]"
    r"((?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?) ?"
    r"(Z|[+-](?:0\d|1[0-3])(?::?[0-5]\d)?|[+-]14(?::?00)?)?"
)
MONEY = r"\s*([-+]?)\s*(\$|USD)?\s*([-+]?)\s*((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*(USD)?\s*"

SQL = f"""
create table delivered as
select order_id, customer_id, ordered_at, amount, status, filename
from read_csv('@LANDING@/*.csv', all_varchar = true, filename = true)
union all by name
select order_id, customer_id, ordered_at, amount, status, filename
from read_json('@LANDING@/*.jsonl', format = 'newline_delimited', filename = true,
    columns = {{order_id: 'varchar', customer_id: 'varchar', ordered_at: 'varchar',
                 amount: 'varchar', status: 'varchar'}})
union all by name
select order_id, customer_id, ordered_at, cast(amount as varchar) as amount, status, filename
from read_parquet('@LANDING@/*.parquet', filename = true);

create table orders as
with parsed as (
    select
        nullif(trim(order_id), '') as order_id,
        nullif(trim(customer_id), '') as customer_id,
        trim(ordered_at) as t,
        upper(trim(amount)) as a,
        lower(trim(status)) as s,
        filename
    from delivered
)
select
    order_id,
    customer_id,
    case
        when regexp_full_match(t, '\\d{{9,10}}(\\.\\d+)?') and cast(t as double) < 4102444800
            then timezone('UTC', to_timestamp(cast(t as double)))
        when regexp_full_match(t, '{TIMESTAMP}')
            then try_cast(replace(regexp_replace(t, '^{TIMESTAMP}$', '\\1 \\2'), '/', '-')
                          as timestamp)
                 - (timestamp '2000-01-01' - timezone('UTC', try_strptime(
                      '2000-01-01 00:00' || coalesce(nullif(replace(
                          regexp_replace(t, '^{TIMESTAMP}$', '\\3'), 'Z', ''), ''), '+00'),
                      '%Y-%m-%d %H:%M%z')))
    end as ordered_at,
    case
        when regexp_full_match(a, '{MONEY}')
            and (regexp_extract(a, '{MONEY}', 1) = '' or regexp_extract(a, '{MONEY}', 3) = '')
            and (regexp_extract(a, '{MONEY}', 3) = '' or regexp_extract(a, '{MONEY}', 2) <> '')
            and (regexp_extract(a, '{MONEY}', 2) = '' or regexp_extract(a, '{MONEY}', 5) = '')
            then try_cast(regexp_extract(a, '{MONEY}', 1) || regexp_extract(a, '{MONEY}', 3)
                          || replace(regexp_extract(a, '{MONEY}', 4), ',', '') as decimal(12, 2))
    end as amount,
    case
        when s in ('placed', 'pending', 'new') then 'placed'
        when s = 'shipped' then 'shipped'
        when s in ('completed', 'complete', 'done') then 'completed'
        when s in ('cancelled', 'canceled') then 'cancelled'
        when s in ('returned', 'refunded') then 'returned'
    end as status,
    filename
from parsed
qualify row_number() over (partition by order_id order by filename desc) = 1;

create table customers as
select
    customer_id,
    count(*) as orders,
    coalesce(sum(amount) filter (where status not in ('cancelled', 'returned')), 0) as spend,
    min(ordered_at) as first_order_at,
    max(ordered_at) as last_order_at
from orders
where customer_id is not null
group by customer_id;
"""


def main(landing: str, out: str) -> None:
    con = duckdb.connect(out)
    # Our path's DuckDB limit is 2 GB; at 5M rows this script's de-duplication window
    # cannot stay within it ("failed to pin block"), and someone writing it by hand would
    # raise the limit, so it gets 3 GB (its peak RSS is measured and compared as it is).
    con.execute("set threads = 2; set memory_limit = '3GB'")
    con.execute(SQL.replace("@LANDING@", landing.replace("'", "''")))
    orders, amount = con.execute("select count(*), sum(amount) from orders").fetchone()
    (customers,) = con.execute("select count(*) from customers").fetchone()
    con.close()
    print(json.dumps({"orders": orders, "amount": str(amount), "customers": customers}))


if __name__ == "__main__":
    main(*sys.argv[1:])
