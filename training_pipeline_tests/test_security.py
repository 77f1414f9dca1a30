"""Security: nothing outside the data directory is read or written, and the servers listen
on loopback unless told otherwise (secrets: test_secrets.py)."""

import inspect
import os
import subprocess
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from churn_demo import cli as demo_cli
from churn_demo import declared
from churn_demo.api_server import DemoApiServer
from declared_sources import resources_with_sources

from training_pipeline import cli, runner
from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.errors import DeclarationError
from training_pipeline.components.loader import load_project
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.resources import build_resources
from training_pipeline.settings import DBT_PROJECT_DIR, REPO_ROOT, Settings, SettingsError

DBT = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[1] / ".venv")) / "bin" / "dbt"
PASSWORD = "S3cretPw0rd-h4"
POSTGRES = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/test"
READERS = ("read_csv(?)", "read_json(?)", "read_parquet(?)", "glob(?)")


# --- containment --------------------------------------------------------------------------


@pytest.fixture
def outside_file(tmp_path: Path) -> Path:
    """A readable order file beside, not inside, the data directory."""
    (tmp_path / "outside").mkdir()
    path = tmp_path / "outside" / "orders_secret.csv"
    path.write_text("order_id,customer_id,ordered_at,amount,status\nX1,C1,2026-01-01,1,new\n")
    return path


def escapes(settings: Settings, outside_file: Path) -> list[Path]:
    """Ways to name ``outside_file`` from a connection on the warehouse: directly, through
    ``..`` from the landing folder, and through a symlink in the landing folder."""
    declared.orders_landing(settings).mkdir(parents=True)
    link = declared.orders_landing(settings) / "orders_link.csv"
    link.symlink_to(outside_file)
    dotted = declared.orders_landing(settings) / ".." / ".." / ".." / "outside" / outside_file.name
    assert dotted.resolve() == outside_file
    return [outside_file, dotted, link, Path("/etc/passwd")]


def write_good_file(reader: str, landing: Path) -> Path:
    """A one-row file ``reader`` can read, in the landing folder."""
    if reader.startswith("read_json"):
        path = landing / "orders_1.jsonl"
        path.write_text('{"order_id": "O1", "customer_id": "C1"}\n')
    elif reader.startswith("read_parquet"):
        path = landing / "orders_1.parquet"
        pq.write_table(pa.table({"order_id": ["O1"]}), path)
    else:
        path = landing / "orders_1.csv"
        path.write_text("order_id,customer_id\nO1,C1\n")
    return path


@pytest.mark.parametrize("reader", READERS)
def test_a_warehouse_connection_cannot_read_a_file_outside_the_data_directory(
    settings, outside_file, reader
):
    paths = escapes(settings, outside_file)
    good = write_good_file(reader, declared.orders_landing(settings))
    with wh.connect(settings.warehouse_path, limits=settings.duckdb) as con:
        assert con.execute(f"select count(*) from {reader}", [str(good)]).fetchall() == [(1,)]
        for path in paths:
            with pytest.raises(duckdb.PermissionException, match=r"Cannot access file"):
                con.execute(f"select * from {reader}", [str(path)]).fetchall()
    with (
        wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con,
        pytest.raises(duckdb.PermissionException, match=r"Cannot access file"),
    ):
        con.execute(f"select * from {reader}", [str(outside_file)]).fetchall()


def test_a_warehouse_connection_cannot_write_attach_or_lift_its_confinement(settings, tmp_path):
    target = tmp_path / "stolen.parquet"
    with wh.connect(settings.warehouse_path, limits=settings.duckdb) as con:
        inside = settings.data_dir / "inside.parquet"
        con.execute(f"copy (select 1 as x) to '{inside}' (format parquet)").fetchall()
        assert inside.exists()
        refused = [
            f"copy (select 1 as x) to '{target}' (format parquet)",
            f"attach '{tmp_path / 'other.duckdb'}' as other",
            "install httpfs",
        ]
        for sql in refused:
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql).fetchall()
        for sql in ("set enable_external_access = true", "set allowed_directories = ['/']"):
            with pytest.raises(duckdb.InvalidInputException, match="Cannot"):
                con.execute(sql).fetchall()
    assert not target.exists() and not (tmp_path / "other.duckdb").exists()


@pytest.mark.slow
def test_dbt_connections_cannot_read_any_file(settings):
    settings.data_dir.mkdir(parents=True)
    shown = subprocess.run(
        [
            str(DBT), "show", "--inline", "select * from read_csv('/etc/passwd')",
            "--profiles-dir", ".", "--target-path", str(settings.data_dir / "dbt_target"),
            "--log-path", str(settings.data_dir / "dbt_logs"),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, "TRAINING_PIPELINE_DATA_DIR": str(settings.data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert shown.returncode != 0
    assert "Permission Error" in shown.stdout and "root:" not in shown.stdout


def test_a_folder_of_the_data_directory_that_leads_outside_it_is_refused(settings, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "landing").symlink_to(elsewhere)
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    message = str(refused.value)
    assert "landing folder" in message and str(elsewhere) in message
    assert "TRAINING_PIPELINE_DATA_DIR" in message


def test_a_declared_landing_folder_that_leads_outside_the_data_directory_fails_the_load(
    settings, tmp_path
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (settings.data_dir / "landing").mkdir(parents=True)
    (settings.data_dir / "landing" / "orders").symlink_to(elsewhere)
    with pytest.raises(DeclarationError) as refused:
        load_project(settings, COMPONENT_TYPES)
    message = str(refused.value)
    shop = settings.project_dir / "defs" / "churn" / "shop" / "defs.yaml"
    assert message.startswith(f"{shop} (document 1, system 'shop'): field sources.0.landing: ")
    assert "landing folder" in message and str(elsewhere) in message
    assert "TRAINING_PIPELINE_DATA_DIR" in message


def test_an_explicit_optuna_storage_may_live_elsewhere_and_is_recorded_by_name_only(
    settings, monkeypatch, tmp_path
):
    assert settings.optuna_storage_url == f"sqlite:///{settings.data_dir / 'optuna.db'}"
    url = f"postgresql+psycopg://optuna:{PASSWORD}@db.internal/optuna"
    monkeypatch.setenv("TRAINING_PIPELINE_OPTUNA_STORAGE", url)
    monkeypatch.setenv("TRAINING_PIPELINE_CRM_URL", POSTGRES)
    configured = Settings.from_env()
    assert configured.optuna_storage_url == url
    resources = build_resources(configured)
    assert isinstance(resources["model_store"].optuna_storage_url, dg.EnvVar)
    declared = resources_with_sources(configured)["source__crm_customers"]
    assert declared.url == dg.EnvVar("TRAINING_PIPELINE_CRM_URL")


# --- binding ------------------------------------------------------------------------------


@dataclass
class FakeDagsterDev:
    commands: list[list[str]] = field(default_factory=list)

    def __call__(self, command: list[str], **kwargs: object) -> "FakeDagsterDev":
        self.commands.append(command)
        return self

    def wait(self) -> int:
        return 0


def ui_command(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> list[str]:
    """The `dagster dev` command line `training-pipeline ui` would start."""
    fake = FakeDagsterDev()
    monkeypatch.setattr(runner, "prepare_dagster_home", lambda warehouse_writers: None)
    monkeypatch.setattr(runner, "companions_for", lambda settings: nullcontext([]))
    monkeypatch.setattr(runner.subprocess, "Popen", fake)
    monkeypatch.setattr(runner.signal, "signal", lambda *args: None)
    args = cli.build_parser().parse_args(argv)
    assert args.handler(args) == 0
    (command,) = fake.commands
    return command


def test_ui_and_make_ui_serve_on_the_port_asked_for(settings, monkeypatch):
    # First: ui_command replaces subprocess.Popen.
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "ui", "PORT=4001"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert dry_run.stdout.rstrip().endswith("training-pipeline ui --port 4001")
    default = ui_command(monkeypatch, ["ui"])
    assert default[default.index("-p") + 1] == "3000"
    asked = ui_command(monkeypatch, ["ui", "--port", "4001"])
    assert asked[asked.index("-p") + 1] == "4001"


def test_the_ui_binds_to_loopback_unless_another_host_is_asked_for(settings, monkeypatch):
    default = ui_command(monkeypatch, ["ui"])
    assert default[default.index("-h") + 1] == "127.0.0.1"
    explicit = ui_command(monkeypatch, ["ui", "--host", "0.0.0.0"])
    assert explicit[explicit.index("-h") + 1] == "0.0.0.0"
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "$(BIN)/training-pipeline ui --port $(PORT)\n" in makefile  # and no other host


def test_the_demo_api_binds_to_loopback_unless_another_host_is_asked_for(settings):
    assert demo_cli.build_parser().parse_args(["api"]).host == "127.0.0.1"
    assert demo_cli.build_parser().parse_args(["api", "--host", "::"]).host == "::"
    assert inspect.signature(DemoApiServer).parameters["host"].default == "127.0.0.1"
    with DemoApiServer(settings, port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
