"""The one place an s3fs filesystem is built from the project's S3 settings.

DuckDB reaches the bucket itself (``ingestion/lake.py``, a DuckDB secret); everything the
pipeline reads or writes on s3:// from Python (the model registry) goes through the
filesystem made here, so credentials, region and endpoint are applied one way.  s3fs is
imported on call: the definitions load without it.
"""

from __future__ import annotations

from typing import Any

from training_pipeline.ingestion.lake import S3Access


def s3_filesystem(access: S3Access) -> Any:
    """An ``s3fs.S3FileSystem`` for ``access``; a new instance each call (no cache shared
    between settings), listing nothing from its own cache (``use_listings_cache=False``):
    the registry relies on a fresh listing to find the newest index generation."""
    import s3fs

    client_kwargs = {"region_name": access.region}
    return s3fs.S3FileSystem(
        key=access.key_id,
        secret=access.secret,
        endpoint_url=access.endpoint_url,
        client_kwargs=client_kwargs,
        skip_instance_cache=True,
        use_listings_cache=False,
    )
