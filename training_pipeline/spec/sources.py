"""Source declarations: what a project's YAML says about each feed, validated.

One ``SourceSystem`` per system that delivers data (a shop, a CRM, a support desk) holds
its sources; each source is one of three kinds, told apart by ``kind``:

* ``files``: a landing folder that receives CSV / JSON Lines / Parquet files;
* ``sql_table``: a table or query in a database reached through a SQLAlchemy URL;
* ``http_api``: a paginated JSON endpoint.

Every source has a ``contract``: its columns in delivery order (kept as text in
``raw.<name>``), its primary key, and per column what a row must hold
(``ingestion/row_contract.py`` judges rows by it).  Secrets never appear here: a
declaration names the environment variable that holds a URL (``url_env``), and only a
credential-free default may be written out.  A files source's landing may differ per
deployment the same way: ``landing_env`` names a variable that, when set, replaces it.

Every rule that can be checked without the outside world is checked here, so a wrong
declaration fails when the definitions load, naming the field (``FieldError``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from training_pipeline.spec.contracts import Contract, Spec
from training_pipeline.spec.errors import FieldError
from training_pipeline.spec.http_options import CursorPagination, HttpIncremental, Pagination, Retry
from training_pipeline.spec.sizes import byte_size, seconds
from training_pipeline.spec.source_fields import (
    LANDING_ALLOWED,
    NAME_PATTERN,
    credential_free,
    env_name,
    landing_location,
)

KINDS = ("files", "sql_table", "http_api")
FORMATS = ("csv", "jsonl", "parquet")


class _Source(Spec):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str | None = None
    ledger_id: str | None = None  # the id in raw.ingestion_batches / source_cursors
    contract: Contract

    @property
    def ledger(self) -> str:
        """The id this source's batches and cursor are recorded under (default: its name)."""
        return self.ledger_id or self.name

    @property
    def raw_table(self) -> str:
        return f"raw.{self.name}"

    @property
    def asset_key_path(self) -> tuple[str, str]:
        return ("raw", self.name)


class FileLimits(Spec):
    """Per-source landing limits; unset ones take the project's (TRAINING_PIPELINE_*)."""

    max_file_bytes: int | None = None
    max_line_bytes: int | None = None
    settle_s: float | None = None

    @field_validator("max_file_bytes", "max_line_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return None if value is None else byte_size(value)

    @field_validator("settle_s", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else seconds(value)


class FilesSource(_Source):
    kind: Literal["files"]
    # A folder under <data>/landing/ (default: the source's name), or s3://bucket/prefix/.
    landing: str | None = None
    # An environment variable that, when set, replaces ``landing`` (same rules).
    landing_env: str | None = None
    formats: list[Literal["csv", "jsonl", "parquet"]] = list(FORMATS)
    limits: FileLimits = FileLimits()

    @model_validator(mode="after")
    def _rules(self) -> FilesSource:
        if self.landing is not None:
            try:
                landing_location(self.landing)
            except ValueError as error:
                raise FieldError("landing", str(error), LANDING_ALLOWED) from None
        if self.landing_env is not None:
            env_name("landing_env", self.landing_env)
        if not self.formats:
            raise FieldError("formats", "accepts no format", ", ".join(FORMATS))
        return self

    def landing_from(self, lookup: Callable[[str], str | None]) -> FilesSource:
        """This source with ``landing`` replaced by its ``landing_env`` variable's value
        when ``lookup`` finds one set (the same project lands in a local folder on a
        laptop and under an S3 prefix on a cluster); unchanged otherwise.

        Raises:
            FieldError: the variable's value is not a landing (``landing_env``, naming
                the variable and the value).
        """
        value = None if self.landing_env is None else lookup(self.landing_env)
        if value is None:
            return self
        try:
            landing = landing_location(value.strip())
        except ValueError as error:
            problem = f"{self.landing_env}={value!r} is refused: {error}"
            raise FieldError("landing_env", problem, LANDING_ALLOWED) from None
        return self.model_copy(update={"landing": landing})

    @property
    def landing_url(self) -> str | None:
        """The ``s3://bucket/prefix/`` (one trailing slash) deliveries land under, or None
        for a local landing folder."""
        if self.landing is None or not self.landing.startswith("s3://"):
            return None
        return self.landing.rstrip("/") + "/"

    @property
    def landing_folder(self) -> str:
        """The local folder name: the landing folder itself, or for an S3 landing prefix
        the source's name (its quarantine and staging folders are named by it)."""
        if self.landing_url is not None:
            return self.name
        return self.landing or self.name


class SqlIncremental(Spec):
    cursor: str  # a column that grows with every change (e.g. updated_at)
    tiebreak: str | None = None  # ranks rows sharing a cursor value; default: primary key


class SqlTableSource(_Source):
    kind: Literal["sql_table"]
    url_env: str
    url_default: str | None = None  # credential-free; `{data_dir}` is the data directory
    table: str | None = None
    query: str | None = None
    incremental: SqlIncremental | None = None  # None: every run copies the whole table
    batch_rows: int = 10_000

    @model_validator(mode="after")
    def _rules(self) -> SqlTableSource:
        env_name("url_env", self.url_env)
        credential_free("url_default", self.url_default)
        if (self.table is None) == (self.query is None):
            raise FieldError("table", "give exactly one of table and query")
        if self.table is not None and not re.match(r"^[A-Za-z_][\w.]*$", self.table):
            raise FieldError(
                "table", f"{self.table!r} is not a table name", "schema.table or table"
            )
        if self.batch_rows < 1:
            raise FieldError("batch_rows", f"{self.batch_rows} is not a positive number of rows")
        if self.incremental is not None:
            if not self.contract.primary_key:
                raise FieldError("contract.primary_key", "an incremental table needs a primary key")
            self.contract.check_column("incremental.cursor", self.incremental.cursor)
            if self.incremental.tiebreak is not None:
                self.contract.check_column("incremental.tiebreak", self.incremental.tiebreak)
        return self

    def url_fallback(self, data_dir: str) -> str | None:
        return (
            None if self.url_default is None else self.url_default.replace("{data_dir}", data_dir)
        )


class HttpApiSource(_Source):
    kind: Literal["http_api"]
    base_url_env: str
    base_url_default: str | None = None  # credential-free, e.g. a local demo server
    endpoint: str
    records_path: str = "data"  # dotted path of the record list in the body; "" = the body
    pagination: Pagination = CursorPagination(style="cursor")
    page_size_param: str | None = "limit"  # None: the API does not take a page size
    page_size: int = 500
    incremental: HttpIncremental | None = None  # None: every run reads the whole feed
    retry: Retry = Retry()

    @model_validator(mode="after")
    def _rules(self) -> HttpApiSource:
        env_name("base_url_env", self.base_url_env)
        credential_free("base_url_default", self.base_url_default)
        if not self.endpoint.startswith("/") or "://" in self.endpoint:
            raise FieldError(
                "endpoint", f"{self.endpoint!r} is not a path", "a path such as /items"
            )
        if self.page_size < 1:
            raise FieldError("page_size", f"{self.page_size} is not a positive page size")
        if not self.contract.primary_key:
            raise FieldError("contract.primary_key", "an API source needs a record key")
        if isinstance(self.pagination, CursorPagination) and not self.records_path:
            raise FieldError(
                "records_path",
                "is empty (the body is the list), so the body has no room for the next cursor",
                "the path of the record list beside the cursor, e.g. data",
            )
        if self.incremental is not None:
            self.contract.check_column("incremental.updated_field", self.incremental.updated_field)
        return self


Source = Annotated[FilesSource | SqlTableSource | HttpApiSource, Field(discriminator="kind")]


class SourceSystem(Spec):
    """One system's sources: the dbt source name (and staging prefix) is ``system``."""

    system: Annotated[str, Field(pattern=NAME_PATTERN)]
    owner: str | None = None  # e.g. team:data-platform or someone@example.com
    description: str | None = None
    sources: list[Source]

    @field_validator("sources", mode="before")
    @classmethod
    def _known_kinds(cls, value: Any) -> Any:
        """Say which kinds exist, instead of pydantic's discriminator message."""
        for position, source in enumerate(value if isinstance(value, list) else []):
            kind = source.get("kind") if isinstance(source, dict) else None
            if kind not in KINDS:
                problem = "is missing" if kind is None else f"{kind!r} is not a source kind"
                raise FieldError(f"{position}.kind", problem, ", ".join(KINDS))
        return value

    @model_validator(mode="after")
    def _unique(self) -> SourceSystem:
        if not self.sources:
            raise FieldError("sources", "declares no source", "at least one source")
        seen: set[str] = set()
        for position, source in enumerate(self.sources):
            if source.name in seen:
                raise FieldError(f"sources.{position}.name", f"{source.name!r} is declared twice")
            seen.add(source.name)
        return self

    def landings_from(self, lookup: Callable[[str], str | None]) -> SourceSystem:
        """These sources with each files source's ``landing_env`` applied
        (``FilesSource.landing_from``).

        Raises:
            FieldError: a variable's value is not a landing; names the source's position.
        """
        sources: list[Source] = []
        for position, source in enumerate(self.sources):
            try:
                sources.append(
                    source.landing_from(lookup) if isinstance(source, FilesSource) else source
                )
            except FieldError as error:
                problem = error.problem
                field = f"sources.{position}.{problem.field}"
                raise FieldError(field, problem.problem, problem.allowed) from None
        return self.model_copy(update={"sources": sources})
