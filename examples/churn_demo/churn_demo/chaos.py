"""Fault injection against a data directory: bad files, runs killed mid-stage, then a count.

    .venv/bin/churn-demo chaos --data-dir /tmp/chaos --rounds 3 --seed 1

Each round lands one or two good demo days and three bad order files (empty, header
only, truncated, garbage, wrong schema, BOM, a broken JSON line, columns differing only
by case, a name too long for its reason file, ';'-delimited with thousands commas) or
files with poison rows (a blank key, a far-future date); every kind comes up before any
repeats.  It starts ``training-pipeline run`` and SIGKILLs it, with dbt and
everything else it started, at a random stage (orders, tickets, dbt, training,
deployment).  The next round's run is the
rerun of the killed one; after the last round a run goes to the end.  Then it prints,
per source, what was landed, loaded, rejected and quarantined, what was lost (landed -
loaded - rejected - quarantined) and duplicated, whether the final run was wedged
(failed), and checks the production model (the last one promoted, its sha256, that it
loads and scores the current snapshot).

Exit status: 0 when nothing was lost or duplicated, no run was wedged and the model
check passed, 1 when something was, 2 on bad arguments.  The data directory must be a
demo world (one is created when it is empty or missing); the run log of every round is
kept in ``<data-dir>/chaos/``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path

from churn_demo import declared
from churn_demo.api_server import DemoApiServer, Fault
from churn_demo.generator import generate, load_state
from churn_demo.reliability import DEMO_MODEL, accounting, kills
from churn_demo.reliability.bad_files import BAD_KINDS, Ledger, good_file, land_bad_file
from training_pipeline.console import log_path_in
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.settings import REPO_ROOT, Settings

CLI = str(Path(sys.executable).parent / "training-pipeline")
TICKET_DELAY_S = 8.0  # long enough for the kill to find the ticket step waiting


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="churn-demo chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--dagster-home", type=Path, help="default: <data-dir>/chaos/dagster_home")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stages", default=",".join(kills.STAGES), help="stages to kill in")
    parser.add_argument("--customers", type=int, default=300, help="for a new demo world")
    parser.add_argument("--days", type=int, default=250, help="for a new demo world")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    args = parser.parse_args(argv)
    unknown = set(args.stages.split(",")) - set(kills.STAGES)
    if unknown or args.rounds < 0:
        parser.error(f"unknown stages {sorted(unknown)} or negative --rounds")
    return args


def prepare(args: argparse.Namespace, settings: Settings, ledger: Ledger) -> Path:
    """A demo world, a Dagster home with the repo's instance config, a seeded ledger."""
    if load_state(settings) is None:
        if settings.data_dir.exists() and any(settings.data_dir.iterdir()):
            print(f"chaos: {settings.data_dir} holds data but no demo world", file=sys.stderr)
            raise SystemExit(2)
        print(f"creating a demo world in {settings.data_dir} ({args.days} days)")
        generate(settings, days=args.days, customers=args.customers, seed=args.seed)
    if not ledger.path.exists():  # everything already delivered counts as landed
        landing = declared.orders_landing(settings)
        ledger.add(good_file(p) for p in sorted(landing.glob("[!.]*")) if p.is_file())
    home = args.dagster_home or settings.data_dir / "chaos" / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home


def land_round(
    settings: Settings, ledger: Ledger, rng: random.Random, name: str, kinds: list[str]
) -> str:
    summary = generate(settings, days=rng.randint(1, 2))
    good = [good_file(p) for p in summary.order_files]
    bad = [
        land_bad_file(declared.orders_landing(settings), kind, f"orders_{name}-{i}-{kind}", rng)
        for i, kind in enumerate(kinds, 1)
    ]
    ledger.add(good + bad)
    return f"landed {len(good)} good day(s) and bad files: {', '.join(kinds)}"


def print_released(log: Path) -> None:
    """The dead runs the run behind ``log`` found, marked failed and freed."""
    for line in log.read_text(errors="replace").splitlines():
        if " died " in line and " WARNING " in line:
            print(f"  the next run reported: {line.split(' WARNING ', 1)[1]}")


COLUMNS = (
    "files landed",
    "files loaded",
    "files quarantined",
    "rows landed",
    "rows loaded",
    "rows rejected",
    "rows quarantined",
    "lost",
    "duplicates",
)


def table(lines: list[accounting.SourceLine]) -> str:
    """One row per source; ``-`` where a source delivers no files."""
    rows = [
        [
            line.files_landed,
            line.files_loaded,
            line.files_quarantined,
            line.rows_landed,
            line.rows_loaded,
            line.rows_rejected,
            line.rows_quarantined,
            line.lost,
            line.duplicates,
        ]
        for line in lines
    ]
    header = f"{'source':<16}" + "".join(f"{name:>{len(name) + 2}}" for name in COLUMNS)
    body = [
        f"{line.source:<16}"
        + "".join(
            f"{'-' if value is None else f'{value:,}':>{len(name) + 2}}"
            for name, value in zip(COLUMNS, row, strict=True)
        )
        for line, row in zip(lines, rows, strict=True)
    ]
    return "\n".join([header, *body])


def report(settings: Settings, ledger: Ledger, demo_api: bool, wedged: int) -> bool:
    with wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con:
        lines = [accounting.account_order_files(con, ledger.read())]
        lines.append(accounting.account_crm(con, declared.crm_url(settings)))
        if demo_api:
            lines.append(accounting.account_tickets(con, settings))
    print(table(lines))
    model = accounting.check_production_model(settings)
    if model.version is None:
        print(f"production model: none (last promoted: {model.last_promoted or 'none ever'})")
    else:
        same = "the same" if model.version == model.last_promoted else model.last_promoted
        print(
            f"production model: {model.version}; last promoted: {same}; sha256 "
            f"{'verified' if model.sha256_verified else 'MISMATCH'}; loads: "
            f"{'yes' if model.loads else 'no'}; predicts: {model.rows_scored} rows scored"
            + (f"; problems: {'; '.join(model.problems)}" if model.problems else "")
        )
    published = accounting.check_published_files(settings)
    for problem in published.problems:
        print(f"half-written file visible to readers: {problem}")
    if published.hidden_leftovers:
        print(
            f"hidden temporaries left by killed writers (never read): "
            f"{', '.join(published.hidden_leftovers)}"
        )
    print(f"wedged runs (the final run failed): {wedged}")
    ok = all(line.holds for line in lines) and model.holds and not published.problems
    ok = ok and wedged == 0
    print(
        "RESULT: "
        + ("nothing lost, nothing duplicated, no run wedged, model intact" if ok else "FAILED")
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["TRAINING_PIPELINE_DATA_DIR"] = str(args.data_dir)
    settings = Settings.from_env()
    ledger = Ledger(settings.data_dir / "chaos" / "landed.jsonl")
    home = prepare(args, settings, ledger)
    rng = random.Random(args.seed)
    stages = args.stages.split(",")
    logs = settings.data_dir / "chaos" / "logs"
    with ExitStack() as stack:
        env = dict(os.environ) | {
            "TRAINING_PIPELINE_DATA_DIR": str(settings.data_dir),
            "DAGSTER_HOME": str(home),
            "TRAINING_PIPELINE_LANDING_SETTLE_S": "0",  # every file here lands by rename
        }
        api = None
        # The demo API is served here, on a free port, so the ticket stage can be slowed.
        if declared.api_url(settings) == declared.api_url_default(settings):
            api = stack.enter_context(DemoApiServer(settings, host="127.0.0.1", port=0))
            env[declared.api_url_variable(settings)] = api.url
        elif "tickets" in stages:
            stages.remove("tickets")
        session = f"chaos-s{args.seed}-{wh.utc_now():%Y%m%dT%H%M%S}"
        # Every kind of bad file comes up before any comes up again.
        kinds = [
            k for _ in range(args.rounds) for k in rng.sample(sorted(BAD_KINDS), len(BAD_KINDS))
        ]
        for round_no in range(1, args.rounds + 1):
            round_kinds = kinds[(round_no - 1) * 3 : round_no * 3]
            landed = land_round(settings, ledger, rng, f"{session}-r{round_no}", round_kinds)
            print(f"round {round_no}: {landed}")
            stage = kills.STAGES[rng.choice(stages)]
            if stage.name == "tickets" and api is not None:
                api.faults.append(Fault(delay_s=TICKET_DELAY_S))
            log = logs / f"{session}-round-{round_no}-{stage.name}.log"
            process = kills.start_run(CLI, env, log)
            outcome = kills.kill_at(
                process,
                stage,
                home,
                log,
                settings.models_dir / DEMO_MODEL,
                timeout_s=args.timeout,
                pipeline_log=log_path_in(settings.data_dir),
            )
            if api is not None:
                api.faults.clear()
            print_released(log)
            if outcome.killed:
                where = "inside the step" if outcome.interrupted else "as the step ended"
                print(
                    f"  killed run {outcome.run_id} during {stage.name} ({stage.step_key}, "
                    f"{where}) after {outcome.seconds:.0f} s"
                )
            else:
                print(f"  the run ended (exit {outcome.returncode}) before {stage.name}")
        final_log = logs / f"{session}-final.log"
        code, _ = kills.run_to_completion(CLI, env, final_log, timeout_s=args.timeout)
        print_released(final_log)
        print(f"final run to completion: exit {code} (log: {final_log})")
    return 0 if report(settings, ledger, api is not None, wedged=int(code != 0)) else 1


if __name__ == "__main__":
    sys.exit(main())
