"""Where a model's data came from: version → training set → ingestion batches → sources.

Every link is already recorded where it was made: the registry keeps each version's
``data_fingerprint`` and ``trained_on`` batch ids, the training-set manifest beside the
Parquet export names the batches the warehouse held, and ``raw.ingestion_batches`` /
``raw.file_manifest`` / the raw rows' ``_source_ref`` name the files, API pages and
queries of each batch.  This module only follows the links, reading the warehouse with a
read-only connection, so answering "what was this model trained on?" never needs a run
and never writes anything.

``training-pipeline lineage VERSION --json`` prints ``Lineage.to_dict()``, whose stable
schema is documented in ``lineage_record.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from training_pipeline.ingestion import warehouse as wh
from training_pipeline.lineage_record import ApiPage, Batch, DbQuery, Lineage, OrderFile
from training_pipeline.ml.artifacts import RegistryError
from training_pipeline.ml.datasets import TrainingSet
from training_pipeline.ml.registry import ModelRegistry, ModelVersion, UnknownVersionError
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import Source

ALIASES = ("production", "previous_production")
REGISTRY_COPY = "training_set.json"  # the manifest as registered beside the model


class LineageError(RuntimeError):
    """A link of the chain cannot be followed; the message names which and why."""


def model_lineage(
    settings: Settings,
    version: str,
    model: str | None = None,
    declared: Sequence[Source] | None = None,
) -> Lineage:
    """Follow ``version`` (or the alias ``production`` / ``previous_production``) of the
    declared model ``model`` (default: the only one) to its sources.

    ``declared`` are the project's sources (default: those its folder declares); a
    batch's source is found among them by its ledger id, and its kind says which refs
    it has: files, API pages or queries.

    Raises:
        LineageError: The version is unknown or the alias empty, the training-set manifest
            is gone or names other data, or the warehouse is missing or being written.
    """
    from training_pipeline.components.models import ModelChoiceError, model_registry

    if declared is None:
        declared = _declared_sources(settings)
    by_ledger = {source.ledger: source for source in declared}
    try:
        registry = model_registry(settings, model)
    except (ModelChoiceError, RegistryError) as error:
        raise LineageError(str(error)) from error
    model = _resolve(registry, version)
    dataset, manifest = _training_set(settings, model, registry)
    with ExitStack() as stack:
        batches = _batches(_open_read_only(stack, settings), model.trained_on, by_ledger)
    found = {batch.batch_id for batch in batches}
    aliases = registry.aliases()
    # A batch that loaded nothing (identical files again, an empty feed page) gave the
    # model nothing; versions exported before that rule still name such batches.
    batches = [batch for batch in batches if batch.rows_loaded]
    return Lineage(
        model=model,
        aliases=tuple(a for a in ALIASES if getattr(aliases, a) == model.version),
        training_set=dataset,
        manifest=manifest,
        warehouse=settings.warehouse_path,
        batches=tuple(batches),
        missing_batches=tuple(b for b in model.trained_on if b not in found),
    )


def _resolve(registry: ModelRegistry, version: str) -> ModelVersion:
    name = version
    if version in ALIASES:
        try:
            name = getattr(registry.aliases(), version)
        except RegistryError as error:
            raise LineageError(str(error)) from error
        if name is None:
            raise LineageError(f"no model is {version} in the registry at {registry.root}")
    try:
        return registry.get(name)
    except UnknownVersionError:
        newest = ", ".join(v.version for v in registry.versions()[:3]) or "none registered"
        raise LineageError(
            f"unknown model version {name!r}: the registry at {registry.root} does not list "
            f"it (newest: {newest})"
        ) from None
    except RegistryError as error:  # an index that cannot be read
        raise LineageError(str(error)) from error


def _training_set(
    settings: Settings, model: ModelVersion, registry: ModelRegistry
) -> tuple[TrainingSet, Path | str]:
    """The manifest exported beside the Parquet file, else the copy registered with the model."""
    fingerprint = model.data_fingerprint
    exported = settings.datasets_dir / registry.name / f"{fingerprint[:16]}.json"
    copy = registry.file_location(model.version, REGISTRY_COPY)
    path: Path | str = exported
    try:
        if exported.is_file():
            content = exported.read_bytes()
        else:
            path, content = copy, registry.read_file(model.version, REGISTRY_COPY)
    except FileNotFoundError:
        raise LineageError(
            f"the training-set manifest of {model.version} (data fingerprint {fingerprint}) "
            f"is missing: neither {exported} nor {copy} exists"
        ) from None
    try:
        payload = json.loads(content)
        known = {field.name: payload[field.name] for field in fields(TrainingSet)}
        dataset = TrainingSet(**known | {"batches": tuple(payload["batches"])})
    except (ValueError, TypeError, KeyError) as error:
        raise LineageError(f"the training-set manifest {path} is unreadable: {error}") from error
    if dataset.fingerprint != fingerprint:
        raise LineageError(
            f"the training-set manifest {path} describes data {dataset.fingerprint}, but "
            f"{model.version} was trained on {fingerprint}"
        )
    return dataset, path


def _open_read_only(stack: ExitStack, settings: Settings) -> duckdb.DuckDBPyConnection:
    """The warehouse opened read-only; failing to open it is a LineageError."""
    path = settings.warehouse_path
    try:
        return stack.enter_context(
            wh.connect(path, read_only=True, limits=settings.duckdb, lake=settings.lake)
        )
    except FileNotFoundError as error:
        raise LineageError(str(error)) from None
    except duckdb.Error as error:
        first_line = str(error).strip().splitlines()[0]
        busy = (
            "; a run is writing it, try again when it has finished" if "lock" in first_line else ""
        )
        raise LineageError(
            f"cannot open the warehouse {path} read-only{busy} ({first_line})"
        ) from None


_REF_KINDS = ("files", "api_pages", "db_queries", "other_refs")


def _declared_sources(settings: Settings) -> tuple[Source, ...]:
    # Imported here: the loader builds Dagster definitions, which the rest of lineage
    # does not need.
    from training_pipeline.components import COMPONENT_TYPES
    from training_pipeline.components.loader import load_project
    from training_pipeline.components.sources import declared_sources

    return declared_sources(load_project(settings, COMPONENT_TYPES))


def _batches(
    con: duckdb.DuckDBPyConnection, batch_ids: Sequence[str], declared: Mapping[str, Source]
) -> list[Batch]:
    if wh.table_row_count(con, wh.RAW_SCHEMA, "ingestion_batches") is None:
        raise LineageError("the warehouse has no raw.ingestion_batches: nothing was ingested")
    ids = list(batch_ids)
    rows = con.execute(
        "select batch_id, source, kind, started_at, finished_at, rows_loaded, refs, run_id "
        "from raw.ingestion_batches where list_contains(?::varchar[], batch_id) "
        "order by started_at, batch_id",
        [ids],
    ).fetchall()
    files = _files(con, ids)
    rows_by_ref = {
        ledger: _rows_by_ref(con, source.name, ids)
        for ledger, source in declared.items()
        if source.kind != "files"
    }
    batches = []
    for batch_id, ledger, kind, started, finished, rows_loaded, refs, run_id in rows:
        source = declared.get(ledger)
        # A batch recorded before the ledger named kinds takes its declaration's.
        kind = kind or (source.kind if source else None)
        counted = rows_by_ref.get(ledger, {})
        by_kind: dict[str, tuple[Any, ...]] = dict.fromkeys(_REF_KINDS, ())
        if kind == "files":
            by_kind["files"] = _with_unrecorded(files.get(batch_id, []), refs)
        elif kind == "http_api" and source is not None:
            # Each page's rows are tagged "page <n>: <request>" (ingestion/http_api.py).
            by_kind["api_pages"] = tuple(
                ApiPage(n, ref, counted.get((batch_id, f"page {n}: {ref}"), 0))
                for n, ref in enumerate(refs, start=1)
            )
        elif kind == "sql_table" and source is not None:
            by_kind["db_queries"] = tuple(
                DbQuery(ref, counted.get((batch_id, ref), 0)) for ref in refs
            )
        else:
            by_kind["other_refs"] = tuple(refs)
        times = _utc(started), _utc(finished)
        batches.append(Batch(batch_id, ledger, kind, *times, rows_loaded, run_id, **by_kind))
    return batches


def _files(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, list[OrderFile]]:
    rows = con.execute(
        "select batch_id, path, sha256, format, status, rows_landed, rows_loaded, reason "
        "from raw.file_manifest where list_contains(?::varchar[], batch_id) "
        "order by path, processed_at",
        [ids],
    ).fetchall()
    by_batch: dict[str, list[OrderFile]] = {}
    for batch_id, *columns in rows:
        by_batch.setdefault(batch_id, []).append(OrderFile(*columns))
    return by_batch


def _with_unrecorded(files: list[OrderFile], refs: Iterable[str]) -> tuple[OrderFile, ...]:
    """The manifest's files, plus any ref the manifest lacks (shown, never dropped)."""
    recorded = {f.path for f in files}
    missing = [OrderFile(ref, None, None, None, None, None, None) for ref in refs]
    return tuple(files + [f for f in missing if f.path not in recorded])


def _rows_by_ref(
    con: duckdb.DuckDBPyConnection, table: str, ids: list[str]
) -> Mapping[tuple[str, str], int]:
    if wh.table_row_count(con, wh.RAW_SCHEMA, table) is None:
        return {}
    rows = con.execute(
        f"select _batch_id, _source_ref, count(*) from {wh.RAW_SCHEMA}.{table} "
        "where list_contains(?::varchar[], _batch_id) group by all",
        [ids],
    ).fetchall()
    return {(batch_id, ref): count for batch_id, ref, count in rows}


def _utc(moment: datetime) -> str:
    """The warehouse's naive UTC as ISO 8601 with its zone, like the registry's times."""
    return moment.replace(tzinfo=UTC).isoformat(timespec="microseconds")
