"""A warehouse's first dbt invocation starts from the parse ``make install`` made.

dbt itself decides whether the saved parse fits (version, profile, vars, file hashes):
these tests pin only which file is handed over, and that a warehouse's own is kept.
"""

from __future__ import annotations

from pathlib import Path

from training_pipeline.project import PARTIAL_PARSE_FILE, seed_partial_parse
from training_pipeline.settings import PROJECT_DBT_TARGET


def _project_parse(dbt_root: Path, content: bytes) -> Path:
    parsed = dbt_root / PROJECT_DBT_TARGET.name / PARTIAL_PARSE_FILE
    parsed.parent.mkdir(parents=True)
    parsed.write_bytes(content)
    return parsed


def test_a_new_warehouse_starts_from_the_projects_parse(tmp_path):
    _project_parse(tmp_path / "dbt", b"parsed by make install")
    state = tmp_path / "data" / "dbt"

    assert seed_partial_parse(tmp_path / "dbt", state)

    assert (state / PARTIAL_PARSE_FILE).read_bytes() == b"parsed by make install"


def test_a_warehouses_own_parse_is_never_replaced(tmp_path):
    _project_parse(tmp_path / "dbt", b"parsed by make install")
    state = tmp_path / "data" / "dbt"
    state.mkdir(parents=True)
    (state / PARTIAL_PARSE_FILE).write_bytes(b"this warehouse's last run")

    assert not seed_partial_parse(tmp_path / "dbt", state)

    assert (state / PARTIAL_PARSE_FILE).read_bytes() == b"this warehouse's last run"


def test_without_a_project_parse_nothing_is_seeded(tmp_path):
    state = tmp_path / "data" / "dbt"

    assert not seed_partial_parse(tmp_path / "dbt", state)

    assert not (state / PARTIAL_PARSE_FILE).exists()
