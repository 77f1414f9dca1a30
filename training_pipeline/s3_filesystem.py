"""The one place an ``s3fs`` filesystem is built, for everything the pipeline keeps on s3://.

Landing prefixes (``ingestion/landing_s3.py``) and the model registry's store
(``ml/registry_s3.py``) both reach S3 through the filesystem made here, from the
``S3Access`` the settings read once (the standard AWS variables and
``TRAINING_PIPELINE_S3_ENDPOINT_URL``, ``settings.s3_access_from_env``).  DuckDB's own
access to a DuckLake on S3 is a DuckDB secret instead (``ingestion/lake.py``).
"""

from __future__ import annotations

from typing import Any

from training_pipeline.ingestion.lake import S3Access


def s3_filesystem(access: S3Access) -> Any:
    """An ``s3fs.S3FileSystem`` for ``access``.

    Neither instances nor listings are cached: a cached listing would hide an object
    that landed after the first look (the sensor and ingestion must see it), and a
    cached instance would keep the credentials of the first caller in the process.
    """
    import s3fs  # lazy: the definitions load without boto

    return s3fs.S3FileSystem(
        key=access.key_id,
        secret=access.secret,
        endpoint_url=access.endpoint_url,
        client_kwargs={"region_name": access.region},
        skip_instance_cache=True,
        use_listings_cache=False,
    )
