"""Our path over a data directory, stage by stage, in one process: what the assets run.

    TRAINING_PIPELINE_DATA_DIR=D python -m churn_demo.benchmark.our_path --result R

Stages: the order files' Python checks (the UTF-8/line-length pass and CSV header before
DuckDB reads a file, and the record-by-record scan when a file must be explained; timed
inside ingestion), the rest of ingestion (DuckDB reads the files into ``raw.orders``,
manifest and batch bookkeeping), ``dbt build`` exactly as the ``cleaned_tables`` asset
runs it (``--exclude`` narrows it), and the nulled-value count.  Each stage records wall
time, CPU (this process and its children, dbt included) and peak RSS (of this process
so far, or dbt's own, sampled, for the dbt stage).  Orchestration (Dagster) is not in
this path: ``scripts/bench.py --overhead`` measures it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from training_pipeline.assets.dbt import BUILD_ARGS
from training_pipeline.cleaning.nulled_values import nulled_values_by_relation
from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.components.sources import declared_sources
from training_pipeline.ingestion import file_screen, landing_ingest
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.project import dbt_executable, dbt_project_of
from training_pipeline.resources import WarehouseDbtResource
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import FilesSource, Source

PRECHECK = "ingest: python pre-check"
LOAD = "ingest: duckdb load + bookkeeping"
DBT = "dbt build"
NULLED = "nulled-value count"


@dataclass(frozen=True)
class Stage:
    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mib: float


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


class Recorder:
    def __init__(self) -> None:
        self.stages: list[Stage] = []

    @contextmanager
    def stage(self, name: str, of_children: bool = False) -> Iterator[None]:
        wall, (own, children) = time.perf_counter(), _cpu()
        with ChildPeakRss() as child_peak:
            yield
        own_after, children_after = _cpu()
        rss = child_peak.peak_kib / 1024 if of_children else _rss_mib(resource.RUSAGE_SELF)
        self.stages.append(
            Stage(
                name,
                time.perf_counter() - wall,
                own_after - own + children_after - children,
                rss,
            )
        )


class ChildPeakRss:
    """The largest VmHWM of this process's children, sampled while the block runs.

    The kernel's figure for a reaped child (``RUSAGE_CHILDREN``) starts from the RSS of
    this process when it forked, so dbt's own peak is read from /proc instead; a peak
    reached in the last instant before exit can be missed (the sampling period).
    """

    def __init__(self, period_s: float = 0.2) -> None:
        self.period_s, self.peak_kib = period_s, 0
        self._done = threading.Event()

    def _sample(self) -> None:
        me = str(os.getpid())
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if stat.read_text().rsplit(")", 1)[1].split()[1] != me:
                    continue
                status = (stat.parent / "status").read_text()
            except (OSError, IndexError):
                continue  # the process ended while being read
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kib = max(self.peak_kib, int(line.split()[1]))

    def _run(self) -> None:
        while not self._done.wait(self.period_s):
            self._sample()

    def __enter__(self) -> ChildPeakRss:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _timing(function: Callable, totals: dict[str, float]) -> Callable:
    """``function`` timed into ``totals``; a call inside another timed call is not
    counted twice."""

    def timed(*args, **kwargs):
        totals["depth"] += 1
        wall, (own, _) = time.perf_counter(), _cpu()
        try:
            return function(*args, **kwargs)
        finally:
            totals["depth"] -= 1
            if not totals["depth"]:
                totals["wall"] += time.perf_counter() - wall
                totals["cpu"] += _cpu()[0] - own

    return timed


def _orders_source(settings: Settings, sources: Sequence[Source]) -> FilesSource:
    """The project's ``orders`` files source, which the messy order files are written for."""
    for source in sources:
        if source.name == "orders" and isinstance(source, FilesSource):
            return source
    raise RuntimeError(f"the project {settings.project_dir} declares no files source 'orders'")


def ingest(settings: Settings, sources: Sequence[Source], recorder: Recorder) -> int:
    """Load the landing folder as ``raw/orders`` does; the pre-check is timed apart."""
    checks = [(landing_ingest, "inspect_file"), (file_screen, "scan_file")]
    for module, name in checks:
        if not hasattr(module, name):
            raise RuntimeError(
                f"{module.__name__}.{name} is gone: point the benchmark at the Python checks"
            )
    source = _orders_source(settings, sources)
    totals = {"wall": 0.0, "cpu": 0.0, "depth": 0}
    originals = [getattr(module, name) for module, name in checks]
    for module, name in checks:
        setattr(module, name, _timing(getattr(module, name), totals))
    start, (own, _) = time.perf_counter(), _cpu()
    try:
        batch_id = wh.new_batch_id(source.ledger)
        started_at = wh.utc_now()
        with wh.connect(settings.warehouse_path, limits=settings.duckdb) as con:
            wh.ensure_raw_layer(con)
            report = landing_ingest.ingest_landing_folder(
                con,
                source,
                settings.landing_dir_of(source.landing_folder),
                settings.quarantine_dir_of(source.landing_folder),
                batch_id,
                started_at,
                settings.landing,
            )
            wh.record_batch(
                con,
                batch_id=batch_id,
                source=source.ledger,
                started_at=started_at,
                rows_loaded=report.rows_loaded,
                refs=[o.path for o in report.with_status("loaded")],
                run_id="benchmark",
                kind=source.kind,
            )
    finally:
        for (module, name), original in zip(checks, originals, strict=True):
            setattr(module, name, original)
    wall, cpu = time.perf_counter() - start, _cpu()[0] - own
    rss = _rss_mib(resource.RUSAGE_SELF)
    recorder.stages.append(Stage(PRECHECK, totals["wall"], totals["cpu"], rss))
    recorder.stages.append(Stage(LOAD, wall - totals["wall"], cpu - totals["cpu"], rss))
    if report.with_status("quarantined"):
        raise RuntimeError(f"the benchmark's files were quarantined: {report.outcomes}")
    if deferred := report.with_status("deferred"):
        # A hard link made to a landing file by another process changes its ctime.
        raise RuntimeError(
            f"the benchmark's files changed while read (another process linking them?): "
            f"{[o.path for o in deferred]}"
        )
    return report.rows_loaded


def _dbt(settings: Settings) -> WarehouseDbtResource:
    return WarehouseDbtResource(
        project_dir=dbt_project_of(settings),
        dbt_executable=dbt_executable(),
        state_dir=str(settings.dbt_state_dir),
    )


def build(
    settings: Settings, sources: Sequence[Source], select: list[str]
) -> list[tuple[str, str]]:
    """``dbt build`` as the asset runs it; the relations it built.

    As the asset does, every declared raw table is created first: dbt reads all of them,
    and only ``raw.orders`` receives the benchmark's files.
    """
    with wh.connect(settings.warehouse_path, limits=settings.duckdb) as con:
        wh.ensure_raw_layer(con)
        for source in sources:
            wh.ensure_raw_table(con, source.name, source.contract.names)
    args = [*BUILD_ARGS, *select]
    invocation = _dbt(settings).cli(args, manifest=dbt_project_of(settings).manifest_path).wait()
    results = json.loads((settings.dbt_state_dir / "run_results.json").read_text())
    failed = [r["unique_id"] for r in results["results"] if r["status"] in ("error", "fail")]
    if not invocation.is_successful() or failed:
        raise RuntimeError(f"dbt build failed: {failed}")
    nodes = json.loads(dbt_project_of(settings).manifest_path.read_text())["nodes"]
    return [
        (nodes[r["unique_id"]]["schema"], nodes[r["unique_id"]]["alias"])
        for r in results["results"]
        if r["unique_id"].startswith("model.")
    ]


def _newest_batch_time(settings: Settings) -> datetime | None:
    """The newest ``_ingested_at`` already in the warehouse: what the last count covered
    (the asset keeps it in its observation; this path has no Dagster instance)."""
    if not settings.warehouse_path.exists():
        return None
    with wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con:
        if wh.table_row_count(con, wh.RAW_SCHEMA, "orders") is None:
            return None
        return con.execute(f"select max(_ingested_at) from {wh.RAW_SCHEMA}.orders").fetchall()[0][0]


def run(settings: Settings, select: list[str]) -> dict:
    recorder = Recorder()
    sources = declared_sources(load_project(settings, COMPONENT_TYPES))
    counted_through = _newest_batch_time(settings)
    rows = ingest(settings, sources, recorder)
    with recorder.stage(DBT, of_children=True):
        relations = build(settings, sources, select)
    with (
        recorder.stage(NULLED),
        wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con,
    ):
        after = {} if counted_through is None else dict.fromkeys(relations, counted_through)
        nulled_values_by_relation(con, relations, after)
    return {"rows_loaded": rows, "stages": [asdict(s) for s in recorder.stages]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--result", type=Path)
    parser.add_argument("--parse-only", action="store_true", help="only run dbt parse")
    parser.add_argument("--exclude", default="", help="dbt nodes to leave out, e.g. features")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.parse_only:
        _dbt(settings).cli(["parse"], manifest=dbt_project_of(settings).manifest_path).wait()
        return
    if args.result is None:
        parser.error("--result is required")
    select = ["--exclude", args.exclude] if args.exclude else []
    args.result.write_text(json.dumps(run(settings, select)))


if __name__ == "__main__":
    main()
