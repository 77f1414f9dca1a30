"""dbt-duckdb plugin for the DuckLake profile (dbt_project/profiles.yml, target ``lake``).

dbt-duckdb would ``INSTALL`` a profile's extensions, which downloads; this loads them from
their wheels before dbt attaches the lake, and confines dbt's connection to the data
directory and the lake's data path once the lake is attached, as the pipeline's own
connections are (``warehouse.connect``).  The profile hands the settings in as the same
variables the pipeline reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from training_pipeline.ingestion.lake import DuckLake, S3Access, prepare
from training_pipeline.ingestion.warehouse import confine_beside_lake


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.data_dir = Path(plugin_config["data_dir"])
        s3 = None
        if plugin_config.get("s3_key_id") and plugin_config.get("s3_secret"):
            s3 = S3Access(
                plugin_config["s3_key_id"],
                plugin_config["s3_secret"],
                plugin_config.get("s3_region") or "us-east-1",
                plugin_config.get("s3_endpoint_url") or None,
            )
        # The catalog is dbt's own attachment (the profile's ``attach``), not this one's.
        self.lake = DuckLake("", plugin_config["data_path"], s3=s3)

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        prepare(conn, self.lake)

    def configure_cursor(self, cursor: DuckDBPyConnection) -> None:
        # dbt-duckdb calls this for every cursor; the confinement is set on the first and
        # holds for the database's life (it cannot be set twice).
        enabled = cursor.execute("select current_setting('enable_external_access')").fetchall()
        if enabled[0][0]:
            confine_beside_lake(cursor, self.data_dir, self.lake)
