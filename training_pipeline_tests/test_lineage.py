"""`training-pipeline lineage`: a model version traced back to the exact files and pages.

One small real world is built per module: the demo sources ingested by the real raw
assets in two runs (the second with a day of new data and a garbage file), a
training set exported from that warehouse after each run, and a model registered on each
export.  The features table is synthetic, so no dbt run is needed: lineage only follows
the records the ingestion and the export leave behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from churn_demo import declared
from churn_demo.api_server import DemoApiServer
from churn_demo.generator import generate
from churn_model import NAME
from declared_sources import declared_raw_asset, resources_with_sources
from fitted_models import fitted, register
from synthetic_churn import churn_snapshots

from training_pipeline.cli import main
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.lineage import LineageError, _batches, model_lineage
from training_pipeline.lineage_record import Lineage
from training_pipeline.ml.datasets import TrainingSet, export_training_set
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.settings import DuckDBLimits, LandingLimits, Settings
from training_pipeline.spec.sources import SourceSystem
from training_pipeline_tests.churn_model import CHURN
from training_pipeline_tests.http_source_helpers import tickets_resources

pytestmark = pytest.mark.integration  # its world is materialized in process

GARBAGE = "orders_garbage.csv"
TOP_LEVEL_KEYS = {
    "schema_version",
    "model",
    "training_set",
    "warehouse",
    "batches",
    "missing_batches",
}
MODEL_KEYS = {
    "version",
    "family",
    "created_at",
    "sha256",
    "code_version",
    "data_fingerprint",
    "aliases",
}
TRAINING_SET_KEYS = {
    "path",
    "present",
    "manifest",
    "fingerprint",
    "rows",
    "snapshots",
    "first_snapshot",
    "last_snapshot",
    "positive_rate",
}
BATCH_KEYS = {
    "batch_id",
    "source",
    "kind",
    "started_at",
    "finished_at",
    "rows_loaded",
    "run_id",
    "files",
    "api_pages",
    "db_queries",
    "other_refs",
}
FILE_KEYS = {"path", "sha256", "format", "status", "rows_landed", "rows_loaded", "reason"}
PAGE_KEYS = {"page", "request", "rows_loaded"}
QUERY_KEYS = {"query", "rows_loaded"}


@dataclass(frozen=True)
class Run:
    """One ingestion run: its Dagster run id, what it was given, what it asked the API."""

    run_id: str
    delivered: dict[str, str]  # order file name -> sha256, as it sat in the landing folder
    requests: list[str]  # /tickets requests, in order
    version: str  # the model registered on the export made after this run


@dataclass(frozen=True)
class World:
    settings: Settings
    first: Run
    second: Run


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def landing_files(settings: Settings) -> dict[str, str]:
    return {
        p.name: sha256_of(p) for p in declared.orders_landing(settings).iterdir() if p.is_file()
    }


def ingest(settings: Settings, server: DemoApiServer) -> dg.ExecuteInProcessResult:
    # A small page size so each ticket batch spans several pages.
    resources = resources_with_sources(settings) | tickets_resources(server.url, page_size=5)
    # Only the churn sources: a training set lists every batch the warehouse holds, and
    # these tests trace the churn model to its own three sources.
    churn_raw = [declared_raw_asset(settings, n) for n in ("orders", "crm_customers", "tickets")]
    result = dg.materialize(churn_raw, resources=resources, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def export(settings: Settings, frame: pd.DataFrame) -> TrainingSet:
    with wh.connect(settings.warehouse_path, limits=settings.duckdb) as con:
        con.execute("create schema if not exists features").fetchall()
        con.register("frame", frame)
        con.execute("create or replace table features.customer_snapshots as from frame").fetchall()
    with wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con:
        return export_training_set(con, CHURN, settings.datasets_dir / NAME)


def register_on(settings: Settings, dataset: TrainingSet, family: str) -> str:
    """Register and promote a model exactly as churn/candidate records its data."""
    registry = ModelRegistry.for_model(settings.models_dir, NAME)
    version = register(
        registry,
        fitted(family),
        family=family,
        data_fingerprint=dataset.fingerprint,
        trained_on=list(dataset.batches),
        extra_files={"training_set.json": dataset.manifest_path.read_bytes()},
    ).version
    registry.promote(version, actor="test")
    return version


def run_once(settings: Settings, server: DemoApiServer, seed: int, family: str) -> Run:
    delivered = landing_files(settings)
    already_asked = len(server.requests)
    result = ingest(settings, server)
    requests = [r for r in server.requests[already_asked:] if r.startswith("/tickets")]
    dataset = export(settings, churn_snapshots(n_customers=60, n_snapshots=4, seed=seed))
    return Run(result.run_id, delivered, requests, register_on(settings, dataset, family))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    data_dir = tmp_path_factory.mktemp("lineage") / "data"
    # Files are landed and ingested at once here; the settle time has its own tests.
    settings = Settings(data_dir, landing=LandingLimits(settle_s=0))
    with pytest.MonkeyPatch.context() as env:
        env.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)
        generate(settings, days=21, customers=40, seed=11)
        with DemoApiServer(settings, host="127.0.0.1", port=0) as server:
            first = run_once(settings, server, seed=1, family="logistic_regression")
            generate(settings, days=1)
            (declared.orders_landing(settings) / GARBAGE).write_bytes(b"\x00\x01garbage" * 50)
            already_loaded = set(first.delivered)
            second = run_once(settings, server, seed=2, family="random_forest")
    new = {k: v for k, v in second.delivered.items() if k not in already_loaded}
    return World(settings, first, replace(second, delivered=new))


@pytest.fixture
def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI finds the world through TRAINING_PIPELINE_DATA_DIR."""
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(world.settings.data_dir))
    return world.settings


@pytest.fixture
def copied(world: World, tmp_path: Path) -> Settings:
    """A copy of the world that a test may damage."""
    shutil.copytree(world.settings.data_dir, tmp_path / "data")
    return replace(world.settings, data_dir=tmp_path / "data")


def files_by_status(lineage: Lineage, *statuses: str) -> dict[str, str | None]:
    return {f.path: f.sha256 for b in lineage.batches for f in b.files if f.status in statuses}


def quarantined_now(settings: Settings) -> set[str]:
    """Files the ingestion moved out of the landing folder, whatever the reason."""
    moved = declared.orders_quarantine(settings).rglob("*")
    return {p.name for p in moved if p.is_file() and not p.name.endswith(".reason.json")}


def scalar(settings: Settings, sql: str) -> int:
    with wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con:
        return con.execute(sql).fetchall()[0][0]


def test_production_traces_to_every_order_file_with_its_sha256_and_every_api_page(world):
    lineage = model_lineage(world.settings, "production", NAME)

    assert lineage.model.version == world.second.version
    assert lineage.aliases == ("production",)
    delivered = world.first.delivered | world.second.delivered
    assert files_by_status(lineage, "loaded", "quarantined") == delivered
    quarantined = files_by_status(lineage, "quarantined")
    assert set(quarantined) == quarantined_now(world.settings)
    assert quarantined[GARBAGE] == delivered[GARBAGE]
    # The second run's feed served again only the record the first had loaded: a batch
    # that brought no row is not part of what the model was trained on.
    pages = [p.request for b in lineage.batches for p in b.api_pages]
    assert pages == world.first.requests
    first_pages = next(b.api_pages for b in lineage.batches if b.source == "tickets_api")
    assert [p.page for p in first_pages] == list(range(1, len(world.first.requests) + 1))
    assert len(first_pages) > 1  # the small page size spread the batch over several pages
    assert lineage.missing_batches == ()


def test_the_rows_of_files_pages_and_queries_add_up_to_the_raw_tables(world):
    lineage = model_lineage(world.settings, "production", NAME)

    def total(kind: str) -> int:
        return sum(ref.rows_loaded or 0 for b in lineage.batches for ref in getattr(b, kind))

    assert total("files") == scalar(world.settings, "select count(*) from raw.orders")
    assert total("api_pages") == scalar(world.settings, "select count(*) from raw.tickets")
    assert total("db_queries") == scalar(world.settings, "select count(*) from raw.crm_customers")
    assert sum(b.rows_loaded for b in lineage.batches) == total("files") + total(
        "api_pages"
    ) + total("db_queries")
    # The second run's incremental query found nothing new, so only the full load counts.
    (first_query,) = [q.query for b in lineage.batches for q in b.db_queries]
    assert "where" not in first_query


def test_each_batch_names_the_dagster_run_that_ingested_it(world):
    lineage = model_lineage(world.settings, "production", NAME)

    runs = [b.run_id for b in lineage.batches]
    # The second run brought new rows only from its order file.
    assert runs == [world.first.run_id] * 3 + [world.second.run_id]
    assert {b.source for b in lineage.batches} == {"order_files", "crm", "tickets_api"}
    assert {b.kind for b in lineage.batches} == {"files", "sql_table", "http_api"}


def test_an_older_version_traces_only_to_the_batches_it_was_trained_on(world):
    lineage = model_lineage(world.settings, world.first.version, NAME)

    assert lineage.aliases == ("previous_production",)
    assert {b.run_id for b in lineage.batches} == {world.first.run_id}
    assert files_by_status(lineage, "loaded", "quarantined") == world.first.delivered
    assert [p.request for b in lineage.batches for p in b.api_pages] == world.first.requests
    assert model_lineage(world.settings, "previous_production", NAME).model == lineage.model


def test_the_training_set_is_the_export_the_model_was_fit_on(world):
    lineage = model_lineage(world.settings, "production", NAME)

    dataset = lineage.training_set
    assert dataset.fingerprint == lineage.model.data_fingerprint
    assert sha256_of(Path(dataset.path)) == dataset.fingerprint
    assert lineage.manifest == Path(dataset.path).with_suffix(".json")
    assert dataset.rows == 60 * 4 and dataset.snapshots == 4
    assert list(dataset.batches) == [b.batch_id for b in lineage.batches]


def test_lineage_json_has_the_documented_keys(capsys, cli_env, world):
    assert main(["lineage", "production", "--model", NAME, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)

    assert set(document) == TOP_LEVEL_KEYS
    assert document["schema_version"] == 1
    assert set(document["model"]) == MODEL_KEYS
    assert document["model"]["version"] == world.second.version
    assert set(document["training_set"]) == TRAINING_SET_KEYS
    assert document["training_set"]["present"] is True
    assert document["warehouse"] == str(cli_env.warehouse_path)
    batches = document["batches"]
    assert len(batches) == 4 and all(set(b) == BATCH_KEYS for b in batches)
    assert all(set(f) == FILE_KEYS for b in batches for f in b["files"])
    assert all(set(p) == PAGE_KEYS for b in batches for p in b["api_pages"])
    assert all(set(q) == QUERY_KEYS for b in batches for q in b["db_queries"])
    assert all(b["started_at"].endswith("+00:00") for b in batches)


def test_lineage_prints_a_tree_down_to_the_files_and_pages(capsys, cli_env, world):
    assert main(["lineage", world.second.version, "--model", NAME]) == 0
    out = capsys.readouterr().out

    assert out.startswith(f"model {world.second.version} (random_forest, production;")
    for name, sha in world.second.delivered.items():
        assert any(name in line and sha[:12] in line for line in out.splitlines()), name
    assert f"GET {world.first.requests[-1]}" in out
    assert "quarantined: " in out


def test_an_unknown_version_is_named_in_the_error(capsys, cli_env):
    unknown = "v20990101T000000-0123456789ab"
    with pytest.raises(LineageError, match=unknown):
        model_lineage(cli_env, unknown, NAME)

    assert main(["lineage", unknown, "--model", NAME]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and f"unknown model version '{unknown}'" in captured.err


def test_production_in_an_empty_registry_is_a_clear_error(settings):
    with pytest.raises(LineageError, match="no model is production"):
        model_lineage(settings, "production", NAME)


def test_the_registered_copy_of_the_manifest_stands_in_for_a_deleted_export(copied):
    lineage = model_lineage(copied, "production", NAME)
    lineage.manifest.unlink()

    fallback = model_lineage(copied, "production", NAME)

    assert fallback.manifest == lineage.model.directory / "training_set.json"
    assert fallback.training_set == lineage.training_set


def test_a_missing_training_set_manifest_is_a_clear_error(copied):
    lineage = model_lineage(copied, "production", NAME)
    lineage.manifest.unlink()
    (lineage.model.directory / "training_set.json").unlink()

    with pytest.raises(LineageError, match="training-set manifest .* is missing") as error:
        model_lineage(copied, "production", NAME)
    assert lineage.model.data_fingerprint in str(error.value)


def test_a_missing_warehouse_is_a_clear_error(copied):
    copied.warehouse_path.unlink()

    with pytest.raises(LineageError, match="warehouse .* does not exist"):
        model_lineage(copied, "production", NAME)
    assert not copied.warehouse_path.exists()  # read-only: nothing was created


def test_a_warehouse_held_by_a_writer_is_reported_not_waited_for(copied):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "sys.stdin.read()",
            str(copied.warehouse_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(LineageError, match="a run is writing it"):
            model_lineage(copied, "production", NAME)
    finally:
        holder.communicate("", timeout=30)


def test_a_batch_that_loaded_no_row_is_not_shown_nor_missing(copied):
    production = model_lineage(copied, "production", NAME)
    empty = production.batches[-1].batch_id
    with wh.connect(copied.warehouse_path, limits=copied.duckdb) as con:
        con.execute(
            "update raw.ingestion_batches set rows_loaded = 0 where batch_id = ?", [empty]
        ).fetchall()

    lineage = model_lineage(copied, "production", NAME)

    assert empty not in {b.batch_id for b in lineage.batches}
    assert lineage.missing_batches == ()
    assert len(lineage.batches) == len(production.batches) - 1


def test_batches_the_warehouse_no_longer_holds_are_listed_as_missing(copied):
    production = model_lineage(copied, "production", NAME)
    gone = production.batches[0].batch_id
    with wh.connect(copied.warehouse_path, limits=copied.duckdb) as con:
        con.execute("delete from raw.ingestion_batches where batch_id = ?", [gone]).fetchall()

    lineage = model_lineage(copied, "production", NAME)

    assert lineage.missing_batches == (gone,)
    assert gone not in {b.batch_id for b in lineage.batches}


def test_a_new_declared_source_of_any_kind_is_walked_by_its_declaration():
    # Lineage knows no source by name: a batch's ledger id finds its declaration, and
    # the declaration's kind says whether its refs are files, API pages or queries.
    spec = {"contract": {"columns": ["id"], "primary_key": ["id"]}}
    system = SourceSystem.model_validate(
        {
            "system": "air",
            "sources": [
                {
                    **spec,
                    "name": "delays",
                    "kind": "http_api",
                    "ledger_id": "delays_api",
                    "base_url_env": "Y",
                    "endpoint": "/d",
                },
                {**spec, "name": "airports", "kind": "sql_table", "url_env": "X", "table": "a"},
            ],
        }
    )
    delays, airports = system.sources
    with duckdb.connect() as con:
        wh.ensure_raw_layer(con)
        con.execute("create table raw.delays (id varchar, _batch_id varchar, _source_ref varchar)")
        con.execute(
            "insert into raw.delays values ('1', 'b1', 'page 1: /d'), ('2', 'b1', 'page 2: /d?c=2')"
        )
        for batch_id, source, refs in (
            ("b1", delays, ["/d", "/d?c=2"]),
            ("b2", airports, ["select * from a"]),
            ("b3", None, ["gone.csv"]),
        ):
            wh.record_batch(
                con,
                batch_id=batch_id,
                source=source.ledger if source else "retired",
                started_at=wh.utc_now(),
                rows_loaded=2,
                refs=refs,
                run_id=None,
                kind=source.kind if source else "files",
            )
        # A batch recorded before the ledger named kinds: its declaration says.
        con.execute("update raw.ingestion_batches set kind = null where batch_id = 'b2'")
        found = {
            b.batch_id: b
            for b in _batches(con, ["b1", "b2", "b3"], {s.ledger: s for s in system.sources})
        }
    assert [(p.page, p.rows_loaded) for p in found["b1"].api_pages] == [(1, 1), (2, 1)]
    assert found["b2"].kind == "sql_table"
    assert [q.query for q in found["b2"].db_queries] == ["select * from a"]
    assert [f.path for f in found["b3"].files] == ["gone.csv"]


def test_an_old_ledger_gains_a_kind_column_and_its_batches_keep_a_null_kind(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw")
        con.execute(
            "create table raw.ingestion_batches (batch_id varchar primary key, source varchar "
            "not null, started_at timestamp not null, finished_at timestamp not null, "
            "rows_loaded bigint not null, refs varchar[] not null, run_id varchar)"
        )
        con.execute(
            "insert into raw.ingestion_batches values ('b1', 'crm', now(), now(), 1, [], null)"
        )
    with wh.connect(path, limits=DuckDBLimits()) as con:
        wh.ensure_raw_layer(con)
        wh.record_batch(
            con,
            batch_id="b2",
            source="crm",
            started_at=wh.utc_now(),
            rows_loaded=0,
            refs=[],
            run_id=None,
            kind="sql_table",
        )
        kinds = con.execute("select batch_id, kind from raw.ingestion_batches order by 1")
        assert kinds.fetchall() == [("b1", None), ("b2", "sql_table")]
