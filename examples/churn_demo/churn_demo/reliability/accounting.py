"""After faults: was every landed row loaded, rejected or quarantined exactly once, and is the
production model the one last promoted, intact, loadable and predicting?

Counted from the sources' side (what was landed: the chaos ledger, the CRM database, the
demo ticket store) against the warehouse, never from the pipeline's own bookkeeping
alone, so a crash that lost a file together with its manifest row still shows as lost.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import sqlalchemy as sa

from churn_demo import ticket_store
from churn_demo.reliability import DEMO_MODEL
from churn_demo.reliability.bad_files import LandedFile
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.settings import Settings


@dataclass(frozen=True)
class SourceLine:
    source: str
    rows_landed: int
    rows_loaded: int
    rows_quarantined: int = 0
    duplicates: int = 0
    files_landed: int | None = None  # None: the source does not deliver files
    files_loaded: int | None = None
    files_quarantined: int | None = None
    rows_rejected: int = 0  # refused by the row contract, kept in raw.rejected_rows

    @property
    def lost(self) -> int:
        return self.rows_landed - self.rows_loaded - self.rows_rejected - self.rows_quarantined

    @property
    def holds(self) -> bool:
        return self.lost == 0 and self.duplicates == 0


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def account_order_files(con: duckdb.DuckDBPyConnection, landed: Sequence[LandedFile]) -> SourceLine:
    """Each landed file must be loaded once (each of its rows exactly once in raw.orders
    or in raw.rejected_rows) or sit, unchanged, in quarantine with a manifest row;
    anything else is lost or duplicated."""
    manifest: dict[tuple[str, str], list[tuple[str, str, str | None]]] = {}
    for path, sha, status, batch, quarantine_path in con.execute(
        "select path, sha256, status, batch_id, quarantine_path from raw.file_manifest "
        "order by processed_at"
    ).fetchall():
        manifest.setdefault((path, sha), []).append((status, batch, quarantine_path))
    present = {
        (path, batch): n
        for path, batch, n in con.execute(
            "select _source_ref, _batch_id, count(*) from raw.orders group by all"
        ).fetchall()
    }
    refused = {
        (path, batch): n
        for path, batch, n in con.execute(
            f"select source_ref, batch_id, count(*) from {wh.REJECTED_ROWS} "
            "where raw_table = 'orders' group by all"
        ).fetchall()
    }
    names = {f.name for f in landed}
    accounted: set[tuple[str, str]] = set()
    files_loaded = files_quarantined = rows_loaded = rows_quarantined = duplicates = 0
    rows_rejected = 0
    for f in landed:
        entries = manifest.get((f.name, f.sha256), [])
        loads = [batch for status, batch, _ in entries if status == "loaded"]
        quarantines = [q for status, _, q in entries if status == "quarantined"]
        if loads:
            files_loaded += 1
            loaded = [present.get((f.name, batch), 0) for batch in loads]
            rejected = [refused.get((f.name, batch), 0) for batch in loads]
            accounted.update((f.name, batch) for batch in loads)
            rows_loaded += min(loaded[0], f.rows)
            rows_rejected += min(rejected[0], f.rows - min(loaded[0], f.rows))
            duplicates += max(loaded[0] + rejected[0] - f.rows, 0)
            duplicates += sum(loaded[1:]) + sum(rejected[1:])
        elif any(q and _sha256(Path(q)) == f.sha256 for q in quarantines):
            files_quarantined += 1
            rows_quarantined += f.rows
    # Rows of a landed file's name in a batch that no manifest row accounts for.
    duplicates += sum(
        n
        for (path, batch), n in present.items()
        if path in names and (path, batch) not in accounted
    )
    return SourceLine(
        "order files",
        sum(f.rows for f in landed),
        rows_loaded,
        rows_quarantined,
        duplicates,
        len(landed),
        files_loaded,
        files_quarantined,
        rows_rejected,
    )


def _keyed(
    source: str,
    landed_keys: Sequence[tuple],
    raw_keys: Sequence[tuple],
    rejected_keys: Sequence[tuple] = (),
) -> SourceLine:
    raw_set, rejected_set = set(raw_keys), set(rejected_keys)
    loaded = sum(1 for key in set(landed_keys) if key in raw_set)
    rejected = sum(1 for key in set(landed_keys) if key in rejected_set and key not in raw_set)
    counts = Counter(raw_keys) + Counter(rejected_keys)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    return SourceLine(
        source, len(set(landed_keys)), loaded, duplicates=duplicates, rows_rejected=rejected
    )


def _rejected_keys(con: duckdb.DuckDBPyConnection, table: str, keys: Sequence[str]) -> list[tuple]:
    fields = ", ".join(f"json_extract_string(row_json, '$.{k}')" for k in keys)
    return [
        tuple(r)
        for r in con.execute(
            f"select {fields} from {wh.REJECTED_ROWS} where raw_table = ?", [table]
        ).fetchall()
    ]


def account_crm(con: duckdb.DuckDBPyConnection, crm_url: str) -> SourceLine:
    """Every CRM record (by record_id) in raw.crm_customers once."""
    engine = sa.create_engine(crm_url)
    try:
        with engine.connect() as conn:
            ids = [(str(r),) for (r,) in conn.execute(sa.text("select record_id from customers"))]
    finally:
        engine.dispose()
    raw = con.execute("select record_id from raw.crm_customers").fetchall()
    rejected = _rejected_keys(con, "crm_customers", ("record_id",))
    return _keyed("crm records", ids, [tuple(r) for r in raw], rejected)


def account_tickets(con: duckdb.DuckDBPyConnection, settings: Settings) -> SourceLine:
    """Every ticket version the demo API serves in raw.tickets once."""
    versions = ticket_store.all_versions(ticket_store.ticket_store_path(settings))
    served = [(v["ticket_id"], v["updated_at"]) for v in versions]
    raw = con.execute("select ticket_id, updated_at from raw.tickets").fetchall()
    rejected = _rejected_keys(con, "tickets", ("ticket_id", "updated_at"))
    return _keyed("ticket versions", served, [tuple(r) for r in raw], rejected)


@dataclass(frozen=True)
class ModelCheck:
    version: str | None
    last_promoted: str | None  # production after the alias history's last change
    sha256_verified: bool = False
    loads: bool = False
    rows_scored: int = 0
    problems: tuple[str, ...] = ()

    @property
    def holds(self) -> bool:
        if self.version is None:  # nothing to check only if nothing was ever promoted
            return self.last_promoted is None and not self.problems
        return (
            self.version == self.last_promoted
            and self.sha256_verified
            and self.loads
            and self.rows_scored > 0
            and not self.problems
        )


def check_production_model(settings: Settings) -> ModelCheck:
    """The production model is the last one promoted, its bytes are the ones registered,
    it loads through the registry's verification, and it scores the current snapshot."""
    registry = ModelRegistry.for_model(settings.models_dir, DEMO_MODEL)
    production = registry.production()
    history = registry.history()
    last = history[-1].after.production if history else None
    if production is None:
        return ModelCheck(None, last)
    verified = _sha256(production.artifact_path) == production.sha256
    model = registry.load(production.version)  # raises on a bad hash, type or version
    # The problem as the registry stored it: the relation and the roles the model saw.
    problem = registry.metadata(production.version)["problem"]
    features = ", ".join([*problem["numeric"], *problem["categorical"]])
    relation, time = problem["relation"], problem["time_column"]
    with wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con:
        current = con.execute(
            f"select {features} from {relation} where {time} = (select max({time}) from {relation})"
        ).df()
    scores = model.predict_proba(current)[:, 1]
    problems = () if ((scores >= 0) & (scores <= 1)).all() else ("scores outside [0, 1]",)
    return ModelCheck(production.version, last, verified, True, len(scores), problems)


@dataclass(frozen=True)
class PublishedFiles:
    """What a reader of the data directory can see: complete files only."""

    problems: tuple[str, ...] = ()
    hidden_leftovers: tuple[str, ...] = field(default=())  # temporaries of killed writers


def _version_problems(directory: Path) -> list[str]:
    try:
        metadata = json.loads((directory / "metadata.json").read_bytes())
    except (FileNotFoundError, json.JSONDecodeError) as error:
        return [f"{directory}: metadata.json unreadable ({error})"]
    expected = {"model.skops": metadata.get("sha256"), **metadata.get("files", {})}
    return [
        f"{directory / name}: sha256 differs from metadata.json"
        for name, sha in expected.items()
        if _sha256(directory / name) != sha
    ]


def check_published_files(settings: Settings) -> PublishedFiles:
    """Registry versions and training-set exports under their final names are complete."""
    problems: list[str] = []
    versions = settings.models_dir / DEMO_MODEL / "versions"
    for directory in sorted(versions.iterdir()) if versions.is_dir() else []:
        if not directory.name.startswith("."):
            problems += _version_problems(directory)
    index = settings.models_dir / DEMO_MODEL / "registry.json"
    if index.exists():
        try:
            json.loads(index.read_bytes())
        except json.JSONDecodeError as error:
            problems.append(f"{index}: not valid JSON ({error})")
    datasets = settings.datasets_dir / DEMO_MODEL
    for parquet in sorted(datasets.glob("[!.]*.parquet")) if datasets.is_dir() else []:
        if not (_sha256(parquet) or "").startswith(parquet.stem):
            problems.append(f"{parquet}: content does not match its name")
    leftovers = sorted(
        str(p.relative_to(settings.data_dir))
        for p in settings.data_dir.rglob(".*")
        if any(marker in p.name for marker in (".tmp", ".staging-", ".export-", ".landing"))
    )
    return PublishedFiles(tuple(problems), tuple(leftovers))
