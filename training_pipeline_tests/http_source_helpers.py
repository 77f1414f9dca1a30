"""The churn example's declared ticket API, and clients of it with test-sized retries."""

from __future__ import annotations

from typing import Any

import duckdb
import yaml

from training_pipeline.assets.source_common import source_resource_key
from training_pipeline.assets.source_http import (
    HttpSourceResource,
    base_url_of,
    build_http_source_asset,
)
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.http_api import HttpApiClient, ensure_source_table
from training_pipeline.settings import REPO_ROOT
from training_pipeline.spec.http_options import Retry
from training_pipeline.spec.sources import HttpApiSource, SourceSystem

SUPPORT_YAML = REPO_ROOT / "examples" / "defs" / "churn" / "support" / "defs.yaml"
LEDGER = "tickets_api"  # the declaration's ledger_id: existing data dirs keep their cursor


def churn_support() -> SourceSystem:
    return SourceSystem.model_validate(yaml.safe_load(SUPPORT_YAML.read_text())["attributes"])


def churn_tickets(**changes: Any) -> HttpApiSource:
    """The declaration as examples/ ships it, with ``changes`` applied."""
    (source,) = churn_support().sources
    assert isinstance(source, HttpApiSource)
    return HttpApiSource.model_validate(source.model_dump() | changes)


# raw/tickets as the project's definitions build it from the declaration.
raw_tickets = build_http_source_asset(churn_support(), churn_tickets())


def tickets_resources(base_url: str | None = None, **changes: Any) -> dict[str, object]:
    """The resource raw/tickets needs: at ``base_url``, else where the declaration says
    (its variable when set, else its default)."""
    source = churn_tickets(**changes)
    return {
        source_resource_key(source): HttpSourceResource.of(source, base_url or base_url_of(source))
    }


def ensure_raw_layer(con: duckdb.DuckDBPyConnection) -> None:
    """The raw layer with the declared raw.tickets, as the raw/tickets asset prepares it."""
    wh.ensure_raw_layer(con)
    ensure_source_table(con, churn_tickets())


def tickets_client(
    base_url: str,
    *,
    page_size: int = 500,
    timeout_s: float = 10.0,
    attempts: int = 3,
    backoff_s: float = 0.01,
    **client_options: Any,
) -> HttpApiClient:
    """A client of the declared ticket API at ``base_url``, retrying fast."""
    retry = Retry(attempts=attempts, backoff_s=backoff_s, timeout_s=timeout_s)
    source = churn_tickets(page_size=page_size, retry=retry.model_dump())
    return HttpApiClient(source, base_url, **client_options)
