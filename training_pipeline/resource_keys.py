"""What resources hand on without recording a secret's value: a value that may hold a
password becomes its variable's name (``dg.EnvVar``), and the S3 keys every resource
on s3:// carries (the DuckLake warehouse, a files source's landing prefix)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from training_pipeline.environment import is_set
from training_pipeline.ingestion.lake import S3Access


def secret_or_name(variable: str, value: str) -> str | dg.EnvVar:
    """A value that may hold a password: Dagster then records the variable's name only."""
    return dg.EnvVar(variable) if is_set(variable) else value


class S3KeysResource(dg.ConfigurableResource):
    """The S3 keys a resource hands on (as their variables' names) and the endpoint."""

    s3_key_id: str | None = None
    s3_secret: str | None = None
    s3_region: str = "us-east-1"
    s3_endpoint_url: str | None = None

    @staticmethod
    def key_fields(access: S3Access | None) -> dict[str, Any]:
        if access is None:
            return {}
        return {
            "s3_key_id": secret_or_name("AWS_ACCESS_KEY_ID", access.key_id),
            "s3_secret": secret_or_name("AWS_SECRET_ACCESS_KEY", access.secret),
            "s3_region": access.region,
            "s3_endpoint_url": access.endpoint_url,
        }

    def s3_access(self) -> S3Access | None:
        """The keys, or None when none were handed on.  Outside a run (``training-pipeline
        run`` waiting for settling objects) they are still the ``dg.EnvVar`` the
        definitions hold; Dagster resolves them in a run."""
        key_id, secret = (
            value.get_value() if isinstance(value, dg.EnvVar) else value
            for value in (self.s3_key_id, self.s3_secret)
        )
        if not key_id or not secret:
            return None
        return S3Access(key_id, secret, self.s3_region, self.s3_endpoint_url)
