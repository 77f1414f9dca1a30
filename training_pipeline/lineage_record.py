"""What ``training-pipeline lineage VERSION --json`` prints: ``Lineage.to_dict()``.

Its keys are stable within a ``schema_version`` (new keys may be added; renaming or
removing one bumps the version)::

    {
      "schema_version": 1,
      "model": {
        "version": "v20250301T120000-3f2a9c1b7d4e",
        "family": "random_forest",
        "created_at": "2025-03-01T12:00:00.000000+00:00",
        "sha256": "<hex digest of model.skops>",
        "code_version": "<git commit>" | "unknown",
        "data_fingerprint": "<sha256 of the training Parquet>",
        "aliases": ["production"] | ["previous_production"] | []
      },
      "training_set": {
        "path": "/abs/data/datasets/<fingerprint[:16]>.parquet",
        "present": true,                    # the Parquet file is still there
        "manifest": "/abs/data/datasets/<fingerprint[:16]>.json",  # if deleted: the
                                            # copy in models/versions/<version>/
        "fingerprint": "<sha256>",
        "rows": 12000, "snapshots": 30,
        "first_snapshot": "2025-01-06", "last_snapshot": "2025-07-28",
        "positive_rate": 0.22
      },
      "warehouse": "/abs/data/warehouse.duckdb",
      "batches": [                          # trained_on batches found, oldest first
        {
          "batch_id": "order_files-20250301T120000-1a2b3c4d",
          "source": "<the source's ledger id>",   # e.g. order_files, crm, tickets_api
          "kind": "files" | "sql_table" | "http_api" | null,  # null: no declaration
          "started_at": "<ISO 8601 UTC>", "finished_at": "<ISO 8601 UTC>",
          "rows_loaded": 3000,
          "run_id": "<Dagster run id>" | null,
          "files": [                        # files source: every file the batch processed
            {"path": "orders_2025-01-06.csv",   # relative to the landing folder
             "sha256": "<hex>" | null, "format": "csv" | ... | null,
             "status": "loaded" | "quarantined" | null,   # null: not in file_manifest
             "rows_landed": 120 | null, "rows_loaded": 120 | null, "reason": null | "..."}
          ],
          "api_pages": [                    # http_api source: one per page requested
            {"page": 1, "request": "/tickets?limit=500&updated_since=...", "rows_loaded": 500}
          ],
          "db_queries": [                   # sql_table source: the query that was run
            {"query": "select ... from customers where updated_at >= '...'",
             "rows_loaded": 1500}
          ],
          "other_refs": ["..."]             # refs of a source the project no longer declares
          # rows_loaded of a page or query: its rows in the raw table (new ones only)
        }
      ],
      "missing_batches": ["..."]            # trained_on ids the warehouse does not hold
    }
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training_pipeline.ml.datasets import TrainingSet
from training_pipeline.ml.registry import ModelVersion

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class OrderFile:
    path: str
    sha256: str | None
    format: str | None
    status: str | None
    rows_landed: int | None
    rows_loaded: int | None
    reason: str | None


@dataclass(frozen=True)
class ApiPage:
    page: int
    request: str
    rows_loaded: int


@dataclass(frozen=True)
class DbQuery:
    query: str
    rows_loaded: int


@dataclass(frozen=True)
class Batch:
    batch_id: str
    source: str
    kind: str | None
    started_at: str
    finished_at: str
    rows_loaded: int
    run_id: str | None
    files: tuple[OrderFile, ...]
    api_pages: tuple[ApiPage, ...]
    db_queries: tuple[DbQuery, ...]
    other_refs: tuple[str, ...]


@dataclass(frozen=True)
class Lineage:
    model: ModelVersion
    aliases: tuple[str, ...]
    training_set: TrainingSet
    manifest: Path | str  # a path, or an s3:// URI (the registry's copy on S3)
    warehouse: Path
    batches: tuple[Batch, ...]
    missing_batches: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON object documented in the module docstring."""
        model, dataset = self.model, self.training_set
        return {
            "schema_version": SCHEMA_VERSION,
            "model": {
                "version": model.version,
                "family": model.family,
                "created_at": model.created_at,
                "sha256": model.sha256,
                "code_version": model.code_version,
                "data_fingerprint": model.data_fingerprint,
                "aliases": list(self.aliases),
            },
            "training_set": {
                "path": dataset.path,
                "present": Path(dataset.path).exists(),
                "manifest": str(self.manifest),
                "fingerprint": dataset.fingerprint,
                "rows": dataset.rows,
                "snapshots": dataset.snapshots,
                "first_snapshot": dataset.first_snapshot,
                "last_snapshot": dataset.last_snapshot,
                "positive_rate": dataset.label_mean,
            },
            "warehouse": str(self.warehouse),
            "batches": [asdict(batch) for batch in self.batches],
            "missing_batches": list(self.missing_batches),
        }
