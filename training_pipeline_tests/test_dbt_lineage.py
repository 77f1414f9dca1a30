"""The dbt models' column lineage is computed once per compiled SQL and schemas, then kept.

dagster-dbt's own conversion of a dbt result event (with the real manifest of the
example project and real sqlglot) is what these tests compare against; no dbt runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
from dagster_dbt.core import dbt_cli_event
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from training_pipeline.assets.dbt_lineage import LINEAGE, stream_with_kept_lineage
from training_pipeline.assets.dbt_translator import TrainingPipelineDbtTranslator
from training_pipeline_tests.conftest import MANIFEST

MODEL = "model.training_pipeline.customers"
PARENT = '"warehouse"."staging"."stg_crm__customers"'
SQL = f"select customer_id, lower(email) as email, age + 1 as age from {PARENT}"


def model_event(columns: list[str]) -> DbtCoreCliEventMessage:
    raw = {
        "info": {"name": "LogModelResult", "msg": "OK", "invocation_id": "test", "level": "info"},
        "data": {
            "node_info": {
                "unique_id": MODEL,
                "node_status": "success",
                "node_started_at": "2026-01-01T00:00:00",
                "node_finished_at": "2026-01-01T00:00:01",
                "materialized": "table",
            },
            "status": "success",
        },
    }
    # What macros/log_column_metadata.sql logs: the model's columns and its parent's.
    parent = {"customer_id": "VARCHAR", "email": "VARCHAR", "age": "INTEGER", "segment": "VARCHAR"}
    history = {
        "columns": {column: {"data_type": "VARCHAR", "description": None} for column in columns},
        "parents": {PARENT: {"columns": {c: {"data_type": t} for c, t in parent.items()}}},
    }
    return DbtCoreCliEventMessage(raw_event=raw, event_history_metadata=history)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "target"


def write_compiled(target: Path, sql: str) -> None:
    compiled = target / "compiled" / "training_pipeline" / "models" / "marts" / "customers.sql"
    compiled.parent.mkdir(parents=True, exist_ok=True)
    compiled.write_text(sql)


def invocation(target: Path, columns: list[str]) -> SimpleNamespace:
    """The parts of a dagster-dbt invocation the stream reads, with one model result."""
    return SimpleNamespace(
        stream_raw_events=lambda: iter([model_event(columns)]),
        manifest=json.loads(MANIFEST.read_text()),
        dagster_dbt_translator=TrainingPipelineDbtTranslator(),
        context=None,
        target_path=target,
        project=None,
    )


def lineage_of(events: list) -> dict[str, set[tuple[str, str]]]:
    (materialization,) = events
    assert isinstance(materialization, dg.AssetMaterialization)
    deps = materialization.metadata[LINEAGE].value.deps_by_column
    return {
        column: {(dep.asset_key.to_user_string(), dep.column_name) for dep in columns}
        for column, columns in deps.items()
    }


@pytest.fixture
def sqlglot_lineage_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every time dagster-dbt computes a lineage with sqlglot."""
    calls: list[str] = []
    compute = dbt_cli_event._build_column_lineage_metadata

    def counted(**kwargs):
        calls.append(kwargs["dbt_resource_props"]["unique_id"])
        return compute(**kwargs)

    monkeypatch.setattr(dbt_cli_event, "_build_column_lineage_metadata", counted)
    return calls


def test_a_models_lineage_is_computed_once_then_read_back_the_same(
    target: Path, tmp_path: Path, sqlglot_lineage_calls: list[str]
):
    write_compiled(target, SQL)
    kept = tmp_path / "kept"
    build = invocation(target, ["customer_id", "email", "age"])

    first = lineage_of(list(stream_with_kept_lineage(build, kept)))
    second = lineage_of(list(stream_with_kept_lineage(build, kept)))

    assert sqlglot_lineage_calls == [MODEL]
    assert second == first
    assert first["email"] == {("staging/stg_crm__customers", "email")}
    assert first["age"] == {("staging/stg_crm__customers", "age")}
    assert len(list(kept.iterdir())) == 1


def test_the_kept_lineage_is_what_dagster_dbt_computes_without_it(target: Path, tmp_path: Path):
    write_compiled(target, SQL)
    build = invocation(target, ["customer_id", "email", "age"])
    kept = tmp_path / "kept"
    list(stream_with_kept_lineage(build, kept))

    from_kept = list(stream_with_kept_lineage(build, kept))
    plain = list(
        model_event(["customer_id", "email", "age"]).to_default_asset_events(
            manifest=build.manifest,
            dagster_dbt_translator=build.dagster_dbt_translator,
            target_path=target,
        )
    )

    assert lineage_of(from_kept) == lineage_of(plain)
    (kept_event,), (plain_event,) = from_kept, plain
    assert set(kept_event.metadata) == set(plain_event.metadata)
    assert (
        kept_event.metadata["dagster/column_schema"]
        == plain_event.metadata["dagster/column_schema"]
    )


def test_an_edited_model_gets_its_own_lineage_not_the_kept_one(
    target: Path, tmp_path: Path, sqlglot_lineage_calls: list[str]
):
    kept = tmp_path / "kept"
    write_compiled(target, SQL)
    list(stream_with_kept_lineage(invocation(target, ["customer_id", "email", "age"]), kept))

    write_compiled(target, f"select customer_id, segment as email, age from {PARENT}")
    edited = lineage_of(
        list(stream_with_kept_lineage(invocation(target, ["customer_id", "email", "age"]), kept))
    )

    assert edited["email"] == {("staging/stg_crm__customers", "segment")}
    assert sqlglot_lineage_calls == [MODEL, MODEL]
    assert len(list(kept.iterdir())) == 2


def test_a_new_column_in_the_schema_misses_the_kept_lineage(
    target: Path, tmp_path: Path, sqlglot_lineage_calls: list[str]
):
    kept = tmp_path / "kept"
    write_compiled(target, SQL)
    list(stream_with_kept_lineage(invocation(target, ["customer_id", "email"]), kept))
    widened = lineage_of(
        list(stream_with_kept_lineage(invocation(target, ["customer_id", "email", "age"]), kept))
    )

    assert widened["age"] == {("staging/stg_crm__customers", "age")}
    assert sqlglot_lineage_calls == [MODEL, MODEL]


def test_kept_lineage_is_readable_by_the_other_users_sharing_the_project(
    target: Path, tmp_path: Path
):
    write_compiled(target, SQL)
    kept = tmp_path / "kept"
    list(stream_with_kept_lineage(invocation(target, ["customer_id", "email", "age"]), kept))

    (written,) = kept.iterdir()
    assert written.stat().st_mode & 0o777 == 0o644
    assert not [p for p in kept.iterdir() if p.name.startswith(".")]


def test_a_read_only_project_folder_still_gets_its_lineage_and_a_warning(
    target: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    write_compiled(target, SQL)
    occupied = tmp_path / "kept"
    occupied.write_text("a file where the folder would be")  # mkdir fails as on a read-only disk

    built = lineage_of(
        list(
            stream_with_kept_lineage(invocation(target, ["customer_id", "email", "age"]), occupied)
        )
    )

    assert built["email"] == {("staging/stg_crm__customers", "email")}
    assert "column lineage not kept" in caplog.text
