"""The dbt unit tests (`unit_tests:` in examples/dbt/models/**/*.yml), on empty raw tables.

They need no data, only the raw tables' columns, so they belong to the fast tier; the
builds in test_dbt_project.py leave them out.
"""

from __future__ import annotations

import json
from pathlib import Path

from test_dbt_project import load_raw, run_dbt


def test_dbt_unit_tests_pass_when_only_the_raw_tables_exist(tmp_path: Path) -> None:
    # Fixtures given as dicts take their column types from the real source tables, so
    # those must exist (empty is enough); nothing else needs to be built first.
    data_dir = tmp_path / "data"
    load_raw(data_dir)
    result = run_dbt(data_dir, "test", "--select", "test_type:unit")
    assert result.returncode == 0, result.stdout[-4000:]
    run_results = json.loads((data_dir / "dbt_target" / "run_results.json").read_text())
    statuses = [r["status"] for r in run_results["results"]]
    assert len(statuses) >= 10
    assert set(statuses) == {"pass"}
