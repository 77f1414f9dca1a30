"""Engine speed and fixed costs: our path against plain reference scripts, same rows.

    .venv/bin/python scripts/bench.py --rows 1e6,5e6 --repeat 3
    .venv/bin/python scripts/bench.py --incremental --rows 1e6
    .venv/bin/python scripts/bench.py --overhead

Default mode: N messy order rows (the demo's renderers and writers, one file a day in
rotating formats, 3 % re-deliveries) go through our path (``churn_demo.benchmark.
our_path``: ingestion + dbt staging and marts with their tests + the nulled-value count)
and through ``scripts/bench_reference/duckdb_script.py`` and ``pandas_script.py`` (the
same parsing, de-duplication and per-customer totals), each in its own process,
interleaved and rotated over the repetitions; medians of wall, CPU and peak RSS are
printed per stage with the ratios, and whether the three agree on the result.

``--incremental``: the rows spread over 271 days; one new day on a warehouse holding the
270 before it against the same day on an empty warehouse (ingestion + cleaning +
features).  ``--overhead``: a default demo run (``training-pipeline run``, its own
Dagster home and a demo ticket API on a free port) split into fixed costs and step work.
Generated files are cached under ``--work-dir`` by rows, days and seed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections import defaultdict
from pathlib import Path

from churn_demo.benchmark.measure import (
    HEADER,
    Cost,
    Measured,
    cost_row,
    median_cost,
    ratio,
    run_measured,
    with_stages,
)
from churn_demo.benchmark.messy_orders import OrderWorld, write_days

from training_pipeline.settings import DATA_DIR_ENV, REPO_ROOT

PYTHON = sys.executable
REFERENCE = REPO_ROOT / "scripts" / "bench_reference"
OURS, DUCKDB, PANDAS = "ours", "duckdb script", "pandas script"
HISTORY_DAYS = 270


def rows_list(text: str) -> list[int]:
    try:
        rows = [int(float(part)) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rows {text!r}: use numbers like 1e6,5e6") from None
    if any(r < 1000 for r in rows):
        raise argparse.ArgumentTypeError(f"--rows {text!r}: at least 1000 rows each")
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=rows_list, default=[1_000_000])
    parser.add_argument("--days", type=int, default=30, help="files per data set (default mode)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / ".bench")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--incremental", action="store_true")
    mode.add_argument("--overhead", action="store_true")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.days < 1:
        parser.error("--repeat and --days must be at least 1")
    return args


def order_files(work: Path, world: OrderWorld) -> list[Path]:
    """The world's files, generated once and cached (the marker is written last)."""
    folder = work / "files" / f"rows-{world.rows}-days-{world.days}-seed-{world.seed}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating {world.rows:,} rows in {world.days} files into {folder} ...")
        write_days(world, range(world.days), folder)
        (folder / ".complete").touch()
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def child_env(data_dir: Path) -> dict[str, str]:
    return os.environ | {
        DATA_DIR_ENV: str(data_dir),
        "TRAINING_PIPELINE_LANDING_SETTLE_S": "0",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def reset_data_dir(data_dir: Path, files: list[Path]) -> None:
    """Everything but dbt's state (its partial parse for this warehouse) starts over."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for child in data_dir.iterdir():
        if child.name != "dbt":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    land(data_dir, files)


def land(data_dir: Path, files: list[Path]) -> None:
    landing = data_dir / "landing" / "orders"
    landing.mkdir(parents=True, exist_ok=True)
    for file in files:
        os.link(file, landing / file.name)  # a hard link: no copy, and not a symlink


def warm_dbt_parse(data_dir: Path) -> None:
    """Parse once untimed, as every run after a warehouse's first finds it parsed."""
    run_measured(
        [PYTHON, "-m", "churn_demo.benchmark.our_path", "--parse-only"],
        child_env(data_dir),
    )


def run_ours(data_dir: Path, exclude: str = "") -> Measured:
    result = data_dir.parent / f"{data_dir.name}-stages.json"
    command = [PYTHON, "-m", "churn_demo.benchmark.our_path", "--result", str(result)]
    if exclude:
        command += ["--exclude", exclude]
    measured = run_measured(command, child_env(data_dir))
    return with_stages(measured, result)


def summary_of_ours(data_dir: Path) -> str:
    import duckdb

    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        orders, cents, customers = con.execute(
            "select count(*), sum(amount), count(distinct customer_id) from marts.orders"
        ).fetchone()
    finally:
        con.close()
    return f'{{"orders": {orders}, "amount": "{cents}", "customers": {customers}}}'


def print_table(title: str, runs: dict[str, list[Measured]]) -> dict[str, Cost]:
    print(f"\n{title}\n{HEADER}")
    totals = {}
    for path, measured in runs.items():
        totals[path] = median_cost([m.total for m in measured])
        print(cost_row(f"{path}: total", totals[path]))
        for stage in measured[0].stages:
            print(cost_row(f"  {stage}", median_cost([m.stages[stage] for m in measured])))
    return totals


def default_mode(args: argparse.Namespace) -> None:
    for rows in args.rows:
        world = OrderWorld(rows, args.days, args.seed)
        files = order_files(args.work_dir, world)
        base = args.work_dir / "engine"
        ours_dir, duck_out, pandas_out = base / "data", base / "duckdb.duckdb", base / "pandas"
        reset_data_dir(ours_dir, files)
        warm_dbt_parse(ours_dir)
        landing = str(files[0].parent)
        commands = {
            DUCKDB: [PYTHON, str(REFERENCE / "duckdb_script.py"), landing, str(duck_out)],
            PANDAS: [PYTHON, str(REFERENCE / "pandas_script.py"), landing, str(pandas_out)],
        }
        runs: dict[str, list[Measured]] = defaultdict(list)
        answers: dict[str, str] = {}
        order = [OURS, DUCKDB, PANDAS]
        for repetition in range(args.repeat):
            for path in order[repetition % 3 :] + order[: repetition % 3]:
                if path == OURS:
                    reset_data_dir(ours_dir, files)
                    runs[OURS].append(run_ours(ours_dir, exclude="features"))
                    answers[OURS] = summary_of_ours(ours_dir)
                else:
                    duck_out.unlink(missing_ok=True)
                    runs[path].append(run_measured(commands[path]))
                    answers[path] = runs[path][-1].stdout.strip().splitlines()[-1]
        title = (
            f"raw -> cleaned marts: {rows:,} rows in {args.days} files (csv, jsonl, parquet), "
            f"median of {args.repeat}"
        )
        totals = print_table(title, {p: runs[p] for p in order})
        ours, duck, pandas = totals[OURS], totals[DUCKDB], totals[PANDAS]
        print(
            f"ratios: ours/duckdb wall {ratio(ours.wall_s, duck.wall_s)}, "
            f"CPU {ratio(ours.cpu_s, duck.cpu_s)} (target <= 1.5x), "
            f"peak RSS {ratio(ours.peak_rss_mib, duck.peak_rss_mib)} (target <= 1.2x); "
            f"pandas/ours wall {ratio(pandas.wall_s, ours.wall_s)}, "
            f"CPU {ratio(pandas.cpu_s, ours.cpu_s)} (target >= 2x)"
        )
        agree = len(set(answers.values())) == 1
        print(f"results agree: {'yes' if agree else 'NO'} {answers[OURS]}")
        if not agree:
            print(f"  {answers}")


def incremental_mode(args: argparse.Namespace) -> None:
    for rows in args.rows:
        world = OrderWorld(rows, HISTORY_DAYS + 1, args.seed)
        files = order_files(args.work_dir, world)
        history, new_day = files[:HISTORY_DAYS], files[HISTORY_DAYS:]
        base = args.work_dir / "incremental"
        full_dir, empty_dir = base / "history" / "data", base / "empty" / "data"
        snapshot = base / f"warehouse-{HISTORY_DAYS}-days.duckdb"
        print(f"building the {HISTORY_DAYS}-day warehouse (untimed) ...")
        reset_data_dir(full_dir, history)
        warm_dbt_parse(full_dir)
        run_ours(full_dir)
        shutil.copyfile(full_dir / "warehouse.duckdb", snapshot)
        reset_data_dir(empty_dir, [])
        warm_dbt_parse(empty_dir)
        runs: dict[str, list[Measured]] = defaultdict(list)
        for _ in range(args.repeat):
            shutil.copyfile(snapshot, full_dir / "warehouse.duckdb")
            for file in new_day:
                (full_dir / "landing" / "orders" / file.name).unlink(missing_ok=True)
            land(full_dir, new_day)
            runs[f"day {HISTORY_DAYS + 1} on {HISTORY_DAYS} days"].append(run_ours(full_dir))
            reset_data_dir(empty_dir, new_day)
            runs[f"day {HISTORY_DAYS + 1} on an empty warehouse"].append(run_ours(empty_dir))
        title = (
            f"one new day ({world.rows_on(HISTORY_DAYS):,} rows; {rows:,} over "
            f"{HISTORY_DAYS + 1} days): ingestion + cleaning + features, median of {args.repeat}"
        )
        on_history, on_empty = print_table(title, runs).values()
        print(
            f"ratio: on history / on empty, wall {ratio(on_history.wall_s, on_empty.wall_s)}, "
            f"CPU {ratio(on_history.cpu_s, on_empty.cpu_s)} (target <= 1.5x)"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work_dir = args.work_dir.resolve()
    if args.overhead:
        from churn_demo.benchmark.overhead_run import overhead_mode

        overhead_mode(args.work_dir / "overhead")
    elif args.incremental:
        incremental_mode(args)
    else:
        default_mode(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
