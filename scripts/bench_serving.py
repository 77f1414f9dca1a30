"""Benchmark ``training-pipeline serve``: latency at a fixed rate, saturation throughput,
and swaps under load.

    .venv/bin/python scripts/bench_serving.py [--rate 100] [--seconds 30] [--swaps 5]

Builds a temporary data directory with two churn versions (logistic regression and
gradient boosting, the product's own pipelines fit on synthetic churn rows), starts the
real CLI server on a free port in its own process, and drives it with
``load_generator.py`` in a third (raw asyncio streams on uvloop, kept-alive
connections; measured 0.2-0.4 ms of CPU a request at a fixed rate, 0.07 ms at
saturation, printed with each phase):

1. ``--rate`` single-record requests per second for ``--seconds`` (open loop: each
   request is sent at its scheduled time, and its latency counts from that time, so a
   stalled server cannot hide its queue); p50, p90, p99, max.
2. Saturation: ``--clients`` closed-loop clients for ``--saturation-seconds``; requests/s.
3. Swaps: the fixed-rate load again while this process moves production ``--swaps``
   times (rollback --to, alternately to each version); every failed request is counted.
   The moves run here, not in the generator, so the registry's work cannot delay the load.

Each phase prints the server's CPU per request (from /proc: what the server spends,
whatever else the machine runs), the generator's own CPU per request, and the load
average: on a shared machine, latency says how long a request waited for a core too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATOR = Path(__file__).resolve().parent / "load_generator.py"
sys.path.insert(0, str(REPO / "training_pipeline_tests"))

from churn_problem import CHURN  # noqa: E402
from synthetic_churn import churn_snapshots  # noqa: E402

from training_pipeline.ml.registry import ModelRegistry  # noqa: E402
from training_pipeline.ml.reproduce import TRAINING_SET_FILE  # noqa: E402
from training_pipeline.ml.tuning import fit_final  # noqa: E402

FAMILIES = {"logistic_regression": {}, "hist_gradient_boosting": {"max_iter": 100}}


def registry_with_two_versions(data_dir: Path) -> tuple[ModelRegistry, list[str]]:
    frame = churn_snapshots(n_customers=300, n_snapshots=8, seed=0)
    training = data_dir / "training_set.parquet"
    frame.to_parquet(training)
    registry = ModelRegistry.for_model(data_dir / "models", "churn")
    versions = []
    for family, params in FAMILIES.items():
        model = fit_final(frame, CHURN, family, params)
        version = registry.register(
            model,
            family=family,
            params=params,
            metrics={"threshold": 0.5},
            problem=CHURN,
            data_fingerprint=f"bench-{family}",
            trained_on=["synthetic"],
            extra_files={TRAINING_SET_FILE: training},
        )
        versions.append(version.version)
        time.sleep(1.1)  # version ids carry the second
    registry.promote(versions[0])
    return registry, versions


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    env = os.environ | {"TRAINING_PIPELINE_DATA_DIR": str(data_dir)}
    server = subprocess.Popen(
        [
            str(REPO / ".venv/bin/training-pipeline"),
            "serve",
            "--model",
            "churn",
            "--port",
            "0",
            "--watch-interval",
            "0.5",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in server.stderr:
        if found := re.search(r"running on (http://\S+)", line):
            return server, found.group(1)
    raise RuntimeError(f"the server exited ({server.wait()}) before listening")


def one_record() -> dict:
    row = churn_snapshots(n_customers=1, n_snapshots=1, seed=3)[list(CHURN.features)].iloc[0]
    return {
        k: (None if v != v else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()
    }


def generate(url: str, body_file: Path, seconds: float, *, rate: float = 0, clients: int = 0):
    """Start ``load_generator.py`` in its own process: at ``rate`` requests/s (open loop)
    or with ``clients`` closed-loop clients.  ``collect`` waits for its results."""
    load = ["--clients", str(clients)] if clients else ["--rate", str(rate)]
    command = [sys.executable, str(GENERATOR), url, str(body_file), "--seconds", str(seconds)]
    process = subprocess.Popen(command + load, stdout=subprocess.PIPE, text=True)

    def collect() -> dict:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"the load generator exited with {process.returncode}")
        return json.loads(out)

    return collect


def quantiles(latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    cuts = statistics.quantiles(ms, n=100)
    return (
        f"p50 {cuts[49]:.2f} ms, p90 {cuts[89]:.2f} ms, p99 {cuts[98]:.2f} ms, max {ms[-1]:.2f} ms"
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--saturation-seconds", type=float, default=10, help="0: skip")
    parser.add_argument("--swaps", type=int, default=5, help="0: skip the swap run")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    registry, versions = registry_with_two_versions(data_dir)
    server, base = start_server(data_dir)
    url, body_file = f"{base}/v1/models/churn/predict", data_dir / "body.json"
    body_file.write_text(json.dumps(one_record()))
    print(f"machine: {os.cpu_count()} cores, load average {load_average()} at the start")
    try:
        generate(url, body_file, 2, rate=50)()  # warm-up
        steady = measured(server.pid, generate(url, body_file, args.seconds, rate=args.rate))
        report(f"fixed rate {args.rate:g}/s for {args.seconds:g} s, single record", steady)
        if args.saturation_seconds:
            closed = measured(
                server.pid, generate(url, body_file, args.saturation_seconds, clients=args.clients)
            )
            print(
                f"saturation ({args.clients} closed-loop clients, {args.saturation_seconds:g} s):"
                f" {len(closed['latencies']) / args.saturation_seconds:.0f} requests/s, "
                f"{len(closed['failures'])} failed; {cpu_figures(closed)}"
            )
        if args.swaps:
            swaps = measured(
                server.pid,
                generate(url, body_file, args.seconds, rate=args.rate),
                during=lambda: move_production(registry, versions, args.swaps, args.seconds),
            )
            report(f"swaps: {args.swaps} production moves at {args.rate:g}/s", swaps)
            print(f"  versions served: {swaps['versions']}")
            for failure in swaps["failures"][:5]:
                print("  failure:", failure)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data_dir)


def measured(server_pid: int, collect, during=None) -> dict:
    """The generator's results plus the server's CPU seconds and the load average."""
    before = cpu_seconds(server_pid)
    if during is not None:
        during()
    results = collect()
    results["server_cpu_seconds"] = cpu_seconds(server_pid) - before
    results["load_average"] = load_average()
    return results


def move_production(registry: ModelRegistry, versions: list[str], swaps: int, seconds: float):
    """Move production ``swaps`` times, evenly spread over ``seconds`` (this process, not
    the generator's: the registry's work must not delay the load)."""
    pause = seconds / (swaps + 1)
    for swap in range(swaps):
        time.sleep(pause)
        registry.rollback(to=versions[(swap + 1) % 2], reason="bench", reject=False)


def report(what: str, results: dict) -> None:
    print(
        f"{what} ({len(results['latencies'])} requests, {len(results['failures'])} failed): "
        f"{quantiles(results['latencies'])}; {cpu_figures(results)}"
    )


def cpu_figures(results: dict) -> str:
    n = max(1, len(results["latencies"]))
    return (
        f"server CPU {results['server_cpu_seconds'] / n * 1000:.2f} ms/request, load "
        f"generator CPU {results['cpu_seconds'] / n * 1000:.2f} ms/request; load average "
        f"{results['load_average']}"
    )


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
