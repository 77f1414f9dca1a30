"""Source declarations validate as data: each wrong field is named with what is allowed."""

from __future__ import annotations

import copy

import pydantic
import pytest

from training_pipeline.components.errors import problems_of
from training_pipeline.spec.sizes import byte_size, seconds
from training_pipeline.spec.sources import FilesSource, HttpApiSource, SourceSystem, SqlTableSource

SYSTEM = {
    "system": "shop",
    "owner": "team:data",
    "sources": [
        {
            "name": "orders",
            "kind": "files",
            "ledger_id": "order_files",
            "contract": {
                "primary_key": ["order_id"],
                "columns": {
                    "order_id": None,
                    "ordered_at": {"parse": "parse_timestamp_utc"},
                    "amount": {"parse": "parse_money", "low": 0, "high": 1e6},
                    "coupon": {"optional": True},
                },
            },
            "limits": {"max_file_bytes": "512MiB", "settle_s": "5s"},
        },
        {
            "name": "customers",
            "kind": "sql_table",
            "url_env": "SHOP_DB_URL",
            "url_default": "sqlite:///{data_dir}/shop.sqlite",
            "table": "customers",
            "contract": {"primary_key": ["record_id"], "columns": ["record_id", "updated_at"]},
            "incremental": {"cursor": "updated_at"},
        },
        {
            "name": "tickets",
            "kind": "http_api",
            "base_url_env": "SHOP_API_URL",
            "endpoint": "/tickets",
            "pagination": {"style": "offset"},
            "contract": {"primary_key": ["ticket_id"], "columns": ["ticket_id", "updated_at"]},
            "incremental": {"param": "updated_since", "updated_field": "updated_at"},
        },
    ],
}


def problems(mutate) -> list[str]:
    declaration = copy.deepcopy(SYSTEM)
    mutate(declaration)
    with pytest.raises(pydantic.ValidationError) as raised:
        SourceSystem.model_validate(declaration)
    return [str(problem) for problem in problems_of(raised.value, SourceSystem)]


def test_a_system_with_one_source_of_each_kind_validates_into_typed_sources():
    system = SourceSystem.model_validate(SYSTEM)
    files, table, api = system.sources
    assert isinstance(files, FilesSource) and files.landing_folder == "orders"
    assert files.ledger == "order_files" and files.raw_table == "raw.orders"
    assert files.limits.max_file_bytes == 512 * 1024**2 and files.limits.settle_s == 5.0
    assert isinstance(table, SqlTableSource) and table.ledger == "customers"
    assert table.url_fallback("/data") == "sqlite:////data/shop.sqlite"
    assert isinstance(api, HttpApiSource) and api.pagination.style == "offset"
    assert api.retry.attempts == 5


def test_the_contract_becomes_the_row_rules_of_the_rejected_rows_engine():
    contract = SourceSystem.model_validate(SYSTEM).sources[0].contract
    rules = contract.row_contract("orders")
    assert rules.columns == ("order_id", "ordered_at", "amount", "coupon")
    assert rules.keys == ("order_id",)
    assert rules.timestamps == ("ordered_at",)  # a timestamp parser bounds it in time
    assert [(r.column, r.low, r.high) for r in rules.ranges] == [("amount", 0, 1e6)]
    assert contract.required == ("order_id", "ordered_at", "amount")


def test_a_url_where_an_environment_variable_name_belongs_is_refused_as_a_secret_in_yaml():
    [problem] = problems(lambda d: d["sources"][1].update(url_env="postgresql://u:pw@db/x"))
    assert problem.startswith("field sources.1.url_env: 'postgresql://u:pw@db/x' looks like a URL")
    assert "environment variable" in problem


def test_a_default_url_holding_a_password_is_refused():
    [problem] = problems(lambda d: d["sources"][1].update(url_default="postgresql://u:pw@db/x"))
    assert problem.startswith("field sources.1.url_default: holds a password")


def test_an_unknown_kind_lists_the_kinds_that_exist():
    [problem] = problems(lambda d: d["sources"][0].update(kind="ftp"))
    assert (
        problem
        == "field sources.0.kind: 'ftp' is not a source kind; allowed: files, sql_table, http_api"
    )


def test_a_missing_contract_is_named():
    [problem] = problems(lambda d: d["sources"][0].pop("contract"))
    assert problem == "field sources.0.contract: is required and missing"


def test_a_cursor_column_outside_the_contract_is_refused_with_the_columns_allowed():
    [problem] = problems(lambda d: d["sources"][1]["incremental"].update(cursor="modified"))
    assert problem == (
        "field sources.1.incremental.cursor: 'modified' is not a column of the contract; "
        "allowed: record_id, updated_at"
    )


def test_a_misspelt_field_suggests_the_field_and_lists_the_fields_of_that_kind():
    [problem] = problems(lambda d: d["sources"][0].update(landng="x"))
    assert problem.startswith("field sources.0.landng: is not a field (did you mean landing?)")
    assert "allowed: contract, description, formats" in problem


def test_an_unknown_pagination_style_lists_the_styles():
    [problem] = problems(lambda d: d["sources"][2].update(pagination={"style": "pages"}))
    assert problem.startswith("field sources.2.pagination.style: 'pages' is not allowed")
    assert "'link_header'" in problem


def test_a_provenance_like_or_duplicate_name_is_refused():
    [column] = problems(lambda d: d["sources"][0]["contract"]["columns"].update(_source={}))
    assert column.startswith(
        "field sources.0.contract.columns._source: is not a usable column name"
    )
    [twice] = problems(lambda d: d["sources"][1].update(name="orders"))
    assert twice == "field sources.1.name: 'orders' is declared twice"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda d: d["sources"][0]["contract"].update(primary_key=["nope"]),
            "contract.primary_key.0",
        ),
        (lambda d: d["sources"][1].update(query="select 1"), "sources.1.table"),
        (lambda d: d["sources"][2].update(endpoint="http://x/tickets"), "sources.2.endpoint"),
        (lambda d: d["sources"][0].update(landing="../etc"), "sources.0.landing"),
        (lambda d: d["sources"][0].update(formats=["xml"]), "sources.0.formats.0"),
        (lambda d: d["sources"][2]["contract"].update(primary_key=[]), "contract.primary_key"),
    ],
)
def test_each_rule_names_its_field(mutate, field):
    [problem] = problems(mutate)
    assert f"{field}:" in problem


def test_sizes_and_durations_read_as_people_write_them():
    assert byte_size("1MiB") == 1024**2 and byte_size("2 GB") == 2 * 1000**3 and byte_size(10) == 10
    assert seconds("250ms") == 0.25 and seconds("2m") == 120 and seconds(3) == 3.0
    with pytest.raises(ValueError, match="is not a size"):
        byte_size("lots")
    with pytest.raises(ValueError, match="is not a duration"):
        seconds("soon")
