"""How the product runs dbt: on the same resolved warehouse as ingestion, with dbt's
partial parsing kept across runs and the dbt unit tests left to the test suite.

One small demo world is ingested and cleaned from a working directory where the data
directory is given relative to it; then the cleaning step runs a second time.
"""

from __future__ import annotations

import importlib.metadata
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from churn_demo.api_server import DemoApiServer
from churn_demo.generator import generate
from declared_sources import declared_raw_assets, resources_with_sources

from training_pipeline.assets.dbt import cleaned_tables_of
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.project import dbt_root
from training_pipeline.resources import build_resources
from training_pipeline.settings import DATA_DIR_ENV, Settings

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class TwoRuns:
    settings: Settings
    workdir: Path
    relative: str
    first: dg.ExecuteInProcessResult
    second: dg.ExecuteInProcessResult
    second_log: list[dict]


def every_data_asset(settings: Settings) -> list:
    return [*declared_raw_assets(settings), cleaned_tables_of(settings)]


def _materialize(settings: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        every_data_asset(settings),
        resources=resources_with_sources(settings),
        instance=instance,
        raise_on_error=False,
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def _log_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRuns]:
    root = tmp_path_factory.mktemp("relative")
    workdir = root / "cwd"
    workdir.mkdir()
    relative = f"../data-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.setenv(DATA_DIR_ENV, relative)
        patch.setenv("TRAINING_PIPELINE_LANDING_SETTLE_S", "0")
        patch.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)
        settings = Settings.from_env()
        generate(settings, days=120, customers=60, seed=3)
        with DemoApiServer(settings, host="127.0.0.1", port=0) as server:
            patch.setenv("TRAINING_PIPELINE_API_URL", server.url)
            settings = Settings.from_env()
            with dg.DagsterInstance.ephemeral() as instance:
                first = _materialize(settings, instance)
                log = settings.dbt_state_dir / "dbt.log"
                already = len(_log_lines(log))
                generate(settings, days=1)  # a new day arrives
                second = _materialize(settings, instance)
        yield TwoRuns(settings, workdir, relative, first, second, _log_lines(log)[already:])


def test_a_relative_data_dir_is_resolved_once_from_the_working_directory(two_runs: TwoRuns):
    # Regression: dbt resolved `../x` from its project folder and failed, or wrote a
    # second warehouse there, while ingestion wrote the one resolved from the working
    # directory.
    assert two_runs.settings.data_dir == (two_runs.workdir / two_runs.relative).resolve()
    assert two_runs.settings.warehouse_path.exists()
    dbt_folder = dbt_root(two_runs.settings.project_dir)
    assert not (dbt_folder / two_runs.relative).resolve().exists()


def test_ingestion_and_dbt_write_the_same_warehouse(two_runs: TwoRuns):
    with wh.connect(
        two_runs.settings.warehouse_path, read_only=True, limits=two_runs.settings.duckdb
    ) as con:
        raw_orders_count = con.execute("select count(*) from raw.orders").fetchall()[0][0]
        mart_orders = con.execute("select count(*) from marts.orders").fetchall()[0][0]
    assert raw_orders_count > 0
    assert 0 < mart_orders <= raw_orders_count
    warehouses = list(two_runs.settings.data_dir.parent.rglob("*.duckdb"))
    assert warehouses == [two_runs.settings.warehouse_path]


def test_the_second_dbt_run_reuses_the_first_runs_parse(two_runs: TwoRuns):
    # Regression: every run re-parsed the whole project ("Unable to do partial parsing
    # because profile has changed"): each ran in a fresh target folder.
    messages = [line["info"]["msg"] for line in two_runs.second_log]
    names = {line["info"]["name"] for line in two_runs.second_log}
    assert "CommandCompleted" in names, "the second dbt run left no log in the state folder"
    assert "UnableToPartialParse" not in names, [m for m in messages if "partial" in m.lower()]
    assert "PartialParsingNotEnabled" not in names
    assert (two_runs.settings.dbt_state_dir / "partial_parse.msgpack").exists()


def test_production_builds_leave_the_dbt_unit_tests_to_the_test_suite(two_runs: TwoRuns):
    run_results = json.loads((two_runs.settings.dbt_state_dir / "run_results.json").read_text())
    kinds = {r["unique_id"].split(".")[0] for r in run_results["results"]}
    assert "unit_test" not in kinds
    assert {"model", "test"} <= kinds


def _observed(result: dg.ExecuteInProcessResult, key: str) -> dict:
    (metadata,) = [
        e.event_specific_data.asset_observation.metadata
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
        and e.event_specific_data.asset_observation.asset_key.to_user_string() == key
    ]
    return metadata


def test_the_nulled_value_count_covers_only_the_batches_since_the_last_count(two_runs):
    # Regression: every build re-read every staging view over all rows to count them.
    first = _observed(two_runs.first, "staging/stg_shop__orders")
    second = _observed(two_runs.second, "staging/stg_shop__orders")
    with wh.connect(
        two_runs.settings.warehouse_path, read_only=True, limits=two_runs.settings.duckdb
    ) as con:
        per_batch = dict(
            con.execute(
                "select _ingested_at, count(*) filter (where nullif(trim(amount), '') "
                "is not null) from raw.orders group by all"
            ).fetchall()
        )
    assert len(per_batch) == 2
    first_batch, second_batch = sorted(per_batch)
    assert first["nulled_values"].data["amount"]["delivered"] == per_batch[first_batch]
    assert second["nulled_values"].data["amount"]["delivered"] == per_batch[second_batch]
    assert first["nulled_values_counted_through"].value == first_batch.isoformat()
    assert second["nulled_values_counted_through"].value == second_batch.isoformat()


def test_the_dbt_resource_learns_dbts_version_without_starting_dbt(settings, monkeypatch):
    # Regression: every run started `dbt --version` (a whole dbt start-up) and loaded dbt
    # in-process before dbt itself ran: about half a minute on a busy 2-core machine.
    import dagster_dbt.core.resource as dagster_dbt_resource

    def refuse(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(dagster_dbt_resource, "check_output", refuse)
    dbt = build_resources(settings)["dbt"]
    assert str(dbt._cli_version) == importlib.metadata.version("dbt-core")


def _column_lineage(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    return {
        event.asset_key.to_user_string(): event.materialization.metadata.get(
            "dagster/column_lineage"
        )
        for event in result.get_asset_materialization_events()
        if event.asset_key.path[0] in {"staging", "marts", "features"}
    }


def test_every_built_model_carries_the_same_column_lineage_in_both_runs(two_runs: TwoRuns):
    # The lineage is kept per compiled SQL and schemas (assets/dbt_lineage.py): the
    # second build reads what the first computed, and the catalog shows the same.
    first, second = _column_lineage(two_runs.first), _column_lineage(two_runs.second)
    assert "marts/orders" in first
    assert all(lineage is not None for lineage in first.values()), first
    assert second == first
    deps = first["marts/orders"].value.deps_by_column["amount"]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in deps] == [
        ("staging/stg_shop__orders", "amount")
    ]
