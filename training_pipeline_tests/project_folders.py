"""Temporary project folders that share the example's dbt models.

A project folder carries its dbt models and the manifest parsed from them
(``<project>/dbt``).  A test whose temporary project declares sources or models over the
example's tables links the example's ``dbt/`` folder instead of parsing a copy (a parse
costs seconds); nothing here writes into it.
"""

from __future__ import annotations

from pathlib import Path

from training_pipeline.settings import DEFAULT_PROJECT_DIR


def project_folder(project_dir: Path) -> Path:
    """``project_dir`` with an empty ``defs/`` and the example's dbt models and manifest."""
    (project_dir / "defs").mkdir(parents=True, exist_ok=True)
    (project_dir / "dbt").symlink_to(DEFAULT_PROJECT_DIR / "dbt", target_is_directory=True)
    return project_dir
