"""The definitions load, and the graph is the one lineage the design promises."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import dagster as dg

from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.definitions import build_definitions, defs
from training_pipeline.resources import WAREHOUSE_POOL
from training_pipeline.settings import Settings

REPO = Path(__file__).parents[1]


HEAVY = ("sklearn", "scipy", "optuna", "pandas", "evidently", "skops")


def test_dagster_validates_the_definitions_without_importing_a_training_library():
    """`dagster definitions validate` loads the code location as the code server does, in
    its own process.  Every UI reload, sensor tick and run start loads the definitions:
    scikit-learn, optuna, pandas and evidently load only in the steps that train, score
    and report.  One fresh interpreter checks both (this one has imported them all)."""
    code = (
        "import sys\n"
        "from dagster._cli import main\n"
        "sys.argv = ['dagster', 'definitions', 'validate', '-w', 'workspace.yaml']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    status = done.code\n"
        f"print('heavy:', *(name for name in {HEAVY!r} if name in sys.modules))\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation." in result.stdout
    (heavy,) = [line for line in result.stdout.splitlines() if line.startswith("heavy:")]
    assert heavy.split()[1:] == []


def test_dbt_sources_are_the_ingestion_assets_so_lineage_is_connected():
    graph = defs().resolve_asset_graph()
    raw = {
        dg.AssetKey(["raw", t]) for t in ("orders", "crm_customers", "tickets", "seattle_weather")
    }
    assert raw <= set(graph.get_all_asset_keys())
    staging_parents = {
        key: graph.get(key).parent_keys
        for key in graph.get_all_asset_keys()
        if key.path[-1].startswith("stg_")
    }
    outside_staging = {
        p for parents in staging_parents.values() for p in parents if p.path[0] != "staging"
    }
    assert outside_staging == raw


def test_every_asset_that_opens_the_warehouse_is_in_the_warehouse_pool():
    graph = defs().resolve_asset_graph()
    openers = 0
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assets_def = node.assets_def
        # The warehouse resource opens the DuckDB file; dbt opens it through its profile.
        if {"warehouse", "dbt"} & set(assets_def.required_resource_keys):
            openers += 1
            assert assets_def.op.pool == WAREHOUSE_POOL, f"{key} is not in the warehouse pool"
            assert "duckdb" in assets_def.specs_by_key[key].kinds, f"{key} lacks the duckdb kind"
        else:
            assert assets_def.op.pool != WAREHOUSE_POOL, f"{key} holds the warehouse needlessly"
    assert openers >= 5


def test_the_committed_dagster_home_limits_every_pool_to_one_slot(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def config_defaults(graph, asset: str) -> dict:
    key = dg.AssetKey.from_user_string(asset)
    fields = graph.get(key).assets_def.op.config_schema.config_type.fields
    return {name: field.default_value for name, field in fields.items()}


def test_the_variables_the_churn_yaml_reads_shape_run_config_defaults_clock_and_triggers(
    settings: Settings, monkeypatch
):
    for variable, value in {
        "TUNING_TRIALS": "7",
        "TUNING_SECONDS": "9",
        "GATE_AUC_FLOOR": "0.7",
        "RETRAIN_POLICY": "cron",
        "RETRAIN_CRON": "0 3 * * *",
        "NIGHTLY_RETRAIN": "off",
    }.items():
        monkeypatch.setenv(f"TRAINING_PIPELINE_{variable}", value)
    configured = replace(settings, policy=RetrainingPolicy(sensor_interval_s=99))

    loaded = build_definitions(configured)

    graph = loaded.resolve_asset_graph()
    candidate = config_defaults(graph, "churn/candidate")
    assert (candidate["n_trials"], candidate["timeout_s"]) == (7, 9.0)
    assert config_defaults(graph, "churn/validation")["floor"] == 0.7
    assert loaded.get_sensor_def("new_data_sensor").minimum_interval_seconds == 99
    nightly = loaded.get_schedule_def("churn__nightly_retrain")
    assert (nightly.cron_schedule, nightly.default_status) == (
        "0 3 * * *",
        dg.DefaultScheduleStatus.STOPPED,
    )
    training_set = graph.get(dg.AssetKey(["churn", "training_set"]))
    assert "on_cron(0 3 * * *" in training_set.automation_condition.label
    drift = loaded.get_sensor_def("churn__drift_retraining")
    assert drift.default_status == dg.DefaultSensorStatus.STOPPED
    assert drift.minimum_interval_seconds == 99
